"""Helpers for people who write processors: run one on a list of frames and see what came out.

>>> result = await run_processor(MyProcessor(), [TextFrame(text="hi")])
>>> result.downstream_of(TextFrame)

``run_processor`` builds a :class:`~voxline.task.PipelineTask` around the processor (or pipeline), feeds the
frames in order, sends an :class:`~voxline.frames.EndFrame` and waits for it to drain, and returns every frame
that left the pipeline in each direction. Entries of the list can also be :class:`Sleep` (let time pass
before the next frame: useful for processors that work in the background) or :class:`Interrupt` (start a new
epoch at that point, from the head of the pipeline).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import TypeVar

import attrs
from voxline.frames import EndFrame, ErrorFrame, Frame, MetricsFrame, StartFrame
from voxline.observers import Observer
from voxline.processor import Processor
from voxline.task import PipelineTask

__all__ = ["Interrupt", "RunResult", "Sleep", "run_processor"]

F = TypeVar("F", bound=Frame)


@attrs.frozen
class Sleep:
    """Wait this many seconds before feeding the next frame."""

    seconds: float


@attrs.frozen
class Interrupt:
    """Start a new epoch here, as a barge-in would."""

    reason: str = "test"


@attrs.define
class RunResult:
    """What left the pipeline: ``downstream`` at its end, ``upstream`` at its head (errors, requests)."""

    downstream: list[Frame]
    upstream: list[Frame]
    errors: list[ErrorFrame]
    task: PipelineTask

    def downstream_of(self, kind: type[F]) -> list[F]:
        return [f for f in self.downstream if isinstance(f, kind)]

    def upstream_of(self, kind: type[F]) -> list[F]:
        return [f for f in self.upstream if isinstance(f, kind)]

    @property
    def metrics(self) -> list[MetricsFrame]:
        return self.downstream_of(MetricsFrame) + self.upstream_of(MetricsFrame)

    def text(self) -> str:
        """The concatenated ``text`` of every downstream frame that has one (handy for LLM/aggregator tests)."""
        return "".join(getattr(f, "text", "") for f in self.downstream if not isinstance(f, StartFrame))


async def run_processor(
    processor: Processor,
    frames: Iterable[Frame | Sleep | Interrupt],
    *,
    send_end: bool = True,
    timeout: float = 10.0,
    observers: Sequence[Observer] = (),
) -> RunResult:
    """Run ``processor`` on ``frames`` and collect its output. Raises ``TimeoutError`` if it never ends.

    With ``send_end=False`` the run is cancelled (not ended gracefully) once the frames are fed: use it to see
    what a processor emits without the flush an :class:`EndFrame` would cause.
    """
    task = PipelineTask(processor, name="test", observers=observers)
    downstream: list[Frame] = []
    upstream: list[Frame] = []
    task.on_downstream(downstream.append)
    task.on_upstream(upstream.append)

    async def feed() -> None:
        if not await task.wait_until_running():
            return  # a processor failed to start: the result's errors say which
        for item in frames:
            if isinstance(item, Sleep):
                await asyncio.sleep(item.seconds)
            elif isinstance(item, Interrupt):
                await task.interrupt(item.reason)
            else:
                await task.queue_frame(item)
        if send_end:
            await task.queue_frame(EndFrame())
        else:
            await task.cancel("run_processor: send_end=False")

    runner = asyncio.create_task(task.run())
    feeder = asyncio.create_task(feed())
    try:
        async with asyncio.timeout(timeout):
            await asyncio.gather(runner, feeder)
    finally:
        for t in (feeder, runner):
            t.cancel()
        await asyncio.gather(feeder, runner, return_exceptions=True)
    return RunResult(downstream=downstream, upstream=upstream, errors=list(task.errors), task=task)
