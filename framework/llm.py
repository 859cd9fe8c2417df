"""The base of every LLM stage: a user turn in, a streamed reply out, interruption and retries done once, here.

A provider subclass implements one async generator, :meth:`LLMProcessor.stream`, that turns a
:class:`~voxline.context.Context` (ending with a user turn) into chunks of reply text. Everything a voice agent
needs around that lives in this class, so every provider behaves the same:

* A :class:`~voxline.frames.UserTextFrame` is added to the context and answered in a task bound to the current
  epoch: :class:`~voxline.frames.LLMResponseStartFrame`, :class:`~voxline.frames.TextFrame` chunks,
  :class:`~voxline.frames.LLMResponseEndFrame`, all carrying that epoch.
* The HTTP stream is read by its own small *reader* task (:mod:`voxline.llm_requests`), so an interruption
  always cancels an ``await`` inside the SDK — which is what closes the connection. (``break`` or ``aclose()``
  on an SDK generator leaves nested generators suspended and the socket open; and the task that pushes frames
  downstream may be suspended in a push, not in the SDK, when the interrupt lands.)
* On an interruption the partial reply is recorded in the context as interrupted and an
  ``LLMResponseEndFrame(interrupted=True)`` follows the interrupt (a control frame: it survives it). A reply
  generated in full but still being played (between the output's ``BotStartedSpeakingFrame`` and
  ``BotStoppedSpeakingFrame``, which travel upstream through this stage) is marked interrupted too: the user
  did not hear all of it. When the output then reports what had played (a
  :class:`~voxline.frames.BotHeardTextFrame` upstream, its text filled in by the TTS stage), the recorded reply
  is cut to that text — or dropped if nothing of it was heard in full.
* Failures before the first token has gone out are retried with :class:`~voxline.providers.backoff.Backoff`
  (exponential, jittered, ``attempts`` in all) when the subclass says they are retryable
  (:meth:`LLMProcessor.is_retryable`), and so is an empty reply. After the first token a failure ends the turn
  with a non-fatal :class:`~voxline.frames.ErrorFrame`; the next turn works.
* Timeouts: no first token within the first-token deadline (retryable), no next token within ``stall_timeout``.
  The deadline follows the provider's real time to first token (:class:`~voxline.llm_retry.FirstTokenTimeout`:
  a few times its recent p90, 3 s before anything is known for a fast model), so a stalled request is retried
  within the user's patience instead of after a fixed 15 s; a number pins it. ``connect_timeout`` is for
  subclasses to hand to their SDK's HTTP client.
* Secrets: every message the base reports or logs goes through the process-wide redactor
  (:mod:`voxline.providers.redaction`); subclasses register their keys with ``hide_secret``.
* A 400 whose message names an optional field the request carried (a thinking setting, a temperature, a token
  limit: :meth:`LLMProcessor.optional_fields`) is healed once: the field is dropped for this provider, model
  and endpoint for the rest of the process (``voxline.request_fields``), one warning says so, and the turn is
  retried at once without it. A model that changes its rules degrades to its defaults, not to an error a turn.
* ``MetricsFrame("llm.ttft")``: from the moment the turn is answered to its first token (retries included,
  because that is what the user waits for).
* Tools (``tools=[...]`` or a :class:`~voxline.tools.Toolbox`): when a step of the reply calls tools, the step
  (text and calls, and the provider's own form of it) goes into the context, the calls run concurrently as
  epoch-bound tasks (a barge-in cancels them and the reply; calls left without a result are answered
  "cancelled"), their results go into the context, and the reply continues with the next request — all in
  one ``LLMResponseStartFrame``/``LLMResponseEndFrame``. See :mod:`voxline.tools.toolbox` for timeouts, errors
  and filler speech.
* Fail-over: a stage that can switch providers overrides ``fail_over`` (:mod:`voxline.llm_requests`); the step
  whose attempts were used up is sent again to the new provider.
* A new user turn while a reply still streams means the user spoke again: the processor asks for an
  interruption (an ``InterruptFrame`` pushed upstream) and, when that interrupt arrives, answers the merged
  user turn in the new epoch. The superseded partial reply is not kept: it answered half a question.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Final

from voxline.context import Context, Turn
from voxline.frames import (
    BotHeardTextFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EndFrame,
    Frame,
    InterruptFrame,
    LLMResponseEndFrame,
    LLMResponseStartFrame,
    TextFrame,
    UserTextFrame,
)
from voxline.llm_requests import ModelRequests, ReplyInProgress, StepResult, StreamItem
from voxline.llm_retry import (
    RETRYABLE_STATUS,
    EmptyReplyError,
    FirstTokenTimeout,
    LLMTimeoutError,
)
from voxline.processor import DOWNSTREAM, UPSTREAM, Direction
from voxline.providers.backoff import Backoff
from voxline.providers.redaction import redact
from voxline.request_fields import OptionalField
from voxline.tools import Tool, Toolbox

__all__ = [
    "LLM_RETRY",
    "RETRYABLE_STATUS",
    "EmptyReplyError",
    "FirstTokenTimeout",
    "LLMProcessor",
    "LLMTimeoutError",
    "OptionalField",
    "StreamItem",
    "ToolLoopError",
]

logger = logging.getLogger("voxline.llm")

LLM_RETRY: Final = Backoff(initial=0.2, maximum=2.0, attempts=3)
"""Three requests at most per turn, 0.1-0.2 s and 0.2-0.4 s apart: a retry is only worth it while the user waits."""

WARM_UP_TIMEOUT: Final = 10.0


_NO_TOOLS: Final = Toolbox([])


class ToolLoopError(Exception):
    """The model kept calling tools past the toolbox's ``max_steps`` in one turn."""


