"""Turn-taking engines: models that implement the protocols of :mod:`voxline.turns`.

* :class:`SmartTurnModel` — smart-turn v3.2, an offline audio end-of-turn model (ONNX, from the
  ``pipecat-ai`` wheel installed without dependencies: ``python -m voxline.processors.turns.install``).

Imported lazily: importing this package loads neither onnxruntime nor the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from voxline.lazy import lazy_exports

__all__ = ["SmartTurnModel"]

if TYPE_CHECKING:
    from voxline.processors.turns.smart_turn import SmartTurnModel

__getattr__ = lazy_exports(__name__, {"SmartTurnModel": "voxline.processors.turns.smart_turn"})
