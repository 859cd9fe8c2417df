"""Benchmark of what the Deepgram stages add on top of the provider: the real SDK against FakeDeepgram.

Prints one JSON object per line. ``--quick`` runs fewer turns (a smoke run).

* ``deepgram.stt_latency_overhead_ms``: the ``stt.latency`` metric minus the fake's fixed delay (final result
  150 ms after the last voiced audio arrived, as in the app benchmark), audio streamed in real time in 20 ms
  chunks: the SDK, the socket both ways, result parsing and the frame push.
* ``deepgram.tts_ttfb_overhead_ms``: the ``tts.ttfb`` metric minus the fake's 250 ms first-byte delay, for the
  first sentence of each reply, over the speak WebSocket (socket kept open) and over REST (one request each).
* ``deepgram.interrupt_to_clear_ms``: from the interrupt entering the pipeline to the fake receiving ``Clear``.

Run: ``python tests/bench/bench_deepgram.py [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import time
from typing import Any

import numpy as np
from voxline.frames import (
    AudioFrame,
    EndFrame,
    LLMResponseEndFrame,
    MetricsFrame,
    SpeakTextFrame,
    TTSAudioFrame,
    UserTextFrame,
)
from voxline.processors.deepgram import DeepgramRESTTTS, DeepgramSTT, DeepgramTTS
from voxline.task import PipelineTask
from voxline.testing.fakes.deepgram import FakeDeepgram
from voxline.tts import TTSProcessor

RATE = 16000
STT_FINAL = 0.15
TTS_FIRST_BYTE = 0.25


def emit(name: str, **values: Any) -> None:
    print(json.dumps({"bench": name, **values}), flush=True)


def summary(values_ms: list[float]) -> dict[str, Any]:
    return {
        "n": len(values_ms),
        "median": round(statistics.median(values_ms), 2),
        "max": round(max(values_ms), 2),
        "min": round(min(values_ms), 2),
    }


def utterance() -> bytes:
    t = np.arange(int(1.0 * RATE)) / RATE
    speech = (np.sin(2 * np.pi * 220 * t) * 5000).astype("<i2").tobytes()
    return speech + b"\x00\x00" * int(0.6 * RATE)


async def bench_stt(turns: int) -> None:
    async with FakeDeepgram(stt_final_delay=STT_FINAL, endpointing=0.1) as fake:
        stt = DeepgramSTT(api_key="test-key", base_url=fake.base_url)
        task = PipelineTask(stt, name="bench-stt")
        latencies: list[float] = []
        done = asyncio.Event()

        def on_frame(frame: Any) -> None:
            if isinstance(frame, MetricsFrame) and frame.name == "stt.latency":
                latencies.append(frame.value)
            elif isinstance(frame, UserTextFrame) and len(latencies) >= turns:
                done.set()

        task.on_downstream(on_frame)
        runner = asyncio.create_task(task.run())
        await task.wait_until_running()
        audio = utterance() * turns
        step = int(0.02 * RATE) * 2
        start = time.monotonic()
        for n, i in enumerate(range(0, len(audio), step)):
            await task.queue_frame(AudioFrame(pcm=audio[i : i + step], sample_rate=RATE))
            await asyncio.sleep(max(0.0, start + (n + 1) * 0.02 - time.monotonic()))  # real time
        await asyncio.wait_for(done.wait(), 5)
        await task.queue_frame(EndFrame())
        await runner
    emit("deepgram.stt_latency_overhead_ms", **summary([1000 * (v - STT_FINAL) for v in latencies]))


async def bench_tts(kind: str, replies: int) -> None:
    async with FakeDeepgram(tts_first_byte_delay=TTS_FIRST_BYTE, tts_seconds_per_char=0.01) as fake:
        tts: TTSProcessor
        if kind == "websocket":
            tts = DeepgramTTS(api_key="test-key", base_url=fake.base_url)
        else:
            tts = DeepgramRESTTTS(api_key="test-key", base_url=fake.base_url)
        task = PipelineTask(tts, name=f"bench-tts-{kind}")
        ttfb: list[float] = []
        ended = asyncio.Event()

        def on_frame(frame: Any) -> None:
            if isinstance(frame, MetricsFrame) and frame.name == "tts.ttfb":
                ttfb.append(frame.value)
            elif isinstance(frame, LLMResponseEndFrame):
                ended.set()

        task.on_downstream(on_frame)
        runner = asyncio.create_task(task.run())
        await task.wait_until_running()
        firsts: list[float] = []
        for _ in range(replies):
            ended.clear()
            seen = len(ttfb)
            await task.queue_frame(SpeakTextFrame(text="Sure, here it is."))
            await task.queue_frame(SpeakTextFrame(text=" The meeting is on Friday."))
            await task.queue_frame(LLMResponseEndFrame())
            await asyncio.wait_for(ended.wait(), 5)
            firsts.append(ttfb[seen])
        clear_ms: list[float] = []
        if kind == "websocket":
            clear_ms = await interrupt_to_clear(task, fake, replies)
        await task.queue_frame(EndFrame())
        await runner
    emit("deepgram.tts_ttfb_overhead_ms", transport=kind, **summary([1000 * (v - TTS_FIRST_BYTE) for v in firsts]))
    if clear_ms:
        emit("deepgram.interrupt_to_clear_ms", **summary(clear_ms))


async def interrupt_to_clear(task: PipelineTask, fake: FakeDeepgram, times: int) -> list[float]:
    conn = fake.speak_connections[-1]
    fake.tts_chunk_interval = 0.01  # stream the audio in real time, so there is something to clear
    audio = asyncio.Event()
    task.on_downstream(lambda f: audio.set() if isinstance(f, TTSAudioFrame) else None)
    out: list[float] = []
    for _ in range(times):
        audio.clear()
        await task.queue_frame(SpeakTextFrame(text="A long sentence that is still being spoken when cut." * 4))
        await asyncio.wait_for(audio.wait(), 5)
        before = conn.message_types().count("Clear")
        started = time.monotonic()
        await task.interrupt("bench")
        async with asyncio.timeout(5):
            while conn.message_types().count("Clear") == before:  # noqa: ASYNC110
                await asyncio.sleep(0.0005)
        out.append(1000 * (conn.message_times[-1] - started))
        await asyncio.sleep(0.3)
    return out


async def main(quick: bool) -> None:
    # Ten replies in a few seconds is far above Deepgram's 20 Flushes per minute; the fake warns, as Deepgram
    # does, and the stage logs each warning. They are expected here, not news.
    logging.getLogger("voxline.processors.deepgram.tts").setLevel(logging.ERROR)
    await bench_stt(3 if quick else 10)
    await bench_tts("websocket", 3 if quick else 10)
    await bench_tts("rest", 3 if quick else 10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    asyncio.run(main(parser.parse_args().quick))