class LLMProcessor(ModelRequests):
    """Answers user turns with a streamed LLM reply. Subclasses implement :meth:`stream`.

    Subclass contract:

    * ``async def stream(self, context) -> AsyncIterator[StreamItem]`` — send ``context`` (system prompt +
      turns, the last one a user turn or tool results) to the model and yield reply text as it arrives (empty
      strings are ignored), a :class:`~voxline.context.ToolCall` per function call the model makes (declare
      :attr:`toolbox`'s tools in the request), and optionally a :class:`~voxline.context.ProviderContent` (the
      provider's own form of the step, kept in the context with the calls). Do not retry, do not catch
      cancellation: the base does both.
    * ``is_retryable(exc)`` — whether a failure *before the first token* may be retried (408/429/5xx,
      connection errors). The default accepts ``ConnectionError`` and ``TimeoutError``.
    * ``describe_error(exc)`` — the message for the ErrorFrame. Register API keys with
      :func:`voxline.providers.redaction.hide_secret`; the base removes them from every message it reports or logs.
    * Optional: ``first_token_policy()`` — how long this provider's first token may take (fast models by default);
      ``health_check()`` — what a fallback probes (by default one tiny request).
    * Optional (from :class:`~voxline.request_fields.RequestHealing`): ``optional_fields()`` (the droppable
      fields the next request would carry), ``refusal_message(exc)`` (the provider's message when ``exc`` is a 400
      refusing the request as built) and ``request_key()`` (provider, model, endpoint); build requests with
      ``keeps(field)`` so a dropped field stays out.
    """

    def __init__(
        self,
        *,
        context: Context | None = None,
        system_prompt: str = "",
        retry: Backoff | None = None,
        connect_timeout: float = 5.0,
        first_token_timeout: float | FirstTokenTimeout | None = None,
        stall_timeout: float = 10.0,
        warm_up: bool = True,
        tools: Toolbox | Iterable[Tool] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.toolbox = Toolbox.of(tools)
        """The tools offered to the model (None: none); providers declare them in every request."""
        self.context = context if context is not None else Context(system_prompt)
        self.retry = retry or LLM_RETRY
        if self.retry.attempts is None:
            raise ValueError("an LLM turn needs a bounded retry: Backoff(attempts=...)")
        self.connect_timeout = connect_timeout
        self.first_token_timeout = first_token_timeout
        """Seconds, a :class:`FirstTokenTimeout`, or None: the provider's own (:meth:`first_token_policy`)."""
        self.stall_timeout = stall_timeout
        self.warm_up_on_start = warm_up
        self._reply: ReplyInProgress | None = None
        self._reply_task: asyncio.Task[None] | None = None
        self._barge_in: asyncio.Task[None] | None = None
        self._pending: list[str] = []
        self._bot_speaking = False
        self._recorded_epoch: int | None = None  # the epoch of the reply last added to the context
        self._recorded_before = ""  # what that reply said before its last step (earlier steps, filler)

    # --- what subclasses implement ----------------------------------------------------------------------

    async def warm_up(self) -> None:
        """Open a connection to the model's server before the first turn (a cheap request; optional)."""

    async def health_check(self) -> None:
        """Raise unless the model answers now: one tiny request, done at its first item (what a fallback probes)."""
        probe = Context()
        probe.add_user("Say OK.")
        async with asyncio.timeout(max(self.first_token_deadline(), 1.0) + 5.0):
            async for item in self.stream(probe):
                if item:
                    return
        raise EmptyReplyError("the health check got an empty reply")

    # --- helpers for subclasses -------------------------------------------------------------------------

    def start_warm_up(self) -> None:
        """Run :meth:`warm_up` in the background (call it at the end of ``on_start``).

        The first turn then finds a pooled connection (TCP and TLS done) instead of paying for it in its
        time to first token. A failure is only logged — the turn itself reports errors — but a rejected key
        shows up in the log before anyone speaks.
        """
        if self.warm_up_on_start:
            self.create_task(self._run_warm_up(), name=f"{self.name}-warm-up", epoch_bound=False)

    async def _run_warm_up(self) -> None:
        try:
            async with asyncio.timeout(WARM_UP_TIMEOUT):
                await self.warm_up()
        except Exception as exc:
            # INFO, not WARNING: some servers (llama.cpp) have no model lookup, and the first turn reports
            # real trouble itself. A rejected key still shows here, before anyone speaks.
            logger.info(
                "%s: model lookup ahead of the first turn failed: %s",
                self.name,
                redact(self.describe_error(exc)),
            )

    interrupted_marker = " [interrupted]"
    """Appended to an interrupted assistant turn in requests, so the model knows the user cut it off there."""

    def turn_text(self, turn: Turn) -> str:
        """The text to send for ``turn``: an interrupted reply carries :attr:`interrupted_marker`."""
        return turn.text + self.interrupted_marker if turn.interrupted else turn.text

    @property
    def replying(self) -> bool:
        """A reply is being generated right now."""
        return self._reply is not None and not self._reply.finished

    # --- frames -----------------------------------------------------------------------------------------

    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, UserTextFrame) and direction is DOWNSTREAM:
            await self._on_user_text(frame.text)
        elif isinstance(frame, InterruptFrame) and direction is DOWNSTREAM:
            # The gate has already entered the new epoch and cancelled the reply's tasks. The context is
            # updated before the interrupt goes on, so whatever reacts to it downstream sees the cut reply.
            cut = self._cut_reply()
            await self.push(frame, direction)
            await self._after_interrupt(cut)
        elif isinstance(frame, EndFrame):
            await self._wait_for_replies()
            await self.push(frame, direction)
        elif isinstance(frame, BotHeardTextFrame):
            self._cut_to_heard(frame)
            await self.push(frame, direction)
        else:
            if isinstance(frame, (BotStartedSpeakingFrame, BotStoppedSpeakingFrame)):
                self._bot_speaking = isinstance(frame, BotStartedSpeakingFrame)  # from the output, upstream
            await self.push(frame, direction)

    async def _on_user_text(self, text: str) -> None:
        text = text.strip()
        if not text:
            logger.debug("%s: ignoring an empty user turn", self.name)
            return
        if self.replying or self._pending:
            # The user spoke again while we answer: stop this reply and answer everything they said. The text
            # waits here, not in the context, so that the cancelled reply cannot land between its two halves.
            # The request travels in a task of its own: inline, it would run in the task that delivered this
            # frame (e.g. the head's queue worker), which the interrupt itself may cancel halfway through.
            first = not self._pending
            self._pending.append(text)
            if first:
                request = InterruptFrame(reason="user spoke again")
                self._barge_in = self.create_task(
                    self.push(request, UPSTREAM), name=f"{self.name}-barge-in", epoch_bound=False
                )
            return
        self.context.add_user(text)
        await self._start_reply()

    def _cut_reply(self) -> ReplyInProgress | None:
        """Record the reply an interrupt cut short (unless the user's next words supersede it); return it."""
        reply = self._reply
        if reply is None or reply.finished:
            if self._bot_speaking and reply is not None and reply.parts:
                # Generated in full, but still being played when the user barged in: they did not hear it all.
                last = self.context.turns[-1] if len(self.context) else None
                if last is not None and last.role == "assistant" and not last.interrupted:
                    self.context.cut_last_assistant(last.text)
            return None
        self._finish(reply, interrupted=True, record=not self._pending)
        return reply

    def _cut_to_heard(self, frame: BotHeardTextFrame) -> None:
        """Keep in the context only what the user heard of the reply of ``frame.epoch`` (if it is the last)."""
        if frame.text is None or frame.epoch is None or frame.epoch != self._recorded_epoch:
            return
        last = self.context.turns[-1] if len(self.context) else None
        if last is not None and last.role == "assistant":
            self.context.cut_last_assistant(_after(self._recorded_before, frame.text))
            self._recorded_epoch = None

    async def _after_interrupt(self, cut: ReplyInProgress | None) -> None:
        if cut is not None:
            await self.push(LLMResponseEndFrame(epoch=cut.epoch, interrupted=True))
        if self._pending:
            text = " ".join(self._pending)
            self._pending.clear()
            self.context.add_user(text)
            await self._start_reply()

    async def _start_reply(self) -> None:
        if not self.context.awaits_reply():
            return  # every request ends with a user turn (or tool results); nothing to answer
        previous = self._reply_task
        if previous is not None and not previous.done() and previous is not asyncio.current_task():
            # The last reply is finished but may still be pushing its end frame (or unwinding a cancel): let
            # it, so that downstream always sees Start, End, Start, End — never a Start overtaking an End.
            await asyncio.wait({previous})
        reply = ReplyInProgress(epoch=self.epoch, started=time.monotonic())
        self._reply = reply
        await self.push(LLMResponseStartFrame(epoch=reply.epoch))
        self._reply_task = self.create_task(self._answer(reply), name=f"{self.name}-reply")

    async def _wait_for_replies(self) -> None:
        """Let the reply in flight (and a merged turn asked for) finish before the end of stream passes."""
        while True:
            busy = {t for t in (self._barge_in, self._reply_task) if t is not None and not t.done()}
            if not busy:
                return
            await asyncio.wait(busy)  # wait() does not cancel them if we are cancelled

    def _finish(self, reply: ReplyInProgress, *, interrupted: bool, record: bool = True) -> None:
        reply.finished = True
        self.context.cancel_pending_tool_calls()  # a barge-in cut a tool step short: every call needs its answer
        if record and reply.parts:
            self.context.add_assistant(reply.text, interrupted=interrupted)
            self._recorded_epoch = reply.epoch
            self._recorded_before = "".join(reply.before)
        elif not record and reply.parts:
            logger.info("%s: dropped a superseded partial reply (%d chars)", self.name, len(reply.text))

    async def on_stop(self) -> None:
        reply = self._reply
        if reply is not None and not reply.finished:
            self._finish(reply, interrupted=True)

    # --- one reply ----------------------------------------------------------------------------------------

    async def _answer(self, reply: ReplyInProgress) -> None:
        error = await self._run_steps(reply)
        if reply.finished:
            return
        self._finish(reply, interrupted=error is not None)
        try:
            if error is not None:
                await self._report(error)
        finally:
            # The reply is marked finished, so an interrupt landing during the report will not end it:
            # the end frame must go out even then, or a Start would stay unmatched.
            await self.push(LLMResponseEndFrame(epoch=reply.epoch))

    async def _run_steps(self, reply: ReplyInProgress) -> BaseException | None:
        """Request, run the tools the model called, request again — until a step calls none (or fails)."""
        toolbox = self.toolbox or _NO_TOOLS
        steps = 0
        while True:
            step = StepResult()
            error = await self._generate(reply, step)
            if error is not None or not step.calls or reply.finished:
                return error
            steps += 1
            self.context.add_tool_calls(step.calls, text=reply.text, raw=step.raw)
            reply.before.extend(reply.parts)
            reply.parts.clear()
            if steps > toolbox.max_steps:
                self.context.cancel_pending_tool_calls("not run: too many tool calls in one turn")
                return ToolLoopError(f"the model called tools in more than {toolbox.max_steps} steps of one turn")
            results = await toolbox.run_step(self, step.calls, lambda text: self._say(reply, text))
            if reply.finished or self.context.pending_tool_calls() != tuple(step.calls):
                return None  # an interrupt ended the reply meanwhile (its calls were answered "cancelled")
            self.context.add_tool_results(results)

    async def _say(self, reply: ReplyInProgress, text: str) -> None:
        """Filler speech while tools run: spoken, but not part of what the model said."""
        text = text.strip() + " "
        reply.before.append(text)
        await self.push(TextFrame(text=text, epoch=reply.epoch))

    async def _report(self, exc: BaseException) -> None:
        message = redact(self.describe_error(exc))
        # Attach the exception (logged with its traceback) only when its text is free of secrets.
        safe = redact(str(exc)) == str(exc)
        await self.push_error(message, exception=exc if safe else None)


def _after(prefix: str, heard: str) -> str:
    """What the user heard of a reply's last step: ``heard`` minus what earlier steps (and filler) said."""
    prefix, heard = " ".join(prefix.split()), " ".join(heard.split())
    if not prefix:
        return heard
    if heard.startswith(prefix):
        return heard[len(prefix) :].strip()
    return heard[len(prefix) :].strip() if len(heard) > len(prefix) else ""
