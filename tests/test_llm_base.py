"""The shared LLM rules of voxline.llm.LLMProcessor, with a scripted in-memory subclass (no HTTP).

Provider processors are tested against fake servers in test_llm_providers.py; here each rule of the base is
pinned down on its own: the frame sequence, retries before (and only before) the first token, empty replies,
timeouts, interruption bookkeeping, the "user spoke again" merge, and secret redaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from voxline.context import Context, Turn
from voxline.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EndFrame,
    Frame,
    InterruptFrame,
    LLMResponseEndFrame,
    LLMResponseStartFrame,
    MetricsFrame,
    TextFrame,
    TranscriptFrame,
    UserTextFrame,
)
from voxline.llm import LLMProcessor
from voxline.llm_retry import FirstTokenTimeout, TTFTHistory
from voxline.pipeline import Pipeline
from voxline.processor import UPSTREAM, Direction, Processor
from voxline.providers.backoff import Backoff
from voxline.providers.redaction import hide_secret, redact
from voxline.testing import Interrupt, Sleep, drive, replies_ended, run_processor, texts_out

FAST_RETRY = Backoff(attempts=3, initial=0.001, jitter=0)


class Script:
    """One scripted attempt: tokens (with a delay before each), then optionally an exception or a hang."""

    def __init__(self, tokens: list[str], *, delay: float = 0.0, error: Exception | None = None, hang: bool = False):
        self.tokens = tokens
        self.delay = delay
        self.error = error
        self.hang = hang


class ScriptedLLM(LLMProcessor):
    """Plays one Script per request; records the context each request saw and whether it was cancelled."""

    def __init__(self, scripts: list[Script], **kwargs: Any) -> None:
        kwargs.setdefault("retry", FAST_RETRY)
        super().__init__(**kwargs)
        self.scripts = scripts
        self.requests: list[list[dict[str, str]]] = []
        self.cancelled = 0

    async def stream(self, context: Context) -> AsyncIterator[str]:
        assert context.ends_with_user()
        self.requests.append(context.messages())
        script = self.scripts[min(len(self.requests), len(self.scripts)) - 1]
        try:
            for token in script.tokens:
                await asyncio.sleep(script.delay)
                yield token
            if script.error is not None:
                raise script.error
            if script.hang:
                await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise


def kinds(frames: list[Frame]) -> list[str]:
    return [type(f).__name__ for f in frames]


async def test_reply_frames_in_order_with_epoch_and_ttft() -> None:
    llm = ScriptedLLM([Script(["Hello", " there", "."], delay=0.02)], system_prompt="Be brief.")
    result = await run_processor(llm, [UserTextFrame(text="Hi")])
    body = [f for f in result.downstream if isinstance(f, (LLMResponseStartFrame, TextFrame, LLMResponseEndFrame))]
    assert kinds(body) == ["LLMResponseStartFrame", "TextFrame", "TextFrame", "TextFrame", "LLMResponseEndFrame"]
    assert all(getattr(f, "epoch", None) == 0 for f in body)
    assert result.text() == "Hello there."
    [ttft] = [m for m in result.metrics if m.name == "llm.ttft"]
    assert ttft.value >= 0.02 and ttft.source == llm.name
    assert result.errors == []
    assert llm.requests == [[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]]
    assert [(t.role, t.text, t.interrupted) for t in llm.context] == [
        ("user", "Hi", False),
        ("assistant", "Hello there.", False),
    ]


async def test_other_frames_are_forwarded_and_user_text_consumed() -> None:
    transcript = TranscriptFrame(text="hi", is_final=True)
    result = await run_processor(ScriptedLLM([Script(["ok"])]), [transcript, UserTextFrame(text="hi")])
    assert transcript in result.downstream
    assert result.downstream_of(UserTextFrame) == []
    assert isinstance(result.downstream[-1], EndFrame)


async def test_blank_user_turn_is_not_answered() -> None:
    llm = ScriptedLLM([Script(["x"])])
    result = await run_processor(llm, [UserTextFrame(text="   ")])
    assert llm.requests == [] and result.downstream_of(LLMResponseStartFrame) == []


async def test_retryable_failures_before_first_token_are_retried() -> None:
    llm = ScriptedLLM([Script([], error=ConnectionError("refused")), Script([], error=TimeoutError()), Script(["ok"])])
    result = await run_processor(llm, [UserTextFrame(text="Hi")])
    assert len(llm.requests) == 3
    assert result.text() == "ok" and result.errors == []


async def test_non_retryable_failure_ends_the_turn_at_once() -> None:
    llm = ScriptedLLM([Script([], error=ValueError("bad request")), Script(["never"])])
    result = await run_processor(llm, [UserTextFrame(text="Hi")])
    assert len(llm.requests) == 1
    [error] = result.errors
    assert "bad request" in error.message and not error.fatal
    assert result.downstream_of(LLMResponseEndFrame)[-1].epoch == 0


async def test_retries_give_up_after_the_policy_attempts() -> None:
    llm = ScriptedLLM([Script([], error=ConnectionError("down"))], retry=Backoff(attempts=2, initial=0))
    result = await run_processor(llm, [UserTextFrame(text="Hi")])
    assert len(llm.requests) == 2
    assert len(result.errors) == 1 and "down" in result.errors[0].message


async def test_failure_after_first_token_is_not_retried_and_next_turn_works() -> None:
    llm = ScriptedLLM([Script(["Par", "tial"], error=ConnectionError("reset")), Script(["Fine."])])
    result = await drive(llm, [UserTextFrame(text="One"), replies_ended(1), UserTextFrame(text="Two")])
    assert len(llm.requests) == 2
    assert len(result.errors) == 1 and "reset" in result.errors[0].message
    assert result.text() == "PartialFine."
    assert len(result.downstream_of(LLMResponseEndFrame)) == 2
    turns = [(t.role, t.text, t.interrupted) for t in llm.context]
    assert turns == [
        ("user", "One", False),
        ("assistant", "Partial", True),
        ("user", "Two", False),
        ("assistant", "Fine.", False),
    ]


async def test_empty_stream_is_retried_then_reported() -> None:
    llm = ScriptedLLM([Script([]), Script(["", "ok"])])
    result = await run_processor(llm, [UserTextFrame(text="Hi")])
    assert len(llm.requests) == 2 and result.text() == "ok" and result.errors == []

    llm = ScriptedLLM([Script([])], retry=Backoff(attempts=2, initial=0))
    result = await run_processor(llm, [UserTextFrame(text="Hi")])
    assert len(llm.requests) == 2
    assert "empty reply" in result.errors[0].message
    assert [(t.role, t.text) for t in llm.context] == [("user", "Hi")]


async def test_stall_after_first_token_ends_the_turn_with_an_error() -> None:
    llm = ScriptedLLM([Script(["a"], hang=True)], stall_timeout=0.1)
    result = await run_processor(llm, [UserTextFrame(text="Hi")])
    assert len(llm.requests) == 1 and llm.cancelled == 1
    assert "stalled" in result.errors[0].message
    assert result.downstream_of(LLMResponseEndFrame)[-1].interrupted is False


async def test_no_first_token_is_a_retryable_timeout() -> None:
    llm = ScriptedLLM([Script([], hang=True), Script(["late but fine"])], first_token_timeout=0.1)
    result = await run_processor(llm, [UserTextFrame(text="Hi")])
    assert len(llm.requests) == 2 and llm.cancelled == 1
    assert result.text() == "late but fine" and result.errors == []


async def test_interrupt_cancels_the_stream_and_records_the_partial_reply() -> None:
    tokens = ["one", " two", " three", " four", *[" more"] * 40]
    llm = ScriptedLLM([Script(tokens, delay=0.05)])
    result = await drive(llm, [UserTextFrame(text="Count"), texts_out(2), Interrupt(), Sleep(0.1)])
    assert llm.cancelled == 1
    out = result.downstream
    cut = next(i for i, f in enumerate(out) if isinstance(f, InterruptFrame))
    assert not [f for f in out[cut:] if isinstance(f, TextFrame)]
    end = next(f for f in out[cut:] if isinstance(f, LLMResponseEndFrame))
    assert end.interrupted and end.epoch == 0
    heard = "".join(f.text for f in out[:cut] if isinstance(f, TextFrame))
    assert heard and "".join(tokens).startswith(heard) and heard != "".join(tokens)
    assert llm.context.turns[-1].text == heard and llm.context.turns[-1].interrupted


async def test_user_speaking_again_interrupts_and_answers_the_merged_turn() -> None:
    llm = ScriptedLLM([Script(["It", " is", " sunny", *[" today"] * 40], delay=0.04), Script(["In Paris, rain."])])
    result = await run_processor(
        llm, [UserTextFrame(text="What's the weather"), Sleep(0.1), UserTextFrame(text="in Paris?"), Sleep(0.1)]
    )
    # The processor asked for the interruption; the task turned it into a new epoch from the head.
    assert result.upstream_of(InterruptFrame)
    out = result.downstream
    cut = next(i for i, f in enumerate(out) if isinstance(f, InterruptFrame))
    assert out[cut].epoch == 1
    assert all(f.epoch == 1 for f in out[cut:] if isinstance(f, TextFrame))
    assert [f.text for f in out[cut:] if isinstance(f, TextFrame)] == ["In Paris, rain."]
    ends = result.downstream_of(LLMResponseEndFrame)
    assert [(e.epoch, e.interrupted) for e in ends] == [(0, True), (1, False)]
    assert llm.requests[1][-1] == {"role": "user", "content": "What's the weather in Paris?"}
    assert [(t.role, t.text) for t in llm.context] == [
        ("user", "What's the weather in Paris?"),
        ("assistant", "In Paris, rain."),
    ]


async def test_end_frame_waits_for_the_reply_in_flight() -> None:
    llm = ScriptedLLM([Script(["a", "b", "c"], delay=0.03)])
    result = await run_processor(llm, [UserTextFrame(text="Hi")])  # EndFrame queued right behind
    assert result.text() == "abc"
    assert kinds(result.downstream)[-2:] == ["LLMResponseEndFrame", "EndFrame"]


async def test_secrets_never_reach_error_messages_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk-very-secret-123"
    llm = ScriptedLLM([Script([], error=ValueError(f"rejected key {secret}"))])
    hide_secret(secret)
    with caplog.at_level(logging.DEBUG):
        result = await run_processor(llm, [UserTextFrame(text="Hi")])
    assert "rejected key ***" in result.errors[0].message
    assert secret not in caplog.text and all(secret not in e.message for e in result.errors)


def test_retry_delays_grow_exponentially_with_bounded_jitter() -> None:
    policy = Backoff(initial=0.1, maximum=1.0, multiplier=2.0, jitter=0.5, attempts=3)
    for retry, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (6, 1.0)]:
        delays = [policy.delay(retry) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1  # jittered
    with pytest.raises(ValueError):
        Backoff(attempts=0)
    with pytest.raises(ValueError, match="bounded retry"):
        ScriptedLLM([], retry=Backoff())  # a turn that retried forever would never end


async def test_metrics_frame_is_a_system_frame_that_travels_downstream() -> None:
    result = await run_processor(ScriptedLLM([Script(["x"])]), [UserTextFrame(text="Hi")])
    assert [m.name for m in result.downstream_of(MetricsFrame)] == ["llm.ttft"]


async def test_several_user_turns_during_a_reply_merge_in_order_with_one_interrupt_request() -> None:
    llm = ScriptedLLM([Script(["a", "b", "c", *["d"] * 40], delay=0.05), Script(["Got it all."])])
    result = await run_processor(
        llm,
        [UserTextFrame(text="one"), Sleep(0.08), UserTextFrame(text="two"), UserTextFrame(text="three"), Sleep(0.1)],
    )
    assert len(result.upstream_of(InterruptFrame)) == 1
    assert len(result.downstream_of(InterruptFrame)) == 1
    assert llm.requests[-1][-1] == {"role": "user", "content": "one two three"}
    starts = result.downstream_of(LLMResponseStartFrame)
    ends = result.downstream_of(LLMResponseEndFrame)
    assert [s.epoch for s in starts] == [e.epoch for e in ends] == [0, 1]


async def test_end_of_stream_right_behind_a_barge_in_still_answers_the_merged_turn() -> None:
    llm = ScriptedLLM([Script(["a", "b", "c", *["d"] * 40], delay=0.05), Script(["merged"])])
    result = await run_processor(llm, [UserTextFrame(text="one"), Sleep(0.07), UserTextFrame(text="two")])
    assert llm.requests[-1][-1] == {"role": "user", "content": "one two"}
    assert result.downstream[-1] == EndFrame() and result.downstream[-2] == LLMResponseEndFrame(epoch=1)


def test_redact_hides_registered_secrets_and_url_credentials() -> None:
    hide_secret("abcd1234")
    assert redact("key abcd1234 at http://user:pw@host:1/v1") == "key *** at http://***@host:1/v1"
    assert redact("http://127.0.0.1:8080/v1") == "http://127.0.0.1:8080/v1"


class PlaybackStub(Processor):
    """Stands in for the output transport: says the bot started speaking at the first text of a reply, and
    (when ``finishes``) that it stopped at the reply's end — as the real output does upstream."""

    def __init__(self, *, finishes: bool) -> None:
        super().__init__()
        self.finishes = finishes

    async def process(self, frame: Frame, direction: Direction) -> None:
        await self.push(frame, direction)
        if isinstance(frame, TextFrame):
            await self.push(BotStartedSpeakingFrame(), UPSTREAM)
        elif isinstance(frame, LLMResponseEndFrame) and self.finishes:
            await self.push(BotStoppedSpeakingFrame(), UPSTREAM)


