"""The end of the user's turn: the endpointing strategies' votes on what is known, the silence to wait, the commit.

The part of :class:`~voxline.turns.engine.TurnEngine` that runs once a ``turn`` stretch has stopped: it waits
for the STT's text (until ``final_timeout``) and the model's verdict (until ``model_timeout``; with
``model_doubt`` the model is asked here, once the text is in, and only if its verdict could still move the
delay: :func:`~voxline.turns.asking.model_can_move`), lets the endpointing strategies vote, turns their sum
into the silence to wait after the end of speech (:func:`~voxline.turns.strategies.endpointing_delay`) and
commits the held text as one :class:`~voxline.turns.decisions.TurnEnded` when it has passed — unless the user
speaks again first (the engine's ``_continue_turn`` drops the pending commit).
"""

from __future__ import annotations

import collections

from voxline.turns.asking import model_can_move
from voxline.turns.decisions import AnalyzeTurn, Decision, TurnEnded
from voxline.turns.late_text import LATE_TEXT_SECS, Owed
from voxline.turns.params import TurnParams
from voxline.turns.strategies import EndpointingStrategy, TurnEvidence, endpointing_delay
from voxline.turns.stretch import ECHO, TURN, Stretch

__all__ = ["EndOfTurn"]


class EndOfTurn:
    """Mixed into :class:`~voxline.turns.engine.TurnEngine`, which sets the state."""

    params: TurnParams
    endpointing: list[EndpointingStrategy]
    uses_model: bool
    in_turn: bool
    _stopped: collections.deque[Stretch]
    _held: list[str]
    _turns: int
    _speech_end: float | None
    _deciding: bool
    _decide_by: float | None
    _model_by: float | None
    _given_up: collections.deque[Owed]
    _commit_at: float | None
    _score: float | None
    _model_p: float | None
    _stt_eos: bool
    _turn_start: float
    _request: int
    _model_deferred: bool
    _silent_since: float
    _end_confidence: float | None
    _end_interim: str | None

    def _evaluate(self, now: float, out: list[Decision], reason: str | None = None) -> None:
        if not self._deciding or self._speech_end is None:
            return
        waiting_text = any(s.kind == TURN for s in self._stopped)
        waiting_model = self.uses_model and self._model_p is None
        if self._decide_by is not None and now >= self._decide_by:
            self._decide_by = None  # the STT's text is waited for no longer
        if self._model_by is not None and now >= self._model_by:
            self._model_by = None  # nor the model's verdict
        if waiting_text and self._decide_by is not None:
            return
        evidence = TurnEvidence(
            text=" ".join([*self._held, *(s.text for s in self._stopped if s.kind == TURN)]).strip(),
            final=not waiting_text,
            model_probability=self._model_p,
            stt_end_of_speech=self._stt_eos,
            language=self.params.language,
            last_word_confidence=None if waiting_text else self._end_confidence,
            interim=None if waiting_text else self._end_interim,
        )
        if waiting_model and self._model_deferred:  # ``model_doubt``: the words are in; do they decide?
            doubt = self.params.model_doubt or 0.0
            if model_can_move(self.endpointing, evidence, self.params, doubt):  # (waited for until model_by)
                self._model_deferred = False
                out.append(AnalyzeTurn(now, self._turn_start, self._speech_end, self._request, self._silent_since))
            else:
                waiting_model = False  # they do (if later text leaves it in doubt, it is asked then)
        if waiting_model and self._model_by is not None:
            return
        self._decide_by = self._model_by = None  # decided on what is here; late text or a late verdict decide again
        votes = [v for v in (s.vote(evidence) for s in self.endpointing) if v is not None]
        self._score = sum(votes) if votes else None
        delay = endpointing_delay(self._score, self.params)
        self._commit_at = self._speech_end + delay
        if now >= self._commit_at - 1e-9:
            self._commit(now, out, reason or self._reason(delay))

    def _reason(self, delay: float) -> str:
        p = self.params
        if delay <= p.min_endpointing_delay:
            return "complete"
        if delay >= p.max_endpointing_delay:
            return "incomplete"
        return "unsure"

    def _commit(self, now: float, out: list[Decision], reason: str) -> None:
        for stretch in [s for s in self._stopped if s.kind == TURN]:
            self._stopped.remove(stretch)  # its text is owed: when it comes, it is not news (answered from the interim)
            self._given_up.append(Owed(ECHO if stretch.text else TURN, now + LATE_TEXT_SECS, stretch.text, self._turns))
            if stretch.text:
                self._held.append(stretch.text)
        text = " ".join(self._held).strip()
        speech_end = self._speech_end if self._speech_end is not None else now
        out.append(TurnEnded(now, text, speech_end, now - speech_end, reason if text else "no words", self._score))
        self._held.clear()
        self._turns += 1
        self.in_turn = False
        self._deciding, self._decide_by, self._model_by, self._commit_at = False, None, None, None
        self._model_p, self._stt_eos, self._model_deferred = None, False, False
        self._end_confidence, self._end_interim = None, None
