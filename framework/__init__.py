"""voxline: a real-time voice AI framework.

Frames travel through a chain of async processors; see ``docs/architecture.md``. The names below are imported
lazily so that ``import voxline`` stays fast: only what you touch is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from voxline.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "Direction": "voxline.processor",
    "DOWNSTREAM": "voxline.processor",
    "UPSTREAM": "voxline.processor",
    "Processor": "voxline.processor",
    "QueuedProcessor": "voxline.queued",
    "Pipeline": "voxline.pipeline",
    "PipelineTask": "voxline.task",
    "Observer": "voxline.observers",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:
    from voxline.observers import Observer
    from voxline.pipeline import Pipeline
    from voxline.processor import DOWNSTREAM, UPSTREAM, Direction, Processor
    from voxline.queued import QueuedProcessor
    from voxline.task import PipelineTask


__getattr__ = lazy_exports(__name__, _EXPORTS)
