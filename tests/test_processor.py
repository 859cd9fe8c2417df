"""Processor and QueuedProcessor: epochs, gates, errors, tasks, and the races of the interruption contract."""

from __future__ import annotations

import asyncio
import logging

import pytest
from voxline.frames import (
    DataFrame,
    EndFrame,
    ErrorFrame,
    Frame,
    InterruptFrame,
    LLMResponseEndFrame,
    LLMResponseStartFrame,
    SettingsFrame,
    StartFrame,
    TextFrame,
    TranscriptFrame,
)
from voxline.pipeline import Pipeline
from voxline.processor import DOWNSTREAM, UPSTREAM, Direction, Processor
from voxline.queued import QueuedProcessor
from voxline.testing import Interrupt, Sleep, run_processor, started


class Recorder(Processor):
    def __init__(self, name: str = "rec") -> None:
        super().__init__(name=name)
        self.seen: list[Frame] = []

    async def process(self, frame: Frame, direction: Direction) -> None:
        self.seen.append(frame)
        await self.push(frame, direction)

    def texts(self) -> list[str]:
        return [f.text for f in self.seen if isinstance(f, TextFrame)]


async def test_push_stamps_data_frames_with_the_epoch_of_the_work() -> None:
    class Emit(Processor):
        async def process(self, frame: Frame, direction: Direction) -> None:
            if isinstance(frame, TextFrame):
                await self.push(TextFrame(text=frame.text + "!"))  # made from frame: frame's epoch
            else:
                await self.push(frame, direction)

    result = await run_processor(Emit(), [TextFrame(text="a"), Sleep(0.001), Interrupt(), TextFrame(text="b")])
    assert [(f.text, f.epoch) for f in result.downstream_of(TextFrame)] == [("a!", 0), ("b!", 1)]


async def test_the_gate_drops_frames_of_older_epochs_and_counts_them() -> None:
    class Late(Processor):
        async def process(self, frame: Frame, direction: Direction) -> None:
            await self.push(frame, direction)
            if isinstance(frame, InterruptFrame):
                await self.push(TextFrame(text="stale", epoch=0))  # explicit old epoch: must not get through
                await self.push(TextFrame(text="fresh"))

    late, rec = Late(), Recorder()
    result = await run_processor(Pipeline([late, rec]), [Interrupt()])
    assert rec.texts() == ["fresh"]
    assert [f.text for f in result.downstream_of(TextFrame)] == ["fresh"]
    assert late.dropped_frames == 1


async def test_an_error_becomes_an_error_frame_and_a_log_line_and_the_pipeline_lives_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Fragile(Processor):
        async def process(self, frame: Frame, direction: Direction) -> None:
            if isinstance(frame, TextFrame) and frame.text == "bad":
                raise ValueError("cannot take it")
            await self.push(frame, direction)

    with caplog.at_level(logging.ERROR):
        result = await run_processor(Fragile(), [TextFrame(text="bad"), TextFrame(text="good")])
    assert [f.text for f in result.downstream_of(TextFrame)] == ["good"]
    (error,) = result.errors
    assert error.source == "Fragile" and not error.fatal
    assert "ValueError" in error.message and "cannot take it" in error.message
    assert isinstance(error.exception, ValueError)
    assert any("cannot take it" in r.getMessage() for r in caplog.records)
    assert result.downstream_of(EndFrame)


@pytest.mark.parametrize("raise_after_forwarding", [False, True])
async def test_end_frame_gets_through_a_stage_that_raises_on_it_exactly_once(raise_after_forwarding: bool) -> None:
    class FailsOnEnd(Processor):
        async def process(self, frame: Frame, direction: Direction) -> None:
            if isinstance(frame, EndFrame):
                if raise_after_forwarding:
                    await self.push(frame, direction)
                raise RuntimeError("end went wrong")
            await self.push(frame, direction)

    rec = Recorder()
    result = await run_processor(Pipeline([FailsOnEnd(), rec]), [TextFrame(text="x")], timeout=2)
    assert len([f for f in rec.seen if isinstance(f, EndFrame)]) == 1
    assert len(result.errors) == 1


