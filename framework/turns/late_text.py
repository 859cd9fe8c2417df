"""Late text: the STT's final for a stretch the engine stopped waiting for.

The engine waits for a stopped stretch's text until ``final_timeout``, then goes on with what it has (its
interim) and remembers the stretch as :class:`Owed` for ``LATE_TEXT_SECS``. A slow STT (whisper on a busy
machine: 1-2.5 s) sends that final while later stretches wait for theirs; STT text carries no stretch, so
the engine tells whose it is by its words: it belongs to the stretch given up on when it shares more words
with the interim that stood in for it than with the next stretch's text. If that interim is still held for
the turn in progress, the final's better words replace it; else the late text is dropped (the turn was
answered already, or it was echo or a candidate: answering it would answer the user twice).
"""

from __future__ import annotations

import collections
from typing import NamedTuple

from voxline.turns.stretch import Stretch
from voxline.turns.words import tokens

__all__ = ["LATE_TEXT_SECS", "LateText", "Owed"]

LATE_TEXT_SECS = 5.0
"""How long text for a stretch the engine stopped waiting for is still recognised as that stretch's (a long
stretch of echo takes an offline STT a while to finalise)."""


class Owed(NamedTuple):
    """A stretch the engine stopped waiting for, whose text may still come until ``until``."""

    kind: str  # ECHO also for a turn's stretch whose interim went into the turn (its late text is not news)
    until: float
    interim: str  # the text that stood in for it
    turn: int  # the number of the turn it belonged to


class LateText:
    """Mixed into :class:`~voxline.turns.engine.TurnEngine`, which sets the state."""

    _given_up: collections.deque[Owed]
    _stopped: collections.deque[Stretch]
    _held: list[str]
    _turns: int

    def _owed(self, now: float) -> Owed | None:
        """The oldest stretch given up on whose text may still come (it is then settled)."""
        while self._given_up and self._given_up[0].until < now:
            self._given_up.popleft()
        return self._given_up.popleft() if self._given_up else None

    def _owed_first(self, text: str, now: float, *, peek: bool = False) -> Owed | None:
        """The stretch given up on, when ``text`` that comes while later stretches wait for theirs is its late
        final rather than the next one's (a slow STT: whisper under load): it shares more words with the interim
        that stood in for it. Else None (the text is the next stretch's, as the STT's order says). ``peek``: do
        not settle it yet."""
        while self._given_up and self._given_up[0].until < now:
            self._given_up.popleft()
        if not self._given_up or not self._stopped:
            return None
        words = set(tokens(text))
        given_up, waiting = set(tokens(self._given_up[0].interim)), set(tokens(self._stopped[0].text))
        if len(words & given_up) > len(words & waiting):
            return self._given_up[0] if peek else self._given_up.popleft()
        return None

    def _late_final(self, owed: Owed, text: str) -> None:
        """The late final of a stretch given up on: if its interim is still held for the turn in progress, the
        final's better words take its place; else (answered already, echo, a candidate) it is dropped."""
        if owed.turn == self._turns and owed.interim and text and owed.interim in self._held:
            self._held[self._held.index(owed.interim)] = text
