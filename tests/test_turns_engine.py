"""The turn engine's decisions, one by one, with every signal scripted on a virtual clock.

A small driver runs the engine like the processor does: it moves the clock, calls ``poll()`` whenever a
deadline passes, and records every decision with the time it was made.
"""

from __future__ import annotations

import pytest
from voxline.turns import TurnEngine, TurnParams, VirtualClock
from voxline.turns.decisions import (
    AnalyzeTurn,
    Backchannel,
    BargeIn,
    Decision,
    FalseInterruption,
    FinalizeSTT,
    PausePlayback,
    TurnEnded,
    TurnStarted,
)
from voxline.turns.strategies import MinDuration, UserSpeech, endpointing_delay


class Script:
    """Drives a TurnEngine on a VirtualClock and keeps the decisions."""

    def __init__(self, params: TurnParams | None = None, **kwargs: object) -> None:
        self.clock = VirtualClock(100.0)
        self.engine = TurnEngine(params, clock=self.clock, **kwargs)  # type: ignore[arg-type]
        self.log: list[Decision] = []

    def at(self, when: float) -> Script:
        """Move to 100 + ``when`` seconds, polling at every deadline on the way."""
        target = 100.0 + when
        for _ in range(1000):  # a deadline that poll() does not move on would loop forever
            deadline = self.engine.deadline
            if deadline is None or deadline > target:
                break
            self.clock.set(max(self.clock.now(), deadline))
            self.log += self.engine.poll()
        else:
            raise AssertionError(f"the engine's deadline is stuck at {self.engine.deadline}")
        self.clock.set(target)
        self.log += self.engine.poll()
        return self

    def do(self, decisions: list[Decision]) -> Script:
        self.log += decisions
        return self

    def of(self, kind: type[Decision]) -> list[Decision]:
        return [d for d in self.log if isinstance(d, kind)]

    def ended(self) -> list[TurnEnded]:
        return [d for d in self.log if isinstance(d, TurnEnded)]


def say(s: Script, start: float, stop: float, text: str, *, final_after: float = 0.1, interims: bool = True) -> None:
    """The user speaks from ``start`` to ``stop`` (VAD events 0.2 s later each), the STT's final follows."""
    e = s.engine
    s.at(start + 0.2).do(e.user_started_speaking())
    words = text.split()
    if interims and words:
        for i in range(1, len(words) + 1):
            t = start + 0.2 + (stop - start) * i / len(words)
            if t < stop + 0.2:
                s.at(t).do(e.transcript(" ".join(words[:i])))
    s.at(stop + 0.2).do(e.user_stopped_speaking())
    if final_after is not None:
        s.at(stop + 0.2 + final_after)
        if text:
            s.do(e.transcript(text, is_final=True, speech_final=True)).do(e.user_text(text))


# --- the user's turn ----------------------------------------------------------------------------------------


def test_a_finished_question_is_committed_after_the_minimum_delay() -> None:
    s = Script()
    say(s, 1.0, 2.5, "what is the weather like today")
    s.at(5.0)
    (started,) = s.of(TurnStarted)
    assert started.speech_start == pytest.approx(101.0)  # the VAD reported it 0.2 s late; the engine backdates
    (ended,) = s.ended()
    assert ended.text == "what is the weather like today"
    assert ended.reason == "complete"
    assert ended.speech_end == pytest.approx(102.5)
    assert ended.at - ended.speech_end == pytest.approx(s.engine.params.min_endpointing_delay)
    assert len(s.of(FinalizeSTT)) == 1


def test_an_unfinished_sentence_waits_and_the_pause_does_not_end_the_turn() -> None:
    """'I'd like a table for ... four people': a 1.5 s pause after 'for' is not the end."""
    s = Script()
    say(s, 1.0, 2.2, "i'd like a table for")
    say(s, 3.7, 4.6, "four people")
    s.at(8.0)
    (ended,) = s.ended()
    assert ended.text == "i'd like a table for four people"
    assert ended.speech_end == pytest.approx(104.6)
    assert len(s.of(TurnStarted)) == 1


