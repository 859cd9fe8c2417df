"""One test per function-calling rule the fakes enforce (pure rule modules; the wire side is in
test_fake_rules_wire.py): each bad follow-up is refused with the provider's message, each good one passes."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from voxline.testing.fakes.rules import Refusal
from voxline.testing.fakes.rules import gemini_tools as g
from voxline.testing.fakes.rules import openai as openai_rules

SIG = b"\xfb\xff signature bytes"
SIG_TEXT = base64.b64encode(SIG).decode()  # standard alphabet, with '+' and '/'


def user(text: str = "Weather?") -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": text}]}


def calls(*names: str, signed: bool = True, ids: bool = False) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    for i, name in enumerate(names):
        call: dict[str, Any] = {"name": name, "args": {}}
        if ids:
            call["id"] = f"id-{i}"
        part: dict[str, Any] = {"functionCall": call}
        if i == 0 and signed:
            part["thoughtSignature"] = SIG_TEXT
        parts.append(part)
    return {"role": "model", "parts": parts}


def responses(*names: str, ids: bool = False, response: Any = None) -> dict[str, Any]:
    parts = []
    for i, name in enumerate(names):
        fr: dict[str, Any] = {"name": name, "response": {"output": 1} if response is None else response}
        if ids:
            fr["id"] = f"id-{i}"
        parts.append({"functionResponse": fr})
    return {"role": "user", "parts": parts}


def refuse(contents: list[Any], *, signatures: bool = True, issued: list[bytes] | None = None) -> str:
    with pytest.raises(Refusal) as info:
        g.check_function_turns(contents, signatures_required=signatures, issued=[SIG] if issued is None else issued)
    assert info.value.status == 400
    return info.value.message


def accept(contents: list[Any], *, signatures: bool = True) -> None:
    g.check_function_turns(contents, signatures_required=signatures, issued=[SIG])


# --- Gemini ------------------------------------------------------------------------------------------------


def test_gemini_a_well_formed_follow_up_passes_parallel_and_sequential() -> None:
    accept([user(), calls("a", "b"), responses("a", "b")])
    accept(
        [user(), calls("a"), responses("a"), calls("b"), responses("b"), {"role": "model", "parts": [{"text": "x"}]}]
    )
    accept([user(), calls("a", ids=True), responses("a", ids=True)])
    accept([user(), calls("b", "a"), responses("a", "b")])  # matched by name, not position


def test_gemini_call_turn_must_follow_a_user_or_response_turn() -> None:
    message = refuse([calls("a"), responses("a")])  # a history that starts with a call
    assert message.startswith("Please ensure that function call turn comes immediately after a user turn")
    assert "function call turn" in refuse(
        [user(), {"role": "model", "parts": [{"text": "x"}]}, calls("a"), responses("a")]
    )


def test_gemini_response_turn_must_follow_a_call_turn() -> None:
    message = refuse([user(), responses("a")])
    assert message == "Please ensure that function response turn comes immediately after a function call turn."


def test_gemini_one_response_per_call() -> None:
    message = refuse([user(), calls("a", "b"), responses("a")])
    assert message.startswith("Please ensure that the number of function response parts is equal to the number")


def test_gemini_a_response_must_match_a_call_by_name_and_id() -> None:
    assert "does not match a function call" in refuse([user(), calls("a"), responses("b")])
    wrong_id = responses("a", ids=True)
    wrong_id["parts"][0]["functionResponse"]["id"] = "other"
    assert "does not match a function call" in refuse([user(), calls("a", ids=True), wrong_id])
    assert "does not match a function call" in refuse([user(), calls("a", ids=True), responses("a")])


def test_gemini_a_response_must_be_an_object() -> None:
    assert "must be a JSON object" in refuse([user(), calls("a"), responses("a", response="12:00")])


def test_gemini_3_the_current_turns_first_call_part_needs_its_signature() -> None:
    message = refuse([user(), calls("get_weather", signed=False), responses("get_weather")])
    assert message.startswith("Function call is missing a thought_signature in functionCall parts.")
    assert "function call `default_api:get_weather` , position 2." in message
    # The second step of the turn too (position 4).
    later = [user(), calls("a"), responses("a"), calls("b", signed=False), responses("b")]
    assert "`default_api:b` , position 4." in refuse(later)


def test_gemini_only_the_current_turn_is_validated_and_25_is_not() -> None:
    old = [user(), calls("a", signed=False), responses("a"), {"role": "model", "parts": [{"text": "ok"}]}]
    accept([*old, user("Next"), calls("b"), responses("b")])
    accept([user(), calls("a", signed=False), responses("a")], signatures=False)
    assert g.signatures_required("gemini-3.8-flash") and g.signatures_required("gemini-4-argon")
    assert not g.signatures_required("gemini-2.5-flash") and not g.signatures_required("gemini-3.8-flash", False)


def test_gemini_a_signature_must_be_one_the_server_issued_in_either_alphabet_or_the_dummy() -> None:
    changed = calls("a")
    changed["parts"][0]["thoughtSignature"] = base64.b64encode(b"something else").decode()
    assert refuse([user(), changed, responses("a")]) == "Corrupted thought signature."
    url_safe = calls("a")
    url_safe["parts"][0]["thoughtSignature"] = base64.urlsafe_b64encode(SIG).decode().rstrip("=")
    accept([user(), url_safe, responses("a")])
    dummy = calls("a")
    dummy["parts"][0]["thoughtSignature"] = g.DUMMY_SIGNATURE
    accept([user(), dummy, responses("a")])
    snake = calls("a")
    snake["parts"][0] = {"function_call": {"name": "a", "args": {}}, "thought_signature": SIG_TEXT}
    accept([user(), snake, responses("a")])


def test_gemini_declarations() -> None:
    g.check_tools([{"functionDeclarations": [{"name": "get_time", "parametersJsonSchema": {"type": "object"}}]}])
    g.check_tools([{"function_declarations": [{"name": "ns.get-time:v2"}]}])
    with pytest.raises(Refusal, match="Invalid function name"):
        g.check_tools([{"functionDeclarations": [{"name": "2fast"}]}])
    with pytest.raises(Refusal, match="cannot both be set"):
        g.check_tools([{"functionDeclarations": [{"name": "f", "parameters": {}, "parametersJsonSchema": {}}]}])


# --- OpenAI ------------------------------------------------------------------------------------------------


def chat(*messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "Hi"}, *messages], **fields}


def step(*ids: str, content: str | None = None) -> dict[str, Any]:
    tool_calls = [{"id": i, "type": "function", "function": {"name": "f", "arguments": "{}"}} for i in ids]
    return {"role": "assistant", "content": content, "tool_calls": tool_calls}


def result(call_id: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": "ok"}


def refuse_chat(body: Any) -> Refusal:
    with pytest.raises(Refusal) as info:
        openai_rules.check_chat_request(body)
    assert info.value.status == 400
    return info.value


def test_openai_a_well_formed_follow_up_passes() -> None:
    openai_rules.check_chat_request(chat(step("a", "b"), result("b"), result("a")))
    after = [step("a"), result("a"), {"role": "assistant", "content": "Done."}, {"role": "user", "content": "More"}]
    openai_rules.check_chat_request(chat(*after))


def test_openai_a_tool_message_must_answer_a_preceding_tool_call() -> None:
    refusal = refuse_chat(chat(result("a")))
    assert refusal.message.startswith("Invalid parameter: messages with role 'tool' must be a response to a preceeding")
    assert refusal.param == "messages.[1].role"
    assert refuse_chat(chat(step("a"), result("b"))).param == "messages.[2].role"
    assert refuse_chat(chat(step("a"), result("a"), result("a"))).param == "messages.[3].role"  # answered twice


def test_openai_every_tool_call_needs_its_tool_message_before_anything_else() -> None:
    refusal = refuse_chat(chat(step("a", "b"), result("a"), {"role": "user", "content": "x"}))
    assert refusal.message == (
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
        "'tool_call_id'. The following tool_call_ids did not have response messages: b"
    )
    assert refusal.param == "messages.[1].role"


def test_openai_tool_message_needs_its_id_and_calls_their_shape() -> None:
    assert refuse_chat(chat(step("a"), {"role": "tool", "content": "x"})).param == "messages[2].tool_call_id"
    bad = step("a")
    bad["tool_calls"][0]["function"]["arguments"] = {"x": 1}
    assert refuse_chat(chat(bad, result("a"))).param == "messages[1].tool_calls[0].function.arguments"
    assert refuse_chat(chat({"role": "assistant", "content": None})).param == "messages[1].content"


def test_openai_tools_declarations() -> None:
    good = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}
    openai_rules.check_chat_request(chat(tools=[good]))
    bad_name = {"type": "function", "function": {"name": "get time"}}
    assert refuse_chat(chat(tools=[bad_name])).param == "tools[0].function.name"
    bad_schema = {"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}
    assert refuse_chat(chat(tools=[bad_schema])).param == "tools[0].function.parameters"
    assert refuse_chat(chat(tools=[{"type": "retrieval"}])).param == "tools[0]"


def test_openai_a_request_may_end_with_tool_results_but_not_with_the_assistant() -> None:
    openai_rules.check_chat_request(chat(step("a"), result("a")))
    assert "last message must be" in refuse_chat(chat({"role": "assistant", "content": "x"})).message
