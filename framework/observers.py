"""Observers watch every hop a frame makes, for metrics, tracing and tests.

An observer is called synchronously from :meth:`Processor.push`, so it must be cheap and must not await. When
no observer is attached the cost is one truthiness test of an empty tuple per hop.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from voxline.frames import Frame
    from voxline.processor import Direction, Processor

__all__ = ["HopRecorder", "Observer"]


@runtime_checkable
class Observer(Protocol):
    """Called for every frame one processor hands to the next."""

    def on_push(self, source: Processor, destination: Any, frame: Frame, direction: Direction) -> None: ...


class HopRecorder:
    """Records ``(source name, destination name, frame, direction, monotonic ns)`` for every hop."""

    def __init__(self) -> None:
        self.hops: list[tuple[str, str, Frame, Direction, int]] = []

    def on_push(self, source: Processor, destination: Any, frame: Frame, direction: Direction) -> None:
        self.hops.append((source.name, getattr(destination, "name", "?"), frame, direction, time.monotonic_ns()))
