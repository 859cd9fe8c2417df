"""The user's recent audio, kept where the turn processor can read it (the STT consumes the audio frames).

:class:`AudioHistory` is a ring of the last seconds of 16 kHz mono audio with the clock time of its newest
sample, so the end-of-turn model can read "the turn so far" and the echo detector "the last 0.3 s".
:class:`TurnAudioTap` is the stage that fills it: put it after the VAD and before the STT; it forwards
everything unchanged, and notes the ``UserTextFrame``\\ s it sees (typed input: the STT's come after it).
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING

import numpy as np
from voxline.audio.resample import StreamResampler
from voxline.frames import AudioFrame, Frame, TTSAudioFrame, UserTextFrame
from voxline.processor import DOWNSTREAM, Direction, Processor

if TYPE_CHECKING:
    from voxline.turns.clock import Clock

__all__ = ["AudioHistory", "TurnAudioTap"]

RATE = 16000


class AudioHistory:
    """The last ``seconds`` of mono audio at ``sample_rate``, on a clock (the time its last sample arrived).

    A ring of the microphone's own 16-bit samples: appending a 20 ms frame copies its bytes (one ``memcpy``, no
    conversion: the tap does it 50 times a second per session); reading, which the model and the echo detector do
    a few times a turn, converts to float32. Float input is stored at the same 16-bit precision.
    """

    def __init__(self, clock: Clock, *, seconds: float = 10.0, sample_rate: int = RATE) -> None:
        self.clock = clock
        self.sample_rate = sample_rate
        self._size = max(1, int(seconds * sample_rate))
        self._ring = bytearray(2 * self._size)  # Int16 little-endian samples
        self._pos = 0  # where the next sample goes
        self._filled = 0
        self.end_time: float | None = None
        self.samples = 0
        """Samples received since the stream began: the input's audio clock (as the VAD counts it)."""

    def append(self, pcm: bytes | np.ndarray, at: float | None = None) -> None:
        """Add Int16 PCM (or float32 samples) whose last sample arrived ``at`` (default: now)."""
        if isinstance(pcm, np.ndarray):
            scaled = np.clip(np.round(pcm.astype(np.float64) * 32768.0), -32768, 32767)
            pcm = scaled.astype("<i2").tobytes()
        n = len(pcm) // 2
        self.samples += n
        self.end_time = self.clock.now() if at is None else at
        size = self._size
        if n > size:
            pcm, n = pcm[-2 * size :], size
        pos = self._pos
        first = min(n, size - pos)
        ring = self._ring
        if first == n:
            ring[2 * pos : 2 * (pos + n)] = pcm
        else:
            view = memoryview(pcm)
            ring[2 * pos :] = view[: 2 * first]
            ring[: 2 * (n - first)] = view[2 * first : 2 * n]
        self._pos = (pos + n) % size
        self._filled = min(size, self._filled + n)

    def _tail(self, n: int) -> np.ndarray:
        """The newest ``n`` samples kept (fewer if fewer are kept), oldest first, as float32."""
        n = min(n, self._filled)
        ring = np.frombuffer(self._ring, dtype="<i2")
        start = self._pos - n
        samples = ring[start : self._pos] if start >= 0 else np.concatenate((ring[start:], ring[: self._pos]))
        return samples.astype(np.float32) * np.float32(1.0 / 32768.0)

    def between(self, start: float, end: float | None = None) -> np.ndarray:
        """The samples from clock time ``start`` to ``end`` (default: the newest), as far as they are kept."""
        if self.end_time is None:
            return np.zeros(0, dtype=np.float32)
        end = self.end_time if end is None else min(end, self.end_time)
        skip = round((self.end_time - end) * self.sample_rate)
        want = round((end - start) * self.sample_rate)
        if want <= 0 or skip >= self._filled:
            return np.zeros(0, dtype=np.float32)
        tail = self._tail(skip + want)
        return tail[: len(tail) - skip] if skip else tail

    def last(self, seconds: float) -> np.ndarray:
        """The newest ``seconds`` of audio."""
        return self._tail(int(seconds * self.sample_rate))

    def clock_time(self, audio_time: float) -> float | None:
        """The clock time of ``audio_time`` (seconds of audio since the stream began), assuming real time."""
        if self.end_time is None:
            return None
        return self.end_time - (self.samples / self.sample_rate - audio_time)


class TurnAudioTap(Processor):
    """Copies the user's audio into an :class:`AudioHistory` on its way to the STT; forwards every frame."""

    def __init__(self, history: AudioHistory, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.history = history
        self.typed: collections.deque[int] = collections.deque(maxlen=64)
        """Ids of the ``UserTextFrame``\\ s that passed here, before the STT: typed input, not speech."""
        self._resamplers: dict[int, StreamResampler] = {}

    async def process(self, frame: Frame, direction: Direction) -> None:
        if direction is DOWNSTREAM:
            if isinstance(frame, AudioFrame) and not isinstance(frame, TTSAudioFrame):
                self.history.append(self._mono16k(frame))
            elif isinstance(frame, UserTextFrame):
                self.typed.append(frame.id)
        await self.push(frame, direction)

    def _mono16k(self, frame: AudioFrame) -> bytes | np.ndarray:
        if frame.channels == 1 and frame.sample_rate == RATE:
            return frame.pcm
        samples = np.frombuffer(frame.pcm, dtype="<i2").reshape(-1, frame.channels).mean(axis=1)
        pcm: bytes = samples.astype("<i2").tobytes()
        if frame.sample_rate != RATE:
            resampler = self._resamplers.get(frame.sample_rate)
            if resampler is None:
                resampler = self._resamplers[frame.sample_rate] = StreamResampler(frame.sample_rate, RATE)
            pcm = resampler.process(pcm)
        return pcm
