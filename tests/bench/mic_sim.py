"""The simulated microphone both turn benchmarks talk through (tests/bench/bench_turns.py, bench_turns_app.py).

It ticks every 20 ms in real time and sends what a laptop microphone would pick up: the user's scripted speech
(queued with :meth:`SimulatedMic.say`), plus what the bot's player played fed back ``echo_db`` quieter and
``echo_delay`` late (no headphones), plus background noise. Where the audio goes (into a pipeline, over a
WebSocket) is the subclass's :meth:`SimulatedMic.send`.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Protocol

import numpy as np

RATE = 16000
TICK = 0.02
STEP = int(RATE * TICK)


class Player(Protocol):
    async def tick(self, now: float) -> np.ndarray:
        """Play the next 20 ms; returns what played (zeros when nothing did)."""
        ...


class SimulatedMic:
    """20 ms of microphone audio every 20 ms, in real time; ``say`` queues the user's speech."""

    def __init__(
        self,
        player: Player,
        *,
        echo_db: float | None = None,
        echo_delay: float = 0.08,
        background_db: float | None = None,
        seed: int = 0,
    ) -> None:
        self.player = player
        self.echo_gain = 0.0 if echo_db is None else 10 ** (echo_db / 20)
        self.background = 0.0 if background_db is None else 10 ** (background_db / 20)
        n = max(1, round(echo_delay / TICK))
        self.delayed: collections.deque[np.ndarray] = collections.deque([np.zeros(STEP, np.float32)] * n, maxlen=n)
        self.rng = np.random.default_rng(seed)
        self.pending: collections.deque[tuple[np.ndarray, asyncio.Future[tuple[float, float]]]] = collections.deque()
        self.current: tuple[np.ndarray, asyncio.Future[tuple[float, float]], float | None] | None = None
        self.running = True

    async def send(self, pcm: bytes) -> None:
        """Deliver 20 ms of 16 kHz mono Int16 ``pcm``."""
        raise NotImplementedError

    def say(self, clip: np.ndarray) -> asyncio.Future[tuple[float, float]]:
        """Queue ``clip``; the future gives (start, end) of its speech in ``time.monotonic()`` once spoken."""
        future: asyncio.Future[tuple[float, float]] = asyncio.get_running_loop().create_future()
        self.pending.append((clip, future))
        return future

    async def run(self) -> None:
        start = time.monotonic()
        n = 0
        while self.running:
            n += 1
            delay = start + n * TICK - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.monotonic()
            frame = self._user(now)
            played = await self.player.tick(now)
            echo = self.delayed[0]
            self.delayed.append(played)
            if self.echo_gain:
                frame += echo * self.echo_gain
            if self.background:
                frame += self.rng.standard_normal(STEP).astype(np.float32) * self.background
            await self.send((np.clip(frame, -1, 1) * 32767).astype("<i2").tobytes())

    def _user(self, now: float) -> np.ndarray:
        frame = np.zeros(STEP, dtype=np.float32)
        filled = 0
        while filled < STEP:
            if self.current is None:
                if not self.pending:
                    break
                clip, future = self.pending.popleft()
                self.current = (clip, future, None)
            clip, future, began = self.current
            take = min(STEP - filled, len(clip))
            frame[filled : filled + take] = clip[:take]
            if began is None:
                began = now - TICK + filled / RATE
            filled += take
            if take == len(clip):
                if not future.done():
                    future.set_result((began, now - TICK + filled / RATE))
                self.current = None
            else:
                self.current = (clip[take:], future, began)
        return frame
