"""The input's audio clock: seconds of audio received, and when each stretch of it arrived.

Speech-to-text stages report the end of the user's speech on the *audio* clock (word timings,
``UserStoppedSpeakingFrame.audio_time``); latency is measured on the *wall* clock from the moment the server had
that audio. :class:`AudioClock` maps one onto the other. The transport's input keeps one (voice-to-voice starts at
the user's last word) and every :class:`~voxline.stt.STTProcessor` keeps one (``stt.latency``): one class, one rule
for "when did the audio at time *t* arrive".
"""

from __future__ import annotations

from array import array
from time import monotonic_ns

__all__ = ["AudioClock"]


class AudioClock:
    """Counts samples received at ``sample_rate`` and remembers when the last ``horizon`` stretches arrived.

    The marks live in two preallocated integer rings (16 bytes a mark: 64 KB for an STT stage's 4096), written
    in place: noting a frame allocates nothing. A deque of ``(samples, ns)`` tuples held ~125 bytes a mark (0.5 MB
    a session) and made two objects per 20 ms frame for the garbage collector to track.
    """

    __slots__ = ("_count", "_horizon", "_ns", "_samples", "_samples_at", "sample_rate")

    def __init__(self, sample_rate: int, *, horizon: int = 1024) -> None:
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        self.sample_rate = sample_rate
        self._samples = 0
        self._horizon = horizon
        self._count = 0  # marks noted so far; the newest is at (count - 1) % horizon
        self._samples_at = array("q", bytes(8 * horizon))
        self._ns = array("q", bytes(8 * horizon))

    @property
    def seconds(self) -> float:
        """Audio received so far, in seconds: the audio time of the newest sample."""
        return self._samples / self.sample_rate

    def note(self, num_samples: int, now_ns: int | None = None) -> None:
        """``num_samples`` more samples (at :attr:`sample_rate`) arrived now (or at monotonic ``now_ns``)."""
        samples = self._samples = self._samples + num_samples
        count = self._count
        i = count % self._horizon
        self._samples_at[i] = samples
        self._ns[i] = monotonic_ns() if now_ns is None else now_ns
        self._count = count + 1

    def note_seconds(self, seconds: float, now_ns: int | None = None) -> None:
        """Like :meth:`note`, for audio counted in seconds (a frame at another sample rate)."""
        self.note(round(seconds * self.sample_rate), now_ns)

    def wall_ns(self, audio_time: float) -> int | None:
        """When the audio at ``audio_time`` arrived (monotonic ns), or None if it is not (or no longer) known."""
        target = audio_time * self.sample_rate
        horizon, samples_at = self._horizon, self._samples_at
        found: int | None = None
        for k in range(self._count - 1, max(-1, self._count - 1 - horizon), -1):
            i = k % horizon
            if samples_at[i] < target:
                break
            found = self._ns[i]
        return found