def test_an_unfinished_sentence_is_committed_after_the_maximum_delay() -> None:
    s = Script()
    say(s, 1.0, 2.2, "i need a taxi to the um")
    s.at(2.2 + 2.4)
    assert s.ended() == []
    s.at(2.2 + 2.6)
    (ended,) = s.ended()
    assert ended.reason == "incomplete"
    assert ended.delay == pytest.approx(s.engine.params.max_endpointing_delay)


def test_no_words_means_no_turn_text() -> None:
    s = Script()
    say(s, 1.0, 1.6, "")
    s.at(5.0)
    (ended,) = s.ended()
    assert ended.text == "" and ended.reason == "no words"
    assert ended.delay == pytest.approx(s.engine.params.unsure_endpointing_delay)


def test_a_slow_final_is_waited_for_until_final_timeout_then_used_when_it_comes() -> None:
    params = TurnParams(final_timeout=0.3)
    s = Script(params)
    say(s, 1.0, 2.0, "what time is it", final_after=None, interims=False)
    s.at(2.2 + 0.29)
    assert s.ended() == []  # waiting for the final
    s.at(2.9)
    assert s.ended() == []  # no text: the unsure delay (1.0 s from the end of speech)
    s.do(s.engine.user_text("what time is it"))  # late, but before the unsure delay ran out
    (ended,) = s.ended()
    assert ended.text == "what time is it" and ended.at == pytest.approx(102.9)


def test_a_late_final_for_a_stretch_whose_interim_was_used_is_not_a_second_turn() -> None:
    s = Script(TurnParams(final_timeout=0.2))
    e = s.engine
    s.at(1.2).do(e.user_started_speaking())
    s.at(1.8).do(e.transcript("what is the wether"))
    s.at(2.2).do(e.user_stopped_speaking())
    s.at(4.0)
    assert [d.text for d in s.ended()] == ["what is the wether"]  # the final never came in time
    s.do(e.user_text("what is the weather like"))  # the STT, at last
    s.at(6.0)
    assert [d.text for d in s.ended()] == ["what is the wether"]


def test_when_the_stt_endpoints_before_the_vad_its_text_is_not_waited_for_again() -> None:
    """Deepgram's endpointing (energy) can close the utterance before the VAD's stop: decide at the stop."""
    s = Script()
    e = s.engine
    s.at(1.2).do(e.user_started_speaking())
    s.at(2.3).do(e.transcript("what time is it?", is_final=True, speech_final=True)).do(e.user_text("what time is it?"))
    s.at(2.4).do(e.user_stopped_speaking())  # speech ended at 2.2
    s.at(2.6)
    (ended,) = s.ended()
    assert ended.text == "what time is it?" and ended.at == pytest.approx(102.55)  # 2.2 + min delay, no wait


def test_text_after_a_turn_was_given_up_on_becomes_a_turn_at_once() -> None:
    s = Script(TurnParams(final_timeout=0.2))
    say(s, 1.0, 2.0, "", final_after=None)
    s.at(4.0)
    assert [d.text for d in s.ended()] == [""]
    s.do(s.engine.user_text("hello there"))
    assert [d.text for d in s.ended()] == ["", "hello there"]
    assert [d.reason for d in s.ended()] == ["no words", "late text"]


def test_the_model_verdict_is_awaited_and_decides_when_the_text_has_no_opinion() -> None:
    s = Script(uses_model=True)
    e = s.engine
    s.at(1.2).do(e.user_started_speaking())
    s.at(2.2).do(e.user_stopped_speaking())
    (request,) = s.of(AnalyzeTurn)
    assert request.speech_start == pytest.approx(101.0) and request.speech_end == pytest.approx(102.0)
    s.at(2.25)
    assert s.ended() == []  # waiting for the verdict (text has none: no words)
    s.do(e.end_of_turn_verdict(0.97, request.request))
    s.at(2.55)
    assert s.ended() == []  # the verdict is in, but the STT's text (if any) may still come until final_timeout
    s.at(2.2 + e.params.final_timeout + 0.01)
    # Log-odds of 0.97 (3.5) x 0.6 = 2.1 >= 1: the minimum delay has long passed, so: now.
    (ended,) = s.ended()
    assert ended.at == pytest.approx(102.2 + e.params.final_timeout)  # (no STT words here: "no words")