async def test_a_failing_task_becomes_an_error_frame() -> None:
    class Spawner(Processor):
        async def process(self, frame: Frame, direction: Direction) -> None:
            if isinstance(frame, TextFrame):
                self.create_task(self._fail())
            await self.push(frame, direction)

        async def _fail(self) -> None:
            raise KeyError("gone")

    result = await run_processor(Spawner(), [TextFrame(text="go"), Sleep(0.01)])
    (error,) = result.errors
    assert "KeyError" in error.message and error.source == "Spawner"


async def test_an_interrupt_cancels_epoch_bound_tasks_only() -> None:
    started = asyncio.Event()

    class Streams(Processor):
        def __init__(self) -> None:
            super().__init__()
            self.bound_done = self.unbound_done = False

        async def process(self, frame: Frame, direction: Direction) -> None:
            if isinstance(frame, TextFrame):
                self.create_task(self._work("bound"))
                self.create_task(self._work("unbound"), epoch_bound=False)
            await self.push(frame, direction)

        async def _work(self, kind: str) -> None:
            started.set()
            await asyncio.sleep(0.02)
            setattr(self, f"{kind}_done", True)

    stage = Streams()
    await run_processor(stage, [TextFrame(text="go"), Sleep(0.005), Interrupt(), Sleep(0.04)])
    assert started.is_set() and stage.unbound_done and not stage.bound_done


async def test_the_stage_that_pushes_an_interrupt_keeps_going_in_the_new_epoch() -> None:
    """Like an STT stage that hears speech while handling audio: its next output must not be lost."""

    class Hears(QueuedProcessor):
        async def process(self, frame: Frame, direction: Direction) -> None:
            if isinstance(frame, TextFrame):
                await asyncio.sleep(0)
                await self.push(InterruptFrame(reason="speech"))
                await asyncio.sleep(0.001)  # a real await: an abort would land here
                await self.push(TranscriptFrame(text="hello", is_final=True))
                return
            await self.push(frame, direction)

    before, hears, after = Recorder("before"), Hears(), Recorder("after")
    result = await run_processor(Pipeline([before, hears, after]), [TextFrame(text="audio")])
    assert [f.text for f in result.downstream_of(TranscriptFrame)] == ["hello"]
    assert result.downstream_of(TranscriptFrame)[0].epoch == 1
    # The interrupt started at the head: the stage before the one that pushed it saw it too, once.
    assert [f.epoch for f in before.seen if isinstance(f, InterruptFrame)] == [1]
    assert [f.epoch for f in after.seen if isinstance(f, InterruptFrame)] == [1]


async def test_interrupts_pass_a_slow_stage_one_at_a_time_in_order() -> None:
    gate = asyncio.Event()

    class SlowOnInterrupt(Processor):
        async def process(self, frame: Frame, direction: Direction) -> None:
            if isinstance(frame, InterruptFrame) and frame.epoch == 1:
                await gate.wait()
            await self.push(frame, direction)

    rec = Recorder()
    async with started(Pipeline([SlowOnInterrupt(), rec])) as run:
        first = asyncio.create_task(run.interrupt("one"))
        await asyncio.sleep(0.001)
        second = asyncio.create_task(run.interrupt("two"))
        await asyncio.sleep(0)  # the second interrupt starts (and waits behind the first at the slow stage)
        await run.queue(TextFrame(text="after both"))
        await asyncio.sleep(0.001)
        assert [f for f in rec.seen if not isinstance(f, DataFrame)][1:] == []  # everything waits behind interrupt 1
        gate.set()
        await asyncio.gather(first, second)
        await run.end()
    assert [(type(f).__name__, getattr(f, "epoch", None)) for f in rec.seen[1:]] == [
        ("InterruptFrame", 1),
        ("InterruptFrame", 2),
        ("TextFrame", 2),
        ("EndFrame", None),
    ]


