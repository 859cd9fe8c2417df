"""A process-wide pool of loaded models, so a new session does not pay for loading one again.

Loading pocketsphinx takes about half a second and a Silero VAD about 0.1-0.2 s; both hold per-stream state,
so two sessions can never use one instance at the same time. The pool hands each session its own instance,
loads a new one in a worker thread only when none is idle (the event loop never waits on a model load), and
takes it back when the session ends so the next session starts warm.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["ModelPool"]

T = TypeVar("T")


class ModelPool(Generic[T]):
    """Idle instances made by ``factory``; ``reset`` clears one's stream state when it comes back."""

    def __init__(self, factory: Callable[[], T], *, reset: Callable[[T], None] | None = None, max_idle: int = 4):
        if max_idle < 0:
            raise ValueError(f"ModelPool.max_idle must be >= 0, got {max_idle}")
        self._factory = factory
        self._reset = reset
        self._max_idle = max_idle
        self._idle: list[T] = []
        self._lock = threading.Lock()  # release() may run in a worker thread

    @property
    def idle(self) -> int:
        return len(self._idle)

    async def acquire(self) -> T:
        """An idle instance, or a new one loaded in a thread."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return await asyncio.to_thread(self._factory)

    def release(self, item: T) -> None:
        """Take ``item`` back. Call it only once nothing uses the instance any more (no job in flight)."""
        if self._reset is not None:
            self._reset(item)
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(item)
