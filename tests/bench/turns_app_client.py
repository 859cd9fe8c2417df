"""The client side of the app-level turn benchmark: a WebSocket client that talks and listens like a person at
a seed client (tests/bench/bench_turns_app.py).

:class:`Listener` reads the socket and plays the bot's audio in real time, as a browser would: back to back
after an 80 ms jitter buffer, flushed on ``status: interrupted``; the 24 kHz audio is resampled to 16 kHz as one
stream (a browser's player does not restart at each message: resampling each message on its own rounded its
length to whole samples, a one-sample seam at most borders that no real client plays). As the seed's minimal
client it never sends ``interrupt`` and ignores ``playback``; with ``page=True`` it behaves like voxline's page
instead: it honours ``playback`` pause/resume and reports ``played`` every 100 ms. It notes the ground truth the
benchmark scores against: when the bot was audible, what had played of each epoch when it was flushed, and
audio that arrived after ``interrupted`` (stale).

:class:`Microphone` sends 20 ms of audio every 20 ms: the user's scripted speech, plus what the listener played
fed back ``echo_db`` quieter and 80 ms late (a laptop without headphones), plus background noise.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import time
from typing import Any

import numpy as np
from mic_sim import RATE, STEP, SimulatedMic
from voxline.audio.resample import StreamResampler

LEAD = 0.08


class Listener:
    """Plays what the server sends; see the module docstring. Times are ``time.monotonic()``."""

    def __init__(self, ws: Any, *, page: bool = False) -> None:
        self.ws = ws
        self.page = page
        self.log: list[tuple[float, dict[str, Any]]] = []
        self.buffer: collections.deque[tuple[int | None, np.ndarray]] = collections.deque()
        self.epoch: int | None = None  # from playback "start" (a seed client would not know it; the score does)
        self.played: dict[int | None, float] = collections.defaultdict(float)
        self.play_from = 0.0
        self.paused = False
        self.audible_since: float | None = None
        self.first_audio: float | None = None
        self.stale_window = False  # after "interrupted", before the next reply: audio now is stale
        self.stale_seconds = 0.0
        self.flushed: list[dict[str, Any]] = []
        self.reports = 0
        self._resampler = StreamResampler(24000, RATE)  # flushed when the queue runs dry (its 37 ms tail)
        self._resampling: int | None = None  # the epoch of the audio the resampler holds
        self._ticks = 0
        self.session: dict[str, Any] = {}
        self.changed = asyncio.Event()

    def times(self, kind: str, data: Any = None) -> list[float]:
        return [t for t, m in self.log if m["type"] == kind and (data is None or m.get("data") == data)]

    async def read(self) -> None:
        async for raw in self.ws:
            now = time.monotonic()
            message = json.loads(raw)
            self.log.append((now, {k: v for k, v in message.items() if message["type"] != "audio" or k != "data"}))
            self._on(message, now)
            self.changed.set()

    def _on(self, message: dict[str, Any], now: float) -> None:
        kind, data = message["type"], message.get("data")
        if kind == "audio":
            self._resampling = self.epoch
            pcm = self._resampler.process(base64.b64decode(data))
            samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
            if not len(samples):
                return
            if self.stale_window:
                self.stale_seconds += len(samples) / RATE
            if not self.buffer and now >= self.play_from:
                self.play_from = now + LEAD  # the queue had run dry: the jitter buffer fills again
            self.buffer.append((self.epoch, samples))
        elif kind == "status" and data == "interrupted":
            self.flushed.append({"at": now, "epoch": self.epoch, "played": self.played[self.epoch]})
            self.buffer.clear()
            self._resampler.reset()
            self.paused = False
            self.stale_window = True
        elif kind == "status" and data == "generating":
            self.stale_window = False
        elif kind == "playback" and isinstance(data, dict):
            if data.get("action") == "start":
                self.epoch = data.get("epoch")
                self.stale_window = False
            elif self.page and data.get("action") in ("pause", "resume"):
                self.paused = data["action"] == "pause"
        elif kind == "session" and isinstance(data, dict):
            self.session = data

    async def tick(self, now: float) -> np.ndarray:
        """Play the next 20 ms; returns what played (zeros when nothing did)."""
        out = np.zeros(STEP, dtype=np.float32)
        filled = 0
        if not self.paused and now >= self.play_from:
            while filled < STEP and (self.buffer or self._resampler.samples_in):
                if not self.buffer:  # ran dry: what the resampler holds back plays next, then a fresh stream
                    tail = np.frombuffer(self._resampler.flush(), dtype="<i2").astype(np.float32) / 32768
                    if not len(tail):
                        break
                    self.buffer.append((self._resampling, tail))
                epoch, chunk = self.buffer[0]
                take = min(STEP - filled, len(chunk))
                out[filled : filled + take] = chunk[:take]
                filled += take
                self.played[epoch] += take / RATE
                if take == len(chunk):
                    self.buffer.popleft()
                else:
                    self.buffer[0] = (epoch, chunk[take:])
        if filled:
            if self.first_audio is None:
                self.first_audio = now
            if self.audible_since is None:
                self.audible_since = now
        elif not self.buffer and not self.paused:
            self.audible_since = None
        self._ticks += 1
        if self.page and self._ticks % 5 == 0 and filled and self.epoch is not None and "played" in self.features:
            self.reports += 1
            report = {"type": "played", "data": {"epoch": self.epoch, "seconds": round(self.played[self.epoch], 3)}}
            await self.ws.send(json.dumps(report))
        return out

    @property
    def features(self) -> list[str]:
        return list(self.session.get("features") or [])


class Microphone(SimulatedMic):
    """20 ms of microphone audio every 20 ms over the socket, in real time; ``say`` queues the user's speech."""

    def __init__(self, ws: Any, listener: Listener, **options: Any) -> None:
        """``options``: those of :class:`SimulatedMic` (echo, background noise, seed)."""
        super().__init__(listener, **options)
        self.ws = ws
        self.listener = listener

    async def send(self, pcm: bytes) -> None:
        await self.ws.send('{"type":"audio","data":"' + base64.b64encode(pcm).decode() + '"}')
