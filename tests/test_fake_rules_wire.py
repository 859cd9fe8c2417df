"""The fakes answer a refused request the way the providers do, as the official SDKs see it (no processors).

Which requests are refused is tested rule by rule in test_fake_rules.py; here: that a refusal leaves each fake as
the provider's own error (status, message, ``param``, ``dg-error``) or WebSocket close (code and reason).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import numpy as np
import openai
import pytest
from deepgram import AsyncDeepgramClient, DeepgramClientEnvironment
from deepgram.core.api_error import ApiError
from deepgram.speak.v1 import SpeakV1Text
from google import genai
from google.genai import errors, types
from voxline.testing.fakes.deepgram import FakeDeepgram
from voxline.testing.fakes.gemini import FakeGemini
from voxline.testing.fakes.openai import FakeOpenAI
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus

pytestmark = pytest.mark.filterwarnings("ignore:websockets.exceptions.InvalidStatusCode is deprecated")

KEY = "test-key"


def deepgram(fake: FakeDeepgram) -> AsyncDeepgramClient:
    environment = DeepgramClientEnvironment(
        base=fake.base_url, production=fake.ws_url, agent=fake.ws_url, agent_rest=fake.base_url
    )
    return AsyncDeepgramClient(api_key=KEY, environment=environment)


def pcm(seconds: float, rate: int = 16000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * 220 * t) * 5000).astype("<i2").tobytes()


async def test_gemini_refusal_is_a_400_invalid_argument_with_the_apis_message() -> None:
    async with FakeGemini(api_key=KEY) as fake:
        client = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=fake.url))
        config = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(thinking_level="MINIMAL"))
        stream = await client.aio.models.generate_content_stream(model="gemini-3.8-flash", contents="Hi", config=config)
        with pytest.raises(errors.ClientError) as info:
            async for _ in stream:
                pass
        assert (info.value.code, info.value.status) == (400, "INVALID_ARGUMENT")
        assert info.value.message is not None and "Thinking level MINIMAL is not supported" in info.value.message
        [request] = fake.requests
        assert request.status == 400 and request.refusal is not None and request.completed
        await client.aio.aclose()


async def test_gemini_unknown_model_is_404_on_lookup_and_generate() -> None:
    async with FakeGemini(api_key=KEY) as fake:
        client = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=fake.url))
        with pytest.raises(errors.ClientError) as lookup:
            await client.aio.models.get(model="gemini-9-flash")
        stream = await client.aio.models.generate_content_stream(model="gemini-9-flash", contents="Hi")
        with pytest.raises(errors.ClientError) as generate:
            async for _ in stream:
                pass
        await client.aio.aclose()
    for info in (lookup, generate):
        assert info.value.code == 404 and info.value.status == "NOT_FOUND"
        assert "models/gemini-9-flash is not found" in (info.value.message or "")


async def test_openai_refusal_carries_openais_param_and_code() -> None:
    async with FakeOpenAI(api_key=KEY) as fake:
        client = openai.AsyncOpenAI(api_key=KEY, base_url=fake.base_url, max_retries=0)
        with pytest.raises(openai.BadRequestError) as info:
            await client.chat.completions.create(
                model="o3-mini", messages=[{"role": "user", "content": "Hi"}], max_tokens=10, stream=True
            )
        await client.close()
    body = info.value.body
    assert isinstance(body, dict) and body["param"] == "max_tokens" and body["code"] == "unsupported_parameter"
    assert "Use 'max_completion_tokens' instead." in body["message"]


async def test_listen_handshake_refusal_is_400_with_dg_error() -> None:
    async with FakeDeepgram() as fake:
        with pytest.raises(ApiError) as sdk:
            async with deepgram(fake).listen.v1.connect(model="nova-3", utterance_end_ms=1000, interim_results="false"):
                pass
        url = f"{fake.ws_url}/v1/listen?model=nova-9"
        with pytest.raises(InvalidStatus) as raw:
            async with connect(url, additional_headers={"Authorization": f"Token {KEY}"}):
                pass
    assert sdk.value.status_code == 400
    response = raw.value.response
    assert response.status_code == 400 and response.headers["dg-error"].endswith(
        "No such model/language/tier combination found."
    )
    assert "dg-request-id" in response.headers
    assert fake.attempts == [("/v1/listen", 400), ("/v1/listen", 400)] and fake.listen_connections == []


async def test_listen_undecodable_audio_closes_1008_data_0000() -> None:
    async with FakeDeepgram() as fake, deepgram(fake).listen.v1.connect(model="nova-3") as conn:  # no encoding
        await conn.send_media(pcm(0.1))  # raw PCM where a container is expected
        with pytest.raises(ConnectionClosedError) as info:
            async for _ in conn:
                pass
    assert info.value.rcvd is not None and (info.value.rcvd.code, info.value.rcvd.reason) == (1008, "DATA-0000")


async def test_listen_keepalive_without_any_audio_still_times_out_net_0001() -> None:
    async with FakeDeepgram(idle_timeout=0.4) as fake:
        async with deepgram(fake).listen.v1.connect(model="nova-3", encoding="linear16", sample_rate=16000) as conn:
            for _ in range(3):
                await conn.send_keep_alive()
                await asyncio.sleep(0.1)
            with pytest.raises(ConnectionClosedError) as info:
                async for _ in conn:
                    pass
        record = fake.listen_connections[0]
    assert info.value.rcvd is not None and info.value.rcvd.reason == "NET-0001"
    assert record.message_types() == ["KeepAlive"] * 3


async def test_speak_refusals_handshake_400_and_long_text_closes_1009() -> None:
    async with FakeDeepgram() as fake:
        with pytest.raises(ApiError) as handshake:
            async with deepgram(fake).speak.v1.connect(model="aura-2-nobody-en"):
                pass
        async with deepgram(fake).speak.v1.connect(
            model="aura-2-thalia-en", encoding="linear16", sample_rate=24000
        ) as tts:
            await tts.send_text(SpeakV1Text(text="x" * 2001))
            with pytest.raises(ConnectionClosedError) as info:
                async for _ in tts:
                    pass
    assert handshake.value.status_code == 400
    assert info.value.rcvd is not None and (info.value.rcvd.code, info.value.rcvd.reason) == (1009, "BIG-0001")


async def test_speak_rest_too_long_is_413_in_deepgrams_error_body() -> None:
    async with FakeDeepgram() as fake, httpx.AsyncClient() as http:
        response = await http.post(
            f"{fake.base_url}/v1/speak?model=aura-asteria-en&encoding=linear16&container=none",
            json={"text": "y" * 2001},
            headers={"Authorization": f"Token {KEY}"},
        )
    assert response.status_code == 413
    body = response.json()
    assert body["err_msg"] == "Input text exceeds maximum character limit of 2000." and "request_id" in body


async def test_gemini_follow_up_without_the_signature_is_a_400_as_the_sdk_sees_it() -> None:
    from voxline.testing.fakes._llm import Call, CallTools

    async with FakeGemini(api_key=KEY, replies=[CallTools(Call("get_time", {"zone": "CET"}))]) as fake:
        client = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=fake.url))
        declared = types.FunctionDeclaration(name="get_time", parameters_json_schema={"type": "object"})
        config = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[declared])])
        asked = types.Content(role="user", parts=[types.Part(text="Time?")])
        parts: list[types.Part] = []
        stream = await client.aio.models.generate_content_stream(
            model="gemini-3.8-flash", contents=[asked], config=config
        )
        async for chunk in stream:
            parts.extend(chunk.candidates[0].content.parts or [])  # type: ignore[index, union-attr]
        [call] = [p for p in parts if p.function_call is not None]
        assert call.thought_signature == fake.issued_signatures[0]  # the SDK decoded it to the bytes sent
        answer = types.Content(
            role="user",
            parts=[types.Part.from_function_response(name="get_time", response={"output": "12:00"})],
        )
        unsigned = types.Content(role="model", parts=[types.Part(function_call=call.function_call)])
        stream = await client.aio.models.generate_content_stream(
            model="gemini-3.8-flash", contents=[asked, unsigned, answer], config=config
        )
        with pytest.raises(errors.ClientError) as info:
            async for _ in stream:
                pass
        assert info.value.code == 400 and info.value.status == "INVALID_ARGUMENT"
        assert "missing a thought_signature" in (info.value.message or "") and "position 2" in (
            info.value.message or ""
        )
        signed = types.Content(role="model", parts=[call])
        stream = await client.aio.models.generate_content_stream(
            model="gemini-3.8-flash", contents=[asked, signed, answer], config=config
        )
        async for _ in stream:
            pass
        assert fake.requests[-1].refusal is None
        await client.aio.aclose()


async def test_openai_unanswered_tool_call_is_openais_400_as_the_sdk_sees_it() -> None:
    async with FakeOpenAI(api_key=KEY) as fake:
        client = openai.AsyncOpenAI(api_key=KEY, base_url=fake.base_url, max_retries=0)
        call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        messages: list[Any] = [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "user", "content": "Hello?"},
        ]
        with pytest.raises(openai.BadRequestError) as info:
            await client.chat.completions.create(model="m", messages=messages, stream=True)
        await client.close()
    assert info.value.body["param"] == "messages.[1].role"  # type: ignore[index]
    assert "did not have response messages: call_1" in info.value.message
