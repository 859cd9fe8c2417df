"""Barge-in, step by step: the epoch contract on a whole LLM → sentences → TTS chain, offline.

A scripted LLM starts telling a long story; a toy TTS "speaks" each sentence as beeps (real 24 kHz PCM, one
short tone per word). While the story's audio is streaming, the user barges in: ``task.interrupt()`` starts
epoch 1. The demo then asks a second question and prints a timeline of everything that reached the end of the
pipeline.

What to look for (and what the script checks; it exits with status 1 if any fails):

* after the ``InterruptFrame``, no data frame of epoch 0 (text, sentence or audio) ever reaches the output,
  although the story's LLM stream and its synthesis were still running when it arrived;
* the old reply still ends properly: ``LLMResponseEndFrame(interrupted=True)`` and ``TTSStoppedFrame`` are
  control frames, which survive the interrupt, so every stage can close its books;
* the context records the cut story as an interrupted assistant turn.

Run it::

    python examples/interruption_demo.py
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import AsyncIterator

import numpy as np
from voxline.aggregation import SentenceAggregator
from voxline.audio import float32_to_pcm
from voxline.context import Context
from voxline.frames import (
    DataFrame,
    EndFrame,
    Frame,
    InterruptFrame,
    LLMResponseEndFrame,
    MetricsFrame,
    SpeakTextFrame,
    TextFrame,
    TTSAudioFrame,
    UserTextFrame,
)
from voxline.llm import LLMProcessor
from voxline.pipeline import Pipeline
from voxline.processor import Direction, Processor
from voxline.task import PipelineTask
from voxline.tts import TTSProcessor

STORY = (
    "Once upon a time, in a city of bridges, there lived a clockmaker who never slept. "
    "Every night she fixed one more clock, and every morning the city woke a second earlier. "
    "Nobody noticed for years. Then one day the bells rang at dawn, and the dawn had not come yet."
)


class ScriptedLLM(LLMProcessor):
    """Tells the story to the first question and answers anything else briefly, one word every 20 ms."""

    async def stream(self, context: Context) -> AsyncIterator[str]:
        asked = context.turns[-1].text.lower()
        reply = STORY if "story" in asked else "Sure. Hi there, nice to meet you!"
        for i, word in enumerate(reply.split(" ")):
            await asyncio.sleep(0.02)
            yield word if i == 0 else " " + word


class BeepTTS(TTSProcessor):
    """A toy TTS: one 80 ms tone per word, delivered in 20 ms chunks at roughly twice real time."""

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        t = np.arange(int(0.02 * self.sample_rate)) / self.sample_rate
        for n, _word in enumerate(text.split()):
            chunk = float32_to_pcm(0.3 * np.sin(2 * np.pi * (300 + 40 * (n % 8)) * t))
            for _ in range(4):
                await asyncio.sleep(0.01)
                yield chunk


class Timeline(Processor):
    """Records what reaches the end of the pipeline, with the time and the epoch of each frame."""

    def __init__(self) -> None:
        super().__init__()
        self.started = time.monotonic()
        self.events: list[tuple[float, Frame]] = []
        self.replies_done: dict[int, asyncio.Event] = {0: asyncio.Event(), 1: asyncio.Event()}
        self.audio_started = asyncio.Event()

    async def process(self, frame: Frame, direction: Direction) -> None:
        self.events.append((time.monotonic() - self.started, frame))
        if isinstance(frame, TTSAudioFrame):
            self.audio_started.set()
        if isinstance(frame, LLMResponseEndFrame) and frame.epoch in self.replies_done:
            self.replies_done[frame.epoch].set()
        await self.push(frame, direction)

    def stale_after_interrupt(self) -> list[Frame]:
        """Data frames of an older epoch that arrived after the interrupt: the contract says none."""
        seen: int | None = None
        stale: list[Frame] = []
        for _, frame in self.events:
            if isinstance(frame, InterruptFrame):
                seen = frame.epoch
            elif seen is not None and isinstance(frame, DataFrame) and (frame.epoch or 0) < seen:
                stale.append(frame)
        return stale

    def print(self) -> None:
        """One line per event; runs of text or audio of one epoch are folded into one line."""
        rows: list[tuple[float, str, str, list[Frame]]] = []
        for at, frame in self.events:
            epoch = getattr(frame, "epoch", None)
            key = (type(frame).__name__, "-" if epoch is None else str(epoch))
            if rows and (rows[-1][1], rows[-1][2]) == key and isinstance(frame, (TextFrame, TTSAudioFrame)):
                rows[-1][3].append(frame)
            else:
                rows.append((at, *key, [frame]))
        for at, kind, epoch, frames in rows:
            print(f"  {1000 * at:7.0f} ms  epoch {epoch}  {kind:22} {_describe(frames)}")


def _describe(frames: list[Frame]) -> str:
    first = frames[0]
    if isinstance(first, TTSAudioFrame):
        ms = sum(f.duration for f in frames if isinstance(f, TTSAudioFrame)) * 1000
        return f"x{len(frames)} ({ms:.0f} ms of audio)"
    if isinstance(first, (TextFrame, SpeakTextFrame)):
        text = "".join(getattr(f, "text", "") for f in frames)
        return repr(text if len(text) < 60 else text[:57] + "...")
    if isinstance(first, InterruptFrame):
        return f"reason={first.reason!r}"
    if isinstance(first, MetricsFrame):
        value = f"{1000 * first.value:.0f} ms" if first.unit == "s" else f"{first.value:g} {first.unit}"
        return f"{first.name} = {value}"
    if isinstance(first, LLMResponseEndFrame):
        return f"interrupted={first.interrupted}"
    return ""


async def main_async() -> int:
    llm = ScriptedLLM()
    timeline = Timeline()
    task = PipelineTask(Pipeline([llm, SentenceAggregator(), BeepTTS(), timeline]), name="demo")
    runner = asyncio.create_task(task.run())
    await task.wait_until_running()

    await task.queue_frame(UserTextFrame(text="Tell me a story"))
    await timeline.audio_started.wait()
    await asyncio.sleep(0.15)  # let the story play a little
    await task.interrupt("user barged in")
    await task.queue_frame(UserTextFrame(text="Actually, just say hi"))
    await asyncio.wait_for(timeline.replies_done[1].wait(), timeout=10)
    await task.queue_frame(EndFrame())
    await runner

    print("timeline (what reached the output):")
    timeline.print()
    stale = timeline.stale_after_interrupt()
    story_audio = [f for _, f in timeline.events if isinstance(f, TTSAudioFrame) and f.epoch == 0]
    reply_audio = [f for _, f in timeline.events if isinstance(f, TTSAudioFrame) and f.epoch == 1]
    print("context:")
    for turn in llm.context.turns:
        print(f"  {turn.role:9} interrupted={turn.interrupted!s:5} {turn.text!r}")
    print(f"story audio before the interrupt: {len(story_audio)} frames; reply audio: {len(reply_audio)} frames")
    print(f"stale frames after the interrupt: {len(stale)}")
    checks = {
        "no stale data after the interrupt": not stale,
        "the story was cut short": bool(story_audio) and llm.context.turns[1].interrupted,
        "the second reply was spoken": bool(reply_audio),
        "no errors": not task.errors,
    }
    for name, ok in checks.items():
        print(f"check: {name}: {'ok' if ok else 'FAILED'}")
    return 0 if all(checks.values()) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.parse_args(argv)
    return asyncio.run(main_async())


if __name__ == "__main__":
    sys.exit(main())
