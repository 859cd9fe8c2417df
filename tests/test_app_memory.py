"""The memory upkeep of the served app: garbage of ended sessions collected a few at a time, native memory
trimmed, what is loaded after startup frozen — and none of it in tests and embedders that did not ask."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Iterator

import pytest
from voxline.apps.voice_agent.memory import MemoryUpkeep, malloc_trim
from voxline.testing import until


@pytest.fixture
def gc_state() -> Iterator[None]:
    before = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


async def test_disabled_upkeep_changes_nothing(gc_state: None) -> None:
    upkeep = MemoryUpkeep(enabled=False)
    frozen = gc.get_freeze_count()
    upkeep.settled()
    for _ in range(5):
        upkeep.session_ended()
    await asyncio.sleep(0.3)
    await upkeep.settle()
    assert (upkeep.trims, upkeep.collections) == (0, 0)
    assert gc.get_freeze_count() == frozen
    await upkeep.aclose()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc_trim is glibc's")
def test_malloc_trim_is_available_on_linux() -> None:
    assert malloc_trim() is True


async def test_ended_sessions_are_collected_and_trimmed_at_most_once_per_interval(gc_state: None) -> None:
    # Waits for what must happen (a thread's trim, a timer's collection) instead of sleeping a guess, and a trim
    # interval no loaded machine can overrun, so "the next trim waits" cannot be passed by noise.
    upkeep = MemoryUpkeep(enabled=True, interval=30.0)
    for _ in range(20):  # a burst of sessions ending
        upkeep.session_ended()
    await until(lambda: upkeep.collections == 1 and upkeep.trims == 1, timeout=30, what="one collection and trim")
    for _ in range(20):
        upkeep.session_ended()
    # Collections have their own, far shorter interval (0.25 s, or 4 % of the time): the next one comes...
    await until(lambda: upkeep.collections == 2, timeout=30, what="the second collection")
    assert upkeep.trims == 1  # ... while the next trim waits for its interval
    await upkeep.settle()  # ... or runs now when asked
    assert upkeep.trims == 2 and upkeep.collections == 2
    await upkeep.aclose()


async def test_what_is_loaded_after_startup_is_frozen_once_no_session_runs(gc_state: None) -> None:
    live = [1]
    upkeep = MemoryUpkeep(enabled=True, live=lambda: live[0])
    frozen = gc.get_freeze_count()
    upkeep.session_ended()  # the first session ended, but another one runs: no freeze yet
    assert gc.get_freeze_count() == frozen
    live[0] = 0
    upkeep.session_ended()  # what the first sessions built lazily lives on: frozen now
    after_first = gc.get_freeze_count()
    assert after_first > frozen
    live[0] = 1
    loaded = [object() for _ in range(10)], {"models": [[] for _ in range(10)]}
    upkeep.settled()  # the local models have loaded, while a session runs
    assert gc.get_freeze_count() == after_first  # its cycles must stay collectable
    live[0] = 0
    upkeep.session_ended()
    assert gc.get_freeze_count() > after_first
    upkeep.session_ended()
    assert loaded
    await upkeep.aclose()
