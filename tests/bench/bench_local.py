"""Benchmark of the offline (local) mode: VAD cost, STT speed, TTS first audio, and end of speech -> reply audio.

Prints one JSON object per line. ``--quick`` runs a short smoke version (3 turns instead of 10).

What it does: flite speaks a list of questions (16 kHz, padded with silence); each is fed in 20 ms frames *in
real time* (as a microphone would deliver them) through ``VAD + pocketsphinx -> echo LLM -> SentenceAggregator
-> espeak TTS`` in one warm session. For each turn it records:

* ``endpoint_to_first_audio``: from the moment the VAD's ``UserStoppedSpeakingFrame`` leaves the pipeline
  (the VAD has decided the turn is over) to the first ``TTSAudioFrame`` of the reply. Target p50 <= 500 ms,
  p95 <= 800 ms on 2 cores.
* ``speech_end_to_first_audio``: from the moment the last audio of speech was fed in (the end of speech on the
  audio clock, mapped to wall time) to the first reply audio: the endpoint figure plus the VAD's ``stop_secs``
  of silence. This is what the user waits for.

Also: Silero's CPU per 32 ms window, the cost of one executor hop (why STT batches audio), the STT real-time
factor, ``stt.latency`` and ``stt.finalize``, and espeak's time to first audio.

Needs ``voxline[local]``, flite and sox. Run: ``python tests/bench/bench_local.py [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

from voxline.aggregation import SentenceAggregator
from voxline.frames import (
    AudioFrame,
    EndFrame,
    Frame,
    LLMResponseEndFrame,
    MetricsFrame,
    SpeakTextFrame,
    TTSAudioFrame,
    UserStoppedSpeakingFrame,
)
from voxline.pipeline import Pipeline
from voxline.processors.local import EchoLLM, EspeakTTS, PocketsphinxSTT
from voxline.processors.vad import SileroVAD, SileroVADAnalyzer, load_silero
from voxline.task import PipelineTask

QUESTIONS = [
    "What is the capital of France?",
    "Turn on the kitchen lights.",
    "What time is it?",
    "How is the weather today?",
    "Play some music please.",
    "Set a timer for ten minutes.",
    "Who wrote the book?",
    "Tell me a joke.",
    "How far is the moon?",
    "Call my mother.",
]


def emit(name: str, value: float, unit: str, **extra: Any) -> None:
    print(json.dumps({"bench": "local", "name": name, "value": round(value, 6), "unit": unit, **extra}), flush=True)


def emit_percentiles(emit: Callable[..., None], name: str, values: list[float], digits: int, **extra: Any) -> None:
    """p50/p95 (nearest rank) of ``values`` in seconds, reported in ms (to ``digits`` decimals) through ``emit``."""
    if not values:
        emit(name, float("nan"), "ms", n=0, **extra)
        return
    ms = sorted(v * 1000 for v in values)
    p50, p95 = statistics.median(ms), ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    fields = {"p50": round(p50, digits), "p95": round(p95, digits), "max": round(ms[-1], digits)}
    emit(name, p50, "ms", **fields, n=len(ms), **extra)


def percentiles(name: str, values: list[float], **extra: Any) -> None:
    emit_percentiles(emit, name, values, 3, **extra)


def speak(folder: Path, text: str, n: int) -> bytes:
    raw, padded = folder / f"q{n}.wav", folder / f"q{n}-p.wav"
    subprocess.run(["flite", "-voice", "slt", "-t", text, "-o", str(raw)], check=True, capture_output=True)
    subprocess.run(["sox", str(raw), str(padded), "pad", "0.3", "0.9"], check=True, capture_output=True)
    with wave.open(str(padded)) as w:
        return w.readframes(w.getnframes())


def bench_vad(pcm: bytes) -> None:
    analyzer = SileroVADAnalyzer(load_silero())
    started = time.perf_counter()
    analyzer.feed(pcm)
    per_window = (time.perf_counter() - started) / analyzer.windows
    emit("vad.window_cpu", per_window * 1e6, "us", window_ms=32, share_of_realtime=round(per_window / 0.032, 5))


async def bench_hop() -> None:
    """One loop -> thread -> loop round trip, as STT would pay per batch."""
    from concurrent.futures import ThreadPoolExecutor

    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(1) as executor:
        for _ in range(50):
            await loop.run_in_executor(executor, int)
        started = time.perf_counter()
        for _ in range(500):
            await loop.run_in_executor(executor, int)
        emit("executor_hop", (time.perf_counter() - started) / 500 * 1e6, "us")


async def bench_pipeline(utterances: list[bytes], *, second_pass: bool) -> None:
    stt = PocketsphinxSTT(second_pass=second_pass)
    vad = SileroVAD()
    tts = EspeakTTS()
    state: dict[str, Any] = {"endpoint": None, "first_audio": None, "first_speak": None, "done": asyncio.Event()}

    class FirstSentence:
        """Notes when the aggregator hands the reply's first sentence to TTS (SpeakTextFrame never leaves it)."""

        def on_push(self, source: Any, destination: Any, frame: Frame, direction: Any) -> None:
            if isinstance(frame, SpeakTextFrame) and state["first_speak"] is None:
                state["first_speak"] = time.perf_counter()

    pipeline = Pipeline([vad, stt, EchoLLM(), SentenceAggregator(), tts])
    task = PipelineTask(pipeline, name="bench", observers=[FirstSentence()])
    metrics: dict[str, list[float]] = {}

    def on_frame(frame: Frame) -> None:
        now = time.perf_counter()
        if isinstance(frame, UserStoppedSpeakingFrame):
            state["endpoint"], state["audio_time"] = now, frame.audio_time
        elif isinstance(frame, TTSAudioFrame) and state["first_audio"] is None:
            state["first_audio"] = now
        elif isinstance(frame, MetricsFrame):
            metrics.setdefault(frame.name, []).append(frame.value)
        elif isinstance(frame, LLMResponseEndFrame):
            state["done"].set()

    task.on_downstream(on_frame)
    runner = asyncio.create_task(task.run())
    await task.wait_until_running()
    endpoint_lat: list[float] = []
    to_sentence: list[float] = []
    sentence_to_audio: list[float] = []
    speech_end_lat: list[float] = []
    clock = 0.0  # seconds of audio fed so far
    fed_at: list[tuple[float, float]] = []  # (audio clock at the end of a frame, wall time it was fed)
    for pcm in utterances:
        state.update(endpoint=None, first_audio=None, first_speak=None)
        state["done"].clear()
        start = time.perf_counter()
        fed = 0.0
        for i in range(0, len(pcm), 640):
            frame = AudioFrame(pcm=pcm[i : i + 640])
            # Real time: wait until this frame's audio "has been spoken".
            delay = start + fed - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await task.queue_frame(frame)
            fed += frame.duration
            clock += frame.duration
            fed_at.append((clock, time.perf_counter()))
        try:
            await asyncio.wait_for(state["done"].wait(), 10)
        except TimeoutError:
            print(json.dumps({"bench": "local", "warning": "no reply for a turn (nothing recognised?)"}), flush=True)
            continue
        if state["endpoint"] is None or state["first_audio"] is None:
            continue
        endpoint_lat.append(state["first_audio"] - state["endpoint"])
        if state["first_speak"] is not None:
            to_sentence.append(state["first_speak"] - state["endpoint"])
            sentence_to_audio.append(state["first_audio"] - state["first_speak"])
        spoken_until = state["audio_time"]
        wall = next(t for c, t in fed_at if c >= spoken_until)
        speech_end_lat.append(state["first_audio"] - wall)
        await asyncio.sleep(0.2)
    await task.queue_frame(EndFrame())
    await runner

    percentiles("endpoint_to_first_audio", endpoint_lat, target_p50_ms=500, target_p95_ms=800, second_pass=second_pass)
    percentiles("endpoint_to_first_sentence", to_sentence, note="STT final + echo streams until the 1st sentence")
    percentiles("first_sentence_to_first_audio", sentence_to_audio, note="TTS queue + espeak + soxr")
    percentiles("speech_end_to_first_audio", speech_end_lat, vad_stop_secs=vad.params.stop_secs)
    percentiles("stt.latency", metrics.get("stt.latency", []), note="speech end arrived -> final")
    percentiles("stt.finalize", metrics.get("stt.finalize", []), note="VAD end event -> final")
    percentiles("tts.ttfb", metrics.get("tts.ttfb", []))
    percentiles("llm.ttft", metrics.get("llm.ttft", []))
    audio = max(stt.audio_seconds, 1e-9)
    cpu_rtf = round(stt.decode_cpu_seconds / audio, 4)
    emit("stt.rtf", stt.decode_seconds / audio, "x", cpu_rtf=cpu_rtf, audio_s=round(audio, 2))
    emit("load_average_1min", os.getloadavg()[0], "", cores=os.cpu_count())


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 turns instead of 10")
    parser.add_argument("--no-second-pass", action="store_true", help="PocketsphinxSTT(second_pass=False)")
    args = parser.parse_args()
    missing = [tool for tool in ("flite", "sox") if shutil.which(tool) is None]
    if missing:
        print(json.dumps({"bench": "local", "skipped": f"needs {', '.join(missing)}"}))
        return
    questions = QUESTIONS[:3] if args.quick else QUESTIONS
    with tempfile.TemporaryDirectory() as tmp:
        utterances = [speak(Path(tmp), q, n) for n, q in enumerate(questions)]
    bench_vad(b"".join(utterances))
    await bench_hop()
    await bench_pipeline(utterances, second_pass=not args.no_second_pass)


if __name__ == "__main__":
    try:
        import pocketsphinx  # noqa: F401
    except ImportError:
        print(json.dumps({"bench": "local", "skipped": "pip install 'voxline[local]'"}))
        sys.exit(0)
    asyncio.run(main())