async def test_queued_processor_drops_old_data_keeps_control_and_aborts_only_data_work() -> None:
    class Slow(QueuedProcessor):
        def __init__(self) -> None:
            super().__init__()
            self.finished: list[str] = []

        async def process(self, frame: Frame, direction: Direction) -> None:
            if isinstance(frame, TextFrame):
                await asyncio.sleep(0.02)
                self.finished.append(frame.text)
            await self.push(frame, direction)

    slow, rec = Slow(), Recorder()
    script = [TextFrame(text="a"), TextFrame(text="b"), SettingsFrame(settings={"k": 1}), TextFrame(text="c")]
    await run_processor(Pipeline([slow, rec]), [*script, Sleep(0.005), Interrupt(), TextFrame(text="d")])
    assert slow.finished == ["d"]  # "a" aborted in flight, "b" and "c" dropped from the queue
    assert rec.texts() == ["d"]
    assert [f.settings for f in rec.seen if isinstance(f, SettingsFrame)] == [{"k": 1}]
    assert slow.dropped_frames == 2


async def test_a_control_frame_is_delivered_whole_when_its_task_is_aborted() -> None:
    class SlowOnControl(Processor):
        async def process(self, frame: Frame, direction: Direction) -> None:
            if isinstance(frame, LLMResponseStartFrame):
                await asyncio.sleep(0.01)  # the interrupt arrives while the response start is in here
            await self.push(frame, direction)

    class Replies(Processor):
        async def process(self, frame: Frame, direction: Direction) -> None:
            if isinstance(frame, TextFrame):
                self.create_task(self._reply())
            await self.push(frame, direction)

        async def _reply(self) -> None:
            await self.push(LLMResponseStartFrame(epoch=self.epoch))
            await self.push(TextFrame(text="never"))
            await self.push(LLMResponseEndFrame(epoch=self.epoch))

    rec = Recorder()
    script = [TextFrame(text="q"), Sleep(0.002), Interrupt(), Sleep(0.03)]
    await run_processor(Pipeline([Replies(), SlowOnControl(), rec]), script)
    assert [type(f) for f in rec.seen if isinstance(f, LLMResponseStartFrame)] == [LLMResponseStartFrame]
    assert "never" not in rec.texts()


async def test_an_upstream_interrupt_is_a_request_the_head_turns_into_an_interrupt() -> None:
    class Requests(Processor):
        async def process(self, frame: Frame, direction: Direction) -> None:
            await self.push(frame, direction)
            if isinstance(frame, TextFrame) and frame.text == "stop":
                await self.push(InterruptFrame(reason="please"), UPSTREAM)

    before, after = Recorder("before"), Recorder("after")
    result = await run_processor(Pipeline([before, Requests(), after]), [TextFrame(text="stop")])
    for rec in (before, after):
        interrupts = [(f.epoch, f.reason) for f in rec.seen if isinstance(f, InterruptFrame) and f.epoch is not None]
        assert interrupts == [(1, "please")]
    assert result.upstream_of(InterruptFrame)


async def test_observers_see_every_hop() -> None:
    class Hops:
        def __init__(self) -> None:
            self.hops: list[tuple[str, str, str]] = []

        def on_push(self, source: Processor, destination: object, frame: Frame, direction: Direction) -> None:
            if isinstance(frame, TextFrame):
                self.hops.append((source.name, getattr(destination, "name", "?"), frame.text))

    hops = Hops()
    await run_processor(Pipeline([Recorder("a"), Recorder("b")]), [TextFrame(text="x")], observers=[hops])
    assert hops.hops == [("test.source", "a", "x"), ("a", "b", "x"), ("b", "test.sink", "x")]


async def test_push_error_goes_upstream() -> None:
    class Complains(Processor):
        async def process(self, frame: Frame, direction: Direction) -> None:
            if isinstance(frame, TextFrame):
                await self.push_error("bad input", fatal=False)
            await self.push(frame, direction)

    rec = Recorder()
    result = await run_processor(Pipeline([rec, Complains()]), [TextFrame(text="x")])
    assert [f.message for f in result.upstream_of(ErrorFrame)] == ["bad input"]
    assert any(isinstance(f, ErrorFrame) for f in rec.seen)  # it passed the stage before on its way up
    assert result.downstream_of(TextFrame)


