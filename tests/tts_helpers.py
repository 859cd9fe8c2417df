"""Helpers shared by the TTS tests (the base and the Deepgram stages)."""

from __future__ import annotations

import asyncio

from voxline.frames import EndFrame, Frame, TTSAudioFrame
from voxline.task import PipelineTask
from voxline.testing import RunResult
from voxline.tts import TTSProcessor


async def run_with_barge_in(tts: TTSProcessor, before: list[Frame], after: list[Frame]) -> RunResult:
    """Feed ``before``, interrupt as soon as its first audio is out (not after a guessed delay), then ``after``."""
    task = PipelineTask(tts, name="test")
    downstream: list[Frame] = []
    upstream: list[Frame] = []
    first_audio = asyncio.Event()

    def on_frame(frame: Frame) -> None:
        downstream.append(frame)
        if isinstance(frame, TTSAudioFrame):
            first_audio.set()

    task.on_downstream(on_frame)
    task.on_upstream(upstream.append)
    runner = asyncio.create_task(task.run())
    await task.wait_until_running()
    for frame in before:
        await task.queue_frame(frame)
    await asyncio.wait_for(first_audio.wait(), 5)
    await task.interrupt("test")
    for frame in [*after, EndFrame()]:
        await task.queue_frame(frame)
    await asyncio.wait_for(runner, 10)
    return RunResult(downstream=downstream, upstream=upstream, errors=list(task.errors), task=task)
