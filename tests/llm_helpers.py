"""Driving an LLM stage step by step, waiting for what it emitted instead of for wall-clock time.

``run_processor`` feeds frames on a schedule of sleeps; on a loaded 2-core CI machine a reply may not have
started when the next step comes, and a test about "the user interrupts *during* the reply" would then test
something else. :func:`drive` accepts the same steps plus :class:`Until`, which waits for the output to reach
a state (e.g. "two TextFrames are out"), so each step happens at the moment the test means.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

import attrs
from voxline.frames import EndFrame, Frame, LLMResponseEndFrame, TextFrame
from voxline.processor import Processor
from voxline.task import PipelineTask
from voxline.testing import Interrupt, RunResult, Sleep


@attrs.frozen
class Until:
    """Wait until the frames that left the end of the pipeline satisfy ``predicate`` (checked on every frame and
    every 10 ms, so it may also look at state outside the pipeline)."""

    predicate: Callable[[list[Frame]], bool]


def texts_out(n: int) -> Until:
    """Wait until ``n`` TextFrames have come out."""
    return Until(lambda out: sum(isinstance(f, TextFrame) for f in out) >= n)


def replies_ended(n: int) -> Until:
    """Wait until ``n`` replies have ended."""
    return Until(lambda out: sum(isinstance(f, LLMResponseEndFrame) for f in out) >= n)


async def drive(
    processor: Processor, steps: Sequence[Frame | Sleep | Interrupt | Until], *, timeout: float = 20.0
) -> RunResult:
    """Run ``processor`` through ``steps``, then an EndFrame; return what came out (like ``run_processor``)."""
    task = PipelineTask(processor, name="test")
    downstream: list[Frame] = []
    upstream: list[Frame] = []
    changed = asyncio.Event()

    def on_downstream(frame: Frame) -> None:
        downstream.append(frame)
        changed.set()

    task.on_downstream(on_downstream)
    task.on_upstream(upstream.append)
    runner = asyncio.create_task(task.run())
    try:
        async with asyncio.timeout(timeout):
            await task.wait_until_running()
            for step in steps:
                if isinstance(step, Sleep):
                    await asyncio.sleep(step.seconds)
                elif isinstance(step, Interrupt):
                    await task.interrupt(step.reason)
                elif isinstance(step, Until):
                    while not step.predicate(downstream):
                        changed.clear()
                        with contextlib.suppress(TimeoutError):  # also re-checked every 10 ms (state elsewhere)
                            await asyncio.wait_for(changed.wait(), 0.01)
                else:
                    await task.queue_frame(step)
            await task.queue_frame(EndFrame())
            await runner
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    return RunResult(downstream=downstream, upstream=upstream, errors=list(task.errors), task=task)
