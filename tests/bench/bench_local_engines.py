"""Benchmark of the local voice loop with whisper and piper: reply latency, interim sources, TTS first audio, and
how many talking users one machine serves.

Prints one JSON object per line. ``--quick`` is a smoke run (fewer turns, fewer sessions). ``--only`` picks
sections: ``latency``, ``tts``, ``sessions``.

* **latency**: one warm session; flite (slt) speaks the ten questions of bench_local.py, fed in 20 ms frames in
  real time (as a microphone delivers them), through ``SileroVAD -> STT -> EchoLLM ->
  SentenceAggregator -> TTS``, built here directly. Per configuration: ``speech_end_to_first_audio`` (from
  when the audio at the end of speech was fed to the first reply audio: what the user waits for; it
  includes the VAD's 0.5 s of silence), ``endpoint_to_first_audio`` (from the VAD's end-of-turn event),
  the first interim after the VAD's start, interims per turn, ``tts.ttfb``, and the process CPU per turn.
  Configurations: pocketsphinx + espeak (the old default), whisper + piper with pocketsphinx interims (the
  default), with whisper interims, with none, and without speculation.
* **tts**: 20 reply sentences of 3-25 words, one after the other, through ``PiperTTS`` (with and
  without clause pieces) and ``EspeakTTS``: time to first audio (``tts.ttfb``) p50/p95, and piper's
  real-time factor.
* **sessions**: N sessions at once in one process (staggered starts), each a user who asks a question, listens
  to the whole answer (its audio duration), pauses 0.3 s and asks the next, with silence fed in between as a
  microphone would. Per N: end of speech -> first reply audio p50/p95, CPU use. A user is "served" while p95
  stays within the 1.2 s target.

The machine is shared: every section reports the 1-minute load average before and after it.

Needs ``voxline[local]`` and flite. Run: ``python tests/bench/bench_local_engines.py [--quick] [--only ...]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

from bench_local import QUESTIONS, emit_percentiles
from voxline.aggregation import SentenceAggregator
from voxline.frames import (
    AudioFrame,
    EndFrame,
    Frame,
    LLMResponseEndFrame,
    LLMResponseStartFrame,
    MetricsFrame,
    SpeakTextFrame,
    TranscriptFrame,
    TTSAudioFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from voxline.pipeline import Pipeline
from voxline.processor import Processor
from voxline.processors.local import EchoLLM
from voxline.processors.vad import SileroVAD
from voxline.task import PipelineTask
from voxline.testing import run_processor

REPLIES = [
    "Sure.",
    "The capital of France is Paris.",
    "It is a quarter past ten in the morning.",
    "I have turned on the lights in the kitchen for you.",
    "Today will be sunny, with a light breeze and a high of twenty two degrees.",
    "Here is one: why did the computer go to the doctor? Because it had a virus.",
    "The moon is about three hundred and eighty four thousand kilometres away from the earth.",
    "Okay, calling your mother now.",
    "Your timer is set for ten minutes, and I will remind you when it ends.",
    "I am not sure I understood that; could you say it again, a little more slowly?",
    "The book was written by Ernest Hemingway and published in nineteen fifty two.",
    "Playing some relaxing music from your favourite playlist.",
    "There are sixty minutes in an hour, and sixty seconds in every minute.",
    "Of course.",
    "The train to the city leaves from platform four in about twelve minutes, so you should hurry.",
    "I added eggs, butter and sugar to your shopping list.",
    "The restaurant near the station opens at six and takes bookings for groups of up to eight people.",
    "Good night!",
    "A virus needs a living cell to reproduce, while a bacterium is a living cell of its own.",
    "You are welcome; let me know if there is anything else I can do.",
]

_FRAME = 640  # 20 ms at 16 kHz


def emit(name: str, value: float, unit: str, **extra: Any) -> None:
    line = {"bench": "local_engines", "name": name, "value": round(value, 3), "unit": unit, **extra}
    print(json.dumps(line), flush=True)


def percentiles(name: str, values: list[float], **extra: Any) -> None:
    emit_percentiles(emit, name, values, 1, **extra)


def load(section: str, when: str) -> None:
    emit("load_average_1min", os.getloadavg()[0], "", cores=os.cpu_count(), section=section, when=when)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def speak(folder: Path, text: str, n: int) -> bytes:
    path = folder / f"q{n}.wav"
    subprocess.run(["flite", "-voice", "slt", "-t", text, "-o", str(path)], check=True, capture_output=True)
    with wave.open(str(path)) as w:
        return w.readframes(w.getnframes())


# --- engines ---------------------------------------------------------------------------------------------------


def stt_of(config: str) -> Processor:
    from voxline.processors.local import PocketsphinxSTT, WhisperSTT

    if config == "pocketsphinx":
        return PocketsphinxSTT()
    interims, _, speculate = config.removeprefix("whisper").strip("/").partition("/")
    return WhisperSTT(
        interims=interims or "pocketsphinx",  # type: ignore[arg-type]
        speculate_secs=None if speculate == "off" else float(speculate or 0.1),
    )


def tts_of(name: str) -> Processor:
    from voxline.processors.local import EspeakTTS, PiperTTS

    return EspeakTTS() if name == "espeak" else PiperTTS()


# --- one simulated user ------------------------------------------------------------------------------------------


class User:
    """Feeds one session's microphone in real time and records each turn's timings."""

    def __init__(self, stt: Processor, tts: Processor, utterances: list[bytes], *, listen: bool) -> None:
        self.stt = stt
        self.utterances = utterances
        self.listen = listen
        self.task = PipelineTask(Pipeline([SileroVAD(), stt, EchoLLM(), SentenceAggregator(), tts]), name="bench")
        self.task.on_downstream(self._on_frame)
        self.turns: list[dict[str, float]] = []
        self.ttfb: list[float] = []
        self._turn: dict[str, float] = {}
        self._reply_audio = 0.0
        self._done = asyncio.Event()
        self._fed: list[tuple[float, float]] = []  # (audio clock at the end of a frame, wall time fed)
        self._clock = 0.0

    def _on_frame(self, frame: Frame) -> None:
        now = time.perf_counter()
        turn = self._turn
        if isinstance(frame, UserStartedSpeakingFrame):
            turn.setdefault("started", now)
        elif isinstance(frame, TranscriptFrame) and not frame.is_final:
            turn.setdefault("first_interim", now)
            turn["interims"] = turn.get("interims", 0) + 1
        elif isinstance(frame, UserStoppedSpeakingFrame):
            turn["endpoint"], turn["audio_time"] = now, frame.audio_time or 0.0
        elif isinstance(frame, LLMResponseStartFrame):
            self._reply_audio = 0.0
        elif isinstance(frame, TTSAudioFrame):
            turn.setdefault("first_audio", now)
            self._reply_audio += frame.duration
        elif isinstance(frame, MetricsFrame) and frame.name == "tts.ttfb":
            self.ttfb.append(frame.value)
        elif isinstance(frame, MetricsFrame) and frame.name == "stt.finalize":
            turn["stt_finalize"] = frame.value
        elif isinstance(frame, LLMResponseEndFrame):
            turn["end"] = now
            self._done.set()

    async def _feed(self, pcm: bytes, start: float) -> None:
        fed = 0.0
        for i in range(0, len(pcm), _FRAME):
            frame = AudioFrame(pcm=pcm[i : i + _FRAME])
            delay = start + fed - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.task.queue_frame(frame)
            fed += frame.duration
            self._clock += frame.duration
            self._fed.append((self._clock, time.perf_counter()))

    async def _silence_until(self, deadline: float) -> None:
        while time.perf_counter() < deadline:
            await self._feed(b"\0" * _FRAME * 5, time.perf_counter())

    async def run(self, turns: int, delay: float = 0.0) -> None:
        runner = asyncio.create_task(self.task.run())
        await self.task.wait_until_running()
        await self._silence_until(time.perf_counter() + 0.3 + delay)
        for n in range(turns):
            self._turn, self._fed = {}, self._fed[-2000:]
            self._done.clear()
            pcm = b"\0" * _FRAME * 15 + self.utterances[n % len(self.utterances)]
            await self._feed(pcm, time.perf_counter())
            deadline = time.perf_counter() + 15
            while not self._done.is_set() and time.perf_counter() < deadline:
                await self._feed(b"\0" * _FRAME * 5, time.perf_counter())  # the microphone stays open
            turn = self._turn
            if "first_audio" in turn and "endpoint" in turn:
                spoken_until = next(wall for clock, wall in self._fed if clock >= turn["audio_time"])
                turn["speech_end_to_first_audio"] = turn["first_audio"] - spoken_until
                self.turns.append(turn)
            if self.listen and "first_audio" in turn:  # the user hears the whole answer, then thinks a moment
                await self._silence_until(turn["first_audio"] + self._reply_audio + 0.3)
        await self.task.queue_frame(EndFrame())
        await runner


def _values(users: list[User], key: str) -> list[float]:
    return [t[key] for u in users for t in u.turns if key in t]


# --- sections ----------------------------------------------------------------------------------------------------


async def bench_latency(utterances: list[bytes], turns: int, configs: list[tuple[str, str]]) -> None:
    load("latency", "start")
    for stt_name, tts_name in configs:
        stt = stt_of(stt_name)
        user = User(stt, tts_of(tts_name), utterances, listen=False)
        cpu = cpu_seconds()
        await user.run(turns)
        cpu = cpu_seconds() - cpu
        tag = {"stt": stt_name, "tts": tts_name}
        percentiles(
            "speech_end_to_first_audio",
            _values([user], "speech_end_to_first_audio"),
            target_p50_ms=800,
            target_p95_ms=1200,
            **tag,
        )
        endpoint = [t["first_audio"] - t["endpoint"] for t in user.turns]
        percentiles("endpoint_to_first_audio", endpoint, **tag)
        interim = [t["first_interim"] - t["started"] for t in user.turns if "first_interim" in t and "started" in t]
        percentiles("first_interim_after_vad_start", interim, **tag)
        emit("interims_per_turn", statistics.mean([t.get("interims", 0) for t in user.turns] or [0]), "", **tag)
        percentiles("tts.ttfb", user.ttfb, **tag)
        emit("cpu_per_turn", cpu / max(1, len(user.turns)), "s", turns=len(user.turns), **tag)
        hits, misses = getattr(stt, "speculation_hits", None), getattr(stt, "speculation_misses", None)
        if hits is not None:
            emit("speculation_hits", hits, "", misses=misses, **tag)
    load("latency", "end")


async def bench_tts() -> None:
    from voxline.processors.local import EspeakTTS, PiperTTS
    from voxline.processors.local.piper import PiperEngine

    load("tts", "start")
    for name, make in (
        ("piper", lambda: PiperTTS()),
        ("piper/whole-sentences", lambda: PiperTTS(split_clauses=False)),
        ("espeak", lambda: EspeakTTS()),
    ):
        engine = PiperEngine.shared()
        synth, audio = engine.synth_seconds, engine.audio_seconds
        frames: list[Frame] = []
        for text in REPLIES:
            frames += [LLMResponseStartFrame(), SpeakTextFrame(text=text), LLMResponseEndFrame()]
        result = await run_processor(make(), frames, timeout=120)
        percentiles("tts.ttfb", [m.value for m in result.metrics if m.name == "tts.ttfb"], tts=name, target_p95_ms=250)
        if name.startswith("piper"):
            rtf = (engine.synth_seconds - synth) / max(1e-9, engine.audio_seconds - audio)
            emit("piper.rtf", rtf, "x", tts=name)
    load("tts", "end")


class LoopLag:
    """How late a 10 ms sleep wakes up: the event loop's own delay (something blocking it, or no free core)."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(0.01)
            self.lags.append(time.perf_counter() - started - 0.01)

    def __enter__(self) -> LoopLag:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