def test_default_direction_is_downstream() -> None:
    assert DOWNSTREAM is Direction.DOWNSTREAM and DOWNSTREAM != UPSTREAM


async def test_a_data_frame_suspended_mid_hop_is_aborted_when_the_interrupt_passes() -> None:
    class Sleepy(Processor):
        def __init__(self) -> None:
            super().__init__()
            self.resumed: list[str] = []

        async def process(self, frame: Frame, direction: Direction) -> None:
            if isinstance(frame, TextFrame):
                await asyncio.sleep(0.02)  # suspended here, inside the head worker's task, when the interrupt passes
                self.resumed.append(frame.text)
            await self.push(frame, direction)

    sleepy, rec = Sleepy(), Recorder()
    script = [TextFrame(text="old"), Sleep(0.005), Interrupt(), TextFrame(text="new"), Sleep(0.03)]
    await run_processor(Pipeline([sleepy, rec]), script)
    assert sleepy.resumed == ["new"]
    assert rec.texts() == ["new"]


async def test_a_reader_task_that_interrupts_keeps_its_frames_current_after_later_interrupts() -> None:
    """Like the input transport: it pushes audio from its own task and sometimes the client's interrupt."""

    class Reader(Processor):
        def __init__(self) -> None:
            super().__init__()
            self.go = asyncio.Event()

        async def process(self, frame: Frame, direction: Direction) -> None:
            await self.push(frame, direction)
            if isinstance(frame, StartFrame):
                self.create_task(self._read(), epoch_bound=False)

        async def _read(self) -> None:
            await self.push(TextFrame(text="one"))
            await self.push(InterruptFrame(reason="client"))  # epoch 1, started from this task
            await self.push(TextFrame(text="two"))
            await self.go.wait()  # meanwhile someone else interrupts: epoch 2
            await self.push(TextFrame(text="three"))

    reader, rec = Reader(), Recorder()
    async with started(Pipeline([reader, rec])) as run:
        await asyncio.sleep(0.005)
        await run.interrupt("elsewhere")
        reader.go.set()
        await asyncio.sleep(0.005)
        await run.end()
    assert [(f.text, f.epoch) for f in rec.seen if isinstance(f, TextFrame)] == [("one", 0), ("two", 1), ("three", 2)]


async def test_a_stray_cancelled_error_in_a_queued_stage_is_reported_and_the_worker_lives_on() -> None:
    class AwaitsACancelledFuture(QueuedProcessor):
        async def process(self, frame: Frame, direction: Direction) -> None:
            if isinstance(frame, TextFrame) and frame.text == "bad":
                future = asyncio.get_running_loop().create_future()
                future.cancel()
                await future  # raises CancelledError, though nobody cancelled this task
            await self.push(frame, direction)

    result = await run_processor(AwaitsACancelledFuture(), [TextFrame(text="bad"), TextFrame(text="good")], timeout=2)
    assert [f.text for f in result.downstream_of(TextFrame)] == ["good"]
    assert ["CancelledError" in e.message for e in result.errors] == [True]


async def test_a_stage_stuck_on_a_system_frame_is_logged_not_silent(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import voxline._lanes

    monkeypatch.setattr(voxline._lanes, "SLOW_SYSTEM_FRAME", 0.01)
    release = asyncio.Event()

    class Stuck(Processor):
        async def process(self, frame: Frame, direction: Direction) -> None:
            if isinstance(frame, InterruptFrame):
                await release.wait()
            await self.push(frame, direction)

    stuck, rec = Stuck(name="stuck"), Recorder()
    with caplog.at_level(logging.WARNING):
        async with started(Pipeline([stuck, rec])) as run:
            interrupting = asyncio.create_task(run.interrupt())
            await asyncio.sleep(0)
            await run.queue(TextFrame(text="behind"))
            await asyncio.sleep(0.05)
            assert rec.texts() == []  # held behind the interrupt
            release.set()
            await interrupting
            await run.end()
    assert rec.texts() == ["behind"]
    assert any("stuck: a system frame has been inside process()" in r.getMessage() for r in caplog.records)
