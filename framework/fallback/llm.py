""":class:`FallbackLLM`: one LLM stage over several providers; the next takes the turn when one fails.

``FallbackLLM([GeminiLLM(...), OpenAILLM(...)])`` is an LLM stage like any other (context, tools, interruption,
metrics all come from :class:`~voxline.llm.LLMProcessor`); each request goes to the provider serving now. The
providers are never linked into the pipeline: the fallback starts and stops them, and hands them its context
and toolbox, so the conversation — tool steps included — carries over when it switches.

When it switches (:meth:`FallbackLLM.fail_over`, called by the request engine, :mod:`voxline.llm_requests`):

* a **connection failure** (the provider could not be reached) or **no first token within the deadline**: at
  once, without using up the attempts;
* a **retryable error** (408/429/5xx, an empty reply): after ``retry``'s attempts on that provider
  (``Backoff(attempts=2)`` by default: one retry, then the next provider);
* not for an error the next provider would answer the same (a 400 the request caused, a refusal), and not once
  anything of the step has been pushed (text is never said twice).

The step that failed is sent to the next provider at once — the user's turn is not lost. Each provider is tried
once per step; if all fail, the turn ends with the last error. Going back: see :class:`~voxline.fallback.roster.
Roster` (cooldown, then the provider's ``health_check``: one tiny request). Every switch is one WARNING line and
a ``MetricsFrame("llm.fallback")``; :attr:`FallbackLLM.switches` keeps them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Hashable, Iterable, Sequence

from voxline.context import Context
from voxline.fallback.roster import Roster, Switch
from voxline.llm import LLMProcessor, StreamItem
from voxline.llm_requests import ReplyInProgress, StepResult
from voxline.llm_retry import EmptyReplyError, LLMTimeoutError
from voxline.providers.backoff import Backoff
from voxline.request_fields import OptionalField
from voxline.tools import Tool, Toolbox

__all__ = ["FALLBACK_RETRY", "FallbackLLM"]

FALLBACK_RETRY = Backoff(initial=0.2, maximum=1.0, attempts=2)
"""Per provider: one quick retry, then the next provider (the user is waiting)."""


class FallbackLLM(LLMProcessor):
    """An LLM stage that fails over between its ``members`` (LLM stages, priority order). See the module docstring.

    ``context`` and ``tools`` default to the primary's; ``cooldown`` (s) is how long a failed provider rests
    before its health is probed, every ``probe_interval`` (s) until it passes.
    """

    def __init__(
        self,
        members: Sequence[LLMProcessor],
        *,
        cooldown: float = 30.0,
        probe_interval: float = 10.0,
        retry: Backoff | None = None,
        stall_timeout: float | None = None,
        context: Context | None = None,
        tools: Toolbox | Iterable[Tool] | None = None,
        name: str | None = None,
    ) -> None:
        primary = members[0] if members else None
        super().__init__(
            context=context if context is not None else primary.context if primary is not None else None,
            retry=retry or FALLBACK_RETRY,
            stall_timeout=stall_timeout if stall_timeout is not None else primary.stall_timeout if primary else 10.0,
            tools=tools if tools is not None else primary.toolbox if primary is not None else None,
            warm_up=False,
            name=name,
        )
        self._roster: Roster[LLMProcessor] = Roster(
            self,
            members,
            kind="llm",
            cooldown=cooldown,
            probe_interval=probe_interval,
            probe=lambda provider: provider.health_check(),
        )
        for member in members:
            member.context = self.context
            member.toolbox = self.toolbox
        self._tried: set[int] = set()

    @property
    def members(self) -> list[LLMProcessor]:
        return self._roster.members

    @property
    def active(self) -> LLMProcessor:
        """The provider serving now."""
        return self._roster.active

    @property
    def switches(self) -> list[Switch]:
        return self._roster.switches

    # --- lifecycle --------------------------------------------------------------------------------------

    async def on_start(self) -> None:
        for member in self.members:
            await member._start(self._clock, ())
        self._roster.resume()

    async def on_stop(self) -> None:
        await super().on_stop()
        for member in self.members:
            await member._stop()

    # --- requests go to the provider serving now ------------------------------------------------------

    async def stream(self, context: Context) -> AsyncIterator[StreamItem]:
        provider = self.active
        provider.toolbox = self.toolbox  # set on the fallback after it was built: the provider declares them too
        async for item in provider.stream(context):
            yield item

    async def _generate(self, reply: ReplyInProgress, step: StepResult) -> BaseException | None:
        self._tried = {self._roster.index}
        return await super()._generate(reply, step)

    def abandons_at_once(self, exc: BaseException) -> bool:
        return isinstance(exc, LLMTimeoutError) or self.active.is_connect_failure(exc)

    async def fail_over(self, exc: BaseException) -> bool:
        if not (isinstance(exc, EmptyReplyError) or self.active.is_retryable(exc)):
            return False
        if not await self._roster.fail_over(self.active.describe_error(exc), exclude=self._tried, try_down=True):
            return False
        self._tried.add(self._roster.index)
        return True

    # --- what the base asks, answered by the provider serving now --------------------------------------

    def is_retryable(self, exc: BaseException) -> bool:
        return self.active.is_retryable(exc)

    def is_connect_failure(self, exc: BaseException) -> bool:
        return self.active.is_connect_failure(exc)

    def describe_error(self, exc: BaseException) -> str:
        return f"{self.active.name}: {self.active.describe_error(exc)}"

    def first_token_deadline(self) -> float:
        return self.active.first_token_deadline()

    def request_key(self) -> Hashable:
        return self.active.request_key()

    def optional_fields(self) -> Sequence[OptionalField]:
        return self.active.optional_fields()

    def refusal_message(self, exc: BaseException) -> str | None:
        return self.active.refusal_message(exc)

    async def health_check(self) -> None:
        await self.active.health_check()
