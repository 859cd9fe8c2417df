"""Per-connection input limits: how many messages a client may send, and how fast its audio may arrive.

Both are token buckets. A message that finds the bucket empty is refused — answered with an ``error`` and
dropped, never queued — and the session goes on; the bucket refills with time, so a client that slows down is
served again at once.

* **Messages**: ``messages_per_second`` on average, bursts up to one second's worth. A message counts one, plus
  one per 64 KiB, so big messages cannot buy unbounded parsing work.
* **Audio**: a microphone delivers one second of audio per second. Audio arriving faster than ``audio_speed``
  times real time (bursts up to ``audio_burst_seconds`` of audio, e.g. what a stalled network delivers at once)
  is refused chunk by chunk: the STT stage behind it never has to take a flood.

The clock is injectable, so tests (and the fuzz test) can drive the limits without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["InputLimiter", "TokenBucket"]

Clock = Callable[[], float]

MESSAGE_COST_BYTES = 65536
"""A message costs one token, plus one per this many bytes."""


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` held; full at the start."""

    __slots__ = ("burst", "clock", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, clock: Clock = time.monotonic) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError(f"TokenBucket needs a positive rate and burst, got {rate} and {burst}")
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = burst
        self.stamp = clock()

    def take(self, amount: float) -> bool:
        """Take ``amount`` tokens if there are that many; False (and nothing taken) otherwise.

        A full bucket pays for anything, going into debt: one item bigger than the burst (a long audio chunk)
        passes when nothing came before it, and the next ones wait until the debt is paid off.
        """
        now = self.clock()
        tokens = self.tokens + (now - self.stamp) * self.rate
        self.tokens = tokens if tokens < self.burst else self.burst
        self.stamp = now
        if self.tokens >= amount or self.tokens >= self.burst:
            self.tokens -= amount
            return True
        return False


class InputLimiter:
    """The message-rate and audio-rate limits of one connection. ``None`` turns a limit off."""

    __slots__ = ("_audio", "_messages", "audio_speed", "messages_per_second", "refused_audio", "refused_messages")

    def __init__(
        self,
        *,
        messages_per_second: float | None,
        audio_speed: float | None,
        audio_burst_seconds: float = 2.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.messages_per_second = messages_per_second
        self.audio_speed = audio_speed
        self._messages = TokenBucket(messages_per_second, messages_per_second, clock) if messages_per_second else None
        self._audio = TokenBucket(audio_speed, audio_burst_seconds, clock) if audio_speed else None
        self.refused_messages = 0
        self.refused_audio = 0

    def message(self, size: int) -> str | None:
        """Account one inbound message of ``size`` bytes; the error to send if it must be refused."""
        bucket = self._messages
        if bucket is None or bucket.take(1 + size // MESSAGE_COST_BYTES):
            return None
        self.refused_messages += 1
        return f"too many messages: the limit is {self.messages_per_second:g} per second; this one was dropped"

    def audio(self, seconds: float) -> str | None:
        """Account ``seconds`` of inbound audio; the error to send if it must be refused."""
        bucket = self._audio
        if bucket is None or bucket.take(seconds):
            return None
        self.refused_audio += 1
        return (
            f"audio is arriving faster than {self.audio_speed:g}x real time: "
            f"{seconds * 1000:.0f} ms of audio dropped (send audio as it is recorded)"
        )
