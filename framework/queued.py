"""A processor with its own input queue and worker task, for stages that wait on I/O.

Use it when ``process`` awaits something slow (a network send, a model) and the stage before must not wait for
it. Data and control frames go through the queue in order; system frames skip it and are handled at once in
the caller's context, so an interrupt is never delayed behind queued data.

On an interrupt of a newer epoch the processor drops every queued data frame of older epochs, keeps the
queued control frames in order, and — if the worker is busy with an old data frame — aborts that frame's
processing where it is (the worker catches the cancellation and goes on with the next frame; see
:mod:`voxline._scope`). A worker busy with a control frame is left alone: if your ``process`` awaits something
for a control frame, make that wait end on interrupt yourself.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

from voxline._scope import Scope, current_scope, register
from voxline.frames import CancelFrame, DataFrame, Frame, SystemFrame
from voxline.processor import DOWNSTREAM, WORK_EPOCH, EpochClock, Processor

if TYPE_CHECKING:
    from voxline.observers import Observer
    from voxline.processor import Direction

__all__ = ["QueuedProcessor"]


class QueuedProcessor(Processor):
    """A :class:`Processor` whose data and control frames are processed by one worker task, in order."""

    def __init__(self, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self._queue: deque[tuple[Frame, Direction]] = deque()
        self._wakeup: asyncio.Future[None] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._worker_scope: Scope | None = None
        self._busy_with: Frame | None = None

    @property
    def queued(self) -> int:
        """Frames waiting for the worker."""
        return len(self._queue)

    async def _deliver(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, SystemFrame):
            if type(frame) is CancelFrame and direction is DOWNSTREAM:
                self._queue.clear()  # cancel means now: nothing queued is processed any more
            await super()._deliver(frame, direction)
            return
        if isinstance(frame, DataFrame) and frame.epoch is not None and frame.epoch < self._epoch:
            self._dropped += 1
            return
        self._queue.append((frame, direction))
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    def _enter_epoch(self, epoch: int) -> None:
        super()._enter_epoch(epoch)
        if self._queue:
            kept = [(f, d) for f, d in self._queue if not (isinstance(f, DataFrame) and _older(f, epoch))]
            self._dropped += len(self._queue) - len(kept)
            self._queue.clear()
            self._queue.extend(kept)
        busy = self._busy_with
        if isinstance(busy, DataFrame) and (busy.epoch is None or busy.epoch < epoch) and self._worker_scope:
            # The worker is in the middle of old-epoch data work: stop it there; it goes on with the next frame.
            self._worker_scope.abort(epoch)

    def _spawn_worker(self) -> None:
        if self._worker is None or self._worker.done():
            self._worker = self.create_task(self._work(), name=f"{self.name}-worker", epoch_bound=False)

    async def _work(self) -> None:
        scope = self._worker_scope = current_scope() or register()
        queue = self._queue
        loop = asyncio.get_running_loop()
        try:
            while True:
                if not queue:
                    self._wakeup = loop.create_future()
                    await self._wakeup
                    self._wakeup = None
                    continue
                if self._sys_busy:
                    # A system frame is inside this stage: what is queued behind it waits until it has passed.
                    await self._after_system_frames()
                    continue
                frame, direction = queue.popleft()
                if isinstance(frame, DataFrame) and frame.epoch is not None and frame.epoch < self._epoch:
                    self._dropped += 1
                    continue
                scope.reset()
                WORK_EPOCH.set(frame.epoch if isinstance(frame, DataFrame) else None)
                self._busy_with = frame
                try:
                    try:
                        await self.process(frame, direction)
                    except Exception as exc:
                        await self._on_process_error(frame, direction, exc)
                except asyncio.CancelledError:
                    if scope.absorb():
                        continue  # our abort: this frame's work stopped, the worker goes on
                    if scope.task.cancelling():
                        raise  # the worker itself is being stopped
                    # Nobody cancelled this task: a future that process() awaited was cancelled under it. A dead
                    # worker would hang the pipeline silently; report it and go on instead.
                    await self.push_error(f"CancelledError while processing {frame.name} (a cancelled future?)")
                finally:
                    self._busy_with = None
        finally:
            if self._worker_scope is scope:
                self._worker_scope = None

    async def _start(self, clock: EpochClock, observers: tuple[Observer, ...]) -> None:
        await super()._start(clock, observers)
        self._spawn_worker()

    async def _stop(self) -> None:
        self._queue.clear()
        await super()._stop()
        self._worker = None


def _older(frame: DataFrame, epoch: int) -> bool:
    return frame.epoch is not None and frame.epoch < epoch
