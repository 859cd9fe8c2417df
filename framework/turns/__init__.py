"""Turn-taking: when the user's turn starts and ends, when their speech interrupts the bot, and what to ignore.

* :class:`TurnEngine` — the pure decision core (signals in, :mod:`~voxline.turns.decisions` out) on an
  injected :class:`Clock`; strategies in :mod:`voxline.turns.strategies`, knobs in :class:`TurnParams`.
* :class:`TurnProcessor` — the engine as a pipeline stage (after the STT; its ``tap`` before the STT).
* :class:`EchoDetector` — tells the bot's own voice in the microphone from the user's.
* :class:`EndOfTurnModel`, :class:`Finalizer` — what an end-of-turn model and a finalising STT provide.

See docs/turn-taking.md. Names are imported lazily.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "AudioHistory",
    "Clock",
    "EchoDetector",
    "EndOfTurnModel",
    "Finalizer",
    "MonotonicClock",
    "TurnAudioTap",
    "TurnEngine",
    "TurnParams",
    "TurnProcessor",
    "VirtualClock",
]

_EXPORTS = {
    "AudioHistory": "voxline.turns.audio",
    "TurnAudioTap": "voxline.turns.audio",
    "Clock": "voxline.turns.clock",
    "MonotonicClock": "voxline.turns.clock",
    "VirtualClock": "voxline.turns.clock",
    "EchoDetector": "voxline.turns.echo",
    "TurnEngine": "voxline.turns.engine",
    "EndOfTurnModel": "voxline.turns.model",
    "Finalizer": "voxline.turns.model",
    "TurnParams": "voxline.turns.params",
    "TurnProcessor": "voxline.turns.processor",
}

if TYPE_CHECKING:
    from voxline.turns.audio import AudioHistory, TurnAudioTap
    from voxline.turns.clock import Clock, MonotonicClock, VirtualClock
    from voxline.turns.echo import EchoDetector
    from voxline.turns.engine import TurnEngine
    from voxline.turns.model import EndOfTurnModel, Finalizer
    from voxline.turns.params import TurnParams
    from voxline.turns.processor import TurnProcessor


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'voxline.turns' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
