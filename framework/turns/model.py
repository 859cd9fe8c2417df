"""The two optional capabilities the turn processor uses, as protocols (engines implement them elsewhere).

* :class:`EndOfTurnModel` — an audio end-of-turn model (smart-turn v3 lives in
  ``voxline.processors.turns``). It does its own work off the event loop and is shared by every session of
  a process: ``analyze`` must be safe to call from several sessions at once.
* :class:`Finalizer` — an STT that can be told "the user stopped, give me your final now" (Deepgram's
  ``Finalize``: ``DeepgramSTT.finalize()``). Without one, the STT finalises on its own (pocketsphinx does at
  the VAD's stop).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["EndOfTurnModel", "Finalizer"]


@runtime_checkable
class EndOfTurnModel(Protocol):
    """Judges from the user's audio whether their turn is complete."""

    sample_rate: int
    """The rate ``analyze`` expects (16 kHz for smart-turn)."""
    max_seconds: float
    """The most audio it looks at (the end of the turn is what matters; older audio is cut off)."""

    async def analyze(self, audio: np.ndarray) -> float:
        """Probability (0-1) that the turn is complete, from float32 mono ``audio`` ending at the silence."""
        ...


@runtime_checkable
class Finalizer(Protocol):
    """An STT stage that can flush its final result on request."""

    async def finalize(self) -> bool:
        """Ask for the final now; False when it cannot (not connected)."""
        ...
