"""The clocks the turn engine reads: the process's monotonic clock, or a virtual one that tests move by hand.

The engine never sleeps and never reads the time itself: every signal and every :meth:`TurnEngine.poll` reads
``clock.now()``, and the engine says when it next needs to be polled (:attr:`TurnEngine.deadline`). So the same
decision code runs under an event loop (the processor arms a timer for the deadline) and in a test that
scripts a conversation on a virtual clock in microseconds.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "MonotonicClock", "VirtualClock"]


class Clock(Protocol):
    """Seconds on a monotonic scale (only differences matter)."""

    def now(self) -> float: ...


class MonotonicClock:
    """``time.monotonic()``: the clock asyncio's loop uses on every platform voxline runs on."""

    def now(self) -> float:
        return time.monotonic()


class VirtualClock:
    """A clock that moves only when told to: ``advance(0.2)`` or ``set(12.5)``."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError(f"VirtualClock cannot go back ({seconds} s)")
        self._now += seconds
        return self._now

    def set(self, when: float) -> float:
        if when < self._now:
            raise ValueError(f"VirtualClock cannot go back from {self._now} to {when}")
        self._now = when
        return self._now