def test_a_confident_incomplete_verdict_waits_longer() -> None:
    s = Script(uses_model=True)
    e = s.engine
    s.at(1.2).do(e.user_started_speaking())
    s.at(2.2).do(e.user_stopped_speaking())
    (request,) = s.of(AnalyzeTurn)
    s.at(2.25).do(e.end_of_turn_verdict(0.02, request.request))
    s.at(5.0)
    (ended,) = s.ended()
    assert ended.delay == pytest.approx(e.params.max_endpointing_delay)


def test_the_text_outweighs_a_model_that_calls_a_finished_question_unfinished() -> None:
    s = Script(uses_model=True)
    e = s.engine
    say(s, 1.0, 2.5, "what is the weather like today", final_after=0.05)
    (request,) = s.of(AnalyzeTurn)
    s.do(e.end_of_turn_verdict(0.2, request.request))
    s.at(4.0)
    (ended,) = s.ended()
    assert ended.reason == "complete"


def test_a_very_sure_model_holds_a_turn_whose_words_look_finished() -> None:
    """A trailing "um" the STT wrote down as a word: the model hears the hesitation."""
    s = Script(uses_model=True)
    e = s.engine
    say(s, 1.0, 2.5, "i need a taxi to the thumb", final_after=0.05)
    (request,) = s.of(AnalyzeTurn)
    s.do(e.end_of_turn_verdict(0.01, request.request))
    s.at(3.8)
    assert s.ended() == []
    say(s, 3.7, 4.5, "airport please", final_after=0.05)
    (later,) = [r for r in s.of(AnalyzeTurn) if r.request != request.request]
    s.do(e.end_of_turn_verdict(0.6, later.request))
    s.at(6.0)
    (ended,) = s.ended()
    assert ended.text == "i need a taxi to the thumb airport please"


def test_a_verdict_for_audio_the_user_has_since_added_to_is_ignored() -> None:
    s = Script(uses_model=True)
    e = s.engine
    s.at(1.2).do(e.user_started_speaking())
    s.at(2.2).do(e.user_stopped_speaking())
    (old,) = s.of(AnalyzeTurn)
    s.at(2.4).do(e.user_started_speaking())  # the user goes on
    assert e.end_of_turn_verdict(0.99, old.request) == []
    s.at(6.0)
    assert s.ended() == []  # still speaking: nothing is committed


def test_the_model_is_not_waited_for_beyond_model_timeout() -> None:
    s = Script(TurnParams(final_timeout=0.3, model_timeout=0.8), uses_model=True)
    say(s, 1.0, 2.0, "turn on the lights", final_after=0.05)
    s.at(2.2 + 0.79)
    assert s.ended() == []  # the text is in and reads finished, but the model may hear an "um" it wrote as a word
    s.at(2.2 + 0.81)
    (ended,) = s.ended()  # decided on the text alone: finished, and the minimum delay has passed
    assert ended.reason == "complete"


def test_endpointing_delay_is_monotonic_in_the_score() -> None:
    p = TurnParams()
    delays = [endpointing_delay(score / 4, p) for score in range(-8, 9)]
    assert delays == sorted(delays, reverse=True)
    assert delays[0] == p.max_endpointing_delay and delays[-1] == p.min_endpointing_delay
    assert endpointing_delay(None, p) == endpointing_delay(0.0, p) == p.unsure_endpointing_delay


# --- barge-in -----------------------------------------------------------------------------------------------


def bot_speaking(params: TurnParams | None = None) -> Script:
    s = Script(params)
    s.do(s.engine.bot_started_speaking())
    return s


