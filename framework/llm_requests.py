"""One step of an LLM reply, sent and streamed: attempts, retries, the first-token deadline, fail-over hooks.

:class:`ModelRequests` is the request half of :class:`voxline.llm.LLMProcessor` (which adds frames, the context
and interruption). A reply is one or more *steps*: a request whose stream yields text and, when the model
calls tools, :class:`~voxline.context.ToolCall`\\ s (plus, optionally, the provider's own form of the step,
:class:`~voxline.context.ProviderContent`). :meth:`ModelRequests._generate` runs one step to its end:

* Each attempt's stream is read by its own *reader* task, so an interruption always cancels an ``await``
  inside the SDK — which is what closes the connection.
* Failures before anything of the step has gone out are retried with the stage's ``retry``
  :class:`~voxline.providers.backoff.Backoff` when :meth:`ModelRequests.is_retryable` says so, and so is a
  stream with neither text nor calls. Calls a failed attempt streamed are dropped with it (they have not run).
* The first item (text or a call) must come within the first-token deadline, the next within
  ``stall_timeout``.
* A 400 that names an optional field is healed (:class:`~voxline.request_fields.RequestHealing`).
* When the attempts are used up — or at once, for what :meth:`ModelRequests.abandons_at_once` says — the stage
  may :meth:`ModelRequests.fail_over` (a :class:`~voxline.fallback.FallbackLLM` switches provider there) and
  the step starts again from its first attempt: the user's turn is not lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Final

import attrs
from voxline.context import Context, ProviderContent, ToolCall
from voxline.frames import MetricsFrame, TextFrame
from voxline.llm_retry import FAST_MODEL, TTFT_HISTORY, EmptyReplyError, FirstTokenTimeout, LLMTimeoutError
from voxline.processor import Processor
from voxline.providers.redaction import redact
from voxline.request_fields import RequestHealing

if TYPE_CHECKING:
    from voxline.providers.backoff import Backoff

__all__ = ["ModelRequests", "StreamItem"]

logger = logging.getLogger("voxline.llm")

_END: Final = object()

StreamItem = str | ToolCall | ProviderContent
"""What a provider's ``stream`` yields: reply text, a tool call, or its own form of the step."""


@attrs.define(slots=True)
class ReplyInProgress:
    """One reply being generated: its epoch, its text so far, and whether it has been accounted for.

    ``parts`` is the text of the current step; ``before`` what earlier steps of the reply (and filler) pushed.
    """

    epoch: int
    started: float
    parts: list[str] = attrs.field(factory=list)
    before: list[str] = attrs.field(factory=list)
    finished: bool = False
    spoke: bool = False  # llm.ttft went out

    @property
    def text(self) -> str:
        return "".join(self.parts)


@attrs.define(slots=True)
class StepResult:
    """What one successful attempt streamed besides text: the calls, and the provider's form of the step."""

    calls: list[ToolCall] = attrs.field(factory=list)
    raw: ProviderContent | None = None


