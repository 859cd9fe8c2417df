"""Micro-benchmark: the CPU DeepgramSTT spends per 20 ms frame of a talking session, and its messages to Deepgram.

One session's microphone, scripted the way the capacity benchmark's speech sessions talk (tests/bench/
bench_capacity.py ``--audio speech``): every 10 s the user asks a 1.6 s question over a -60 dBFS room-noise floor,
the VAD says start 0.2 s into it and stop 0.2 s after it, and the bot answers for 3 s from 0.6 s after the stop
(``BotStartedSpeakingFrame`` / ``BotStoppedSpeakingFrame`` upstream, as the output sends them). The frames go
through ``DeepgramSTT.process`` as the pipeline hands them over, back to back, as fast as they can.

* ``stage``: the stage alone — its connection replaced by a counter that takes every message (the SDK's own
  cost is not in it): µs per frame (the best of ``--repeats`` passes over ``--seconds`` of the session).
* ``sdk``: the real SDK against the fake Deepgram in a process of its own (tests/soak_fakes.py): this process's
  CPU per frame, the SDK's framing, masking and sends and the results it parses included.

* ``send``: the SDK's ``send_media`` alone, on that connection: CPU µs per message of 20 ms and of 100 ms.

``stage`` and ``sdk`` print ``messages_per_session_s`` (audio messages toward Deepgram per second of session audio). The
settings are the turn engine's (``apps/voice_agent/turn_wiring.py``) unless ``--quiet``/``--speech`` say
otherwise. A shared machine: compare runs made back to back, and read the load average printed with them.

Run: ``python tests/bench/bench_deepgram_stage.py [--mode stage|sdk] [--seconds 60] [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from voxline.frames import (
    AudioFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from voxline.processor import DOWNSTREAM, UPSTREAM, Direction
from voxline.processors.deepgram import DeepgramSTT

RATE = 16000
FRAME = 320  # samples: 20 ms
PERIOD = 500  # frames: a turn every 10 s
SPEECH = (0, 80)  # frames of the question
VAD = (10, 90)  # the VAD's start and stop
BOT = (120, 270)  # the reply playing


def session(seconds: float) -> list[tuple[Frame, Direction]]:
    """The scripted session: (frame, direction) in the order the stage gets them."""
    rng = np.random.default_rng(7)
    t = np.arange(FRAME * (SPEECH[1] - SPEECH[0])) / RATE
    voice = (np.sin(2 * np.pi * 180 * t) * 4000 * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.int16)
    out: list[tuple[Frame, Direction]] = []
    for k in range(int(seconds * 50)):
        i = k % PERIOD
        if i == VAD[0]:
            out.append((UserStartedSpeakingFrame(), DOWNSTREAM))
        elif i == VAD[1]:
            out.append((UserStoppedSpeakingFrame(), DOWNSTREAM))
        elif i == BOT[0]:
            out.append((BotStartedSpeakingFrame(), UPSTREAM))
        elif i == BOT[1]:
            out.append((BotStoppedSpeakingFrame(), UPSTREAM))
        noise = rng.normal(0, 30, FRAME)  # about -60 dBFS
        if SPEECH[0] <= i < SPEECH[1]:
            noise += voice[(i - SPEECH[0]) * FRAME : (i - SPEECH[0] + 1) * FRAME]
        out.append((AudioFrame(pcm=noise.astype("<i2").tobytes(), sample_rate=RATE), DOWNSTREAM))
    return out


class _Counter:
    """Stands in for the SDK's connection in ``stage`` mode: counts the audio messages."""

    def __init__(self) -> None:
        self.messages = 0

    async def send_media(self, pcm: bytes) -> None:
        self.messages += 1

    async def send_finalize(self) -> None:
        pass


class _Socket:
    """Stands in for the stage's ProviderSocket in ``stage`` mode: always ready, every send taken."""

    ready = True

    def __init__(self, conn: _Counter) -> None:
        self.conn = conn

    async def send(self, fn: Any) -> bool:
        await fn(self.conn)
        return True

    def wake(self) -> None:
        pass

    def stop(self) -> None:
        pass


def configure(stt: DeepgramSTT, quiet: float | None, speech: float | None) -> None:
    from voxline.apps.voice_agent import turn_wiring

    stt.quiet_message_seconds = turn_wiring.QUIET_MESSAGE_SECONDS if quiet is None else quiet
    if hasattr(stt, "speech_message_seconds"):
        default = getattr(turn_wiring, "SPEECH_MESSAGE_SECONDS", 0.0)
        stt.speech_message_seconds = default if speech is None else speech