@pytest.mark.parametrize("finishes", [False, True])
async def test_barge_in_during_playback_marks_a_fully_generated_reply_interrupted(finishes: bool) -> None:
    llm = ScriptedLLM([Script(["All", " of", " it."]), Script(["Next."])])
    steps = [UserTextFrame(text="Hi"), replies_ended(1), Interrupt(), UserTextFrame(text="Wait")]
    await drive(Pipeline([llm, PlaybackStub(finishes=finishes)]), steps)
    # Still playing when the user interrupted: the reply is marked (and sent marked); played out: it is not.
    assert llm.context.turns[1] == Turn("assistant", "All of it.", interrupted=not finishes)
    assert llm.turn_text(llm.context.turns[1]) == ("All of it. [interrupted]" if not finishes else "All of it.")


def test_first_token_deadline_follows_recent_ttfts_within_bounds() -> None:
    policy = FirstTokenTimeout(initial=3.0, minimum=1.5, maximum=6.0, factor=3.0, min_samples=3)
    assert policy.seconds([]) == policy.seconds([0.4, 0.4]) == 3.0  # too little known yet
    assert policy.seconds([0.3, 0.4, 0.5, 0.6]) == pytest.approx(1.8)  # 3 x p90
    assert policy.seconds([0.1] * 10) == 1.5  # never below the floor (network jitter on a fast model)
    assert policy.seconds([0.5] * 9 + [9.0]) == pytest.approx(1.5)  # one outlier is above the p90 of ten
    # Timed-out attempts count as samples of their deadline: a provider that got slower raises it.
    assert policy.seconds([3.0] * 5) == 6.0
    history = TTFTHistory(keep=3)
    for value in (1.0, 2.0, 3.0, 4.0):
        history.record("k", value)
    assert history.recent("k") == [2.0, 3.0, 4.0] and history.recent("other") == []