def test_words_that_are_not_a_backchannel_interrupt_after_the_minimum_duration() -> None:
    s = bot_speaking()
    e = s.engine
    s.at(1.2).do(e.user_started_speaking())  # speech began at 1.0
    s.at(1.35).do(e.transcript("wait"))
    assert s.of(BargeIn) == []  # words, but only 0.35 s of speech
    s.at(1.5)
    (barge,) = s.of(BargeIn)
    assert barge.at == pytest.approx(101.5) and barge.speech_start == pytest.approx(101.0)
    assert barge.reason == "words"
    assert not e.bot_speaking
    assert len(s.of(TurnStarted)) == 1  # the barge-in starts the user's turn
    s.at(2.4).do(e.transcript("wait stop what about tomorrow")).do(e.user_stopped_speaking())
    s.at(2.5).do(e.user_text("wait stop what about tomorrow"))
    s.at(4.0)
    assert [d.text for d in s.ended()] == ["wait stop what about tomorrow"]


def test_a_backchannel_never_interrupts_and_is_not_a_turn() -> None:
    s = bot_speaking()
    e = s.engine
    s.at(1.2).do(e.user_started_speaking())
    s.at(1.4).do(e.transcript("uh huh"))
    s.at(1.8).do(e.user_stopped_speaking())
    s.at(1.9).do(e.user_text("uh huh"))
    s.at(5.0)
    assert s.of(BargeIn) == [] and s.ended() == [] and s.of(TurnStarted) == []
    (bc,) = s.of(Backchannel)
    assert bc.text == "uh huh"
    assert e.bot_speaking


@pytest.mark.parametrize(
    "text", ["yeah", "okay", "mm-hmm", "right", "oh I see", "yeah right", "m m h m m", "the huh", "huh huh"]
)
def test_backchannel_words(text: str) -> None:
    s = bot_speaking()
    say(s, 1.0, 1.7, text)
    s.at(4.0)
    assert s.of(BargeIn) == [] and len(s.of(Backchannel)) == 1


@pytest.mark.parametrize("text", ["no no i meant the other one", "wait stop", "hold on", "no"])
def test_words_that_say_something_interrupt(text: str) -> None:
    s = bot_speaking()
    say(s, 1.0, 1.8, text)
    assert len(s.of(BargeIn)) == 1 and s.of(Backchannel) == []


def test_interim_words_that_keep_changing_never_interrupt() -> None:
    """An STT reading a hum ("mm-hmm") tries one word after another: none of them stands long enough."""
    s = bot_speaking()
    e = s.engine
    s.at(1.2).do(e.user_started_speaking())
    for i, interim in enumerate(["them", "i'm i'm", "the men may", "them image", "the men major", "them image him"]):
        s.at(1.3 + 0.1 * i).do(e.transcript(interim))
    s.at(1.9).do(e.user_stopped_speaking())
    s.at(1.95).do(e.transcript("im im h m m", is_final=True)).do(e.user_text("im im h m m"))
    s.at(4.0)
    assert s.of(BargeIn) == [] and s.ended() == []
    assert len(s.of(Backchannel)) == 1


def test_a_word_that_stands_interrupts_once_it_has_stood_long_enough() -> None:
    s = bot_speaking(TurnParams(one_word_after=None))  # one word is enough (tests/test_turns_offline.py: the default)
    e = s.engine
    s.at(1.2).do(e.user_started_speaking())  # speech began at 1.0
    s.at(1.45).do(e.transcript("what"))
    s.at(1.59)
    assert s.of(BargeIn) == []
    s.at(1.61)
    (barge,) = s.of(BargeIn)
    assert barge.at == pytest.approx(101.6)


def test_an_urgent_word_interrupts_without_waiting_for_it_to_stand() -> None:
    s = bot_speaking()
    e = s.engine
    s.at(1.2).do(e.user_started_speaking())
    s.at(1.55).do(e.transcript("no"))
    (barge,) = s.of(BargeIn)
    assert barge.at == pytest.approx(101.55)


