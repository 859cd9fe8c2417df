"""Turn decisions for the offline STTs (whisper, pocketsphinx), scripted on a virtual clock.

whisper ends every transcript with a full stop, the unfinished ones too ("I would like a table for."), and
writes a trailing "um" as a word or a letter ("to the time.", "to the M."): the rules here are what the
served app's offline path (docs/turn-taking.md, "In the voice agent") relies on.
"""

from __future__ import annotations

import pytest
from test_turns_engine import Script, say
from voxline.frames import (
    BotStartedSpeakingFrame,
    Frame,
    InterruptFrame,
    SettingsFrame,
    TranscriptFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    UserTextFrame,
)
from voxline.processor import UPSTREAM, Direction, Processor
from voxline.testing import RunResult
from voxline.turns import TurnParams
from voxline.turns.decisions import AnalyzeTurn, BargeIn, TurnEnded
from voxline.turns.words import Completeness, text_completeness


@pytest.mark.parametrize(
    ("text", "full_stop", "vote"),
    [
        ("I need a taxi to the time.", True, Completeness.PUNCTUATED),
        ("I need a taxi to the time.", False, Completeness.CONTENT_WORD),  # whisper's full stop says nothing
        ("Please set a timer for ten minutes.", False, Completeness.CONTENT_WORD),
        ("What is the weather like today?", False, Completeness.PUNCTUATED),  # a question mark still counts
        ("Stop!", False, Completeness.PUNCTUATED),
        ("Thanks.", False, Completeness.ONE_WORD),
        ("I would like a table for.", False, Completeness.INCOMPLETE),
        ("I need a taxi to the M.", True, Completeness.INCOMPLETE),  # whisper's spelling of a drawn-out "um"
        ("I need a taxi to the, hmm", True, Completeness.INCOMPLETE),
        ("can you remind me to call uh", False, Completeness.INCOMPLETE),
    ],
)
def test_text_completeness_of_offline_transcripts(text: str, full_stop: bool, vote: float) -> None:
    assert text_completeness(text, "en", full_stop=full_stop) == vote


def _filler_turn(full_stop_counts: bool) -> list[TurnEnded]:
    """ "I need a taxi to the, um, … airport please." as whisper writes it, a 1.2 s pause after the "um", the
    model very sure the first part is unfinished (0.006, as smart-turn scored it on every flite voice)."""
    s = Script(TurnParams(full_stop_counts=full_stop_counts, final_timeout=1.5), uses_model=True)
    e = s.engine
    say(s, 1.0, 2.8, "I need a taxi to the time.", final_after=0.5, interims=False)
    (request,) = s.of(AnalyzeTurn)
    s.do(e.end_of_turn_verdict(0.006, request.request))
    say(s, 4.0, 4.9, "Airport please.", final_after=0.5, interims=False)
    later = [r for r in s.of(AnalyzeTurn) if r.request != request.request]
    s.do(e.end_of_turn_verdict(0.5, later[-1].request))
    s.at(9.0)
    return s.ended()


def test_whispers_full_stop_does_not_end_a_turn_the_model_hears_unfinished() -> None:
    (ended,) = _filler_turn(full_stop_counts=False)
    assert ended.text == "I need a taxi to the time. Airport please."
    # The same turn, with the full stop taken as evidence: cut off during the pause (what the app did before).
    first, _ = _filler_turn(full_stop_counts=True)
    assert first.text == "I need a taxi to the time."


def test_a_question_mark_still_ends_the_turn_at_the_minimum_delay_against_a_doubtful_model() -> None:
    """flite's "What is the weather like today?" scores 0.06 with smart-turn: the question mark wins."""
    s = Script(TurnParams(full_stop_counts=False, final_timeout=1.5), uses_model=True)
    e = s.engine
    say(s, 1.0, 2.5, "What is the weather like today?", final_after=0.1, interims=False)
    (request,) = s.of(AnalyzeTurn)
    s.do(e.end_of_turn_verdict(0.06, request.request))
    s.at(5.0)
    (ended,) = s.ended()
    assert ended.reason == "complete"
    assert ended.delay == pytest.approx(e.params.min_endpointing_delay)


# --- a backchannel a rough STT reads as a word ---------------------------------------------------------------


def _bot_speaking(params: TurnParams | None = None) -> Script:
    s = Script(params)
    s.do(s.engine.bot_started_speaking())
    return s