async def run_stage(frames: list[tuple[Frame, Direction]], quiet: float | None, speech: float | None) -> dict[str, Any]:
    stt = DeepgramSTT(api_key="test-key", name="stt")
    configure(stt, quiet, speech)
    counter = _Counter()
    stt.socket = _Socket(counter)  # type: ignore[assignment]
    process = stt.process
    started = time.perf_counter()
    for frame, direction in frames:
        await process(frame, direction)
    elapsed = time.perf_counter() - started
    audio = sum(1 for f, _ in frames if isinstance(f, AudioFrame))
    return {"us_per_frame": elapsed * 1e6 / audio, "messages": counter.messages, "frames": audio}


def _start_fakes() -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve().parent.parent / "soak_fakes.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


async def run_sdk(frames: list[tuple[Frame, Direction]], quiet: float | None, speech: float | None) -> dict[str, Any]:
    fakes = _start_fakes()
    try:
        assert fakes.stdout is not None
        url = json.loads(fakes.stdout.readline())["deepgram"]
        stt = DeepgramSTT(api_key="test-key", base_url=url, name="stt")
        configure(stt, quiet, speech)
        sent = 0
        real_send = stt.socket.send

        async def counting(fn: Any) -> bool:
            nonlocal sent
            ok = await real_send(fn)
            sent += 1
            return ok

        stt.socket.send = counting  # type: ignore[method-assign]
        await stt.process(frames[0][0], frames[0][1])
        for _ in range(500):
            if stt.connected:
                break
            await asyncio.sleep(0.01)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for frame, direction in frames[1:]:
            await stt.process(frame, direction)
            await asyncio.sleep(0)  # let the SDK's receive task run, as the event loop would between frames
        cpu = time.process_time() - cpu0
        wall = time.perf_counter() - wall0
        audio = sum(1 for f, _ in frames[1:] if isinstance(f, AudioFrame))
        await stt.on_stop()
        return {"cpu_us_per_frame": cpu * 1e6 / audio, "wall_s": round(wall, 2), "messages": sent, "frames": audio}
    finally:
        assert fakes.stdin is not None
        fakes.stdin.close()
        fakes.wait(10)


async def run_send(messages: int) -> dict[str, Any]:
    fakes = _start_fakes()
    try:
        assert fakes.stdout is not None
        url = json.loads(fakes.stdout.readline())["deepgram"]
        stt = DeepgramSTT(api_key="test-key", base_url=url, name="stt")
        await stt.process(AudioFrame(pcm=b"\x01\x00" * FRAME, sample_rate=RATE), DOWNSTREAM)
        for _ in range(500):
            if stt.connected:
                break
            await asyncio.sleep(0.01)
        grabbed: list[Any] = []

        async def grab(conn: Any) -> None:
            grabbed.append(conn)

        await stt.socket.send(grab)
        conn = grabbed[0]
        rng = np.random.default_rng(3)
        out: dict[str, Any] = {}
        for ms in (20, 100):
            pcm = rng.normal(0, 30, FRAME * ms // 20).astype("<i2").tobytes()
            cpu0 = time.process_time()
            for _ in range(messages):
                await conn.send_media(pcm)
            out[f"cpu_us_per_message_{ms}ms"] = round((time.process_time() - cpu0) * 1e6 / messages, 2)
            await asyncio.sleep(0.5)
        await stt.on_stop()
        return out
    finally:
        assert fakes.stdin is not None
        fakes.stdin.close()
        fakes.wait(10)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=["stage", "sdk", "send"], default="stage")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quiet", type=float, help="quiet_message_seconds (default: the turn engine's)")
    parser.add_argument("--speech", type=float, help="speech_message_seconds (default: the turn engine's)")
    parser.add_argument("--label", default="")
    parser.add_argument("--quick", action="store_true", help="a smoke run (nox -s bench -- --quick)")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.repeats = 5.0, 1
    if args.mode == "send":
        sends = [await run_send(int(args.seconds * 50)) for _ in range(args.repeats)]
        best = {key: min(r[key] for r in sends) for key in sends[0]}
        print(json.dumps({"bench": "deepgram_stage", "mode": "send", **best, "load_avg_1m": os.getloadavg()[0]}))
        return
    frames = session(args.seconds)
    runs = []
    for _ in range(args.repeats):
        runs.append(await (run_stage if args.mode == "stage" else run_sdk)(frames, args.quiet, args.speech))
    key = "us_per_frame" if args.mode == "stage" else "cpu_us_per_frame"
    best = min(runs, key=lambda r: r[key])
    print(
        json.dumps(
            {
                "bench": "deepgram_stage",
                "mode": args.mode,
                "label": args.label,
                key: round(best[key], 2),
                f"{key}_all": [round(r[key], 2) for r in runs],
                "messages_per_session_s": round(best["messages"] / (best["frames"] / 50), 2),
                "load_avg_1m": os.getloadavg()[0],
                "utc": time.strftime("%H:%M", time.gmtime()),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    asyncio.run(main())
