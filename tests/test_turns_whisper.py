"""The end of a turn read from whisper's transcript, scripted on a virtual clock.

whisper's language model completes what it hears cut off: the user says "Can you remind me to call, uh, …" and
pauses; whisper drops the "uh" and writes "Can you remind me to call us?", a finished question, while the
end-of-turn model hears the turn unfinished. What gives the made-up ending away is whisper's own doubt about its
last word ("us" 0.23). The rules here are what the served app's whisper path (docs/turn-taking.md, "In the
voice agent") relies on; the transcripts and probabilities are whisper tiny.en's on the turn corpus.
"""

from __future__ import annotations

import pytest
from starlette.config import Config
from test_turns_engine import Script
from voxline.apps.voice_agent.config import Settings
from voxline.apps.voice_agent.turn_wiring import WHISPER_DOUBTFUL_WORD, _whisper_endpointing, with_turn_engine
from voxline.frames import TranscriptFrame, Word
from voxline.processors.local.whisper import InterimsFrom, WhisperSTT, _words
from voxline.processors.local.whisper_engine import Transcript, TranscriptWord
from voxline.turns import TurnParams, TurnProcessor
from voxline.turns.decisions import AnalyzeTurn, TurnEnded
from voxline.turns.strategies import (
    EndpointingStrategy,
    ModelVerdict,
    STTEndOfSpeech,
    TranscriptCompleteness,
    TurnEvidence,
)
from voxline.turns.words import Completeness

WHISPER = TurnParams(full_stop_counts=False, final_timeout=2.5)


def _evidence(text: str, last: float | None) -> TurnEvidence:
    return TurnEvidence(text, True, None, True, "en", last_word_confidence=last)


@pytest.mark.parametrize(
    ("text", "last", "vote"),
    [
        ("Can you remind me to call us?", 0.23, None),  # a made-up ending says nothing
        ("Can you remind me to call us?", 0.9, Completeness.PUNCTUATED),
        ("I need a taxi to the pump.", 0.24, None),
        ("I need a taxi to the pump.", None, Completeness.CONTENT_WORD),  # no word confidences: as before
        ("Tell me a story about a dragon and...", 0.3, Completeness.INCOMPLETE),  # unfinished still counts
        ("I need a taxi to the, um...", 0.2, Completeness.INCOMPLETE),
    ],
)
def test_a_doubtful_last_word_does_not_read_as_finished(text: str, last: float | None, vote: float | None) -> None:
    words = TranscriptCompleteness(full_stop=False, doubtful_below=0.5)
    assert words.vote(_evidence(text, last)) == vote
    # Off by default: every word counts (the cloud path, whose STT vouches for each word).
    assert TranscriptCompleteness(full_stop=False).vote(_evidence(text, last)) == text_vote(text)


def text_vote(text: str) -> float:
    vote = TranscriptCompleteness(full_stop=False).vote(_evidence(text, None))
    assert vote is not None
    return vote


def _paused_turn(endpointing: list[EndpointingStrategy], first: str, last_word: float, p: float) -> list[TurnEnded]:
    """The user says ``first`` (whisper's final: its last word at ``last_word``), pauses 1.2 s, then "my
    sister tomorrow"; the model scores the first part ``p``. whisper's final comes 0.5 s after the VAD's stop."""
    s = Script(WHISPER, endpointing=endpointing, uses_model=True)
    e = s.engine
    s.at(1.2).do(e.user_started_speaking())  # speech from 1.0 to 2.8
    s.at(1.6).do(e.transcript("can you remind me"))
    s.at(3.0).do(e.user_stopped_speaking())
    (request,) = s.of(AnalyzeTurn)
    s.at(3.1).do(e.end_of_turn_verdict(p, request.request))
    words = first.split()
    confidences = [(w, 0.95) for w in words[:-1]] + [(words[-1], last_word)]
    s.at(3.5).do(e.transcript(first, is_final=True, speech_final=True, confidences=confidences))
    s.do(e.user_text(first))
    s.at(4.2).do(e.user_started_speaking())  # the user goes on at 4.0: a 1.2 s pause
    s.at(5.2).do(e.user_stopped_speaking())
    later = [r for r in s.of(AnalyzeTurn) if r.request != request.request]
    s.at(5.3).do(e.end_of_turn_verdict(0.9, later[-1].request))
    s.at(5.5).do(e.transcript("My sister tomorrow.", is_final=True, speech_final=True, confidences=[("x", 0.9)]))
    s.do(e.user_text("My sister tomorrow."))
    s.at(9.0)
    return s.ended()


