"""The client process of the capacity benchmark (tests/bench/bench_capacity.py): N browser-like sessions.

``python tests/bench/capacity_client.py URL N PERIOD WARMUP SECONDS [FIRST]`` opens N sessions on ``URL/ws``
and streams real-time audio into all of them: a 20 ms chunk of 16 kHz PCM per session every 20 ms, as the
seed's JSON ``audio`` message, or with ``BENCH_WIRE=binary`` as the bundled page sends it: a ``config``
``binary_audio`` message once the ``session`` message offers it, then raw binary frames. Each session takes a
turn every ``PERIOD`` seconds — 1 s of tone (speech for the fake STT's energy detector; with
``BENCH_AUDIO=speech`` a spoken question instead, see :func:`speech_frames`), then quiet (a -60 dBFS room-noise
floor, as a microphone sends) — with the sessions' turns spread evenly over the period and their chunks over ten
2 ms phase slots (independent browsers are not in phase). Voice to voice is timed per turn, from writing the last
tone chunk to reading the first ``audio`` message after it.

It prints JSON lines: ``{"event": "window", "from": t}`` when the ``WARMUP`` seconds are over (turns begun
before are not counted) and ``{"event": "done", ...}`` with the figures ``SECONDS`` later (times are
``time.monotonic()``, the same clock as the server's lag probe). ``FIRST`` numbers the sessions, so several
client processes can share one level.

The load generator must not be what saturates the machine: the chunks are pre-built, masked WebSocket frames
written straight to each connection's transport (as tests/bench/app_load.py does), and received messages are
only classified by their first bytes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
import wave
from array import array
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect
from websockets.frames import Frame, Opcode

PHASES = 10
TICK = 0.02
SPEECH_SECONDS = 1.0
NOISE_RMS = 30.0  # about -60 dBFS: far under the fake STT's speech threshold (RMS 500)
QUIET_CHUNKS = 60  # 38 KiB of distinct noise
WIRE = os.environ.get("BENCH_WIRE", "json")
"""How the microphone chunks travel: ``json`` (the seed's base64 ``audio`` messages) or ``binary`` (raw frames)."""
BINARY_CONFIG = '{"type":"config","data":{"binary_audio":true}}'


def _frame(pcm: bytes) -> bytes:
    if WIRE == "binary":
        return Frame(Opcode.BINARY, pcm).serialize(mask=True)
    message = json.dumps({"type": "audio", "data": base64.b64encode(pcm).decode()}).encode()
    return Frame(Opcode.TEXT, message).serialize(mask=True)


def _noise(rng: random.Random, sigma: float) -> list[float]:
    return [rng.gauss(0.0, sigma) for _ in range(320)]


def _pcm(samples: list[float]) -> bytes:
    return b"".join(max(-32768, min(32767, int(s))).to_bytes(2, "little", signed=True) for s in samples)


def tone_frames(count: int, rng: random.Random) -> list[bytes]:
    """``count`` consecutive 20 ms chunks of a 220 Hz tone at about -12 dBFS over the room noise (speech, to the
    fake's energy detector)."""
    frames = []
    for k in range(count):
        noise = _noise(rng, NOISE_RMS)
        frames.append(
            _frame(_pcm([8000 * math.sin(2 * math.pi * 220 * (k * 320 + i) / 16000) + noise[i] for i in range(320)]))
        )
    return frames


SENTENCE = "What is the capital of France?"


def speech_frames(rng: random.Random) -> list[bytes]:
    """``BENCH_AUDIO=speech``: a spoken question (flite's slt voice, 16 kHz; about 1.6 s) over the room noise,
    in 20 ms chunks. A tone is speech to the fake STT's energy detector but not to Silero, so with the tone the
    turn engine never sees the user speak: its VAD events, its endpointing and the smart-turn model go unmeasured."""
    with tempfile.TemporaryDirectory() as folder:
        wav = Path(folder) / "speech.wav"
        subprocess.run(["flite", "-voice", "slt", "-t", SENTENCE, "-o", str(wav)], check=True, capture_output=True)
        with wave.open(str(wav)) as f:
            if f.getframerate() != 16000 or f.getnchannels() != 1 or f.getsampwidth() != 2:
                raise RuntimeError(f"flite made {f.getframerate()} Hz x {f.getnchannels()}, not 16 kHz mono Int16")
            samples = array("h", f.readframes(f.getnframes()))
    samples.extend([0] * (-len(samples) % 320))
    frames = []
    for k in range(0, len(samples), 320):
        noise = _noise(rng, NOISE_RMS)
        frames.append(_frame(_pcm([samples[k + i] + noise[i] for i in range(320)])))
    return frames


def quiet_frames(rng: random.Random) -> list[bytes]:
    """What a microphone sends while the user is quiet: a room-noise floor (about -60 dBFS), never all zeros.
    Different chunks, over more than deflate's 32 KiB window: the audio compresses as a real one does (digital
    silence would make per-message deflate toward the STT look free)."""
    return [_frame(_pcm(_noise(rng, NOISE_RMS))) for _ in range(QUIET_CHUNKS)]


class Session:
    """One client connection: when its turns' speech ended, and how long the first reply audio took."""

    def __init__(self, ws: ClientConnection, offset_ticks: int) -> None:
        self.ws = ws
        self.offset = offset_ticks
        self.spoke_at: float | None = None  # last tone chunk written, no reply audio yet
        self.latencies: list[tuple[float, float]] = []  # (speech ended, seconds to the first audio)
        self.unanswered: list[float] = []  # when the speech of turns that got no reply audio ended
        self.closed = False
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                if self.spoke_at is not None and message[:15] == '{"type":"audio"':
                    self.latencies.append((self.spoke_at, time.monotonic() - self.spoke_at))
                    self.spoke_at = None
        except Exception:
            pass
        self.closed = True


async def _open(url: str, offset_ticks: int) -> Session:
    ws = await connect(
        url.replace("http", "ws", 1) + "/ws", ping_interval=None, compression=None, max_size=None, open_timeout=60
    )
    while True:  # the greeting: status connected, then session (ready)
        message = json.loads(await ws.recv())
        if message.get("type") == "session":
            if not message["data"]["ready"]:
                raise RuntimeError(f"session not ready: {message['data']['problems']}")
            if WIRE == "binary":
                if "binary_audio" not in message["data"].get("features", []):
                    raise RuntimeError("BENCH_WIRE=binary, but the server does not offer binary_audio")
                await ws.send(BINARY_CONFIG)  # as the bundled page does
            return Session(ws, offset_ticks)


async def run(url: str, n: int, period: float, warmup: float, seconds: float, first: int = 0, total: int = 0) -> None:
    if WIRE not in ("json", "binary"):
        raise SystemExit(f"BENCH_WIRE must be json or binary, not {WIRE!r}")
    total = total or n
    period_ticks = round(period / TICK)
    rng = random.Random(first)
    if os.environ.get("BENCH_AUDIO", "tone") == "speech":
        tone = speech_frames(rng)
    else:
        tone = tone_frames(round(SPEECH_SECONDS / TICK), rng)
    speech_ticks = len(tone)
    quiet = quiet_frames(rng)
    sessions: list[Session] = []
    for i in range(0, n, 10):  # connect in batches, as a crowd arrives (not one burst of N handshakes)
        numbers = range(first + i, first + min(n, i + 10))
        sessions += await asyncio.gather(*(_open(url, j * period_ticks // total) for j in numbers))
    cpu0 = time.process_time()
    slots = [sessions[k::PHASES] for k in range(PHASES)]
    start = time.monotonic()
    window_from = start + warmup
    window_to = window_from + seconds
    print(json.dumps({"event": "window", "from": window_from}), flush=True)
    ticks = late = 0
    while (now := time.monotonic()) < window_to + 3.0:  # 3 s more: the last turns' replies
        speaking = now < window_to
        for k, slot in enumerate(slots):
            await asyncio.sleep(max(0.0, start + ticks * TICK + k * TICK / PHASES - time.monotonic()))
            for s in slot:
                if s.closed:
                    continue
                position = (ticks + s.offset) % period_ticks
                if position < speech_ticks and speaking:
                    if position == 0 and s.spoke_at is not None:
                        s.unanswered.append(s.spoke_at)  # a whole period went by without reply audio
                        s.spoke_at = None
                    s.ws.transport.write(tone[position])
                    if position == speech_ticks - 1:
                        s.spoke_at = time.monotonic()
                else:
                    s.ws.transport.write(quiet[(ticks + s.offset) % QUIET_CHUNKS])
        ticks += 1
        delay = start + ticks * TICK - time.monotonic()
        if delay < -TICK:  # starved by the machine: skip the missed ticks rather than burst to catch up
            late += 1
            ticks += int(-delay / TICK)
        await asyncio.sleep(max(0.0, delay))
    counted = [lat for s in sessions for t, lat in s.latencies if window_from <= t < window_to]
    missed = [t for s in sessions for t in (*s.unanswered, s.spoke_at) if t is not None]
    unanswered = sum(window_from <= t < window_to for t in missed)
    result = {
        "event": "done",
        "to": window_to,
        "sessions": n,
        "closed": sum(s.closed for s in sessions),
        "latencies_ms": [round(x * 1000, 2) for x in counted],
        "unanswered": unanswered,
        "late_ticks": late,
        "client_cpu_s": round(time.process_time() - cpu0, 2),
    }
    print(json.dumps(result), flush=True)
    for s in sessions:
        s.ws.transport.abort()  # a crowd leaving at once: the server tears every session down
    await asyncio.gather(*(s.reader for s in sessions), return_exceptions=True)


def main() -> None:
    url, n, period, warmup, seconds = sys.argv[1], int(sys.argv[2]), *map(float, sys.argv[3:6])
    first = int(sys.argv[6]) if len(sys.argv) > 6 else 0
    total = int(sys.argv[7]) if len(sys.argv) > 7 else 0
    try:
        import uvloop

        uvloop.run(run(url, n, period, warmup, seconds, first, total))
    except ImportError:
        asyncio.run(run(url, n, period, warmup, seconds, first, total))
    os._exit(0)


if __name__ == "__main__":
    main()
