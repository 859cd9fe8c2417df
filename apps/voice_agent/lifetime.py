"""A session's lifetime as one structured scope: the pipeline and the watch over it end together.

:func:`run_scoped` runs the session's *runner* (its pipeline task, or the wait of a session that has none) next
to a *watch* that waits for whichever comes first:

* the transport ended: the client disconnected, a send failed, or the reader failed
  (:attr:`~voxline.transports.WebSocketTransport.ended`);
* the idle timeout: no audio or typed text from the client for ``IDLE_TIMEOUT`` seconds (while the pipeline
  is starting or still taking in the client's last message, or a reply is due, being generated or being
  played, the session is waiting for the server, not idle);
* the session's time limit (``MAX_SESSION_SECONDS``);
* a drain (:mod:`~voxline.apps.voice_agent.drain`): once the process drains, the client is told and the watch
  ends the session (close code 1012) as soon as it is quiet — its reply finished and played — or when the drain
  runs out of time.

When either side ends, the other is ended too and awaited — the pipeline is cancelled, every stage stops and its
provider sockets close; a pipeline whose client left while it was still starting finishes its start (at most
``START_WAIT`` seconds; its models go back to their pools instead of being loaded for nothing) and stops
without ever running, so no provider is connected for it — and :func:`run_scoped` returns an :class:`Ending`
that says what to tell the client and how to close. Nothing of the session outlives it, even if the handler
itself is cancelled meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

import attrs
from voxline.apps.voice_agent.config import Limits
from voxline.apps.voice_agent.drain import POLL, SERVICE_RESTART, SessionDrain
from voxline.task import PipelineTask, run_shielded
from voxline.transports import WebSocketTransport

__all__ = ["NORMAL", "SERVER_ERROR", "Ending", "run_scoped"]

logger = logging.getLogger("voxline.apps.voice_agent.lifetime")

NORMAL = 1000
SERVER_ERROR = 1011
REPLY_WAIT = 60.0
"""Seconds after the user's turn during which a reply that has not started yet keeps the session from idling."""
IDLE_GRACE = 0.25
"""Seconds the idle timeout waits, once past its deadline, for the reader to catch up before closing."""
START_WAIT = 2.0
"""Seconds a pipeline whose client has gone may take to finish starting (and then stop) before it is cancelled."""
STOP_WAIT = 20.0
"""Seconds to wait for a cancelled pipeline to stop (each stage has 5 s for its tasks and 5 s for on_stop)."""


@attrs.frozen
class Ending:
    """How a session ended: for the log, and what the client is told."""

    reason: str
    code: int | None = None
    """Close code to send; None when the client is gone (nothing can reach it)."""
    message: str | None = None
    """An ``error`` to send before closing."""

    @property
    def kind(self) -> str:
        """For metrics, a bounded name: client_left, drain, error, idle, time_limit or ended."""
        if self.code is None:
            return "client_left"
        if self.code == SERVICE_RESTART:
            return "drain"
        if self.code == SERVER_ERROR:
            return "error"
        return (
            "idle"
            if self.reason == "idle timeout"
            else "time_limit"
            if self.reason == "session time limit"
            else "ended"
        )


async def run_scoped(
    runner: Coroutine[Any, Any, None],
    transport: WebSocketTransport,
    limits: Limits,
    task: PipelineTask | None,
    drain: SessionDrain | None = None,
) -> Ending:
    """Run ``runner`` (usually ``task.run()``) until it or the watch ends; then end the other. See the module."""
    run = asyncio.ensure_future(runner)
    watch = asyncio.ensure_future(_watch(transport, limits, drain, starting=task is not None))
    try:
        await asyncio.wait((run, watch), return_when=asyncio.FIRST_COMPLETED)
        if watch.done() and not watch.cancelled() and watch.exception() is None:
            ending = watch.result()
        else:
            ending = _transport_ending(transport) or Ending("the pipeline ended", NORMAL)
        return ending
    finally:
        await _end_both(run, watch, task, transport)