def test_one_interim_word_of_a_short_stretch_waits_for_the_final() -> None:
    """rms's "Uh-huh." as pocketsphinx hears it: "but the", then "the flood"; the final says "but"."""
    s = _bot_speaking()
    e = s.engine
    s.at(1.2).do(e.user_started_speaking())  # speech began at 1.0
    s.at(1.3).do(e.transcript("but the"))
    s.at(1.4).do(e.transcript("the flood"))
    s.at(1.75)  # "flood" has stood 0.35 s, the speech lasted 0.75 s: still short
    assert s.of(BargeIn) == []
    s.at(1.78).do(e.user_stopped_speaking())  # it ended at 1.58
    s.at(1.9).do(e.transcript("but", is_final=True)).do(e.user_text("but"))
    s.at(5.0)
    assert s.of(BargeIn) == [] and s.ended() == [] and e.bot_speaking
    # Without the rule the same speech interrupted the bot (what the app did before).
    s = _bot_speaking(TurnParams(one_word_after=None))
    s.at(1.2).do(s.engine.user_started_speaking())
    s.at(1.3).do(s.engine.transcript("but the"))
    s.at(1.4).do(s.engine.transcript("the flood"))
    s.at(1.75)
    assert len(s.of(BargeIn)) == 1


def test_one_word_interrupts_once_the_speech_is_long_an_urgent_one_or_two_at_once() -> None:
    s = _bot_speaking()
    e = s.engine
    s.at(1.2).do(e.user_started_speaking())
    s.at(1.3).do(e.transcript("what"))
    s.at(1.79)
    assert s.of(BargeIn) == []
    s.at(1.81)
    (barge,) = s.of(BargeIn)
    assert barge.at == pytest.approx(101.8)  # speech start + one_word_after

    s = _bot_speaking()
    s.at(1.2).do(s.engine.user_started_speaking())
    s.at(1.3).do(s.engine.transcript("what about"))
    s.at(1.5)
    assert [b.at for b in s.of(BargeIn)] == [pytest.approx(101.5)]  # two words: the minimum duration

    s = _bot_speaking()
    s.at(1.2).do(s.engine.user_started_speaking())
    s.at(1.45).do(s.engine.transcript("wait"))
    s.at(1.6)
    assert [b.at for b in s.of(BargeIn)] == [pytest.approx(101.5)]  # urgent: at the minimum duration


# --- a slow STT: whisper's final after the engine stopped waiting for it -----------------------------------------


def test_a_late_final_replaces_its_interim_and_the_next_stretch_keeps_its_own_text() -> None:
    """whisper at load 5: the final of "I need a taxi to the, um," comes 2.7 s after the VAD's stop, while the
    user's "airport please" waits for its own. Before, it was taken for "airport please"'s text, and
    "airport please" was lost: the turn answered was "… to the bomb I need a taxi to the pump."."""
    s = Script(TurnParams(final_timeout=2.5), uses_model=True)
    e = s.engine
    say(s, 1.0, 2.8, "i need a taxi to the bomb", final_after=None)  # pocketsphinx's interims, no final yet
    (request,) = s.of(AnalyzeTurn)
    s.do(e.end_of_turn_verdict(0.2, request.request))
    say(s, 4.0, 4.9, "airport please", final_after=None)
    s.at(5.5)  # the first stretch was given up on at 3.0 + 2.5: its interim stands in for it
    s.do(e.transcript("I need a taxi to the pump.", is_final=True)).do(e.user_text("I need a taxi to the pump."))
    s.at(5.6).do(e.transcript("Airport please.", is_final=True)).do(e.user_text("Airport please."))
    s.at(9.0)
    (ended,) = s.ended()
    assert ended.text == "I need a taxi to the pump. Airport please."


def test_text_in_the_stts_order_still_goes_to_the_next_stretch() -> None:
    """A given-up stretch whose final never comes (whisper heard nothing): the next text is the next stretch's."""
    s = Script(TurnParams(final_timeout=0.5))
    e = s.engine
    s.at(1.2).do(e.user_started_speaking())
    s.at(2.1).do(e.transcript("i would like a table for"))
    s.at(2.2).do(e.user_stopped_speaking())
    s.at(3.2).do(e.user_started_speaking())  # given up on at 2.7
    s.at(4.1).do(e.transcript("four people tonight"))
    s.at(4.2).do(e.user_stopped_speaking())
    s.at(4.3).do(e.user_text("Four people tonight."))
    s.at(8.0)
    (ended,) = s.ended()
    assert ended.text == "i would like a table for Four people tonight."


