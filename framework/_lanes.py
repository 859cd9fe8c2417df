"""The system lane of a processor: how system frames, interrupts above all, pass a stage in order.

System frames never wait in a queue. Two rules keep them in order all the same, however long a stage's
``process`` awaits while handling one:

* while a downstream system frame is inside a stage, data and control frames arriving behind it wait at the
  gate (and the stage's queue worker waits), so nothing overtakes it downstream;
* interrupts pass a stage one at a time, first come first served, so a newer one never overtakes an older one
  whose handling is still awaiting something.

Each processor has one :class:`SystemLane`, which owns that state: which tasks are inside the stage with a
downstream system frame (:attr:`SystemLane.busy`), which of them with an interrupt, and who waits for them. The
processor brackets its ``process`` call with :meth:`SystemLane.enter` / :meth:`SystemLane.leave` (an interrupt:
:meth:`SystemLane.take_turn` / :meth:`SystemLane.end_turn`) and calls :meth:`SystemLane.wait_clear` before
letting a data or control frame in behind a system frame. Waiters are made only when someone has to wait, so a
lane that never sees a stalled system frame costs two empty lists.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

__all__ = ["SLOW_SYSTEM_FRAME", "SystemLane"]

logger = logging.getLogger("voxline.processor")

SLOW_SYSTEM_FRAME = 5.0
"""Seconds a frame may wait behind a system frame inside a stage before we log it (a stuck stage is not silent)."""

Task = asyncio.Task[Any] | None


class SystemLane:
    """The order of system frames through one processor (see the module docstring). ``owner`` names it in logs."""

    __slots__ = ("_clear_waiters", "_turn_waiters", "busy", "in_interrupt", "owner")

    def __init__(self, owner: Any) -> None:
        self.owner = owner
        self.busy: list[Task] = []
        """Tasks inside the owner's ``process`` with a downstream system frame (the gate reads it)."""
        self.in_interrupt: list[Task] = []
        """... of which with an interrupt (at most one task at a time, re-entering it included)."""
        self._clear_waiters: list[asyncio.Future[None]] = []
        self._turn_waiters: deque[tuple[Task, asyncio.Future[None]]] | None = None

    # --- any system frame ---------------------------------------------------------------------------------

    def enter(self, task: Task) -> None:
        """``task`` carries a downstream system frame into the stage: what arrives behind it waits."""
        self.busy.append(task)

    def leave(self, task: Task) -> None:
        """The frame ``task`` carried is through: release what waited behind it."""
        self.busy.remove(task)
        if self._clear_waiters:
            waiters, self._clear_waiters = self._clear_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def wait_clear(self) -> None:
        """Wait until no downstream system frame is inside the stage (rare: only if ``process`` awaits)."""
        task = asyncio.current_task()
        while self.busy and task not in self.busy:
            waiter = asyncio.get_running_loop().create_future()
            self._clear_waiters.append(waiter)
            await self._wait(waiter)

    # --- interrupts ---------------------------------------------------------------------------------------

    def handling_interrupt(self, task: Task) -> bool:
        """Whether ``task`` is inside the stage with an interrupt right now."""
        return task in self.in_interrupt

    async def take_turn(self, task: Task) -> None:
        """Enter with an interrupt: at once if none is inside (or ``task`` already is), else after those before it.

        From the moment it arrives (even while it waits for its turn) the interrupt counts as a system frame
        inside the stage. On return the caller holds the turn and must call :meth:`end_turn`; if this raises
        (cancelled while waiting) it holds nothing.
        """
        self.enter(task)
        try:
            if task in self.in_interrupt or not (self.in_interrupt or self._turn_waiters):
                self.in_interrupt.append(task)
                return
            turn = asyncio.get_running_loop().create_future()
            if self._turn_waiters is None:
                self._turn_waiters = deque()
            self._turn_waiters.append((task, turn))
            try:
                await self._wait(turn)  # when it resolves, the previous interrupt has put us in in_interrupt
            except asyncio.CancelledError:
                if turn.done() and not turn.cancelled():
                    self._pass_turn(task)
                raise
        except BaseException:
            self.leave(task)
            raise

    def end_turn(self, task: Task) -> None:
        """The interrupt ``task`` carried is through: the next one (if any) goes in."""
        try:
            self._pass_turn(task)
        finally:
            self.leave(task)

    def _pass_turn(self, task: Task) -> None:
        self.in_interrupt.remove(task)
        waiters = self._turn_waiters
        while waiters:
            waiter, turn = waiters.popleft()
            if not turn.done():
                self.in_interrupt.append(waiter)
                turn.set_result(None)
                break

    # --- a stuck stage is not silent -----------------------------------------------------------------------

    async def _wait(self, waiter: asyncio.Future[None]) -> None:
        timer = asyncio.get_running_loop().call_later(SLOW_SYSTEM_FRAME, self._warn_stuck)
        try:
            await waiter
        finally:
            timer.cancel()

    def _warn_stuck(self) -> None:
        logger.warning(
            "%s: a system frame has been inside process() for %g s; frames behind it are waiting",
            self.owner.name,
            SLOW_SYSTEM_FRAME,
        )
