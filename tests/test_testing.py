"""voxline.testing.run_processor: the helper every processor test uses must itself be right."""

from __future__ import annotations

import asyncio

import pytest
from voxline.frames import EndFrame, ErrorFrame, Frame, InterruptFrame, MetricsFrame, StartFrame, TextFrame
from voxline.processor import UPSTREAM, Direction, Processor
from voxline.testing import Interrupt, Sleep, run_processor


class Echo(Processor):
    async def process(self, frame: Frame, direction: Direction) -> None:
        await self.push(frame, direction)
        if isinstance(frame, TextFrame):
            await self.push(MetricsFrame(name="echo", value=len(frame.text)))
            if frame.text == "complain":
                await self.push_error("complaint")


async def test_collects_both_directions_errors_and_metrics() -> None:
    result = await run_processor(Echo(), [TextFrame(text="hi"), TextFrame(text="complain")])
    assert isinstance(result.downstream[0], StartFrame) and isinstance(result.downstream[-1], EndFrame)
    assert [f.text for f in result.downstream_of(TextFrame)] == ["hi", "complain"]
    assert result.text() == "hicomplain"
    assert [m.value for m in result.metrics] == [2, 8]
    assert [e.message for e in result.errors] == ["complaint"]
    assert result.upstream_of(ErrorFrame) == result.errors


async def test_sleep_and_interrupt_entries() -> None:
    class Later(Processor):
        async def process(self, frame: Frame, direction: Direction) -> None:
            await self.push(frame, direction)
            if isinstance(frame, TextFrame):
                self.create_task(self._later(frame.text))

        async def _later(self, text: str) -> None:
            await asyncio.sleep(0.01)
            await self.push(TextFrame(text=text.upper()))

    script = [TextFrame(text="a"), Sleep(0.03), TextFrame(text="b"), Sleep(0.001), Interrupt("barge"), Sleep(0.02)]
    result = await run_processor(Later(), script)
    assert [f.text for f in result.downstream_of(TextFrame)] == ["a", "A", "b"]  # "B" was cut by the interrupt
    assert [(f.epoch, f.reason) for f in result.downstream_of(InterruptFrame)] == [(1, "barge")]


async def test_send_end_false_cancels_instead_of_ending() -> None:
    class FlushesOnEnd(Processor):
        async def process(self, frame: Frame, direction: Direction) -> None:
            if isinstance(frame, EndFrame):
                await self.push(TextFrame(text="flushed"))
            await self.push(frame, direction)

    assert (await run_processor(FlushesOnEnd(), [])).text() == "flushed"
    assert (await run_processor(FlushesOnEnd(), [], send_end=False)).text() == ""


async def test_a_processor_that_never_ends_times_out() -> None:
    class Swallows(Processor):
        async def process(self, frame: Frame, direction: Direction) -> None:
            if not isinstance(frame, EndFrame):
                await self.push(frame, direction)

    with pytest.raises(TimeoutError):
        await run_processor(Swallows(), [], timeout=0.05)


async def test_a_start_failure_is_returned_not_hung() -> None:
    class Broken(Processor):
        async def on_start(self) -> None:
            raise OSError("model file missing")

    result = await asyncio.wait_for(run_processor(Broken(), [TextFrame(text="x")]), 2)
    (error,) = result.errors
    assert error.fatal and "model file missing" in error.message
    assert result.downstream == []


async def test_upstream_frames_are_collected_at_the_head() -> None:
    class AsksUp(Processor):
        async def process(self, frame: Frame, direction: Direction) -> None:
            await self.push(frame, direction)
            if isinstance(frame, TextFrame):
                await self.push(TextFrame(text="up"), UPSTREAM)

    result = await run_processor(AsksUp(), [TextFrame(text="down")])
    assert [f.text for f in result.upstream_of(TextFrame)] == ["up"]