def test_final_words_the_stt_doubts_do_not_interrupt() -> None:
    s = bot_speaking()
    e = s.engine
    s.at(1.2).do(e.user_started_speaking())
    s.at(1.4).do(e.user_stopped_speaking())
    s.at(1.45).do(e.transcript("ahead", is_final=True, confidences=[("ahead", 0.02)])).do(e.user_text("ahead"))
    s.at(3.0)
    assert s.of(BargeIn) == [] and s.ended() == []
    s.at(4.2).do(e.user_started_speaking())
    s.at(4.4).do(e.user_stopped_speaking())
    s.at(4.45).do(e.transcript("stop", is_final=True, confidences=[("stop", 0.9)])).do(e.user_text("stop"))
    assert len(s.of(BargeIn)) == 1


def test_a_short_curt_command_interrupts_when_its_words_come() -> None:
    s = bot_speaking()
    say(s, 1.0, 1.35, "stop", interims=False)
    (barge,) = s.of(BargeIn)
    assert barge.at == pytest.approx(101.65)  # when the final came, not before (0.35 s of speech)


def test_speech_without_words_pauses_the_bot_then_resumes_it() -> None:
    """A cough-like burst: long enough to pause, no words: the bot resumes where it paused."""
    s = bot_speaking()
    e = s.engine
    s.at(1.2).do(e.user_started_speaking())
    s.at(1.5)
    (pause,) = s.of(PausePlayback)
    assert pause.at == pytest.approx(101.5)
    s.at(1.8).do(e.user_stopped_speaking())
    s.at(1.8 + e.params.final_timeout + 0.01)
    (resume,) = s.of(FalseInterruption)
    assert resume.reason == "no words"
    assert s.of(BargeIn) == [] and s.ended() == []
    assert e.bot_speaking and not e.paused


def test_paused_without_words_resumes_after_the_false_interruption_timeout() -> None:
    params = TurnParams(interrupt_without_words_after=None, false_interruption_timeout=1.5)
    s = Script(params)
    e = s.engine
    s.do(e.bot_started_speaking())
    s.at(1.2).do(e.user_started_speaking())
    s.at(2.99)
    assert len(s.of(PausePlayback)) == 1 and s.of(FalseInterruption) == []
    s.at(3.01)
    (resume,) = s.of(FalseInterruption)
    assert resume.reason == "no words in time"
    s.at(3.5).do(e.transcript("what about later"))  # words after all: still a barge-in, once they stand
    assert s.of(BargeIn) == []
    s.at(3.66)
    assert len(s.of(BargeIn)) == 1


def test_long_speech_without_words_interrupts_anyway() -> None:
    s = bot_speaking()
    e = s.engine
    s.at(1.2).do(e.user_started_speaking())
    s.at(1.99)
    assert s.of(BargeIn) == []
    s.at(2.01)
    (barge,) = s.of(BargeIn)
    assert barge.reason == "duration"


def test_min_words_zero_interrupts_on_duration_alone() -> None:
    s = Script(TurnParams(min_interruption_words=0))
    e = s.engine
    s.do(e.bot_started_speaking())
    s.at(1.2).do(e.user_started_speaking())
    s.at(1.5)
    assert len(s.of(BargeIn)) == 1 and s.of(PausePlayback) == []


def test_a_backchannel_after_a_pause_resumes_the_bot() -> None:
    s = bot_speaking()
    e = s.engine
    s.at(1.2).do(e.user_started_speaking())
    s.at(1.6)
    assert len(s.of(PausePlayback)) == 1
    s.at(1.7).do(e.user_stopped_speaking())
    s.at(1.8).do(e.user_text("mm hmm"))
    assert [d.reason for d in s.of(FalseInterruption)] == ["backchannel"]
    assert len(s.of(Backchannel)) == 1


def test_when_the_bot_stops_a_pending_candidate_becomes_the_users_turn() -> None:
    s = bot_speaking()
    e = s.engine
    s.at(1.2).do(e.user_started_speaking())
    s.at(1.3).do(e.bot_stopped_speaking())
    assert len(s.of(TurnStarted)) == 1
    say_rest = e.user_stopped_speaking()
    s.do(say_rest)
    s.at(1.4).do(e.user_text("what was that"))
    s.at(3.0)
    assert [d.text for d in s.ended()] == ["what was that"] and s.of(BargeIn) == []