def test_whispers_made_up_question_does_not_cut_the_user_off() -> None:
    """ "call, uh, …" as whisper wrote it on slt ("us" 0.23), smart-turn sure it is unfinished (0.008)."""
    (ended,) = _paused_turn(_whisper_endpointing(WHISPER, object()), "Can you remind me to call us?", 0.23, 0.008)
    assert ended.text == "Can you remind me to call us? My sister tomorrow."
    # The same turn with the strategies the app used before: the "?" outvoted the model, the user was cut off.
    before: list[EndpointingStrategy] = [TranscriptCompleteness(full_stop=False), STTEndOfSpeech(), ModelVerdict()]
    first, _ = _paused_turn(before, "Can you remind me to call us?", 0.23, 0.008)
    assert first.text == "Can you remind me to call us?"


def test_a_sure_question_still_ends_when_whisper_is_sure_of_it() -> None:
    """A finished question whisper is sure of ends the turn even against a doubtful model (flite slt's "What is
    the weather like today?": 0.06); the user's next words are a new turn."""
    (first, _) = _paused_turn(_whisper_endpointing(WHISPER, object()), "What is the weather like today?", 0.98, 0.06)
    assert first.text == "What is the weather like today?"
    assert first.delay < 1.0


def test_no_end_of_speech_vote_with_whisper() -> None:
    """whisper marks every final as the end of speech: that restates the VAD's stop and is no evidence (its +0.5
    committed awb's "I need a taxi to the pump." — "pump" doubtful, smart-turn 0.40 — inside a 0.8 s pause)."""
    with_model = _whisper_endpointing(WHISPER, object())
    assert not any(isinstance(s, STTEndOfSpeech) for s in with_model)
    assert any(isinstance(s, ModelVerdict) for s in with_model)
    (words,) = _whisper_endpointing(WHISPER, None)
    assert isinstance(words, TranscriptCompleteness)
    assert words.doubtful_below == WHISPER_DOUBTFUL_WORD and words.full_stop is False


def test_the_doubt_is_about_the_last_stretch_only() -> None:
    """A doubtful word ends the first stretch; the user goes on and whisper is sure of the second's last word:
    the turn ends at the minimum delay on the second's question mark."""
    s = Script(WHISPER, endpointing=_whisper_endpointing(WHISPER, None))
    e = s.engine
    s.at(1.2).do(e.user_started_speaking())
    s.at(2.2).do(e.user_stopped_speaking())
    s.at(2.4).do(e.transcript("I need a taxi to the pump.", is_final=True, confidences=[("pump.", 0.24)]))
    s.do(e.user_text("I need a taxi to the pump."))
    s.at(2.9).do(e.user_started_speaking())  # a 0.7 s pause: the doubtful ending had no vote, 1.0 s is waited
    s.at(4.0).do(e.user_stopped_speaking())
    s.at(4.2).do(e.transcript("Is that far?", is_final=True, confidences=[("Is", 0.9), ("that", 0.9), ("far?", 0.9)]))
    s.do(e.user_text("Is that far?"))
    s.at(8.0)
    (ended,) = s.ended()
    assert ended.text == "I need a taxi to the pump. Is that far?"
    assert ended.reason == "complete"


def test_whispers_words_carry_the_lower_of_word_and_transcript_confidence() -> None:
    """A word is as doubtful as the transcript it came in: on a short "uh-huh" whisper writes "Thank you." at
    0.4, each word likely on its own; its words must not interrupt the bot (``min_word_confidence``)."""
    result = Transcript(
        "Thank you.", 0.4, (TranscriptWord("Thank", 0.1, 0.3, 0.9), TranscriptWord("you.", 0.3, 0.5, 0.95))
    )
    assert _words(result, 10.0) == (
        Word(text="Thank", start=10.1, end=10.3, confidence=0.4),
        Word(text="you.", start=10.3, end=10.5, confidence=0.4),
    )
    made_up = Transcript(
        "Call us?", 0.81, (TranscriptWord("Call", 0.0, 0.3, 0.98), TranscriptWord("us?", 0.3, 0.5, 0.23))
    )
    assert [w.confidence for w in _words(made_up, 0.0)] == [0.81, 0.23]
    frame = TranscriptFrame(text="Call us?", is_final=True, confidence=0.81, words=_words(made_up, 0.0))
    assert frame.words[-1].confidence == 0.23


def _completed_by_whisper(endpointing: list[EndpointingStrategy], interim: str) -> list[TurnEnded]:
    """ "Can you send the report to … my manager please?", a 0.7 s pause: pocketsphinx's last interim is
    ``interim``, whisper's final "Can you send the reporter?" (sure of it), smart-turn agrees it is finished (0.97,
    as on flite slt: synthetic voices say the fragment with a falling tone)."""
    s = Script(WHISPER, endpointing=endpointing, uses_model=True)
    e = s.engine
    s.at(1.2).do(e.user_started_speaking())  # speech from 1.0 to 2.6
    s.at(2.0).do(e.transcript("can you send"))
    s.at(2.6).do(e.transcript(interim))
    s.at(2.8).do(e.user_stopped_speaking())
    (request,) = s.of(AnalyzeTurn)
    s.at(2.9).do(e.end_of_turn_verdict(0.97, request.request))
    final = "Can you send the reporter?"
    s.at(3.3).do(e.transcript(final, is_final=True, speech_final=True, confidences=[("reporter?", 0.85)]))
    s.do(e.user_text(final))
    s.at(3.5).do(e.user_started_speaking())  # the user goes on at 3.3
    s.at(4.6).do(e.user_stopped_speaking())
    later = [r for r in s.of(AnalyzeTurn) if r.request != request.request]
    s.at(4.7).do(e.end_of_turn_verdict(0.95, later[-1].request))
    s.at(5.0).do(e.transcript("My manager please.", is_final=True, confidences=[("please.", 0.9)]))
    s.do(e.user_text("My manager please."))
    s.at(9.0)
    return s.ended()