async def _end_both(
    run: asyncio.Future[None], watch: asyncio.Future[Ending], task: PipelineTask | None, transport: WebSocketTransport
) -> None:
    """Cancel and await both sides, however we got here (shielded: a second cancel cannot cut it short)."""
    watch.cancel()

    async def stop() -> None:
        if not run.done():
            if task is not None:
                # A pipeline still starting finishes its start and then stops without ever running: its stages
                # give back what they took (a model goes back to its pool instead of being loaded for nothing),
                # and no provider is connected (they connect when the pipeline runs).
                await task.cancel(transport.end_reason or "session ended")
                await asyncio.wait((run,), timeout=START_WAIT)
            run.cancel()  # a start that takes longer is abandoned
        done, _ = await asyncio.wait((run, watch), timeout=STOP_WAIT)
        if run not in done:
            logger.error("the pipeline did not stop within %g s; leaving it to finish on its own", STOP_WAIT)
        for side in done:
            if not side.cancelled() and side.exception() is not None:
                logger.error("session task failed", exc_info=side.exception())

    await run_shielded(stop())


async def _watch(
    transport: WebSocketTransport, limits: Limits, drain: SessionDrain | None, *, starting: bool
) -> Ending:
    """``starting``: a pipeline will run; until it does (models loading, providers connecting), not idle."""
    ended = asyncio.ensure_future(transport.ended.wait())
    drained = asyncio.ensure_future(drain.drain.requested.wait()) if drain is not None else None
    try:
        return await _watch_until(transport, limits, drain, ended, drained, starting=starting)
    finally:
        for waiter in (ended, drained):
            if waiter is not None:
                waiter.cancel()


async def _watch_until(
    transport: WebSocketTransport,
    limits: Limits,
    drain: SessionDrain | None,
    ended: asyncio.Future[Any],
    drained: asyncio.Future[Any] | None,
    *,
    starting: bool,
) -> Ending:
    clock = transport.params.clock
    started = clock()
    idle, longest = limits.idle_timeout, limits.max_session_seconds
    graced = False
    told = False
    while True:
        now = clock()
        waits: list[float] = []
        if drain is not None and drain.drain.requested.is_set():
            if not told:
                told = True
                drain.notify()
            if drain.drain.force.is_set() or drain.quiet():
                return Ending("the server is restarting (drain)", SERVICE_RESTART)
            waits.append(POLL)
        if idle > 0:
            if _waiting_for_server(transport, starting, now):
                transport.note_activity()
            left = transport.last_activity + idle - now
            if left > 0:
                graced = False
            elif graced:
                return Ending(
                    "idle timeout",
                    NORMAL,
                    f"Closing the session: no audio or text from the client for {idle:g} s (IDLE_TIMEOUT).",
                )
            else:
                # Once more after a moment: if the event loop was held up (a model loading on a worker thread
                # that keeps the GIL, say), what the client sent meanwhile is still waiting to be read.
                graced = True
                left = min(IDLE_GRACE, idle / 2)
            waits.append(left)
        if longest > 0:
            left = started + longest - now
            if left <= 0:
                return Ending(
                    "session time limit",
                    NORMAL,
                    f"Closing the session: it reached its time limit of {longest:g} s (MAX_SESSION_SECONDS). "
                    "Reconnect to start a new one.",
                )
            waits.append(left)
        pending = [ended] if drained is None or drained.done() else [ended, drained]
        await asyncio.wait(pending, timeout=min(waits) if waits else None, return_when=asyncio.FIRST_COMPLETED)
        ending = _transport_ending(transport)
        if ending is not None:
            return ending


def _waiting_for_server(transport: WebSocketTransport, starting: bool, now: float) -> bool:
    """The pipeline is starting, or still taking in the client's last message, or a reply is due (for at most
    ``REPLY_WAIT`` s), being made or being played: the client is waiting for the server, not idle."""
    if transport.bot_active or transport.busy or (starting and not transport.live):
        return True
    pending = transport.turn_pending_since
    return pending is not None and now - pending < REPLY_WAIT


def _transport_ending(transport: WebSocketTransport) -> Ending | None:
    if not transport.ended.is_set():
        return None
    reason = transport.end_reason or "the connection ended"
    if transport.disconnected.is_set():
        return Ending(reason)  # the client is gone: nothing to send, nothing to close
    # The reader or the writer failed (a bug): the reader already told the client what it could.
    return Ending(reason, SERVER_ERROR)