def test_an_interrupt_from_the_client_ends_the_bots_speech_for_the_engine() -> None:
    s = bot_speaking()
    e = s.engine
    s.do(e.interrupted())
    assert not e.bot_speaking
    say(s, 1.0, 2.0, "hello")
    s.at(4.0)
    assert s.of(BargeIn) == [] and [d.text for d in s.ended()] == ["hello"]


def test_custom_interruption_strategies_replace_the_defaults() -> None:
    s = Script(interruption=[MinDuration(0.3)])
    e = s.engine
    s.do(e.bot_started_speaking())
    s.at(1.2).do(e.user_started_speaking())
    s.at(1.31)
    assert len(s.of(BargeIn)) == 1  # no word rule: duration alone


def test_min_duration_counts_a_short_stretch_with_words_once_it_has_ended() -> None:
    rule = MinDuration(0.5)
    assert not rule.allows(UserSpeech(0.3, "stop", ended=False, final=False))
    assert rule.allows(UserSpeech(0.3, "stop", ended=True, final=True))
    assert not rule.allows(UserSpeech(0.3, "", ended=True, final=True))


# --- echo ---------------------------------------------------------------------------------------------------


def test_echo_is_ignored_and_its_text_dropped() -> None:
    s = bot_speaking()
    e = s.engine
    s.at(1.2).do(e.user_started_speaking(echo=True))
    assert e.speech_is_echo and e.text_is_echo()
    s.at(1.5).do(e.transcript("you said what is"))
    s.at(3.0).do(e.user_stopped_speaking())
    assert e.text_is_echo(is_final=True)
    s.at(3.1).do(e.user_text("you said what is the weather"))
    s.at(6.0)
    assert [type(d) for d in s.log] == [FinalizeSTT]  # its text at once (Deepgram: Finalize), to be dropped
    assert e.bot_speaking


def test_echo_text_that_comes_after_the_engine_stopped_waiting_is_still_dropped() -> None:
    """A long stretch of echo takes an offline STT a while to finalise."""
    s = bot_speaking()
    e = s.engine
    s.at(1.2).do(e.user_started_speaking(echo=True))
    s.at(6.0).do(e.user_stopped_speaking())
    s.at(6.2).do(e.bot_stopped_speaking())
    s.at(7.5)  # final_timeout is long gone
    assert e.expects_text
    s.do(e.user_text("like the like for real answers"))
    s.at(10.0)
    assert [type(d) for d in s.log] == [FinalizeSTT]
    s.at(20.0)
    assert not e.expects_text  # after LATE_TEXT_SECS, text is anybody's again


def test_text_that_comes_after_echo_with_no_stretch_of_its_own_is_echo() -> None:
    """A cloud STT that joined several stretches of echo into one utterance sends its text after all of them."""
    s = bot_speaking()
    e = s.engine
    for start in (1.2, 2.5, 3.8):
        s.at(start).do(e.user_started_speaking(echo=True))
        s.at(start + 1.0).do(e.user_stopped_speaking())
    s.at(8.6).do(e.user_text("it will be sunny all day with a light breeze in the afternoon"))  # > final_timeout
    s.at(12.0)
    assert not s.ended() and not s.of(TurnStarted)


def test_speech_over_the_echo_becomes_a_barge_in() -> None:
    s = bot_speaking()
    e = s.engine
    s.at(1.2).do(e.user_started_speaking(echo=True))
    s.at(2.0).do(e.speech_is_not_echo())
    s.at(2.1).do(e.transcript("no stop"))
    s.at(2.3)
    (barge,) = s.of(BargeIn)
    assert barge.speech_start == pytest.approx(101.8)


# --- params -------------------------------------------------------------------------------------------------


def test_params_are_validated() -> None:
    with pytest.raises(ValueError, match="min <= unsure <= max"):
        TurnParams(min_endpointing_delay=2.0)
    with pytest.raises(ValueError, match="min_interruption_duration must be >= 0"):
        TurnParams(min_interruption_duration=-1)
    with pytest.raises(TypeError, match="not one string"):
        TurnParams(backchannels="yeah")
    assert "yeah" in TurnParams(backchannels=["Yeah"]).backchannels  # type: ignore[operator]