def test_pocketsphinx_hearing_an_unfinished_ending_outweighs_whispers_completion() -> None:
    (ended,) = _completed_by_whisper(_whisper_endpointing(WHISPER, object()), "can you send the report to")
    assert ended.text == "Can you send the reporter? My manager please."
    # The same turn without the second opinion (the rules before): cut off after "reporter?".
    first, _ = _completed_by_whisper(
        _whisper_endpointing(WHISPER, object(), second_opinion=False), "can you send the report to"
    )
    assert first.text == "Can you send the reporter?"
    # A finished-sounding interim changes nothing: whisper's words and the model decide (cut off here too).
    first, _ = _completed_by_whisper(_whisper_endpointing(WHISPER, object()), "can you send the reporter")
    assert first.text == "Can you send the reporter?"


@pytest.mark.parametrize(
    ("interim", "vote"),
    [
        ("can you send the report to", Completeness.INCOMPLETE),
        ("tell me is starry it out in jenin and", Completeness.INCOMPLETE),  # slt's "a dragon and", misread
        ("what is the weather like to date", Completeness.PUNCTUATED),  # the interim's misreading is no vote
        (None, Completeness.PUNCTUATED),
    ],
)
def test_second_opinion_votes_only_an_unfinished_interim(interim: str | None, vote: float) -> None:
    words = TranscriptCompleteness(full_stop=False, second_opinion=True)
    evidence = TurnEvidence("What is the weather like today?", True, None, True, "en", 0.9, interim)
    assert words.vote(evidence) == vote
    # Off (Deepgram: its final extends its own interim): the final alone decides.
    assert TranscriptCompleteness(full_stop=False).vote(evidence) == Completeness.PUNCTUATED


@pytest.mark.parametrize(("interims", "second_opinion"), [("pocketsphinx", True), ("whisper", False)])
def test_the_app_wires_whispers_strategies(interims: InterimsFrom, second_opinion: bool) -> None:
    """A second opinion only from another recogniser's interims (whisper's own are the same language model)."""
    settings = Settings.from_config(Config(environ={"LOG_DIR": "", "TURN_SMART_TURN": "off"}))
    stages = with_turn_engine([WhisperSTT(interims=interims)], settings)
    (turns,) = [s for s in stages if isinstance(s, TurnProcessor)]
    assert turns.engine.endpointing == [
        TranscriptCompleteness(full_stop=False, doubtful_below=WHISPER_DOUBTFUL_WORD, second_opinion=second_opinion)
    ]


def _pump(endpointing: list[EndpointingStrategy]) -> list[TurnEnded]:
    """ "I need a taxi to the, um, … airport please.", a 0.8 s pause; whisper writes "… to the pump." ("pump"
    0.27) at once, smart-turn says 0.40 (awb)."""
    s = Script(WHISPER, endpointing=endpointing, uses_model=True)
    e = s.engine
    s.at(1.2).do(e.user_started_speaking())  # speech from 1.0 to 2.5
    s.at(2.7).do(e.user_stopped_speaking())
    (request,) = s.of(AnalyzeTurn)
    s.at(2.8).do(e.end_of_turn_verdict(0.40, request.request))
    first = "I need a taxi to the pump."
    s.do(e.transcript(first, is_final=True, speech_final=True, confidences=[("taxi", 0.9), ("pump.", 0.27)]))
    s.do(e.user_text(first))
    s.at(3.5).do(e.user_started_speaking())  # the user goes on at 3.3: a 0.8 s pause
    s.at(4.3).do(e.user_stopped_speaking())
    s.at(4.4).do(e.transcript("airport please", is_final=True, confidences=[("please", 0.9)]))
    s.do(e.user_text("airport please"))
    s.at(9.0)
    return s.ended()


def test_whispers_end_of_speech_does_not_tip_a_doubtful_ending() -> None:
    (ended,) = _pump(_whisper_endpointing(WHISPER, object()))
    assert ended.text == "I need a taxi to the pump. airport please"
    # With the end of speech still voting (+0.5), the same turn is cut off after "pump.".
    words, model = _whisper_endpointing(WHISPER, object())
    first, _ = _pump([words, STTEndOfSpeech(), model])
    assert first.text == "I need a taxi to the pump."
