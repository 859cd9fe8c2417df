"""PipelineTask: lifecycle, the four ways a run ends, and that nothing is left running afterwards."""

from __future__ import annotations

import asyncio

import pytest
from voxline.frames import CancelFrame, EndFrame, Frame, InterruptFrame, StartFrame, TextFrame
from voxline.pipeline import Pipeline
from voxline.processor import Direction, Processor
from voxline.queued import QueuedProcessor
from voxline.task import PipelineTask


class Lifecycle(QueuedProcessor):
    """Counts its hooks and keeps a background task and a slow worker busy, to prove they get cleaned up."""

    def __init__(self, name: str, *, fail_start: bool = False, fatal_on: str | None = None) -> None:
        super().__init__(name=name)
        self.starts = self.stops = 0
        self.fail_start = fail_start
        self.fatal_on = fatal_on
        self.seen: list[Frame] = []

    async def on_start(self) -> None:
        self.starts += 1
        if self.fail_start:
            raise ConnectionError("no route to provider")

    async def on_stop(self) -> None:
        self.stops += 1

    async def process(self, frame: Frame, direction: Direction) -> None:
        self.seen.append(frame)
        if isinstance(frame, StartFrame):
            self.create_task(asyncio.sleep(3600), epoch_bound=False)
        if isinstance(frame, TextFrame):
            if frame.text == self.fatal_on:
                await self.push_error("cannot go on", fatal=True)
                return
            await asyncio.sleep(0.005)
        await self.push(frame, direction)


def _leftovers() -> list[asyncio.Task[object]]:
    current = asyncio.current_task()
    return [t for t in asyncio.all_tasks() if t is not current and not t.done()]


async def _run_with(task: PipelineTask, frames: list[Frame]) -> asyncio.Task[None]:
    runner = asyncio.create_task(task.run())
    assert await task.wait_until_running()
    for frame in frames:
        await task.queue_frame(frame)
    return runner


async def test_end_frame_drains_everything_then_stops_cleanly() -> None:
    stages = [Lifecycle("a"), Lifecycle("b")]
    task = PipelineTask(Pipeline(stages))
    out: list[Frame] = []
    task.on_downstream(out.append)
    runner = await _run_with(task, [TextFrame(text=str(i)) for i in range(5)] + [EndFrame()])
    await asyncio.wait_for(runner, 2)
    assert [f.text for f in out if isinstance(f, TextFrame)] == ["0", "1", "2", "3", "4"]
    assert isinstance(out[-1], EndFrame)
    assert [(s.starts, s.stops) for s in stages] == [(1, 1), (1, 1)]
    assert _leftovers() == []


async def test_cancel_stops_at_once_and_discards_queued_frames() -> None:
    stages = [Lifecycle("a")]
    task = PipelineTask(Pipeline(stages))
    runner = await _run_with(task, [TextFrame(text=str(i)) for i in range(100)])
    await asyncio.sleep(0.01)
    await task.cancel("user left")
    await asyncio.wait_for(runner, 1)
    assert len([f for f in stages[0].seen if isinstance(f, TextFrame)]) < 10
    assert stages[0].stops == 1
    assert _leftovers() == []


async def test_a_fatal_error_ends_the_run() -> None:
    stage = Lifecycle("a", fatal_on="boom")
    task = PipelineTask(Pipeline([stage]))
    runner = await _run_with(task, [TextFrame(text="boom")])
    await asyncio.wait_for(runner, 1)
    assert [(e.message, e.fatal, e.source) for e in task.errors] == [("cannot go on", True, "a")]
    assert stage.stops == 1
    assert _leftovers() == []


@pytest.mark.parametrize("times", [1, 2])
async def test_cancelling_the_task_that_runs_it_still_stops_everything(times: int) -> None:
    stages = [Lifecycle("a"), Lifecycle("b")]
    task = PipelineTask(Pipeline(stages))
    runner = await _run_with(task, [TextFrame(text="x")])
    for _ in range(times):
        runner.cancel()
        await asyncio.sleep(0)
    with pytest.raises(asyncio.CancelledError):
        await runner
    assert [s.stops for s in stages] == [1, 1]
    assert _leftovers() == []


async def test_a_start_failure_is_reported_and_started_stages_are_stopped() -> None:
    good, bad = Lifecycle("good"), Lifecycle("bad", fail_start=True)
    task = PipelineTask(Pipeline([good, bad]))
    runner = asyncio.create_task(task.run())
    assert await task.wait_until_running() is False
    await asyncio.wait_for(runner, 1)
    (error,) = task.errors
    assert error.fatal and error.source == "bad" and "no route to provider" in error.message
    assert (good.starts, good.stops, bad.starts, bad.stops) == (1, 1, 1, 0)
    assert not [f for f in good.seen if isinstance(f, StartFrame)]
    assert _leftovers() == []


async def test_frames_and_interrupts_queued_before_the_run_keep_their_order() -> None:
    stage = Lifecycle("a")
    task = PipelineTask(Pipeline([stage]))
    await task.queue_frame(TextFrame(text="dropped"))
    await task.interrupt("early")
    await task.queue_frame(TextFrame(text="kept"))
    await task.queue_frame(EndFrame())
    await asyncio.wait_for(task.run(), 2)
    kinds = [(type(f).__name__, getattr(f, "text", getattr(f, "epoch", None))) for f in stage.seen]
    assert kinds == [("StartFrame", None), ("InterruptFrame", 1), ("TextFrame", "kept"), ("EndFrame", None)]


async def test_a_task_runs_once() -> None:
    task = PipelineTask(Processor())
    await task.queue_frame(EndFrame())
    await task.run()
    with pytest.raises(RuntimeError, match="already run"):
        await task.run()
    await task.interrupt()  # after the end: nothing to interrupt, and no error


async def test_interrupt_has_reached_every_stage_when_it_returns() -> None:
    stages = [Lifecycle("a"), Lifecycle("b")]
    task = PipelineTask(Pipeline(stages))
    runner = await _run_with(task, [TextFrame(text="x")])
    await task.interrupt("barge-in")
    assert all(any(isinstance(f, InterruptFrame) for f in s.seen) for s in stages)
    assert task.epoch == 1
    await task.queue_frame(EndFrame())
    await asyncio.wait_for(runner, 1)


async def test_a_cancel_frame_from_anywhere_ends_the_run_at_once() -> None:
    stage = Lifecycle("a")
    task = PipelineTask(Pipeline([stage]))
    runner = await _run_with(task, [TextFrame(text=str(i)) for i in range(50)])
    await task.queue_frame(CancelFrame(reason="hang up"))
    await asyncio.wait_for(runner, 1)
    assert len([f for f in stage.seen if isinstance(f, TextFrame)]) < 5
    assert any(isinstance(f, CancelFrame) for f in stage.seen)
    assert stage.stops == 1
    assert _leftovers() == []
