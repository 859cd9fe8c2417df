"""The input's audio clock: seconds of audio received, and when each stretch of it arrived.

Speech-to-text stages report the end of the user's speech on the *audio* clock (word timings,
``UserStoppedSpeakingFrame.audio_time``); latency is measured on the *wall* clock from the moment the server had
that audio. :class:`AudioClock` maps one onto the other. The transport's input keeps one (voice-to-voice starts at
the user's last word) and every :class:`~voxline.stt.STTProcessor` keeps one (``stt.latency``): one class, one rule
for "when did the audio at time *t* arrive".
"""

from __future__ import annotations

from collections import deque
from time import monotonic_ns

__all__ = ["AudioClock"]


class AudioClock:
    """Counts samples received at ``sample_rate`` and remembers when the last ``horizon`` stretches arrived."""

    __slots__ = ("_marks", "_samples", "sample_rate")

    def __init__(self, sample_rate: int, *, horizon: int = 1024) -> None:
        self.sample_rate = sample_rate
        self._samples = 0
        self._marks: deque[tuple[int, int]] = deque(maxlen=horizon)

    @property
    def seconds(self) -> float:
        """Audio received so far, in seconds: the audio time of the newest sample."""
        return self._samples / self.sample_rate

    def note(self, num_samples: int, now_ns: int | None = None) -> None:
        """``num_samples`` more samples (at :attr:`sample_rate`) arrived now (or at monotonic ``now_ns``)."""
        samples = self._samples = self._samples + num_samples
        self._marks.append((samples, monotonic_ns() if now_ns is None else now_ns))

    def note_seconds(self, seconds: float, now_ns: int | None = None) -> None:
        """Like :meth:`note`, for audio counted in seconds (a frame at another sample rate)."""
        self.note(round(seconds * self.sample_rate), now_ns)

    def wall_ns(self, audio_time: float) -> int | None:
        """When the audio at ``audio_time`` arrived (monotonic ns), or None if it is not (or no longer) known."""
        target = audio_time * self.sample_rate
        found: int | None = None
        for samples, ns in reversed(self._marks):
            if samples < target:
                break
            found = ns
        return found
