"""Running a pipeline: start it, feed it frames, end it gracefully or cancel it, and leave nothing behind.

:class:`PipelineTask` puts a *source* in front of the pipeline and a *sink* behind it. The source owns the
only queue the task adds (frames you queue wait there, in order) and receives what travels upstream out of
the pipeline (errors, interrupt requests). The sink notices the end of the stream.

* ``await task.queue_frame(EndFrame())`` ends the run once everything queued before it has drained through.
* ``await task.cancel()`` ends it at once.
* ``await task.interrupt()`` starts a new epoch from the head of the pipeline.

However :meth:`PipelineTask.run` ends — end of stream, cancel, a fatal error, or the task running it being
cancelled — every processor's tasks are cancelled and awaited and every processor's ``on_stop`` runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any

from voxline.frames import (
    CancelFrame,
    DataFrame,
    EndFrame,
    ErrorFrame,
    Frame,
    InterruptFrame,
    StartFrame,
    SystemFrame,
)
from voxline.observers import Observer
from voxline.processor import DOWNSTREAM, Direction, EpochClock, Processor, link
from voxline.queued import QueuedProcessor

__all__ = ["PipelineTask", "run_shielded"]

logger = logging.getLogger("voxline.task")

FrameHandler = Callable[[Frame], None]


class _Source(QueuedProcessor):
    """Head of a task: the queue for frames you feed in, and the end of the line for upstream frames."""

    def __init__(self, task: PipelineTask) -> None:
        super().__init__(name=f"{task.name}.source")
        self._task = task

    async def _start(self, clock: EpochClock, observers: tuple[Observer, ...]) -> None:
        # The worker starts in begin(), once the StartFrame has gone through: nothing may overtake it.
        await Processor._start(self, clock, observers)

    def begin(self) -> None:
        self._spawn_worker()

    async def process(self, frame: Frame, direction: Direction) -> None:
        if direction is DOWNSTREAM:
            await self.push(frame, DOWNSTREAM)
            return
        # Upstream frames end here.
        if isinstance(frame, InterruptFrame):
            # A stage asked for an interruption: it starts from the head so every stage sees it in order.
            await self.push(InterruptFrame(reason=frame.reason), DOWNSTREAM)
        elif isinstance(frame, ErrorFrame):
            self._task._on_error(frame)
        self._task._notify_upstream(frame)


class _Sink(Processor):
    """Tail of a task: sees what leaves the pipeline and notices the end of the stream."""

    def __init__(self, task: PipelineTask) -> None:
        super().__init__(name=f"{task.name}.sink")
        self._task = task

    async def process(self, frame: Frame, direction: Direction) -> None:
        if direction is not DOWNSTREAM:
            await self.push(frame, direction)
            return
        self._task._notify_downstream(frame)
        if isinstance(frame, (EndFrame, CancelFrame)):
            self._task._finished.set()


class PipelineTask:
    """Runs one pipeline. Create it, queue frames (before or during :meth:`run`), and await :meth:`run`."""

    def __init__(
        self,
        pipeline: Processor,
        *,
        name: str = "task",
        observers: Iterable[Observer] = (),
        start_frame: StartFrame | None = None,
    ) -> None:
        self.name = name
        self._start_frame = start_frame or StartFrame()
        self._observers = tuple(observers)
        self._clock = EpochClock()
        self._source = _Source(self)
        self._sink = _Sink(self)
        self._leaves = link([self._source, pipeline, self._sink])
        self._finished = asyncio.Event()
        self._started = asyncio.Event()
        self._errors: list[ErrorFrame] = []
        self._downstream_handlers: list[FrameHandler] = []
        self._upstream_handlers: list[FrameHandler] = []
        self._running = False
        self._ran = False
        self._cancelled = False
        self._clock.head = self._source
        self._source._clock = self._clock

    # --- observing ------------------------------------------------------------------------------------

    @property
    def processors(self) -> Sequence[Processor]:
        """The pipeline's stages in order, nested pipelines flattened (without the task's source and sink)."""
        return self._leaves[1:-1]

    @property
    def errors(self) -> list[ErrorFrame]:
        """Every ErrorFrame that reached the head of the pipeline, in order."""
        return self._errors

    @property
    def epoch(self) -> int:
        """The newest epoch handed out in this task."""
        return self._clock.current

    def on_downstream(self, handler: FrameHandler) -> None:
        """Call ``handler`` with every frame that leaves the end of the pipeline."""
        self._downstream_handlers.append(handler)

    def on_upstream(self, handler: FrameHandler) -> None:
        """Call ``handler`` with every frame that leaves the head of the pipeline going upstream."""
        self._upstream_handlers.append(handler)

    async def wait_until_running(self) -> bool:
        """Wait until every processor has started and the StartFrame has gone through.

        Returns False instead if the run ended first (a processor failed to start, or it was cancelled).
        """
        await self._started.wait()
        return self._running

    # --- feeding --------------------------------------------------------------------------------------

    async def queue_frame(self, frame: Frame, direction: Direction = DOWNSTREAM) -> None:
        """Feed a frame in at the head. Data and control frames wait their turn; system frames go at once."""
        if isinstance(frame, InterruptFrame) and frame.epoch is None:
            await self.interrupt(frame.reason)
            return
        if isinstance(frame, DataFrame) and frame.epoch is None:
            frame = frame.with_epoch(self._source.epoch)
        if isinstance(frame, SystemFrame) and not self._running:
            # Before the run starts, system frames keep their place in line with everything else.
            self._source._queue.append((frame, direction))
            return
        await self._source._deliver(frame, direction)

    async def queue_frames(self, frames: Iterable[Frame]) -> None:
        for frame in frames:
            await self.queue_frame(frame)

    async def interrupt(self, reason: str = "") -> None:
        """Start a new epoch at the head of the pipeline; it has reached every stage when this returns.

        Before the run starts, the interrupt takes its place in line (frames queued before it are dropped);
        after the run ended it does nothing.
        """
        if self._running:
            await self._source.push(InterruptFrame(reason=reason), DOWNSTREAM)
        elif not self._finished.is_set():
            epoch = self._clock.advance()
            self._source._enter_epoch(epoch)
            self._source._queue.append((InterruptFrame(epoch=epoch, reason=reason), DOWNSTREAM))

    async def cancel(self, reason: str = "") -> None:
        """Stop at once: queued frames are discarded and every stage's work is cancelled."""
        if self._finished.is_set():
            return
        self._cancelled = True
        if self._running:
            await self._source.push(CancelFrame(reason=reason), DOWNSTREAM)
        self._finished.set()

    # --- running --------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Start every processor, run until the end of stream or a cancel, then stop everything.

        A task runs once. However this returns (or is cancelled), every processor's tasks have been cancelled
        and awaited and every started processor's ``on_stop`` has run.
        """
        if self._ran:
            raise RuntimeError(f"{self.name} has already run; create a new PipelineTask")
        self._ran = True
        try:
            if not await self._start_all():
                return
            if not self._cancelled:
                # Until the StartFrame has gone through, frames and interrupts wait in the head's queue.
                await self._source.push(self._start_frame, DOWNSTREAM)
                self._running = True
                self._source.begin()
                self._started.set()
                await self._finished.wait()
        finally:
            self._running = False
            self._finished.set()
            self._started.set()
            await self._shutdown()

    async def _start_all(self) -> bool:
        # Stages with their own on_start (connections, models) start concurrently; the rest cannot block and
        # start in place, so an all-inline pipeline starts without spawning a task per stage.
        slow = [p for p in self._leaves if type(p).on_start is not Processor.on_start]
        started = asyncio.gather(*(p._start(self._clock, self._observers) for p in slow), return_exceptions=True)
        results: dict[Processor, object] = {}
        try:
            for leaf in self._leaves:
                if type(leaf).on_start is Processor.on_start:
                    try:
                        await leaf._start(self._clock, self._observers)
                    except Exception as exc:
                        results[leaf] = exc
        except BaseException:
            started.cancel()
            await asyncio.gather(started, return_exceptions=True)
            raise
        results.update(zip(slow, await started, strict=True))
        ok = True
        for leaf in self._leaves:
            result = results.get(leaf)
            if isinstance(result, asyncio.CancelledError):
                raise result
            if isinstance(result, BaseException):
                ok = False
                logger.error("%s: %s failed to start: %s", self.name, leaf.name, result, exc_info=result)
                message = f"{leaf.name} failed to start: {type(result).__name__}: {result}"
                self._on_error(ErrorFrame(message=message, fatal=True, source=leaf.name, exception=result))
        return ok

    async def _shutdown(self) -> None:
        """Stop everything, even if the task running us is cancelled again meanwhile."""
        await run_shielded(self._stop_all())

    async def _stop_all(self) -> None:
        # Work first (so nothing pushes into a stage that is closing), then each stage's on_stop.
        await asyncio.gather(*(p._cancel_tasks() for p in self._leaves), return_exceptions=True)
        results = await asyncio.gather(*(p._stop() for p in self._leaves), return_exceptions=True)
        for leaf, result in zip(self._leaves, results, strict=True):
            if isinstance(result, BaseException):
                logger.error("%s: %s failed to stop: %r", self.name, leaf.name, result, exc_info=result)

    # --- called by the source and sink ----------------------------------------------------------------

    def _on_error(self, frame: ErrorFrame) -> None:
        self._errors.append(frame)
        if frame.fatal:
            logger.error("%s: fatal error from %s: %s", self.name, frame.source or "?", frame.message)
            self._cancelled = True
            self._finished.set()

    def _notify_downstream(self, frame: Frame) -> None:
        for handler in self._downstream_handlers:
            handler(frame)

    def _notify_upstream(self, frame: Frame) -> None:
        for handler in self._upstream_handlers:
            handler(frame)


async def run_shielded(stop: Coroutine[Any, Any, None]) -> None:
    """Run ``stop`` to its end even if the caller is cancelled (again and again) meanwhile; then, if it was,
    raise CancelledError. For teardown that must finish whole: a second cancel cannot cut it short."""
    stopper = asyncio.ensure_future(stop)
    cancelled = False
    while not stopper.done():
        try:
            await asyncio.shield(stopper)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