# --- whisper's made-up sentence on a short hum ---------------------------------------------------------------


async def _short_stretch_with_final(confidence: float) -> RunResult:
    from voxline.pipeline import Pipeline
    from voxline.testing import Sleep, run_processor
    from voxline.turns import TurnProcessor

    params = TurnParams(
        vad_start_secs=0.0,
        vad_stop_secs=0.0,
        min_interruption_duration=0.1,
        final_timeout=0.1,
        min_word_confidence=0.5,
        min_endpointing_delay=0.05,  # short knobs, long sleeps: nothing here depends on the machine's speed
        unsure_endpointing_delay=0.15,
        max_endpointing_delay=0.4,
    )
    return await run_processor(
        Pipeline([TurnProcessor(params=params), BotSpeaks()]),
        [
            SettingsFrame(settings={"bot": "start"}),
            Sleep(0.02),
            UserStartedSpeakingFrame(),
            Sleep(0.15),
            UserStoppedSpeakingFrame(),
            TranscriptFrame(text="Thank you.", is_final=True, confidence=confidence),  # whisper: no words
            UserTextFrame(text="Thank you."),
            Sleep(0.6),  # well past the 0.05 s a finished-looking turn waits
        ],
    )


class BotSpeaks(Processor):
    """Sends BotStartedSpeakingFrame upstream on a SettingsFrame({"bot": "start"}), as the output does."""

    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, SettingsFrame) and frame.settings.get("bot") == "start":
            await self.push(BotStartedSpeakingFrame(), UPSTREAM)
            return
        await self.push(frame, direction)


async def test_a_transcript_whisper_is_unsure_of_does_not_interrupt() -> None:
    """whisper's "Thank you." for a flite "uh-huh" (confidence 0.37): its words are doubted as a whole."""
    result = await _short_stretch_with_final(0.37)
    assert result.errors == []
    assert result.downstream_of(InterruptFrame) == [] and result.downstream_of(UserTextFrame) == []
    sure = await _short_stretch_with_final(0.9)
    assert len(sure.downstream_of(InterruptFrame)) == 1
    assert [t.text for t in sure.downstream_of(UserTextFrame)] == ["Thank you."]


# --- a busy machine: the model's verdict and the STT's final come late -----------------------------------------


def test_a_late_verdict_is_waited_for_before_a_finished_looking_turn_is_committed() -> None:
    """pocketsphinx writes "to the, um," as "to the bum" (reads finished); at load 7 smart-turn's 0.006 came
    0.5 s after the VAD's stop, after the engine had committed on the words alone (0.4 s): a cut-off."""
    s = Script(TurnParams(final_timeout=0.4), uses_model=True)
    e = s.engine
    say(s, 1.0, 2.8, "i need a taxi to the bum", final_after=0.1)
    (request,) = s.of(AnalyzeTurn)
    s.at(3.0 + 0.5).do(e.end_of_turn_verdict(0.006, request.request))
    say(s, 4.0, 4.9, "airport please", final_after=0.1)
    later = [r for r in s.of(AnalyzeTurn) if r.request != request.request]
    s.do(e.end_of_turn_verdict(0.9, later[-1].request))
    s.at(9.0)
    (ended,) = s.ended()
    assert ended.text == "i need a taxi to the bum airport please"


def test_a_final_that_comes_just_after_the_turn_was_committed_from_its_interim_is_not_a_second_turn() -> None:
    """At load 7 the verdict came (and the turn was committed on the interim) before the engine's timer gave up
    on the final, which came a moment later and was answered again as a turn of its own."""
    s = Script(TurnParams(final_timeout=0.4), uses_model=True)
    e = s.engine
    s.at(1.2).do(e.user_started_speaking())
    s.at(2.1).do(e.transcript("for people tonight"))
    s.at(2.2).do(e.user_stopped_speaking())
    (request,) = s.of(AnalyzeTurn)
    e.clock.set(100.0 + 2.75)  # the timer at 2.6 ran late: nothing polled
    s.do(e.end_of_turn_verdict(0.9, request.request))
    (ended,) = s.ended()
    assert ended.text == "for people tonight"
    s.do(e.transcript("for people tonight", is_final=True)).do(e.user_text("for people tonight"))
    s.at(6.0)
    assert len(s.ended()) == 1
