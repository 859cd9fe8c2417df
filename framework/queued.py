"""A processor with its own input queue and worker task, for stages that wait on I/O.

Use it when ``process`` awaits something slow (a network send, a model) and the stage before must not wait for
it. Data and control frames go through the queue in order; system frames skip it and are handled at once in
the caller's context, so an interrupt is never delayed behind queued data.

On an interrupt of a newer epoch the processor drops every queued data frame of older epochs, keeps the
queued control frames in order, and — if the worker was busy with a data frame — cancels the worker and
starts a fresh one, so in-flight work of the old epoch stops where it was.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

from voxline.frames import DataFrame, Frame, SystemFrame
from voxline.processor import EpochClock, Processor

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
        self._busy_with: Frame | None = None

    @property
    def queued(self) -> int:
        """Frames waiting for the worker."""
        return len(self._queue)

    async def _deliver(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, SystemFrame):
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
        if isinstance(self._busy_with, DataFrame) and self._worker is not None:
            # The worker is in the middle of old-epoch data work: stop it there and start a clean one.
            self._worker.cancel()
            self._busy_with = None
            self._worker = None
            self._spawn_worker()

    def _spawn_worker(self) -> None:
        self._worker = self.create_task(self._work(), name=f"{self.name}-worker", epoch_bound=False)

    async def _work(self) -> None:
        queue = self._queue
        loop = asyncio.get_running_loop()
        while True:
            if not queue:
                self._wakeup = loop.create_future()
                await self._wakeup
                self._wakeup = None
                continue
            frame, direction = queue.popleft()
            if isinstance(frame, DataFrame) and frame.epoch is not None and frame.epoch < self._epoch:
                self._dropped += 1
                continue
            self._busy_with = frame
            try:
                await self.process(frame, direction)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._on_process_error(frame, direction, exc)
            finally:
                if self._busy_with is frame:
                    self._busy_with = None

    async def _start(self, clock: EpochClock, observers: tuple[Observer, ...]) -> None:
        await super()._start(clock, observers)
        self._spawn_worker()

    async def _stop(self) -> None:
        self._queue.clear()
        await super()._stop()
        self._worker = None


def _older(frame: DataFrame, epoch: int) -> bool:
    return frame.epoch is not None and frame.epoch < epoch