async def bench_sessions(utterances: list[bytes], counts: list[int], turns: int, stt_name: str) -> None:
    from voxline.processors.local.whisper_engine import WhisperEngine

    load("sessions", "start")
    rng = random.Random(7)
    pool = WhisperEngine.shared().pool
    for n in counts:
        users = [
            User(stt_of(stt_name), tts_of("piper"), rng.sample(utterances, len(utterances)), listen=True)
            for _ in range(n)
        ]
        queued = 0

        async def watch_pool() -> None:
            nonlocal queued
            while True:
                queued = max(queued, pool.queued)
                await asyncio.sleep(0.005)

        watcher = asyncio.create_task(watch_pool())
        cpu, wall = cpu_seconds(), time.perf_counter()
        with LoopLag() as lag:
            await asyncio.gather(*(u.run(turns, delay=i * 6.0 / n) for i, u in enumerate(users)))
        cpu, wall = cpu_seconds() - cpu, time.perf_counter() - wall
        watcher.cancel()
        tag: dict[str, Any] = {"sessions": n, "stt": stt_name}
        values = _values(users, "speech_end_to_first_audio")
        percentiles("sessions.speech_end_to_first_audio", values, target_p95_ms=1200, **tag)
        percentiles(
            "sessions.endpoint_to_first_audio",
            [t["first_audio"] - t["endpoint"] for u in users for t in u.turns],
            **tag,
        )
        percentiles("sessions.stt.finalize", _values(users, "stt_finalize"), **tag)
        percentiles("sessions.tts.ttfb", [v for u in users for v in u.ttfb], **tag)
        stalls = sum(1 for v in lag.lags if v > 0.05)
        percentiles("sessions.loop_lag", lag.lags, stalls_over_50ms=stalls, **tag)
        hits = sum(getattr(u.stt, "speculation_hits", 0) for u in users)
        misses = sum(getattr(u.stt, "speculation_misses", 0) for u in users)
        emit("sessions.speculation", hits, "hits", misses=misses, whisper_queue_max=queued, **tag)
        emit("sessions.cpu_share", cpu / wall / (os.cpu_count() or 1), "", turns=len(values), **tag)
        emit("sessions.turns_answered", len(values), "", asked=n * turns, **tag)
        load("sessions", f"after {n}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--only", default="latency,tts,sessions", help="comma-separated sections")
    parser.add_argument("--sessions", default="1,2,3,4,6", help="session counts for the sessions section")
    parser.add_argument("--stt", default="whisper", help="STT of the sessions section (whisper, whisper/none, ...)")
    parser.add_argument("--configs", default="", help="latency section: comma-separated stt+tts, e.g. whisper+piper")
    args = parser.parse_args()
    sections = args.only.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        utterances = [speak(Path(tmp), q, n) for n, q in enumerate(QUESTIONS)]
    from voxline.processors.local import preload

    await preload(stt="whisper", tts="piper")
    await preload(stt="pocketsphinx", tts="espeak")
    if "latency" in sections:
        configs = [
            ("pocketsphinx", "espeak"),
            ("whisper", "piper"),
            ("whisper/whisper", "piper"),
            ("whisper/none", "piper"),
            ("whisper/pocketsphinx/off", "piper"),
            ("whisper/pocketsphinx/0.15", "piper"),
        ]
        if args.configs:
            configs = [tuple(c.split("+")) for c in args.configs.split(",")]  # type: ignore[misc]
        await bench_latency(utterances, 3 if args.quick else 10, configs[:2] if args.quick else configs)
    if "tts" in sections:
        await bench_tts()
    if "sessions" in sections:
        counts = [1, 2] if args.quick else [int(n) for n in args.sessions.split(",")]
        await bench_sessions(utterances, counts, 2 if args.quick else 4, args.stt)


if __name__ == "__main__":
    if shutil.which("flite") is None:
        print(json.dumps({"bench": "local_engines", "skipped": "needs flite"}))
        sys.exit(0)
    from voxline.processors.local.choose import missing_packages

    if missing_packages("whisper") or missing_packages("piper"):
        print(json.dumps({"bench": "local_engines", "skipped": "pip install 'voxline[local]'"}))
        sys.exit(0)
    asyncio.run(main())
