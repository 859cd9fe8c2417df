"""Pipelines nest, and flatten at link time so nesting costs nothing per frame."""

from __future__ import annotations

import pytest
from voxline.frames import TextFrame
from voxline.pipeline import Pipeline
from voxline.processor import Processor
from voxline.task import PipelineTask
from voxline.testing import run_processor


def test_nested_pipelines_flatten_into_one_chain() -> None:
    a, b, c, d = (Processor(name=n) for n in "abcd")
    task = PipelineTask(Pipeline([a, Pipeline([b, Pipeline([c])]), d]))
    assert [p.name for p in task.processors] == ["a", "b", "c", "d"]
    assert a._next is b and b._next is c and c._next is d and d._prev is c


async def test_frames_make_one_hop_per_real_stage() -> None:
    hops: list[str] = []

    class Count:
        def on_push(self, source: Processor, destination: object, frame: object, direction: object) -> None:
            if isinstance(frame, TextFrame):
                hops.append(source.name)

    nested = Pipeline([Pipeline([Pipeline([Processor(name="x")])]), Processor(name="y")])
    result = await run_processor(nested, [TextFrame(text="t")], observers=[Count()])
    assert hops == ["test.source", "x", "y"]
    assert result.downstream_of(TextFrame)[0].text == "t"


def test_bad_pipelines_fail_clearly() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        Pipeline([])
    with pytest.raises(TypeError, match="Processor instances"):
        Pipeline([object()])  # type: ignore[list-item]
    p = Processor(name="twice")
    with pytest.raises(ValueError, match="appears twice"):
        PipelineTask(Pipeline([p, Pipeline([p])]))


async def test_hop_recorder_records_every_hop_in_order() -> None:
    from voxline.observers import HopRecorder, Observer

    recorder = HopRecorder()
    assert isinstance(recorder, Observer)
    await run_processor(
        Pipeline([Processor(name="a"), Processor(name="b")]), [TextFrame(text="t")], observers=[recorder]
    )
    text_hops = [(src, dst) for src, dst, frame, _, _ in recorder.hops if isinstance(frame, TextFrame)]
    assert text_hops == [("test.source", "a"), ("a", "b"), ("b", "test.sink")]
    times = [t for *_, t in recorder.hops]
    assert times == sorted(times)
