"""Benchmark of the building blocks every frame of a voice reply passes: sentence splitting and audio resampling.

Prints one JSON object per line. ``--quick`` runs fewer repetitions (a smoke run).

* ``splitter.per_delta_us``: cost of :meth:`SentenceSplitter.push` per LLM delta (~4 characters, a token),
  over a realistic reply. Target: < 20 us (an LLM emits maybe 50 deltas a second).
* ``splitter.long_text_ms``: 20 000 characters without a single boundary, fed 4 at a time: must stay linear.
* ``aggregator.per_text_frame_us``: a ``TextFrame`` through a pipeline of ``SentenceAggregator`` alone
  (task head and tail included).
* ``resampler.per_chunk_us``: :class:`StreamResampler` cost per 20 ms chunk, for the rate pairs a voice
  agent meets; ``realtime_factor`` is audio time over CPU time.
* ``resampler.first_output_ms``: how much audio soxr holds back before its first output, and the largest gap
  between outputs (soxr releases output in blocks): the latency the resampler adds.
* ``resampler.held_ms``: audio held inside the resampler at steady state, for each soxr quality.
* ``chunker.per_push_us``: :class:`PcmChunker` cost per arbitrary-sized push.

Run: ``python tests/bench/bench_building_blocks.py [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from typing import Any

import numpy as np
from voxline.aggregation import SentenceAggregator, SentenceSplitter
from voxline.audio import PcmChunker, StreamResampler, float32_to_pcm
from voxline.audio.resample import QUALITIES
from voxline.frames import TextFrame
from voxline.testing import run_processor

REPLY = (
    "Sure, I can help with that. The meeting with Dr. Smith is at 3:30 p.m. on Friday, and it costs $1,000. "
    "Bring the slides, e.g. the Q3 numbers (about 3.14 million). Anything else? Let me know... I'm here! "
) * 4


def emit(name: str, **values: Any) -> None:
    print(json.dumps({"bench": name, **values}), flush=True)


def deltas(text: str, size: int = 4) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def bench_splitter(reps: int) -> None:
    pieces = deltas(REPLY)
    started = time.perf_counter()
    chunks = 0
    for _ in range(reps):
        splitter = SentenceSplitter()
        for piece in pieces:
            chunks += len(splitter.push(piece))
        splitter.flush()
    elapsed = time.perf_counter() - started
    emit("splitter.per_delta_us", value=round(1e6 * elapsed / (reps * len(pieces)), 2), unit="us", chunks=chunks)

    long_text = deltas("x" * 19_000 + " word" * 200)
    splitter = SentenceSplitter()
    started = time.perf_counter()
    for piece in long_text:
        splitter.push(piece)
    emit("splitter.long_text_ms", value=round(1000 * (time.perf_counter() - started), 2), unit="ms", chars=20_000)


async def _aggregator_run(frames: list[TextFrame]) -> None:
    await run_processor(SentenceAggregator(), frames, timeout=60)


def bench_aggregator(reps: int) -> None:
    frames = [TextFrame(text=p) for p in deltas(REPLY)] * max(1, reps // 10)
    started = time.perf_counter()
    asyncio.run(_aggregator_run(frames))
    elapsed = time.perf_counter() - started
    emit("aggregator.per_text_frame_us", value=round(1e6 * elapsed / len(frames), 2), unit="us", frames=len(frames))


def bench_resampler(seconds: float) -> None:
    for in_rate, out_rate in ((16000, 24000), (48000, 16000), (24000, 48000), (22050, 24000)):
        chunk = int(in_rate * 0.02)
        pcm = float32_to_pcm(0.5 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * in_rate)) / in_rate))
        pieces = [pcm[2 * i : 2 * (i + chunk)] for i in range(0, len(pcm) // 2, chunk)]
        resampler = StreamResampler(in_rate, out_rate)
        outputs = []
        started = time.perf_counter()
        for piece in pieces:
            outputs.append(len(resampler.process(piece)) // 2)
        resampler.flush()
        elapsed = time.perf_counter() - started
        first = next(i for i, n in enumerate(outputs) if n)
        # Chunks in a row that produced nothing after the first output: output comes in blocks this long.
        silent_run = longest_run = 0
        for n in outputs[first:]:
            silent_run = 0 if n else silent_run + 1
            longest_run = max(longest_run, silent_run)
        emit(
            "resampler.per_chunk_us",
            rates=f"{in_rate}->{out_rate}",
            value=round(1e6 * elapsed / len(pieces), 2),
            unit="us",
            realtime_factor=round(seconds / elapsed),
        )
        emit(
            "resampler.first_output_ms",
            rates=f"{in_rate}->{out_rate}",
            value=20 * (first + 1),
            unit="ms",
            longest_gap_ms=20 * (longest_run + 1),
        )


def bench_resampler_latency() -> None:
    """Audio held back inside the resampler at steady state (16 -> 24 kHz, 20 ms chunks), per soxr quality."""
    pcm = float32_to_pcm(0.5 * np.sin(2 * np.pi * 440 * np.arange(32000) / 16000))
    for quality in QUALITIES:
        resampler = StreamResampler(16000, 24000, quality=quality)
        held = []
        for i in range(0, 32000, 320):
            resampler.process(pcm[2 * i : 2 * (i + 320)])
            held.append(resampler.samples_in / 16000 - resampler.samples_out / 24000)
        emit("resampler.held_ms", quality=quality, value=round(1000 * max(held[len(held) // 2 :]), 1), unit="ms")


def bench_chunker(reps: int) -> None:
    rng = random.Random(7)
    data = bytes(rng.getrandbits(8) for _ in range(64_000))
    sizes = [rng.randint(1, 3000) for _ in range(reps)]
    chunker = PcmChunker(16000, 20)
    started = time.perf_counter()
    offset = 0
    for size in sizes:
        chunker.push(data[offset : offset + size])
        offset = (offset + size) % 60_000
    emit("chunker.per_push_us", value=round(1e6 * (time.perf_counter() - started) / reps, 2), unit="us")


def main() -> None:
    parser = argparse.ArgumentParser(description="sentence splitting and resampling costs")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args()
    reps = 20 if args.quick else 300
    bench_splitter(reps)
    bench_aggregator(reps)
    bench_resampler(2.0 if args.quick else 30.0)
    bench_resampler_latency()
    bench_chunker(2_000 if args.quick else 50_000)


if __name__ == "__main__":
    main()
