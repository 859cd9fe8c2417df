"""Turn-taking engines: models that implement the protocols of :mod:`voxline.turns`.

* :class:`SmartTurnModel` — smart-turn v3.2, an offline audio end-of-turn model (ONNX, from the
  ``pipecat-ai`` wheel installed without dependencies: ``python -m voxline.processors.turns.install``).

Imported lazily: importing this package loads neither onnxruntime nor the model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["SmartTurnModel"]

if TYPE_CHECKING:
    from voxline.processors.turns.smart_turn import SmartTurnModel


def __getattr__(name: str) -> Any:
    if name != "SmartTurnModel":
        raise AttributeError(f"module 'voxline.processors.turns' has no attribute {name!r}")
    value = importlib.import_module("voxline.processors.turns.smart_turn").SmartTurnModel
    globals()[name] = value
    return value
