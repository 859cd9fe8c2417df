"""The provider table shared by the STT and TTS conformance suites: one entry a provider, one line each.

An entry is a factory of an async context manager yielding an :class:`UnderTest`: how to build a fresh stage of
that provider (behind whatever it needs: a fake server, a VAD), and — optionally — how to make its next piece of
work fail. Providers that need nothing around them use :func:`plain`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import attrs
import pytest
from voxline.frames import Frame
from voxline.processor import Processor

__all__ = ["UnderTest", "entry", "plain"]


@attrs.frozen
class UnderTest:
    """A provider under test.

    ``make`` builds a fresh stage (a pipeline is fine: a local STT behind its VAD). ``fault``, when the provider
    can be made to fail from outside, arms one failure and returns the frames (possibly none) to feed before the
    next piece of work so that it fails; None skips the error contract with a reason.
    """

    make: Callable[[], Processor]
    fault: Callable[[], Sequence[Frame]] | None = None


Setup = Callable[[], contextlib.AbstractAsyncContextManager[UnderTest]]


def plain(make: Callable[[], Processor], fault: Callable[[], Sequence[Frame]] | None = None) -> Setup:
    """A provider that needs nothing running around it (a local engine)."""

    @contextlib.asynccontextmanager
    async def setup() -> AsyncIterator[UnderTest]:
        yield UnderTest(make, fault)

    return setup


def entry(name: str, setup: Setup, *marks: Any) -> Any:
    """One row of a conformance table: ``pytest.param`` with the provider's name as the test id."""
    return pytest.param(
        setup, id=name, marks=[m for group in marks for m in (group if isinstance(group, list) else [group])]
    )
