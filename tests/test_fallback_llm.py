"""FallbackLLM against the fakes: faults injected mid-conversation, and no turn is lost.

Primary Gemini, secondary OpenAI-compatible (both real SDKs on loopback); each switch is logged once and
measured (``llm.fallback``), the failed turn is answered by the next provider with the whole history, and the
primary comes back after its cooldown once its health probe passes.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator

import attrs
import pytest
from voxline.fallback import FallbackLLM
from voxline.frames import MetricsFrame, UserTextFrame
from voxline.processors.gemini import GeminiLLM
from voxline.processors.openai_compat import OpenAILLM
from voxline.providers.backoff import Backoff
from voxline.testing import Until, drive, replies_ended, run_processor
from voxline.testing.fakes._llm import Call, CallTools, ChatRequest, Reply
from voxline.testing.fakes.gemini import FakeGemini
from voxline.testing.fakes.openai import FakeOpenAI
from voxline.tools import tool

KEY = "test-key-0123456789"
QUICK = Backoff(attempts=2, initial=0.005, jitter=0)


@attrs.define
class Pair:
    gemini: FakeGemini
    openai: FakeOpenAI

    def llm(self, **kwargs: object) -> FallbackLLM:
        primary = GeminiLLM(api_key=KEY, base_url=self.gemini.url, first_token_timeout=1.0, name="gemini")
        secondary = OpenAILLM(model="m", api_key=KEY, base_url=self.openai.base_url, name="openai")
        kwargs.setdefault("retry", QUICK)
        return FallbackLLM([primary, secondary], **kwargs)  # type: ignore[arg-type]


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    async with (
        FakeGemini(api_key=KEY, replies="From Gemini.") as g,
        FakeOpenAI(api_key=KEY, replies="From OpenAI.") as o,
    ):
        yield Pair(g, o)


def fallback_metrics(frames: list[object]) -> list[float]:
    return [f.value for f in frames if isinstance(f, MetricsFrame) and f.name == "llm.fallback"]


async def test_5xx_after_the_retries_switches_and_the_turn_is_answered(
    pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    llm = pair.llm()
    steps = [UserTextFrame(text="One"), replies_ended(1)]
    with caplog.at_level(logging.WARNING, logger="voxline.fallback"):
        pair.gemini.replies = ["First.", "never"]
        result = await drive(llm, steps)
        pair.gemini.fail(503, times=50)
        result = await drive(llm, [UserTextFrame(text="Two")])
    assert result.errors == [] and result.text() == "From OpenAI."
    assert [r.status for r in pair.gemini.requests] == [200, 503, 503]  # two attempts on the primary, then switch
    [asked] = [r.chat for r in pair.openai.requests]
    assert asked is not None and asked.turns == (("user", "One"), ("assistant", "First."), ("user", "Two"))
    assert fallback_metrics(result.downstream) == [1]
    [switch] = llm.switches
    assert (switch.source, switch.target) == ("gemini", "openai") and "503" in switch.reason
    lines = [r.getMessage() for r in caplog.records if "switched from" in r.getMessage()]
    assert lines == [f"FallbackLLM: llm switched from gemini to openai ({switch.reason})"]
    assert KEY not in caplog.text


async def test_a_connection_failure_switches_at_once() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        async with FakeOpenAI(api_key=KEY, replies="Backup here.") as o:
            primary = GeminiLLM(api_key=KEY, base_url=f"http://127.0.0.1:{port}", warm_up=False, name="gemini")
            secondary = OpenAILLM(model="m", api_key=KEY, base_url=o.base_url, name="openai")
            llm = FallbackLLM([primary, secondary], retry=Backoff(attempts=3, initial=0.2, jitter=0))
            result = await run_processor(llm, [UserTextFrame(text="Hi")])
    assert result.text() == "Backup here." and result.errors == []
    assert [s.target for s in llm.switches] == ["openai"] and "connection" in llm.switches[0].reason.lower()


async def test_no_first_token_within_the_deadline_switches_at_once(pair: Pair) -> None:
    pair.gemini.stall(after_tokens=0)
    llm = pair.llm()
    result = await run_processor(llm, [UserTextFrame(text="Hi")])
    assert result.text() == "From OpenAI." and result.errors == []
    assert len(pair.gemini.requests) == 1 and "no first token" in llm.switches[0].reason


async def test_the_primary_comes_back_after_the_cooldown_when_its_probe_passes(pair: Pair) -> None:
    pair.gemini.fail(503, times=3)  # two attempts of the turn, then the first probe
    llm = pair.llm(cooldown=0.1, probe_interval=0.05)
    back = Until(lambda out: len(fallback_metrics(out)) == 2)
    result = await drive(llm, [UserTextFrame(text="One"), replies_ended(1), back, UserTextFrame(text="Two")])
    assert result.errors == []
    assert result.text() == "From OpenAI.From Gemini."
    assert fallback_metrics(result.downstream) == [1, 0]
    assert [(s.target, s.reason) for s in llm.switches][1] == ("gemini", "gemini recovered")
    probes = [r for r in pair.gemini.requests if r.chat is not None and r.chat.turns == (("user", "Say OK."),)]
    assert [r.status for r in probes] == [503, 200]  # one failed probe, then a passing one
    assert llm.active.name == "gemini"


async def test_a_provider_still_down_after_a_restart_is_probed_again(pair: Pair) -> None:
    # Down for the whole first run, however long a loaded machine makes it (its probes fail too): with only the
    # turn's two failures queued, a slow first run saw the provider recover before it ended, and the second run
    # had no switch left to wait for.
    pair.gemini.fail(503, times=1000)
    llm = pair.llm(cooldown=0.05, probe_interval=0.05)
    await run_processor(llm, [UserTextFrame(text="One")])  # fails over; the pipeline stops, and its probe task
    assert llm.active.name == "openai"
    pair.gemini.recover()  # back while no pipeline runs: only a probe restarted with the next run can see it
    back = Until(lambda out: len(fallback_metrics(out)) == 1)
    result = await drive(llm, [back, UserTextFrame(text="Two")])
    assert result.text() == "From Gemini." and llm.active.name == "gemini"


async def test_a_request_the_next_provider_would_refuse_too_does_not_switch(pair: Pair) -> None:
    pair.gemini.fail(400, message="Invalid JSON payload received.")
    llm = pair.llm()
    result = await run_processor(llm, [UserTextFrame(text="Hi")])
    assert llm.switches == [] and pair.openai.requests == []
    [error] = result.errors
    assert "400" in error.message and error.message.startswith("gemini: ")


async def test_when_every_provider_fails_the_turn_ends_with_one_error(pair: Pair) -> None:
    pair.gemini.fail(503, times=10)
    pair.openai.fail(502, times=10)
    llm = pair.llm()
    result = await run_processor(llm, [UserTextFrame(text="Hi")])
    [error] = result.errors
    assert "502" in error.message
    assert len(pair.gemini.requests) == 2 and len(pair.openai.requests) == 2  # each tried once per step


@tool
async def get_time() -> str:
    """The current time."""
    return "12:00"


async def test_a_tool_step_made_by_the_primary_is_answered_by_the_secondary(pair: Pair) -> None:
    """Gemini calls a tool, then fails on the follow-up: OpenAI gets the step (in its own wire format) and the
    results, and answers — a history the strict OpenAI fake accepts."""

    def gemini(chat: ChatRequest) -> Reply:
        if chat.tool_results:
            raise RuntimeError("the follow-up fails")  # the fake answers 500
        return CallTools(Call("get_time"), text="Let me see.")

    pair.gemini.replies = gemini
    llm = pair.llm(tools=[get_time])
    result = await run_processor(llm, [UserTextFrame(text="Time?")])
    assert result.errors == [] and result.text() == "Let me see. From OpenAI."
    assert len(pair.gemini.requests) == 3  # the call step, then two failed follow-ups (the fake answers 500)
    [follow_up] = pair.openai.requests
    assert follow_up.refusal is None
    messages = follow_up.body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    [call] = messages[1]["tool_calls"]
    assert call["function"] == {"name": "get_time", "arguments": "{}"} and messages[1]["content"] == "Let me see."
    assert messages[2] == {"role": "tool", "tool_call_id": call["id"], "content": "12:00"}


async def test_a_tool_step_made_by_the_secondary_goes_to_gemini_with_the_stand_in_signature(pair: Pair) -> None:
    """The other way round: OpenAI serves a call step, fails on the follow-up, and Gemini 3 — which refuses a
    current-turn call step without a signature — gets the documented stand-in and answers."""
    pair.gemini.fail(503, times=2)  # the first step goes to OpenAI

    def openai(chat: ChatRequest) -> Reply:
        if chat.tool_results:
            raise RuntimeError("the follow-up fails")
        return CallTools(Call("get_time"))

    pair.openai.replies = openai
    llm = pair.llm(tools=[get_time], cooldown=60)
    llm._roster.available[0] = True
    result = await run_processor(llm, [UserTextFrame(text="Time?")])
    assert result.errors == [] and result.text() == "From Gemini."
    follow_up = pair.gemini.requests[-1]
    assert follow_up.refusal is None and follow_up.status == 200
    step = follow_up.body["contents"][1]
    assert step["parts"][0]["thoughtSignature"] == "skip_thought_signature_validator"
