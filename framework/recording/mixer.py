"""The stereo timeline of a recording: the user on the left, the agent on the right, as the session heard them.

The user's audio is placed where it arrived (a chunk ends at its arrival time; back to back while the client
streams, after a stretch of silence when it paused). The agent's audio is placed where the output's playback
clock put it: a chunk starts when it was sent or when the audio before it ends, whichever is later. An
interruption at time *t* cuts every agent sample scheduled after *t* — what the user did not hear is not on
the recording.

The mixer holds the last few seconds (``margin``) in memory, since a cut can still remove agent audio from
them, and hands older samples to ``sink`` as interleaved 16-bit frames. It runs in the recording's writer thread
(resampling the agent's 24 kHz to the file's rate is CPU work that stays off the event loop).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from voxline.audio.resample import StreamResampler

__all__ = ["StereoMixer"]


class StereoMixer:
    """Two channels on one timeline; ``sink(interleaved_pcm)`` receives finished audio in order."""

    def __init__(self, sink: Callable[[bytes], None], *, rate: int = 16000, margin: float = 2.0) -> None:
        self.rate = rate
        self._sink = sink
        self._margin = round(margin * rate)
        self._base = 0  # the sample index of _left[0] / _right[0]: everything before it has gone to the sink
        self._left = np.zeros(0, dtype=np.int16)
        self._right = np.zeros(0, dtype=np.int16)
        self._user_end = 0
        self._agent_end = 0
        self._agent_rate = 0
        self._resampler: StreamResampler | None = None
        self.written = 0
        """Stereo frames handed to the sink so far."""

    def user(self, arrived: float, pcm: bytes, rate: int) -> None:
        """User audio that arrived at ``arrived`` seconds (session time)."""
        samples = self._to_rate(pcm, rate)
        start = max(self._user_end, round(arrived * self.rate) - len(samples), self._base)
        self._put("left", start, samples)
        self._user_end = start + len(samples)
        self._flush(round(arrived * self.rate) - self._margin)

    def agent(self, sent: float, start_time: float, pcm: bytes, rate: int) -> None:
        """Agent audio sent at ``sent`` whose playback starts at ``start_time`` seconds (session time)."""
        start = max(round(start_time * self.rate), self._base)
        if self._resampler is None or rate != self._agent_rate or start > self._agent_end:
            self._flush_resampler()
            self._agent_rate = rate
            self._resampler = StreamResampler(rate, self.rate) if rate != self.rate else None
            self._agent_end = start
        out = self._resampler.process(pcm) if self._resampler is not None else pcm
        samples = np.frombuffer(out, dtype="<i2")
        self._put("right", self._agent_end, samples)
        self._agent_end += len(samples)
        self._flush(round(sent * self.rate) - self._margin)  # what plays later may still be cut

    def cut(self, at: float) -> None:
        """Nothing of the agent's scheduled after ``at`` seconds was heard: remove it."""
        position = max(round(at * self.rate), self._base)
        if self._resampler is not None:
            self._resampler.reset()
            self._resampler = None
        if self._agent_end > position:
            local = position - self._base
            self._right[local:] = 0
            self._agent_end = position

    def close(self) -> None:
        """Hand everything still held to the sink."""
        self._flush_resampler()
        self._flush(self._base + len(self._left))

    # --- internals ---------------------------------------------------------------------------------------

    def _to_rate(self, pcm: bytes, rate: int) -> np.ndarray:
        if rate == self.rate:
            return np.frombuffer(pcm, dtype="<i2")
        from voxline.audio.resample import resample

        return np.frombuffer(resample(pcm, rate, self.rate), dtype="<i2")

    def _flush_resampler(self) -> None:
        if self._resampler is not None:
            tail = np.frombuffer(self._resampler.flush(), dtype="<i2")
            self._put("right", self._agent_end, tail)
            self._agent_end += len(tail)
            self._resampler = None

    def _put(self, channel: str, start: int, samples: np.ndarray) -> None:
        if not len(samples):
            return
        local = start - self._base
        end = local + len(samples)
        if end > len(self._left):
            grow = end - len(self._left)
            self._left = np.concatenate([self._left, np.zeros(grow, dtype=np.int16)])
            self._right = np.concatenate([self._right, np.zeros(grow, dtype=np.int16)])
        target = self._left if channel == "left" else self._right
        target[local:end] = samples

    def _flush(self, upto: int) -> None:
        count = min(upto - self._base, len(self._left))
        if count <= 0:
            return
        frames = np.empty(2 * count, dtype="<i2")
        frames[0::2] = self._left[:count]
        frames[1::2] = self._right[:count]
        self._left = self._left[count:].copy()
        self._right = self._right[count:].copy()
        self._base += count
        self.written += count
        self._sink(frames.tobytes())