def test_each_provider_picks_the_first_token_rule_of_its_model() -> None:
    from voxline.llm_retry import FAST_MODEL, SLOW_MODEL
    from voxline.processors.gemini import GeminiLLM
    from voxline.processors.openai_compat import OpenAILLM

    assert GeminiLLM(api_key="k", model="gemini-3.8-flash").first_token_policy() is FAST_MODEL
    assert GeminiLLM(api_key="k", model="gemini-2.5-pro").first_token_policy() is SLOW_MODEL  # thinks first
    assert (
        GeminiLLM(api_key="k", model="gemini-9-flash").first_token_policy() is SLOW_MODEL
    )  # unknown: default thinking
    assert OpenAILLM(api_key="k", model="gpt-4o-mini").first_token_policy() is FAST_MODEL
    assert OpenAILLM(api_key="k", model="o3-mini").first_token_policy() is SLOW_MODEL  # reasons first
    local = OpenAILLM(model="llama3.2", base_url="http://127.0.0.1:11434/v1")
    assert local.first_token_policy() is SLOW_MODEL  # Ollama loads the model on the first request
    assert FAST_MODEL.initial <= 3.0 and SLOW_MODEL.initial == 15.0
    assert GeminiLLM(api_key="k", first_token_timeout=2.5).first_token_deadline() == 2.5  # a number pins it
