"""Tool steps in the LLM base, with a scripted in-memory model: calls run, results go back, the reply goes on.

The providers' wire formats are tested against the fakes in test_tools_providers.py; here the base's rules:
one Start/End around every step, parallel calls, timeouts and errors as results, barge-in cancelling a running
tool, filler speech, the step limit, retries inside a step, and what the context keeps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from voxline.context import CANCELLED, Context, ToolCall, Turn
from voxline.frames import BotHeardTextFrame, LLMResponseEndFrame, LLMResponseStartFrame, TextFrame, UserTextFrame
from voxline.llm import LLMProcessor, StreamItem
from voxline.processor import UPSTREAM
from voxline.providers.backoff import Backoff
from voxline.testing import Interrupt, Until, drive, replies_ended, run_processor
from voxline.tools import Toolbox, tool

Step = list[str | ToolCall | Exception]


class ToolModel(LLMProcessor):
    """Plays one scripted step per request and records every request's context (as turns)."""

    def __init__(self, steps: list[Step], **kwargs: Any) -> None:
        kwargs.setdefault("retry", Backoff(attempts=3, initial=0.001, jitter=0))
        super().__init__(**kwargs)
        self.steps = steps
        self.seen: list[tuple[Turn, ...]] = []

    async def stream(self, context: Context) -> AsyncIterator[StreamItem]:
        assert context.awaits_reply()
        self.seen.append(context.turns)
        for item in self.steps[min(len(self.seen), len(self.steps)) - 1]:
            await asyncio.sleep(0.001)
            if isinstance(item, Exception):
                raise item
            yield item


calls: list[str] = []


@tool
async def clock(zone: str = "UTC") -> str:
    """The time in a zone."""
    calls.append(f"clock:{zone}")
    return f"12:00 {zone}"


@tool
async def nap(seconds: float) -> str:
    """Sleeps."""
    calls.append("nap")
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        calls.append("nap cancelled")
        raise
    return "rested"


def call(name: str, call_id: str = "c1", **args: Any) -> ToolCall:
    return ToolCall(call_id, name, args)


def roles(turns: tuple[Turn, ...]) -> list[str]:
    return [t.role + ("+calls" if t.tool_calls else "") for t in turns]


async def test_a_call_runs_its_result_goes_back_and_the_reply_goes_on() -> None:
    calls.clear()
    llm = ToolModel([["Let me look. ", call("clock", zone="CET")], ["It is ", "noon."]], tools=[clock])
    result = await run_processor(llm, [UserTextFrame(text="Time?")])
    assert result.errors == [] and calls == ["clock:CET"]
    assert len(result.downstream_of(LLMResponseStartFrame)) == len(result.downstream_of(LLMResponseEndFrame)) == 1
    assert result.text() == "Let me look. It is noon."
    assert roles(llm.seen[1]) == ["user", "assistant+calls", "tool"]
    turns = llm.context.turns
    assert turns[1] == Turn("assistant", "Let me look. ", tool_calls=(call("clock", zone="CET"),))
    assert turns[2].tool_results[0].output == "12:00 CET" and turns[2].tool_results[0].call_id == "c1"
    assert turns[3] == Turn("assistant", "It is noon.")


async def test_parallel_calls_run_at_once_and_answer_in_order() -> None:
    calls.clear()
    step = [call("nap", "a", seconds=0.3), call("nap", "b", seconds=0.3), call("clock", "c")]
    llm = ToolModel([step, ["Done."]], tools=[clock, nap])
    started = time.monotonic()
    result = await run_processor(llm, [UserTextFrame(text="Go")])
    assert time.monotonic() - started < 0.55  # not 0.6 s one after the other
    assert result.errors == [] and sorted(calls) == ["clock:UTC", "nap", "nap"]
    assert [r.call_id for r in llm.context.turns[2].tool_results] == ["a", "b", "c"]


