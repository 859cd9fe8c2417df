"""The system lane of a processor: how system frames, interrupts above all, pass a stage.

System frames never wait in a queue. Two rules keep them in order all the same, however long a stage's
``process`` awaits while handling one:

* while a downstream system frame is inside a stage, data and control frames arriving behind it wait at the
  gate (and the stage's queue worker waits), so nothing overtakes it downstream;
* interrupts pass a stage one at a time, first come first served, so a newer one never overtakes an older one
  whose handling is still awaiting something.

The functions take the processor as ``self``: they are :class:`~voxline.processor.Processor` methods kept in
their own file.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from voxline.frames import Frame, InterruptFrame

if TYPE_CHECKING:
    from voxline.processor import Direction, Processor

__all__ = ["SLOW_SYSTEM_FRAME", "after_system_frames", "deliver_system"]

logger = logging.getLogger("voxline.processor")

SLOW_SYSTEM_FRAME = 5.0
"""Seconds a frame may wait behind a system frame inside a stage before we log it (a stuck stage is not silent)."""


async def _wait(self: Processor, waiter: asyncio.Future[None]) -> None:
    timer = asyncio.get_running_loop().call_later(SLOW_SYSTEM_FRAME, _warn_stuck, self)
    try:
        await waiter
    finally:
        timer.cancel()


def _warn_stuck(self: Processor) -> None:
    logger.warning(
        "%s: a system frame has been inside process() for %g s; frames behind it are waiting",
        self.name,
        SLOW_SYSTEM_FRAME,
    )


async def deliver_system(self: Processor, frame: Frame, direction: Direction) -> None:
    if direction:  # upstream (Direction.UPSTREAM == 1): nothing to keep in order
        try:
            await self.process(frame, direction)
        except Exception as exc:
            await self._on_process_error(frame, direction, exc)
        return
    task = asyncio.current_task()
    if type(frame) is InterruptFrame:
        await _deliver_interrupt(self, frame, direction, task)
        return
    self._sys_busy.append(task)
    try:
        await self.process(frame, direction)
    except Exception as exc:
        await self._on_process_error(frame, direction, exc)
    finally:
        _system_frame_done(self, task)


async def _deliver_interrupt(self: Processor, frame: InterruptFrame, direction: Direction, task: Any) -> None:
    """Interrupts pass each stage one at a time, first come first served, so none overtakes another.

    From the moment it arrives (even while it waits for its turn) the interrupt counts as a system frame
    inside this stage, so data and control frames arriving behind it wait.
    """
    self._sys_busy.append(task)
    try:
        if task in self._in_interrupt or not (self._in_interrupt or self._interrupt_waiters):
            self._in_interrupt.append(task)
        else:
            turn = asyncio.get_running_loop().create_future()
            self._interrupt_waiters.append((task, turn))
            try:
                await _wait(self, turn)  # when it resolves, the previous interrupt has put us in _in_interrupt
            except asyncio.CancelledError:
                if turn.done() and not turn.cancelled():
                    _interrupt_done(self, task)
                raise
        try:
            epoch = frame.epoch
            if epoch is None or epoch <= self._epoch:
                return
            self._enter_epoch(epoch)
            try:
                await self.process(frame, direction)
            except Exception as exc:
                await self._on_process_error(frame, direction, exc)
        finally:
            _interrupt_done(self, task)
    finally:
        _system_frame_done(self, task)


def _interrupt_done(self: Processor, task: Any) -> None:
    self._in_interrupt.remove(task)
    while self._interrupt_waiters:
        waiter, turn = self._interrupt_waiters.popleft()
        if not turn.done():
            self._in_interrupt.append(waiter)
            turn.set_result(None)
            break


def _system_frame_done(self: Processor, task: Any) -> None:
    self._sys_busy.remove(task)
    if self._sys_waiters:
        waiters, self._sys_waiters = self._sys_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


async def after_system_frames(self: Processor) -> None:
    """Wait until no downstream system frame is inside this processor (rare: only if ``process`` awaits)."""
    task = asyncio.current_task()
    while self._sys_busy and task not in self._sys_busy:
        waiter = asyncio.get_running_loop().create_future()
        self._sys_waiters.append(waiter)
        await _wait(self, waiter)
