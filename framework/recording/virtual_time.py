"""Virtual time: an event loop whose clock jumps to the next timer whenever nothing is ready to run.

A replay must not sleep for real: a ten-second session should take a fraction of a second, and give the same
timings on a busy CI machine as on an idle laptop. :class:`VirtualClockLoop` is a selector event loop whose
:meth:`~VirtualClockLoop.time` is a number it moves itself: when no callback is ready, it sets the clock to the
earliest pending timer (``asyncio.sleep``, ``call_later``, ``asyncio.timeout``) and runs it at once. Work that is
ready always runs before time moves, so everything that happens "at the same time" happens in the same order as
on a real clock, only without the waiting.

The framework reads time in two ways: the loop's clock (timers, timeouts) and ``time.monotonic()`` /
``monotonic_ns()`` / ``perf_counter()`` (latency figures, the output's playback clock, the audio clock, the turn
engine's :class:`~voxline.turns.clock.MonotonicClock`). :func:`run_virtual` runs a coroutine on a fresh
virtual loop and, for its duration, points those three functions at the same virtual clock — so every figure a
pipeline measures is measured in virtual seconds. They are the process's functions: run nothing else (no other
thread that needs real time) while a virtual run is in progress.

Work handed to a thread with ``run_in_executor`` (``asyncio.to_thread``; the smart-turn model's inference, a model
loaded on first use) takes no virtual time: while any is pending the clock stands still and the loop waits for it
for real, so a replay's timings do not depend on how fast the machine ran the model. Not for work that waits on
real sockets or on threads the loop did not start: a loop with nothing ready jumps over the time they take. A
replay has neither (its providers and its client are recordings).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import selectors
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Executor
from typing import Any, TypeVar

__all__ = ["VirtualClockLoop", "run_virtual", "virtual_clock_functions"]

T = TypeVar("T")


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """A selector event loop on virtual time; see the module docstring. ``start`` is its first reading."""

    def __init__(self, start: float = 1000.0) -> None:
        super().__init__(selectors.DefaultSelector())
        self._virtual_now = start
        self.jumps = 0
        """How many times the clock jumped to the next timer (a measure of the run's idle stretches)."""
        self._in_threads = 0

    def time(self) -> float:
        return self._virtual_now

    def run_in_executor(  # type: ignore[override]  # the base's signature, less its TypeVarTuple
        self, executor: Executor | None, func: Callable[..., T], *args: Any
    ) -> asyncio.Future[T]:
        """The base's, counted: the clock stands still until the work is done (see the module docstring)."""
        future = super().run_in_executor(executor, func, *args)
        self._in_threads += 1
        future.add_done_callback(self._thread_done)
        return future

    def _thread_done(self, _: asyncio.Future[Any]) -> None:
        self._in_threads -= 1

    def _run_once(self) -> None:
        if not self._ready and not self._stopping and not self._in_threads:  # type: ignore[attr-defined]
            scheduled: list[asyncio.TimerHandle] = self._scheduled  # type: ignore[attr-defined]
            while scheduled and scheduled[0]._cancelled:
                self._timer_cancelled_count -= 1  # type: ignore[attr-defined]
                heapq.heappop(scheduled)._scheduled = False  # type: ignore[attr-defined]
            if scheduled and scheduled[0].when() > self._virtual_now:
                self._virtual_now = scheduled[0].when()
                self.jumps += 1
        super()._run_once()  # type: ignore[misc]


_ACTIVE: list[VirtualClockLoop] = []


@contextlib.contextmanager
def virtual_clock_functions(loop: VirtualClockLoop) -> Iterator[None]:
    """``time.monotonic``, ``monotonic_ns`` and ``perf_counter`` read ``loop``'s clock inside the block."""
    saved = time.monotonic, time.monotonic_ns, time.perf_counter
    _ACTIVE.append(loop)

    def monotonic() -> float:
        return loop._virtual_now

    def monotonic_ns() -> int:
        return round(loop._virtual_now * 1e9)

    time.monotonic, time.monotonic_ns, time.perf_counter = monotonic, monotonic_ns, monotonic
    try:
        yield
    finally:
        time.monotonic, time.monotonic_ns, time.perf_counter = saved
        _ACTIVE.remove(loop)


def run_virtual(coro: Coroutine[Any, Any, T]) -> tuple[T, float]:
    """Run ``coro`` to completion on a new :class:`VirtualClockLoop`; return its result and the virtual seconds
    it took. Not from inside a running event loop (like :func:`asyncio.run`)."""
    if _ACTIVE:
        coro.close()
        raise RuntimeError("a virtual-time run is already in progress")
    loop = VirtualClockLoop()
    with virtual_clock_functions(loop), asyncio.Runner(loop_factory=lambda: loop) as runner:
        start = loop.time()
        result = runner.run(coro)
        return result, loop.time() - start
