"""Keeping a long-running server's memory flat and its garbage collections short.

Three things make a voice server that runs for days grow or stall, and none is a leak of Python objects:

* **Native memory is not given back.** Sessions load and free native buffers — model state, SSL contexts,
  decoders made and dropped when more sessions run at once than the model pool keeps — from several threads,
  and glibc's allocator keeps the freed pages of its per-thread arenas. RSS climbs with every burst of sessions
  while the Python heap stays flat. :class:`MemoryUpkeep` calls ``malloc_trim(0)`` in a worker thread once
  sessions have ended (at most every 5 s), which returns those pages to the system.
* **Garbage that is expensive to free piles up, then goes in one long pause.** A session's stages, tasks and
  provider clients form reference cycles, so only the garbage collector frees them. With the large young
  generation :func:`tune_garbage_collector` sets, young collections freed dozens of ended sessions at once —
  measured with the fake cloud providers: ~18,000 objects, 150-200 ms of event loop, most of it freeing the
  five SSL contexts each session's provider clients build (~0.8 ms each) — and what had aged into the oldest
  generation waited for a rare full collection (RSS ~900 MiB mid-run for ~115 MiB of live data).
  :meth:`MemoryUpkeep.session_ended` runs a full collection soon after sessions end: at most every 0.25 s and
  at most 4 % of the time (a slow collection pushes the next one further out), so each pause frees a few
  sessions' worth, wherever their objects have aged to.
* **Full collections scan everything that is long-lived.** :func:`tune_garbage_collector` freezes what exists
  at startup (the app imports the provider SDKs before that, instead of in the first session); what the first
  session builds lazily and what is loaded later (the local models) is frozen by :class:`MemoryUpkeep` once no
  session runs (a frozen session's reference cycles could never be collected). A full collection then scans
  little more than the live sessions (~1,100 objects each with the cloud providers, ~480 offline).

``docs/performance.md`` ("Soak") has the measurements behind all three.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["MemoryUpkeep", "malloc_trim", "tune_garbage_collector"]

logger = logging.getLogger("voxline.apps.voice_agent.memory")

TRIM_INTERVAL = 5.0
"""Seconds between two ``malloc_trim`` calls at most."""
COLLECT_INTERVAL = 0.25
"""Seconds between two collections after sessions end, at least; more when a collection is slow (below)."""
COLLECT_SHARE = 0.04
"""At most this share of the time goes to those collections: after one that took 20 ms, the next waits 0.5 s."""


def tune_garbage_collector() -> None:
    """Fewer, cheaper collections for a server that makes many short-lived frames.

    Every audio message makes a handful of objects; with hundreds of sessions the default thresholds run a
    young collection hundreds of times a second and, now and then, a full one over every object the process
    ever loaded — a pause of tens of milliseconds, measured as event-loop lag. Freezing what exists at startup
    (modules, the app) takes it out of every later collection, and a larger young generation collects less
    often. Measured with 300 sessions (tests/bench/bench_app.py): loop-lag max 58-86 ms -> 25 ms, CPU -15 %.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


def _load_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Any = libc.malloc_trim  # glibc only (musl has none)
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


_TRIM = _load_trim()


def malloc_trim() -> bool:
    """Give the allocator's free pages back to the system (glibc); False where there is no ``malloc_trim``."""
    if _TRIM is None:
        return False
    _TRIM(0)  # ctypes releases the GIL: in a worker thread this does not hold up the event loop
    return True


class MemoryUpkeep:
    """After sessions end: collects their garbage and trims native memory; freezes what the process loads
    once, after startup.

    ``enabled=False`` (tests, embedders) makes every method a no-op: all of it changes the whole process.
    """

    def __init__(self, *, enabled: bool, interval: float = TRIM_INTERVAL, live: Callable[[], int] = lambda: 0):
        self.enabled = enabled and _TRIM is not None
        self.freeze_enabled = enabled
        self.collect_enabled = enabled
        self.interval = interval
        self.live = live
        """How many sessions are running (a freeze waits until there are none)."""
        self.trims = 0
        self.collections = 0
        self._last = 0.0
        self._last_collect = 0.0
        self._collect_took = 0.0
        self._collect_pending: asyncio.TimerHandle | None = None
        self._pending: asyncio.TimerHandle | None = None
        self._running: asyncio.Task[None] | None = None
        self._freeze_wanted = enabled
        """Freeze once no session runs: after the first session (what it built lazily — SDK caches, validators
        — lives as long as the process) and after :meth:`settled`."""

    def session_ended(self) -> None:
        """A session has been torn down: collect its garbage and trim soon (each at most once per its interval),
        freeze if one is due."""
        if self._freeze_wanted and self.live() == 0:
            self._freeze()
        loop = asyncio.get_running_loop()
        if self.collect_enabled and self._collect_pending is None:
            wait = max(COLLECT_INTERVAL, self._collect_took / COLLECT_SHARE)
            delay = max(0.0, self._last_collect + wait - time.monotonic())
            self._collect_pending = loop.call_later(delay, self._collect)
        if not self.enabled or self._pending is not None:
            return
        delay = max(0.0, self._last + self.interval - time.monotonic())
        self._pending = loop.call_later(delay, self._start_trim)

    def _collect(self) -> None:
        """A full collection now: the ended sessions' reference cycles (and the provider clients and SSL
        contexts they hold, ~1 ms each to free) go a few sessions at a time, wherever their objects have aged
        to. It scans only what is not frozen: the live sessions and what they made."""
        self._collect_pending = None
        start = time.monotonic()
        gc.collect()
        self._last_collect = time.monotonic()
        self._collect_took = self._last_collect - start
        self.collections += 1

    def settled(self) -> None:
        """Something long-lived was just loaded (the local models): freeze it, now or after the live sessions."""
        if not self.freeze_enabled:
            return
        self._freeze_wanted = True
        if self.live() == 0:
            self._freeze()

    def _freeze(self) -> None:
        self._freeze_wanted = False
        gc.collect()
        gc.freeze()
        logger.debug("froze %d long-lived objects", gc.get_freeze_count())

    def _start_trim(self) -> None:
        self._pending = None
        if self._running is not None and not self._running.done():
            return
        self._last = time.monotonic()
        self._running = asyncio.get_running_loop().create_task(self._trim(), name="malloc-trim")

    async def _trim(self) -> None:
        try:
            await asyncio.to_thread(malloc_trim)
            self.trims += 1
        except Exception:  # never let upkeep disturb the server
            logger.exception("malloc_trim failed")

    async def settle(self) -> None:
        """Run a trim that is due now instead of later, and wait for it (benchmarks measure after it)."""
        if self._pending is not None:
            self._pending.cancel()
            self._start_trim()
        if self._running is not None:
            await asyncio.gather(self._running, return_exceptions=True)

    async def aclose(self) -> None:
        if self._collect_pending is not None:
            self._collect_pending.cancel()
            self._collect_pending = None
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        if self._running is not None:
            await asyncio.gather(self._running, return_exceptions=True)
            self._running = None
