"""Context: the conversation an LLM stage sends, kept honest about interrupted replies."""

from __future__ import annotations

import pytest
from voxline.context import Context, Turn


def test_messages_include_the_system_prompt_and_turns_in_order() -> None:
    ctx = Context("Be brief.")
    ctx.add_user("hello")
    ctx.add_assistant("hi there")
    assert ctx.messages() == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "hi there"},
    ]
    assert Context().messages() == []


def test_consecutive_user_turns_merge_and_blank_ones_are_ignored() -> None:
    ctx = Context()
    ctx.add_user("what is")
    ctx.add_user("  ")
    ctx.add_user("the time")
    assert ctx.turns == (Turn("user", "what is the time"),)
    assert ctx.ends_with_user()


def test_an_interrupted_reply_is_cut_to_what_was_heard() -> None:
    ctx = Context()
    ctx.add_user("tell me a story")
    ctx.add_assistant("Once upon a time there was a fox")
    ctx.cut_last_assistant("Once upon a time")
    assert ctx.turns[-1] == Turn("assistant", "Once upon a time", interrupted=True)
    ctx.add_user("stop")
    ctx.add_assistant("ok")
    ctx.cut_last_assistant("")  # nothing was heard: the reply is gone
    assert ctx.turns[-1].role == "user"
    ctx.cut_last_assistant("x")  # no assistant turn last: nothing happens
    assert len(ctx) == 3


def test_history_is_bounded_and_starts_with_a_user_turn() -> None:
    ctx = Context(max_turns=3)
    for i in range(5):
        ctx.add_user(f"q{i}")
        ctx.add_assistant(f"a{i}")
    assert len(ctx) <= 3
    assert ctx.turns[0].role == "user"
    assert [t.text for t in ctx] == [t.text for t in ctx.turns]
    with pytest.raises(ValueError, match="max_turns"):
        Context(max_turns=1)


def test_turns_validate_their_fields() -> None:
    with pytest.raises(ValueError, match="role"):
        Turn("system", "x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="text"):
        Turn("user", 3)  # type: ignore[arg-type]


def test_tool_steps_keep_calls_and_results_together() -> None:
    from voxline.context import CANCELLED, ToolCall, ToolResult

    ctx = Context("Be brief.")
    ctx.add_user("weather?")
    ctx.add_tool_calls([ToolCall("a", "weather", {"city": "Oslo"})], text="Checking.")
    assert not ctx.awaits_reply() and [c.id for c in ctx.pending_tool_calls()] == ["a"]
    with pytest.raises(ValueError, match="exactly the calls"):
        ctx.add_tool_results([ToolResult("b", "weather", output=1)])
    ctx.add_tool_results([ToolResult("a", "weather", output={"c": 3})])
    assert ctx.awaits_reply() and not ctx.ends_with_user() and ctx.pending_tool_calls() == ()
    assert ctx.messages()[2:] == [
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [{"id": "a", "name": "weather", "arguments": {"city": "Oslo"}}],
        },
        {"role": "tool", "tool_call_id": "a", "content": {"c": 3}},
    ]
    ctx.cut_last_assistant("x")  # the last turn is not the assistant's text: nothing happens
    ctx.add_tool_calls([ToolCall("c", "time"), ToolCall("d", "date")])
    ctx.cancel_pending_tool_calls()
    assert [r.error for r in ctx.turns[-1].tool_results] == [CANCELLED, CANCELLED]
    ctx.cancel_pending_tool_calls()  # nothing pending: nothing happens
    with pytest.raises(ValueError, match="at least one call"):
        ctx.add_tool_calls([])


def test_trimming_never_splits_the_current_exchange() -> None:
    from voxline.context import ToolCall, ToolResult

    ctx = Context(max_turns=4)
    ctx.add_user("old")
    ctx.add_assistant("reply")
    ctx.add_user("now")
    for i in range(3):
        ctx.add_tool_calls([ToolCall(str(i), "t")])
        ctx.add_tool_results([ToolResult(str(i), "t", output=i)])
    assert ctx.turns[0] == Turn("user", "now") and len(ctx) == 7  # over the bound, but whole
    ctx.add_assistant("done")
    ctx.add_user("next")
    assert ctx.turns[0].role == "user" and len(ctx) <= 4