class ModelRequests(Processor, RequestHealing):
    """Sending one step of a reply to the model (see the module docstring). Subclassed by the LLM base."""

    context: Context
    retry: Backoff
    stall_timeout: float
    first_token_timeout: float | FirstTokenTimeout | None

    # --- what subclasses implement ----------------------------------------------------------------------

    def stream(self, context: Context) -> AsyncIterator[StreamItem]:
        """Yield the reply to ``context`` as text chunks and tool calls (implement as an ``async def`` generator)."""
        raise NotImplementedError(f"{type(self).__name__} must implement stream()")

    def is_retryable(self, exc: BaseException) -> bool:
        """Whether ``exc``, raised before the first token, may be retried."""
        return isinstance(exc, (ConnectionError, TimeoutError))

    def describe_error(self, exc: BaseException) -> str:
        """A one-line description of ``exc`` for the ErrorFrame (secrets are removed afterwards)."""
        return f"{type(exc).__name__}: {exc}"

    def first_token_policy(self) -> FirstTokenTimeout:
        """How long this provider's first token may take when ``first_token_timeout`` is left out."""
        return FAST_MODEL

    def first_token_deadline(self) -> float:
        """Seconds the next attempt waits for its first token (from its recent TTFTs, unless pinned)."""
        setting = self.first_token_timeout
        if isinstance(setting, (int, float)):
            return float(setting)
        policy = setting if setting is not None else self.first_token_policy()
        return policy.seconds(TTFT_HISTORY.recent(self.request_key()))

    def is_connect_failure(self, exc: BaseException) -> bool:
        """Whether ``exc`` means the provider could not be reached at all (refused, no route, connect timeout)."""
        return isinstance(exc, ConnectionError)

    def abandons_at_once(self, exc: BaseException) -> bool:
        """Whether a retryable ``exc`` should skip the remaining attempts and go straight to :meth:`fail_over`."""
        return False

    async def fail_over(self, exc: BaseException) -> bool:
        """The attempts of a step are used up (``exc`` ended the last): True to start the step again from its
        first attempt — after switching to another provider. The base has none and returns False."""
        return False

    # --- one step -------------------------------------------------------------------------------------

    async def _generate(self, reply: ReplyInProgress, step: StepResult) -> BaseException | None:
        """Run attempts until one yields text or calls; returns the error that ended the step, or None.

        A refusal of an optional field is not an attempt: the request is sent again at once without the field
        (each field is dropped once, so this ends).
        """
        attempt = 1
        while True:
            attempts = self.retry.attempts or 1
            error: BaseException
            try:
                await self._attempt(reply, step)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not reply.parts and self._leave_out_refused_field(exc):
                    continue
                if reply.parts or not self.is_retryable(exc):
                    return exc
                error = exc
            else:
                if reply.parts or step.calls:
                    return None
                error = EmptyReplyError(f"the model returned an empty reply ({attempt} attempt(s))")
            if attempt >= attempts or self.abandons_at_once(error):
                if await self.fail_over(error):
                    attempt = 1
                    continue
                return error
            delay = self.retry.delay(attempt)
            logger.warning(
                "%s: attempt %d/%d failed before the first token (%s); retrying in %.2f s",
                self.name,
                attempt,
                attempts,
                redact(self.describe_error(error)),
                delay,
            )
            await asyncio.sleep(delay)
            attempt += 1

    async def _attempt(self, reply: ReplyInProgress, step: StepResult) -> None:
        """One request: a reader task pulls the stream into a queue; this task pushes frames from it."""
        step.calls.clear()
        step.raw = None
        queue: asyncio.Queue[object] = asyncio.Queue()
        first_token = self.first_token_deadline()
        key = self.request_key()
        sent = time.monotonic()
        got_item = False
        reader = self.create_task(self._read(queue), name=f"{self.name}-reader")
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(first_token) as deadline:
                while True:
                    item = await queue.get()
                    if item is _END:
                        return
                    if isinstance(item, BaseException):
                        raise item
                    if not got_item:
                        got_item = True
                        TTFT_HISTORY.record(key, time.monotonic() - sent)
                    deadline.reschedule(loop.time() + self.stall_timeout)
                    if isinstance(item, ToolCall):
                        step.calls.append(item)
                    elif isinstance(item, ProviderContent):
                        step.raw = item
                    elif isinstance(item, str):
                        await self._push_text(reply, item)
        except TimeoutError as exc:
            if deadline.expired():
                if got_item:
                    raise LLMTimeoutError(f"the reply stalled: no token for {self.stall_timeout:g} s") from exc
                # A sample of at least the deadline: a provider that has become slower raises its own deadline.
                TTFT_HISTORY.record(key, first_token)
                raise LLMTimeoutError(f"no first token within {first_token:.3g} s") from exc
            raise
        finally:
            if not reader.done():
                reader.cancel()
                await asyncio.wait({reader})

    async def _push_text(self, reply: ReplyInProgress, text: str) -> None:
        if not reply.spoke:
            reply.spoke = True
            ttft = time.monotonic() - reply.started
            await self.push(MetricsFrame(name="llm.ttft", value=ttft, source=self.name, epoch=reply.epoch))
        said = text
        if not reply.parts and reply.before and not reply.before[-1][-1:].isspace() and not text[:1].isspace():
            said = " " + text  # a step after tools starts a new response: keep its first word apart from the last
        reply.parts.append(text)
        await self.push(TextFrame(text=said, epoch=reply.epoch))

    async def _read(self, queue: asyncio.Queue[object]) -> None:
        """Iterate the subclass's stream. Cancelling this task is what closes the provider's HTTP stream."""
        try:
            async for item in self.stream(self.context):
                if item:
                    queue.put_nowait(item)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            queue.put_nowait(exc)
        else:
            queue.put_nowait(_END)
