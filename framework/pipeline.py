"""Pipelines: processors in a chain. A pipeline is itself a processor, so pipelines nest.

Nesting costs nothing at run time: when a task links a pipeline, it flattens the nested pipelines and connects
their leaf processors to each other directly, so a frame makes one hop per real stage however deep the
nesting.
"""

from __future__ import annotations

from collections.abc import Iterable

from voxline.processor import Processor

__all__ = ["Pipeline"]


class Pipeline(Processor):
    """An ordered chain of processors (or pipelines)."""

    def __init__(self, processors: Iterable[Processor], *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.processors: list[Processor] = list(processors)
        if not self.processors:
            raise ValueError("Pipeline.processors must not be empty")
        for p in self.processors:
            if not isinstance(p, Processor):
                raise TypeError(f"Pipeline.processors must hold Processor instances, got {type(p).__name__}")

    def _leaves(self) -> list[Processor]:
        return [leaf for p in self.processors for leaf in p._leaves()]
