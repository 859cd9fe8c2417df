"""The other end of the turn benchmark: a client that plays the bot and a microphone that hears it.

:class:`Client` is the tail stage of the benchmark's pipeline, standing in for the output transport and the
browser of the seed protocol: it plays the bot's audio in real time, flushes it on an interrupt (the
``status: interrupted`` of the protocol), never sends ``interrupt`` and ignores ``playback`` pause/resume (it
counts them). It tells the stages upstream when the bot is audible, as the output transport does
(``Bot{Started,Stopped}SpeakingFrame``), reports what had played on an interrupt (``BotHeardTextFrame``), and
reports playback to the echo detector, as the page's ``played`` messages will.

:class:`Mic` is the microphone, ticking every 20 ms in real time: the user's scripted speech, plus the bot's
own played audio fed back ``echo_db`` quieter and 80 ms late, plus background noise.
"""

from __future__ import annotations

import collections
import time
from typing import Any

import numpy as np
from mic_sim import RATE, STEP, TICK, SimulatedMic
from voxline.audio.resample import resample
from voxline.frames import (
    AudioFrame,
    BotHeardTextFrame,
    BotPlaybackFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    InterruptFrame,
    LLMResponseEndFrame,
    LLMResponseStartFrame,
    TTSAudioFrame,
)
from voxline.processor import UPSTREAM, Direction, Processor
from voxline.task import PipelineTask
from voxline.turns import EchoDetector


class Client(Processor):
    """Plays the bot; see the module docstring. Times are ``time.monotonic()``."""

    def __init__(self, *, echo: EchoDetector | None = None, tts: Any = None) -> None:
        super().__init__(name="client")
        self.echo = echo
        self.tts = tts
        self.buffer: collections.deque[tuple[int, np.ndarray]] = collections.deque()
        self.audible = False
        self.audible_since: float | None = None
        self.first_audio: float | None = None
        self.response_open = False
        self.fence = 0
        self.spoken_epoch: int | None = None
        self.played: dict[int, float] = collections.defaultdict(float)
        self.events: list[tuple[float, str, Any]] = []
        self.stale_seconds = 0.0
        self.play_clock: float | None = None
        self.heard: list[dict[str, Any]] = []

    def times(self, kind: str) -> list[float]:
        return [t for t, k, _ in self.events if k == kind]

    async def process(self, frame: Frame, direction: Direction) -> None:
        if direction is UPSTREAM:
            await self.push(frame, direction)
            return
        now = time.monotonic()
        if isinstance(frame, TTSAudioFrame):
            epoch = frame.epoch or 0
            if epoch < self.fence:
                self.stale_seconds += frame.duration  # would reach a client after "interrupted"
                return
            pcm = resample(frame.pcm, frame.sample_rate, RATE)
            self.buffer.append((epoch, np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768))
            return
        if isinstance(frame, InterruptFrame):
            self.events.append((now, "interrupt", frame.reason))
            self.fence = frame.epoch or self.fence
            self.buffer.clear()
            await self._heard(frame)
            if self.echo is not None:
                self.echo.stopped(now)
            await self._stopped(now)
        elif isinstance(frame, LLMResponseStartFrame):
            self.events.append((now, "generating", frame.epoch))
            self.response_open = True
        elif isinstance(frame, LLMResponseEndFrame):
            self.response_open = False
        elif isinstance(frame, BotPlaybackFrame):
            self.events.append((now, frame.action, frame.reason))
        await self.push(frame, direction)

    async def tick(self, now: float) -> np.ndarray:
        """Play the next 20 ms; returns what played (zeros when nothing did)."""
        out = np.zeros(STEP, dtype=np.float32)
        filled = 0
        while filled < STEP and self.buffer:
            epoch, chunk = self.buffer[0]
            take = min(STEP - filled, len(chunk))
            out[filled : filled + take] = chunk[:take]
            filled += take
            self.played[epoch] += take / RATE
            self.spoken_epoch = epoch
            if take == len(chunk):
                self.buffer.popleft()
            else:
                self.buffer[0] = (epoch, chunk[take:])
        if filled:
            if self.echo is not None:
                # A client plays one contiguous stream: report it on its own timeline, started when playback
                # (re)started, not at each tick's jittery wall time.
                if self.play_clock is None:
                    self.play_clock = now - TICK
                pcm = (np.clip(out, -1, 1) * 32767).astype("<i2").tobytes()
                self.echo.played(pcm, RATE, self.play_clock)
                self.play_clock += TICK
            if self.first_audio is None:
                self.first_audio = now
            if not self.audible:
                self.audible, self.audible_since = True, now
                self.events.append((now, "bot_started", None))
                await self.push(BotStartedSpeakingFrame(), UPSTREAM)
        else:
            self.play_clock = None
            if self.audible and not self.response_open:
                await self._stopped(now)
        return out

    async def _stopped(self, now: float) -> None:
        if self.audible:
            self.audible, self.audible_since = False, None
            self.events.append((now, "bot_stopped", None))
            await self.push(BotStoppedSpeakingFrame(), UPSTREAM)

    async def _heard(self, frame: InterruptFrame) -> None:
        """What the user heard of the reply this interrupt cut: the truth and what the context will keep."""
        epoch = self.spoken_epoch
        if epoch is None or epoch >= (frame.epoch or 0) or not self.audible:
            return
        played = self.played[epoch]
        timeline = getattr(self.tts, "_timelines", {}).get(epoch) if self.tts is not None else None
        truth = None
        if timeline is not None:  # the words that played: whole pieces, then a share of the piece playing
            start, words = 0.0, 0
            for end, text in timeline.ends:
                n = len(text.split())
                if end <= played:
                    words += n
                elif end > start:
                    words += round(n * (played - start) / (end - start))
                    break
                start = end
            truth = words
        self.heard.append({"epoch": epoch, "played": played, "truth_words": truth})
        await self.push(BotHeardTextFrame(epoch=epoch, played_seconds=played), UPSTREAM)


class Mic(SimulatedMic):
    """The microphone: 20 ms frames in real time into ``task``. ``say`` queues the user's speech."""

    def __init__(self, task: PipelineTask, client: Client, **options: Any) -> None:
        """``options``: those of :class:`SimulatedMic` (echo, background noise, seed)."""
        super().__init__(client, **options)
        self.task = task
        self.client = client

    async def send(self, pcm: bytes) -> None:
        await self.task.queue_frame(AudioFrame(pcm=pcm, sample_rate=RATE))
