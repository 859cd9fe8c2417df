"""Waiting for state that has no event to await: poll a condition, with a deadline and a message.

Fake servers and stages expose counters (connections opened, requests seen, sessions alive) but no events for
a test to await. Hand-written ``while not cond(): await asyncio.sleep(...)`` loops each pick their own interval,
and forget the deadline — a test that should fail then hangs until the suite's timeout. :func:`until` is that
loop once, with a deadline that fails with a message saying what never happened.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["until"]


async def until(
    condition: Callable[[], object], *, timeout: float = 5.0, interval: float = 0.005, what: str = ""
) -> None:
    """Return once ``condition()`` is truthy, checking at once and then every ``interval`` seconds.

    Raises ``TimeoutError`` (naming ``what``, or the condition) if it is still false after ``timeout`` seconds.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() >= deadline:
            name = what or getattr(condition, "__qualname__", repr(condition))
            raise TimeoutError(f"still not true after {timeout:g} s: {name}")
        await asyncio.sleep(interval)
