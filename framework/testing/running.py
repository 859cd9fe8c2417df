"""A pipeline running in the background of a test, torn down whole however the test ends.

Tests that talk to a pipeline step by step (queue a frame, look, interrupt, look again) all need the same
set-up: a :class:`~voxline.task.PipelineTask`, handlers collecting what comes out, ``task.run()`` in an asyncio
task, waiting until it runs — and on the way out, whether the test passed or failed, cancelling the run and
awaiting it so no task or socket outlives the test. :func:`started` is that set-up once::

    async with started(MyStage()) as run:
        await run.queue(TextFrame(text="hi"))
        await run.wait_for(lambda out: any(isinstance(f, TextFrame) for f in out))
        result = await run.end()        # EndFrame, drained; or leave the block: the run is cancelled
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TypeVar

from voxline.frames import EndFrame, Frame, StartFrame
from voxline.observers import Observer
from voxline.processor import Processor
from voxline.task import PipelineTask
from voxline.testing.result import RunResult
from voxline.testing.steps import Interrupt, Sleep, Step, Until

__all__ = ["RunningPipeline", "started"]

F = TypeVar("F", bound=Frame)


class RunningPipeline:
    """A started :class:`PipelineTask` and everything that has left it so far (see :func:`started`)."""

    def __init__(self, task: PipelineTask) -> None:
        self.task = task
        self.downstream: list[Frame] = []
        """Every frame that left the end of the pipeline, in order (grows while the run goes on)."""
        self.upstream: list[Frame] = []
        """Every frame that left the head of the pipeline going upstream (errors, requests)."""
        self.running = False
        """Whether every stage started (False: a stage failed to start; ``task.errors`` says which)."""
        self._changed = asyncio.Event()
        self.runner: asyncio.Task[None] | None = None
        task.on_downstream(self._out)
        task.on_upstream(self.upstream.append)

    def _out(self, frame: Frame) -> None:
        self.downstream.append(frame)
        self._changed.set()

    def downstream_of(self, kind: type[F]) -> list[F]:
        return [f for f in self.downstream if isinstance(f, kind)]

    @property
    def finished(self) -> bool:
        """The run is over (end of stream, cancel, or a fatal error)."""
        return self.runner is not None and self.runner.done()

    # --- feeding --------------------------------------------------------------------------------------

    async def queue(self, *frames: Frame) -> None:
        """Feed frames in at the head, in order."""
        for frame in frames:
            await self.task.queue_frame(frame)

    async def interrupt(self, reason: str = "test") -> None:
        """Start a new epoch from the head; it has reached every stage when this returns."""
        await self.task.interrupt(reason)

    async def wait_for(self, predicate: Callable[[list[Frame]], bool], *, timeout: float = 10.0) -> None:
        """Wait until the frames out so far satisfy ``predicate`` (checked on every frame and every 10 ms).

        Raises ``TimeoutError`` after ``timeout`` seconds, and ``RuntimeError`` if the run ends first.
        """
        async with asyncio.timeout(timeout):
            while not predicate(self.downstream):
                if self.finished:
                    raise RuntimeError(f"the pipeline ended first; errors: {[e.message for e in self.task.errors]}")
                self._changed.clear()
                with contextlib.suppress(TimeoutError):  # also re-checked every 10 ms (state elsewhere)
                    await asyncio.wait_for(self._changed.wait(), 0.01)

    async def step(self, *steps: Step) -> None:
        """Run ``steps`` in order: queue frames, sleep, interrupt, or wait :class:`Until` the output is ready."""
        for item in steps:
            if isinstance(item, Sleep):
                await asyncio.sleep(item.seconds)
            elif isinstance(item, Interrupt):
                await self.interrupt(item.reason)
            elif isinstance(item, Until):
                await self.wait_for(item.predicate)
            else:
                await self.task.queue_frame(item)

    # --- ending ---------------------------------------------------------------------------------------

    async def end(self, *, timeout: float = 10.0) -> RunResult:
        """Queue an ``EndFrame``, wait until everything has drained and the run is over; what came out."""
        await self.task.queue_frame(EndFrame())
        await self.wait_finished(timeout=timeout)
        return self.result()

    async def cancel(self, reason: str = "test", *, timeout: float = 10.0) -> RunResult:
        """Stop at once (queued frames are discarded), wait until the run is over; what came out."""
        await self.task.cancel(reason)
        await self.wait_finished(timeout=timeout)
        return self.result()

    async def wait_finished(self, *, timeout: float = 10.0) -> None:
        """Wait until the run is over (it ended by itself, or :meth:`end`/:meth:`cancel` ended it)."""
        assert self.runner is not None
        await asyncio.wait_for(asyncio.shield(self.runner), timeout)

    def result(self) -> RunResult:
        """What has come out so far."""
        return RunResult(
            downstream=self.downstream, upstream=self.upstream, errors=list(self.task.errors), task=self.task
        )


@contextlib.asynccontextmanager
async def started(
    pipeline: Processor | PipelineTask,
    *,
    name: str = "test",
    start_frame: StartFrame | None = None,
    observers: Iterable[Observer] = (),
    check_start: bool = True,
    stop_timeout: float = 10.0,
) -> AsyncIterator[RunningPipeline]:
    """Run ``pipeline`` (a processor, or a task you built) in the background for the block; yield it running.

    On the way out the run is cancelled if it is still going (end it first with ``await run.end()`` to drain
    gracefully) and awaited, so no task outlives the block; an exception the run itself raised is re-raised.
    With ``check_start`` (the default) a stage that fails to start raises ``RuntimeError`` at once; without it,
    ``run.running`` is False and ``run.task.errors`` says why.
    """
    if isinstance(pipeline, PipelineTask):
        task = pipeline
    else:
        task = PipelineTask(pipeline, name=name, start_frame=start_frame, observers=observers)
    run = RunningPipeline(task)
    run.runner = asyncio.create_task(task.run(), name=f"{task.name}-run")
    try:
        run.running = await task.wait_until_running()
        if check_start and not run.running:
            raise RuntimeError(f"the pipeline did not start: {[e.message for e in task.errors]}")
        yield run
    finally:
        if not run.runner.done():
            await task.cancel("the test is over")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(run.runner), stop_timeout)
            run.runner.cancel()  # a stage that ignored the cancel must not outlive the test
        await asyncio.gather(run.runner, return_exceptions=True)
    failure = None if run.runner.cancelled() else run.runner.exception()
    if failure is not None:
        raise failure
