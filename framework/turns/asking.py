"""Whether the end-of-turn model is worth asking: only when its verdict could still move the endpointing delay.

The model costs about 55-65 ms of CPU a call (smart-turn: docs/performance.md "Capacity"), and on a streaming STT
that punctuates and writes fillers (Deepgram) the words often settle the turn alone: "a table for" waits the
longest whatever the model says; "What is the capital of France?" is committed at the minimum delay unless the
model is close to sure it is unfinished. :func:`model_can_move` asks the endpointing strategies themselves:
the delay their votes give without a verdict, against the delays with the two most extreme verdicts. The
strategies are pure and a verdict's vote grows with its probability (as :class:`~voxline.turns.strategies.
ModelVerdict`'s does), so every other verdict's delay lies between those two.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
from voxline.turns.params import TurnParams
from voxline.turns.strategies import EndpointingStrategy, TurnEvidence, endpointing_delay

__all__ = ["delay_for", "model_can_move"]

UNFINISHED, FINISHED = 0.0, 1.0
"""The two most extreme verdicts (strategies clip them: ``ModelVerdict`` to ±``clip`` log-odds)."""


def delay_for(endpointing: Sequence[EndpointingStrategy], evidence: TurnEvidence, params: TurnParams) -> float:
    """The silence the engine would wait after the end of speech on ``evidence``."""
    votes = [v for v in (s.vote(evidence) for s in endpointing) if v is not None]
    return endpointing_delay(sum(votes) if votes else None, params)


def model_can_move(
    endpointing: Sequence[EndpointingStrategy], evidence: TurnEvidence, params: TurnParams, within: float
) -> bool:
    """True when some verdict of the model would move the endpointing delay on ``evidence`` (its text, no
    verdict yet) by more than ``within`` seconds: the words leave the turn in doubt, so the model is asked."""
    without = delay_for(endpointing, attrs.evolve(evidence, model_probability=None), params)
    for p in (UNFINISHED, FINISHED):
        if abs(delay_for(endpointing, attrs.evolve(evidence, model_probability=p), params) - without) > within + 1e-9:
            return True
    return False
