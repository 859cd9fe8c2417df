"""What a test run of a pipeline produced: every frame that left it at each end, and its errors.

One value type for every way of running a pipeline in a test (:func:`~voxline.testing.run_processor`,
:func:`~voxline.testing.drive`, :func:`~voxline.testing.started`), so assertions read the same whichever
helper fed the frames.
"""

from __future__ import annotations

from typing import TypeVar

import attrs
from voxline.frames import ErrorFrame, Frame, MetricsFrame, StartFrame
from voxline.task import PipelineTask

__all__ = ["RunResult"]

F = TypeVar("F", bound=Frame)


@attrs.define
class RunResult:
    """What left the pipeline: ``downstream`` at its end, ``upstream`` at its head (errors, requests)."""

    downstream: list[Frame]
    upstream: list[Frame]
    errors: list[ErrorFrame]
    task: PipelineTask

    def downstream_of(self, kind: type[F]) -> list[F]:
        return [f for f in self.downstream if isinstance(f, kind)]

    def upstream_of(self, kind: type[F]) -> list[F]:
        return [f for f in self.upstream if isinstance(f, kind)]

    @property
    def metrics(self) -> list[MetricsFrame]:
        return self.downstream_of(MetricsFrame) + self.upstream_of(MetricsFrame)

    def text(self) -> str:
        """The concatenated ``text`` of every downstream frame that has one (handy for LLM/aggregator tests)."""
        return "".join(getattr(f, "text", "") for f in self.downstream if not isinstance(f, StartFrame))
