"""When the engine asks the end-of-turn model (``TurnParams.model_doubt``): only when the words leave the turn in
doubt, and then after they are in. Every signal scripted on a virtual clock (the driver of test_turns_engine)."""

from __future__ import annotations

import itertools

import attrs
import pytest
from test_turns_engine import Script, say
from voxline.turns import TurnParams
from voxline.turns.asking import model_can_move
from voxline.turns.decisions import AnalyzeTurn
from voxline.turns.strategies import ModelVerdict, STTEndOfSpeech, TranscriptCompleteness, TurnEvidence

STRICT = TurnParams(model_doubt=0.0)


def turn(params: TurnParams, text: str, verdict: float | None, *, final_after: float = 0.1) -> Script:
    """The user says ``text`` from 1.0 to 2.5 s; each model request is answered with ``verdict`` 50 ms later."""
    s = Script(params, uses_model=True)
    e = s.engine
    say(s, 1.0, 2.5, text, final_after=None)
    s.at(2.7 + final_after)
    if text:
        s.do(e.transcript(text, is_final=True)).do(e.user_text(text))
    answered: set[int] = set()
    for step in range(1, 120):
        s.at(2.7 + final_after + step * 0.05)
        for request in s.of(AnalyzeTurn):
            if verdict is not None and request.request not in answered and request.at <= s.clock.now() - 0.05 + 1e-9:
                answered.add(request.request)
                s.do(e.end_of_turn_verdict(verdict, request.request))
    return s


def test_an_unfinished_ending_is_not_asked_about_and_waits_the_longest() -> None:
    s = turn(STRICT, "i would like a table for", verdict=0.99)
    assert s.of(AnalyzeTurn) == []
    (ended,) = s.ended()
    assert ended.reason == "incomplete" and ended.delay == pytest.approx(STRICT.max_endpointing_delay)


def test_a_doubtful_turn_is_asked_after_its_words_about_the_audio_up_to_the_vad_stop() -> None:
    s = turn(STRICT, "what is the weather like today?", verdict=0.01)
    (request,) = s.of(AnalyzeTurn)
    assert request.at == pytest.approx(102.8)  # when the final came, not at the VAD's stop (102.7)
    assert request.until == pytest.approx(102.7) and request.speech_end == pytest.approx(102.5)
    (ended,) = s.ended()
    assert ended.reason == "unsure"  # the model's doubt is heard, as when it is asked at once


def test_without_model_doubt_the_model_is_asked_at_the_vad_stop() -> None:
    s = turn(TurnParams(), "i would like a table for", verdict=0.99)
    (request,) = s.of(AnalyzeTurn)
    assert request.at == pytest.approx(102.7) and request.until is None


def test_a_tolerance_lets_a_punctuated_question_go_without_the_model() -> None:
    params = TurnParams(model_doubt=0.6)
    s = turn(params, "what is the capital of france?", verdict=0.01)
    assert s.of(AnalyzeTurn) == []
    (ended,) = s.ended()
    assert ended.reason == "complete" and ended.at == pytest.approx(102.5 + params.min_endpointing_delay)
    assert turn(params, "i need a taxi to the thumb", verdict=0.01).of(AnalyzeTurn) != []  # no punctuation


def test_the_text_not_in_by_final_timeout_is_judged_on_its_interim() -> None:
    s = turn(STRICT, "what is the weather like today", verdict=0.99, final_after=2.0)
    (request,) = s.of(AnalyzeTurn)
    assert request.at == pytest.approx(102.7 + STRICT.final_timeout)


def test_the_user_going_on_drops_the_question() -> None:
    s = Script(STRICT, uses_model=True)
    e = s.engine
    say(s, 1.0, 2.0, "turn on the", final_after=0.05)
    say(s, 2.4, 3.4, "kitchen lights", final_after=0.05)
    s.at(8.0)
    (request,) = s.of(AnalyzeTurn)  # only the second silence was in doubt: "turn on the" waits the longest anyway
    assert request.until == pytest.approx(103.6)
    s.do(e.end_of_turn_verdict(0.9, request.request))
    (ended,) = s.ended()
    assert ended.text == "turn on the kitchen lights"


TEXTS = [
    "i would like a table for",
    "what is the capital of france?",
    "what is the capital of france",
    "i need a taxi to the thumb",
    "so,",
    "yes",
    "book it for seven um",
    "Thanks.",
    "",
]
VERDICTS = [0.0, 0.01, 0.2, 0.5, 0.8, 0.99, 1.0]


@pytest.mark.parametrize(("text", "verdict"), list(itertools.product(TEXTS, VERDICTS)))
def test_with_no_tolerance_every_turn_ends_as_when_the_model_is_always_asked(text: str, verdict: float) -> None:
    """The same verdict on every turn; a turn may end later by the model's own answer time (50 ms here) when the
    model is asked only once the words are in (here: no words, so it is asked at ``final_timeout``), never sooner."""
    always, strict = turn(TurnParams(), text, verdict), turn(STRICT, text, verdict)
    (a,), (b,) = always.ended(), strict.ended()
    assert (b.text, b.reason) == (a.text, a.reason)
    assert a.delay - 1e-6 <= b.delay <= a.delay + 0.05 + 1e-6
    assert len(strict.of(AnalyzeTurn)) <= len(always.of(AnalyzeTurn))


@pytest.mark.parametrize(("text", "verdict"), list(itertools.product(TEXTS, VERDICTS)))
def test_a_tolerance_bounds_how_far_the_commit_moves(text: str, verdict: float) -> None:
    within = 0.6
    a = turn(TurnParams(), text, verdict).ended()[0]
    b = turn(TurnParams(model_doubt=within), text, verdict).ended()[0]
    assert b.text == a.text and abs(b.delay - a.delay) <= within + 0.05 + 1e-6


def test_model_can_move_reads_the_strategies_bounds() -> None:
    strategies = [TranscriptCompleteness(), STTEndOfSpeech(), ModelVerdict()]
    p = TurnParams()

    def evidence(text: str, eos: bool = False) -> TurnEvidence:
        return TurnEvidence(text=text, final=True, model_probability=None, stt_end_of_speech=eos, language="en")

    assert not model_can_move(strategies, evidence("a table for"), p, 0.0)  # -4 ± 2.4: the longest either way
    assert model_can_move(strategies, evidence("what is it?"), p, 0.0)  # 2.5 - 2.4 = 0.1: 0.94 s, not 0.35 s
    assert not model_can_move(strategies, evidence("what is it?"), p, 0.6)
    assert model_can_move(strategies, evidence("what is it?", eos=True), p, 0.25)  # 3.0 - 2.4: 0.61 s
    assert not model_can_move(strategies, evidence("what is it?", eos=True), p, 0.27)
    assert model_can_move(strategies, evidence("turn on the lights"), p, 0.6)
    heavier = attrs.evolve(strategies[2], weight=0.2)  # a model weighed lightly rarely moves anything
    assert not model_can_move([strategies[0], heavier], evidence("turn on the lights"), p, 0.6)
    assert not model_can_move(strategies[:2], evidence("turn on the lights"), p, 0.0)  # no model, no doubt
