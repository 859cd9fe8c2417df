"""Tool calling end to end, per provider: the real SDK (google-genai, openai) against the strict fakes.

The fakes refuse a follow-up the real API refuses (a call without its response, a Gemini 3 call step without
its thought signature, ...), so a test passing here means the request shape is one the provider accepts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
import pytest
from voxline.context import CANCELLED
from voxline.frames import LLMResponseEndFrame, UserTextFrame
from voxline.llm import LLMProcessor
from voxline.processors.gemini import GeminiLLM
from voxline.processors.openai_compat import OpenAILLM
from voxline.providers.backoff import Backoff
from voxline.testing import Interrupt, Until, drive, replies_ended, run_processor
from voxline.testing.fakes._llm import Call, CallTools, ChatRequest, FakeLLMServer, Reply
from voxline.testing.fakes.gemini import FakeGemini
from voxline.testing.fakes.openai import FakeOpenAI
from voxline.tools import Toolbox, tool

KEY = "test-key-0123456789"
ran: list[str] = []


@tool
async def get_time(zone: str = "UTC") -> str:
    """The current time in a time zone."""
    ran.append(f"time:{zone}")
    return f"12:00 {zone}"


@tool
async def get_weather(city: str) -> dict[str, object]:
    """The weather in a city."""
    ran.append(f"weather:{city}")
    if city == "Atlantis":
        raise LookupError("no such city")
    return {"city": city, "temp_c": 21}


@tool
async def slow(seconds: float) -> str:
    """Sleeps."""
    ran.append("slow")
    await asyncio.sleep(seconds)
    return "done"


TOOLS = [get_time, get_weather, slow]


@attrs.define
class Provider:
    name: str
    fake: FakeLLMServer
    make: Callable[..., LLMProcessor]

    def llm(self, **kwargs: Any) -> LLMProcessor:
        kwargs.setdefault("retry", Backoff(attempts=2, initial=0.005, jitter=0))
        kwargs.setdefault("first_token_timeout", 5.0)
        kwargs.setdefault("tools", TOOLS)
        return self.make(**kwargs)

    def chat(self, index: int) -> ChatRequest:
        chat = self.fake.requests[index].chat
        assert chat is not None, self.fake.requests[index].refusal
        return chat


@pytest.fixture(params=["gemini", "openai"])
async def provider(request: pytest.FixtureRequest) -> AsyncIterator[Provider]:
    ran.clear()
    if request.param == "gemini":
        async with FakeGemini(api_key=KEY) as gemini:
            yield Provider("gemini", gemini, lambda **kw: GeminiLLM(api_key=KEY, base_url=gemini.url, **kw))
    else:
        async with FakeOpenAI(api_key=KEY) as oai:
            yield Provider("openai", oai, lambda **kw: OpenAILLM(model="m", api_key=KEY, base_url=oai.base_url, **kw))


def outputs(chat: ChatRequest) -> list[Any]:
    """What each result said, whatever the wire form (Gemini: an object; OpenAI: JSON text)."""
    out = []
    for result in chat.tool_results:
        value = result.response
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        if isinstance(value, dict) and value.keys() == {"output"}:
            value = value["output"]
        out.append(value)
    return out


def no_refusals(provider: Provider) -> None:
    refused = [r.refusal.message for r in provider.fake.requests if r.refusal is not None]
    assert refused == []


async def test_a_call_its_result_and_the_reply(provider: Provider) -> None:
    provider.fake.replies = [
        CallTools(Call("get_weather", {"city": "Oslo"}), text="Let me check."),
        "It is 21 degrees.",
    ]
    result = await run_processor(provider.llm(), [UserTextFrame(text="Weather in Oslo?")])
    no_refusals(provider)
    assert result.errors == [] and ran == ["weather:Oslo"]
    assert result.text() == "Let me check. It is 21 degrees."  # a space between the steps' texts
    assert provider.chat(0).tools == ("get_time", "get_weather", "slow")
    assert outputs(provider.chat(1)) == [{"city": "Oslo", "temp_c": 21}]
    assert [role for role, _ in provider.chat(1).turns] == ["user", "assistant", "tool"]


async def test_parallel_calls_are_answered_in_one_follow_up(provider: Provider) -> None:
    calls = CallTools(Call("get_time", {"zone": "CET"}), Call("get_weather", {"city": "Rome"}), Call("get_time"))
    provider.fake.replies = [calls, "Noon, and warm."]
    result = await run_processor(provider.llm(), [UserTextFrame(text="Time and weather?")])
    no_refusals(provider)
    assert result.errors == [] and sorted(ran) == ["time:CET", "time:UTC", "weather:Rome"]
    assert outputs(provider.chat(1)) == ["12:00 CET", {"city": "Rome", "temp_c": 21}, "12:00 UTC"]
    ids = [c.id for c in provider.fake.requests[0].calls_sent]
    if provider.name == "openai":
        assert [r.id for r in provider.chat(1).tool_results] == ids


async def test_steps_in_a_row_and_the_next_turn_keep_the_history_valid(provider: Provider) -> None:
    provider.fake.replies = [
        CallTools(Call("get_time", {"zone": "JST"})),
        CallTools(Call("get_weather", {"city": "Tokyo"})),
        "Evening in Tokyo, 21 degrees.",
        "You are welcome.",
    ]
    llm = provider.llm()
    await drive(llm, [UserTextFrame(text="Tokyo?"), replies_ended(1), UserTextFrame(text="Thanks")])
    no_refusals(provider)
    assert len(provider.fake.requests) == 4 and ran == ["time:JST", "weather:Tokyo"]
    roles = [role for role, _ in provider.chat(3).turns]
    assert roles == ["user", "assistant", "tool", "assistant", "tool", "assistant", "user"]


async def test_a_failing_tool_goes_back_as_an_error_the_model_reads(provider: Provider) -> None:
    provider.fake.replies = [CallTools(Call("get_weather", {"city": "Atlantis"}), Call("nope")), "Sorry."]
    result = await run_processor(provider.llm(), [UserTextFrame(text="Atlantis?")])
    no_refusals(provider)
    assert result.errors == [] and result.text().endswith("Sorry.")
    assert outputs(provider.chat(1)) == [
        {"error": "LookupError: no such city"},
        {"error": "there is no tool named 'nope'"},
    ]


async def test_a_barge_in_during_a_tool_leaves_a_history_the_api_accepts(provider: Provider) -> None:
    provider.fake.replies = [CallTools(Call("slow", {"seconds": 30})), "Okay, stopping."]
    llm = provider.llm()
    steps = [UserTextFrame(text="Wait"), Until(lambda _: "slow" in ran), Interrupt(), UserTextFrame(text="Stop")]
    result = await drive(llm, [*steps, replies_ended(2)])
    no_refusals(provider)
    assert [e.interrupted for e in result.downstream_of(LLMResponseEndFrame)] == [True, False]
    turns = provider.chat(1).turns
    assert [role for role, _ in turns] == ["user", "assistant", "tool", "user"]
    assert CANCELLED in turns[2][1] and turns[-1] == ("user", "Stop")


async def test_a_reply_function_sees_the_results(provider: Provider) -> None:
    def reply(chat: ChatRequest) -> Reply:
        if not chat.tool_results:
            return CallTools(Call("get_time", {"zone": "PST"}))
        return f"It is {outputs(chat)[0]}."

    provider.fake.replies = reply
    result = await run_processor(provider.llm(), [UserTextFrame(text="Time in LA?")])
    assert result.text() == "It is 12:00 PST." and result.errors == []


# --- Gemini specifics --------------------------------------------------------------------------------------


async def test_gemini_sends_back_the_signature_it_received_on_the_first_call_part() -> None:
    async with FakeGemini(api_key=KEY, call_ids=True) as fake:
        fake.replies = [CallTools(Call("get_time"), Call("get_weather", {"city": "Oslo"})), "Done."]
        llm = GeminiLLM(api_key=KEY, base_url=fake.url, tools=TOOLS)
        result = await run_processor(llm, [UserTextFrame(text="Both?")])
        assert result.errors == [] and [r.refusal for r in fake.requests] == [None, None]
        [issued] = fake.issued_signatures
        model_turn = fake.requests[1].body["contents"][1]
        first, second = model_turn["parts"]
        from voxline.testing.fakes.rules.gemini_tools import signature_bytes

        assert signature_bytes(first["thoughtSignature"]) == issued and "thoughtSignature" not in second
        sent_ids = [c.id for c in fake.requests[0].calls_sent]
        assert [p["functionCall"]["id"] for p in model_turn["parts"]] == sent_ids
        assert [r.id for r in fake.requests[1].chat.tool_results] == sent_ids  # type: ignore[union-attr]
        declared = fake.requests[0].body["tools"][0]["functionDeclarations"]
        # google-genai 3.6 writes this field in snake_case (proto JSON accepts either spelling).
        assert declared[1] == {
            "name": "get_weather",
            "description": "The weather in a city.",
            "parameters_json_schema": get_weather.parameters,
        }


async def test_gemini_tool_history_rides_in_extra_body_and_sends_the_body_typed_contents_send() -> None:
    """After tool steps, the history still goes through ``extra_body`` in wire form; the body must be exactly
    what google-genai builds from ``types.Content`` objects (signature bytes, call and response parts)."""
    from google import genai
    from google.genai import types

    async with FakeGemini(api_key=KEY, call_ids=True) as fake:
        fake.replies = [CallTools(Call("get_time", {"zone": "CET"}), text="One moment."), "Noon.", "Bye."]
        llm = GeminiLLM(api_key=KEY, base_url=fake.url, tools=TOOLS, system_prompt="Be brief.")
        await drive(llm, [UserTextFrame(text="Time?"), replies_ended(1), UserTextFrame(text="Thanks")])
        assert [r.refusal for r in fake.requests] == [None, None, None]
        contents, config = llm.request_arguments(llm.context)
        assert len(contents) == 1 and config.http_options is not None  # the fast path, with tool history

        step = llm.context.turns[1]
        [raw_call] = [p for p in step.raw.value if "function_call" in p]  # type: ignore[union-attr]
        call = fake.requests[0].calls_sent[0]
        typed = [
            types.Content(role="user", parts=[types.Part(text="Time?")]),
            types.Content(
                role="model",
                parts=[
                    types.Part(text="One"),
                    types.Part(text=" moment."),
                    types.Part(
                        function_call=types.FunctionCall(id=call.id, name="get_time", args={"zone": "CET"}),
                        thought_signature=raw_call["thought_signature"],
                    ),
                ],
            ),
            types.Content(
                role="user",
                parts=[
                    types.Part(
                        function_response=types.FunctionResponse(
                            id=call.id, name="get_time", response={"output": "12:00 CET"}
                        )
                    )
                ],
            ),
            types.Content(role="model", parts=[types.Part(text="Noon.")]),
            types.Content(role="user", parts=[types.Part(text="Thanks")]),
        ]
        sent = fake.requests[2].body
        client = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=fake.url))
        stream = await client.aio.models.generate_content_stream(
            model=llm.model, contents=typed, config=llm.request_config(llm.context)
        )
        async for _ in stream:
            pass
        await client.aio.aclose()
        assert fake.requests[3].body == sent


async def test_gemini_a_step_another_provider_made_gets_the_documented_stand_in_signature() -> None:
    """A fallback mid-turn: OpenAI made the call step, Gemini 3 answers the results. Without a signature the
    request is refused (current turn); with the documented stand-in it is accepted."""
    from voxline.context import ToolCall, ToolResult

    async with FakeGemini(api_key=KEY, replies="Noon.") as fake:
        llm = GeminiLLM(api_key=KEY, base_url=fake.url, tools=TOOLS, warm_up=False)
        llm.context.add_user("Time?")
        llm.context.add_tool_calls([ToolCall("call_abc", "get_time", {}, raw_arguments="{}")])
        llm.context.add_tool_results([ToolResult("call_abc", "get_time", output="12:00 UTC")])
        await llm.on_start()
        try:
            reply = [item async for item in llm.stream(llm.context)]
        finally:
            await llm.on_stop()
        assert reply == ["Noon."] and fake.requests[0].refusal is None
        step = fake.requests[0].body["contents"][1]
        assert step == {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "get_time", "args": {}},
                    "thoughtSignature": "skip_thought_signature_validator",
                }
            ],
        }


async def test_gemini_25_steps_from_elsewhere_get_no_stand_in_signature() -> None:
    from voxline.context import Context, ToolCall, ToolResult

    context = Context()
    context.add_user("Time?")
    context.add_tool_calls([ToolCall("call_abc", "get_time", {})])
    context.add_tool_results([ToolResult("call_abc", "get_time", output="12:00")])
    for model, signed in (("gemini-2.5-flash", False), ("gemini-3.8-flash", True), ("gemini-flash-latest", True)):
        contents = GeminiLLM(api_key=KEY, model=model).request_contents(context)
        assert ("thought_signature" in contents[1]["parts"][0]) is signed  # type: ignore[index]


# --- OpenAI specifics --------------------------------------------------------------------------------------


async def test_openai_arguments_go_back_exactly_as_streamed_and_bad_json_is_an_error_result() -> None:
    async with FakeOpenAI(api_key=KEY) as fake:
        fake.replies = [CallTools(Call("get_weather", {"city": "Lyon"})), "Mild."]
        llm = OpenAILLM(model="m", api_key=KEY, base_url=fake.base_url, tools=TOOLS)
        result = await run_processor(llm, [UserTextFrame(text="Lyon?")])
        assert result.errors == []
        assistant = fake.requests[1].body["messages"][1]
        assert assistant["content"] is None
        assert assistant["tool_calls"] == [
            {
                "id": "call_fake0001",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Lyon"}'},
            }
        ]
        assert fake.requests[0].body["tools"][0] == {
            "type": "function",
            "function": {
                "name": "get_time",
                "description": "The current time in a time zone.",
                "parameters": get_time.parameters,
            },
        }

    from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall, ChoiceDeltaToolCallFunction
    from voxline.processors.openai_compat.tools import CallAssembler

    assembler = CallAssembler()
    head = ChoiceDeltaToolCall(
        index=0, id="c1", type="function", function=ChoiceDeltaToolCallFunction(name="get_time", arguments="")
    )
    tail = ChoiceDeltaToolCall(index=0, function=ChoiceDeltaToolCallFunction(arguments='{"a": '))
    assert assembler.add([head, tail]) == []
    [call] = assembler.finish()
    assert call.arguments == {} and call.raw_arguments == '{"a": '
    assert "not a JSON object" in str((await Toolbox(TOOLS).run(call)).error)


async def test_openai_tool_history_rides_in_extra_body_and_sends_the_body_a_plain_call_sends() -> None:
    from openai import AsyncOpenAI

    async with FakeOpenAI(api_key=KEY) as fake:
        fake.replies = [
            CallTools(Call("get_time", {"zone": "CET"}), Call("get_time"), text="Checking."),
            "Noon.",
            "Bye.",
        ]
        llm = OpenAILLM(model="m", api_key=KEY, base_url=fake.base_url, tools=TOOLS, system_prompt="Be brief.")
        await drive(llm, [UserTextFrame(text="Time?"), replies_ended(1), UserTextFrame(text="Thanks")])
        messages, extra = llm.request_body(llm.context)
        assert len(messages) == 1 and "messages" in extra  # the fast path, with tool history
        sent = fake.requests[2].body
        async with AsyncOpenAI(api_key=KEY, base_url=fake.base_url, max_retries=0) as client:
            stream = await client.chat.completions.create(
                model="m", messages=sent["messages"], stream=True, tools=sent["tools"]
            )
            async with stream:
                async for _ in stream:
                    pass
        assert fake.requests[3].body == sent