async def test_errors_and_timeouts_are_results_the_model_reads() -> None:
    llm = ToolModel(
        [[call("nap", "a", seconds=5), call("missing", "b"), call("clock", "c", zone=3)], ["Sorry."]],
        tools=Toolbox([clock, nap], timeout=0.05),
    )
    result = await run_processor(llm, [UserTextFrame(text="Go")])
    assert result.errors == [] and result.text() == "Sorry."
    errors = [r.error for r in llm.seen[1][2].tool_results]
    assert errors == [
        "timed out after 0.05 s",
        "there is no tool named 'missing'",
        "bad arguments: zone must be a string, got 3",
    ]


async def test_a_barge_in_cancels_the_running_tool_and_the_reply() -> None:
    calls.clear()
    llm = ToolModel([[call("nap", seconds=10)], ["Fresh answer."]], tools=[nap])
    started = Until(lambda out: "nap" in calls)
    result = await drive(llm, [UserTextFrame(text="Sleep"), started, Interrupt(), UserTextFrame(text="Stop")])
    assert calls == ["nap", "nap cancelled"]
    ends = result.downstream_of(LLMResponseEndFrame)
    assert [e.interrupted for e in ends] == [True, False]
    assert roles(llm.seen[1]) == ["user", "assistant+calls", "tool", "user"]
    assert llm.seen[1][2].tool_results[0].error == CANCELLED
    assert llm.context.turns[-1] == Turn("assistant", "Fresh answer.")


async def test_filler_is_said_once_when_a_tool_runs_long_and_stays_out_of_the_context() -> None:
    box = Toolbox([nap, clock], filler="One moment.", filler_after=0.05)
    llm = ToolModel([[call("nap", seconds=0.2)], [call("clock")], ["Ok."]], tools=box)
    result = await run_processor(llm, [UserTextFrame(text="Go")])
    texts = [f.text for f in result.downstream_of(TextFrame)]
    assert texts == ["One moment. ", "Ok."]  # the quick clock call got none
    assert all("moment" not in t.text for t in llm.context)


async def test_the_step_limit_ends_a_tool_loop_with_an_error_and_a_valid_context() -> None:
    llm = ToolModel([[call("clock")]], tools=Toolbox([clock], max_steps=2))
    result = await run_processor(llm, [UserTextFrame(text="Loop")])
    [error] = result.errors
    assert "more than 2 steps" in error.message and not error.fatal
    assert len(llm.seen) == 3 and llm.context.awaits_reply()
    assert llm.context.turns[-1].tool_results[0].error == "not run: too many tool calls in one turn"


async def test_a_failed_follow_up_is_retried_without_running_the_tools_again() -> None:
    calls.clear()
    llm = ToolModel([[call("clock")], [ConnectionError("reset")], ["Noon."]], tools=[clock])
    result = await run_processor(llm, [UserTextFrame(text="Time?")])
    assert result.errors == [] and result.text() == "Noon." and calls == ["clock:UTC"] and len(llm.seen) == 3


async def test_calls_without_tools_get_errors_not_a_crash() -> None:
    llm = ToolModel([[call("clock")], ["I cannot."]])
    result = await run_processor(llm, [UserTextFrame(text="Time?")])
    assert result.errors == [] and llm.seen[1][2].tool_results[0].error == "there is no tool named 'clock'"


async def test_what_was_heard_of_a_tool_reply_keeps_only_the_last_steps_words() -> None:
    llm = ToolModel([["Checking. ", call("clock")], ["It is noon. ", "Have a nice day."]], tools=[clock])
    heard = BotHeardTextFrame(epoch=0, played_seconds=2.0, text="Checking. It is noon. ")
    await drive(llm, [UserTextFrame(text="Time?"), replies_ended(1)])
    await llm.process(heard, UPSTREAM)
    assert llm.context.turns[-1] == Turn("assistant", "It is noon.", interrupted=True)
    assert llm.context.turns[1].text == "Checking. "
