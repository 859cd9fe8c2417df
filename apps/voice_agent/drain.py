"""Graceful drain: a process asked to stop (SIGTERM) lets its conversations finish their replies first.

Without it, a deploy or a scale-down cuts every live conversation mid-sentence: uvicorn closes each WebSocket
(1012) within a fraction of a second. With it, from the moment SIGTERM arrives:

1. **No new sessions.** ``/health`` answers 503 ``{"status": "draining"}`` at once (a load balancer stops sending
   new clients); ``/livez`` stays 200 (the process is alive, do not kill it). A new ``/ws`` handshake is refused
   with HTTP 503 (``Retry-After: 1``): a proxy that retries on 503 (nginx ``proxy_next_upstream http_503``) hands
   it to another backend without the client noticing.
2. **Live clients are told** (``status: draining``, additive) and each session finishes what it is doing: the
   reply being generated or played, a typed turn not yet answered, the user's speech that has not ended. Once it
   is quiet, it saves its conversation for resuming (:mod:`~voxline.apps.voice_agent.resume`) and closes with
   **1012** (service restart): the page reconnects at once — elsewhere — and resumes.
3. **The process exits** when no session is left, or after ``DRAIN_TIMEOUT`` seconds. Sessions still busy when
   less than :func:`force_margin` remains are closed (1012) so that their teardown fits in the budget; then the
   signal goes on to uvicorn's own handler, which stops the server as before.

A second SIGTERM stops at once. SIGINT (Ctrl+C) is not drained. With ``--workers N`` every worker drains on its
own (uvicorn's supervisor forwards SIGTERM to each and waits for them). Only the served app installs the handler
(``voxline serve`` and ``uvicorn voxline.apps.voice_agent:app``); an app built in tests drains when told to
(:meth:`Drain.run`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import attrs

__all__ = ["SERVICE_RESTART", "Drain", "SessionDrain", "force_margin"]

logger = logging.getLogger("voxline.apps.voice_agent.drain")

SERVICE_RESTART = 1012
"""The close code of a session ended by a drain: the client should reconnect at once (to another server)."""
POLL = 0.1
"""Seconds between two checks of whether a draining session is quiet, or the process has no session left."""

SignalHandler = Callable[[int, FrameType | None], Any] | int | None


def force_margin(timeout: float) -> float:
    """Seconds before ``DRAIN_TIMEOUT`` at which sessions still busy are closed: teardown takes a moment."""
    return min(2.0, timeout / 4)


class Drain:
    """One process's drain. :attr:`draining` flips the moment it starts; sessions watch :attr:`requested` and
    :attr:`force` (see :class:`SessionDrain`)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.draining = False
        """Set in the signal handler itself: /health says so from that instant."""
        self.since: float | None = None
        self.requested = asyncio.Event()
        """Sessions: tell the client, finish the reply, close with 1012."""
        self.force = asyncio.Event()
        """Sessions: close now, busy or not (the timeout is near)."""
        self.closed_busy = 0
        """Sessions that were still busy when :attr:`force` was set."""
        self._task: asyncio.Task[None] | None = None
        self._handler: Callable[[int, FrameType | None], None] | None = None
        self._previous: SignalHandler = None

    def begin(self) -> None:
        """Start draining (idempotent; in the event loop's thread)."""
        self.draining = True
        if self.since is None:
            self.since = time.monotonic()
            self.requested.set()

    async def run(self, live: Callable[[], int]) -> None:
        """Drain: wait until ``live()`` (the sessions) is 0 or the timeout has passed; close stragglers near it."""
        self.begin()
        assert self.since is not None
        logger.warning("draining: %d sessions finish their replies (at most %g s), no new ones", live(), self.timeout)
        force_at = self.since + max(0.0, self.timeout - force_margin(self.timeout))
        while live() > 0 and time.monotonic() < force_at:  # noqa: ASYNC110 - a count of sessions, no event
            await asyncio.sleep(POLL)
        if live() > 0:
            self.closed_busy = live()
            logger.warning("drain: closing %d sessions that are still busy (DRAIN_TIMEOUT)", self.closed_busy)
            self.force.set()
        end = self.since + self.timeout
        while live() > 0 and time.monotonic() < end:  # noqa: ASYNC110 - a count of sessions, no event
            await asyncio.sleep(POLL)
        logger.warning("drained in %.1f s; %d sessions left", time.monotonic() - self.since, live())

    # --- SIGTERM -----------------------------------------------------------------------------------------

    def install(self, live: Callable[[], int]) -> bool:
        """Drain on SIGTERM in this process, then pass the signal on to the handler it replaced (uvicorn's).

        Call from the event loop, in the main thread (signals are only delivered there); False elsewhere.
        """
        if threading.current_thread() is not threading.main_thread():
            return False
        loop = asyncio.get_running_loop()
        previous = signal.getsignal(signal.SIGTERM)

        def on_sigterm(sig: int, frame: FrameType | None) -> None:
            if self._task is not None or self.draining:
                logger.warning("a second SIGTERM: stopping now")
                loop.call_soon_threadsafe(self._hand_over)
                return
            self.draining = True  # plain assignment: safe in a signal handler; the rest runs in the loop
            loop.call_soon_threadsafe(self._start, live)

        self._handler, self._previous = on_sigterm, previous
        signal.signal(signal.SIGTERM, on_sigterm)
        return True

    def uninstall(self) -> None:
        """Give SIGTERM back to the handler it had (at the app's shutdown)."""
        if self._handler is not None and signal.getsignal(signal.SIGTERM) is self._handler:
            with contextlib.suppress(ValueError):  # not the main thread after all
                signal.signal(signal.SIGTERM, self._previous if self._previous is not None else signal.SIG_DFL)
        self._handler = None

    async def aclose(self) -> None:
        """Stop a drain that is still waiting (the server is stopping anyway)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _start(self, live: Callable[[], int]) -> None:
        async def drain_then_stop() -> None:
            try:
                await self.run(live)
            finally:
                self._hand_over()

        self._task = asyncio.get_running_loop().create_task(drain_then_stop(), name="drain")

    def _hand_over(self) -> None:
        """Let the server stop: the handler SIGTERM had before ours (uvicorn's ``handle_exit``), or the default."""
        previous = self._previous
        self.uninstall()
        if callable(previous):
            previous(signal.SIGTERM, None)
        else:
            signal.raise_signal(signal.SIGTERM)


@attrs.frozen
class SessionDrain:
    """What one session's watch needs of the drain (:mod:`~voxline.apps.voice_agent.lifetime`)."""

    drain: Drain
    quiet: Callable[[], bool]
    """True when the session may close without cutting anything (no reply, no pending turn, nobody talking)."""
    notify: Callable[[], None]
    """Tell the client (``status: draining``); called once, when the drain reaches this session."""
