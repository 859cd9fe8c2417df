"""OpenAI-compatible specifics: no SDK retries, request shape, keys, configuration, and the fake's wire format.

The shared LLM contract (retries, interruption, stalls, TTFT) is in test_llm_providers.py.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI, OpenAI
from openai.types.chat import ChatCompletionMessageParam
from starlette.config import Config
from voxline.context import Context
from voxline.frames import UserTextFrame
from voxline.processors.openai_compat import NO_KEY, OpenAILLM
from voxline.providers.backoff import Backoff
from voxline.testing import Interrupt, drive, replies_ended, run_processor, texts_out
from voxline.testing.fakes.openai import FakeOpenAI, Pacing

KEY = "sk-fake-0123456789abcdef"


async def test_the_sdk_does_not_retry_on_its_own() -> None:
    async with FakeOpenAI(api_key=KEY) as fake:
        fake.fail(429, times=5)
        llm = OpenAILLM(model="m", api_key=KEY, base_url=fake.base_url, retry=Backoff(attempts=1))
        result = await run_processor(llm, [UserTextFrame(text="Hi")])
        assert len(fake.requests) == 1  # the SDK's default would have been 3 requests
        [error] = result.errors
        assert "429" in error.message and not error.fatal


async def test_request_shape_and_options() -> None:
    async with FakeOpenAI(api_key=KEY, replies=[" ".join(["One two three four five six."] * 8), "Second."]) as fake:
        fake.pacing = Pacing(tokens_per_second=20)
        llm = OpenAILLM(
            model="llama3.2",
            api_key=KEY,
            base_url=fake.base_url,
            system_prompt="Be brief.",
            temperature=0.3,
            max_tokens=100,
            extra_body={"keep_alive": "5m"},
        )
        await drive(llm, [UserTextFrame(text="Hi"), texts_out(2), Interrupt(), UserTextFrame(text="Again")])
        first, second = (r.body for r in fake.requests)
        assert first["model"] == "llama3.2" and first["stream"] is True
        assert first["temperature"] == 0.3 and first["max_tokens"] == 100 and first["keep_alive"] == "5m"
        assert fake.requests[0].headers["authorization"] == f"Bearer {KEY}"
        assert first["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
        assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "user"]
        assert second["messages"][2]["content"].startswith("One")
        assert second["messages"][2]["content"].endswith(" [interrupted]")


async def test_history_in_extra_body_sends_the_body_a_plain_call_sends() -> None:
    """The history rides in ``extra_body`` (the SDK transforms only the newest message); the body must be what
    the SDK sends when given every message itself: on every turn, after an interrupted one, with options."""
    long = " ".join(["One two three four five six."] * 8)
    async with FakeOpenAI(api_key=KEY, replies=[long, "Ok.", "Fine."]) as fake:
        fake.pacing = Pacing(tokens_per_second=20)
        options = {"temperature": 0.3, "max_tokens": 100}
        llm = OpenAILLM(
            model="m",
            api_key=KEY,
            base_url=fake.base_url,
            system_prompt="Be brief.",
            extra_body={"keep_alive": "5m"},
            **options,
        )
        steps = [UserTextFrame(text="Count"), texts_out(2), Interrupt(), UserTextFrame(text="Stop")]
        await drive(llm, [*steps, replies_ended(2), UserTextFrame(text="And now?")])
        sent = [r.body for r in fake.requests]
        partial = llm.context.turns[1]
        assert partial.interrupted and partial.text and len(sent) == 3

        system, cut = (
            {"role": "system", "content": "Be brief."},
            {"role": "assistant", "content": partial.text + " [interrupted]"},
        )
        count, stop = {"role": "user", "content": "Count"}, {"role": "user", "content": "Stop"}
        expected: list[list[Any]] = [
            [system, count],
            [system, count, cut, stop],
            [
                system,
                count,
                cut,
                stop,
                {"role": "assistant", "content": "Ok."},
                {"role": "user", "content": "And now?"},
            ],
        ]
        fake.pacing = Pacing()
        async with AsyncOpenAI(api_key=KEY, base_url=fake.base_url, max_retries=0) as client:
            for messages in expected:
                stream = await client.chat.completions.create(
                    model="m", messages=messages, stream=True, extra_body={"keep_alive": "5m"}, **options
                )
                async with stream:
                    async for _ in stream:
                        pass
        assert [r.body for r in fake.requests[3:]] == sent
        assert llm.extra_body == {"keep_alive": "5m"}  # not changed by the requests


async def test_only_plain_text_messages_skip_the_sdk_transform() -> None:
    llm = OpenAILLM(model="m", api_key=KEY, extra_body={"keep_alive": "5m"})
    llm.context.add_user("One")
    llm.context.add_assistant("Two")
    llm.context.add_user("Three")
    messages, extra = llm.request_body(llm.context)
    assert messages == [{"role": "user", "content": "Three"}]
    assert extra == {"keep_alive": "5m", "messages": llm.request_messages(llm.context)}

    class WithImage(OpenAILLM):
        def request_messages(self, context: Context) -> list[ChatCompletionMessageParam]:
            image: ChatCompletionMessageParam = {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}],
            }
            return [image, *super().request_messages(context)]

    llm = WithImage(model="m", api_key=KEY)
    llm.context.add_user("Hi")
    messages, extra = llm.request_body(llm.context)
    assert len(messages) == 2 and extra == {}


async def test_no_key_sends_a_placeholder_that_local_servers_ignore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    async with FakeOpenAI(api_key=None, replies="Local.") as fake:
        result = await run_processor(OpenAILLM(model="m", base_url=fake.base_url), [UserTextFrame(text="Hi")])
        assert result.text() == "Local."
        assert fake.requests[0].headers["authorization"] == f"Bearer {NO_KEY}"


async def test_api_key_never_reaches_logs_or_error_messages(caplog: pytest.LogCaptureFixture) -> None:
    async with FakeOpenAI(api_key="the-right-key") as fake:
        with caplog.at_level(logging.DEBUG):
            result = await run_processor(
                OpenAILLM(model="m", api_key=KEY, base_url=fake.base_url), [UserTextFrame(text="Hi")]
            )
            [error] = result.errors
            assert "401" in error.message and len(fake.requests) == 1
            fake.api_key = KEY
            fake.fail(400, message=f"Incorrect API key provided: {KEY}")
            result = await run_processor(
                OpenAILLM(model="m", api_key=KEY, base_url=fake.base_url), [UserTextFrame(text="Hi")]
            )
            assert "Incorrect API key provided: ***" in result.errors[0].message
        assert KEY not in caplog.text


async def test_unreachable_server_is_a_clear_retryable_error() -> None:
    async with FakeOpenAI() as fake:
        url = fake.base_url
    llm = OpenAILLM(model="m", base_url=url, retry=Backoff(attempts=2, initial=0.001))
    result = await run_processor(llm, [UserTextFrame(text="Hi")])
    [error] = result.errors
    assert "unreachable" in error.message and not error.fatal


def test_configuration_from_env_and_validation() -> None:
    env = {"OPENAI_MODEL": "qwen2.5", "OPENAI_BASE_URL": "http://localhost:11434/v1", "OPENAI_API_KEY": KEY}
    llm = OpenAILLM.from_config(Config(environ=env))
    assert (llm.model, llm.base_url) == ("qwen2.5", "http://localhost:11434/v1")
    assert OpenAILLM.from_config(Config(environ={})).model == "gpt-4o-mini"  # the provider's default, as the app's
    with pytest.raises(ValueError, match="OPENAI_MODEL"):
        OpenAILLM(model="")
    with pytest.raises(ValueError, match="OPENAI_BASE_URL must be a http:// or https:// URL"):
        OpenAILLM.from_config(Config(environ={"OPENAI_BASE_URL": "localhost:11434"}))
    with pytest.raises(ValueError, match="http"):
        OpenAILLM(model="m", base_url="localhost:11434")


# --- the fake's wire format ---------------------------------------------------------------------------


async def test_fake_sse_chunks_and_done() -> None:
    async with FakeOpenAI(api_key=KEY, replies="Hi there.") as fake, httpx.AsyncClient() as client:
        response = await client.post(
            f"{fake.base_url}/chat/completions",
            headers={"authorization": f"Bearer {KEY}"},
            json={
                "model": "m",
                "stream": True,
                "stream_options": {"include_usage": True},
                "messages": [{"role": "user", "content": "Hello"}],
            },
        )
        assert response.status_code == 200 and response.headers["content-type"] == "text/event-stream"
        events = response.text.split("\n\n")
        assert events[-1] == "" and events[-2] == "data: [DONE]"
        chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-2]]
        assert all(e.startswith("data: ") for e in events[:-1])
        assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        assert text == "Hi there."
        assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 2
        assert {c["object"] for c in chunks} == {"chat.completion.chunk"}


async def test_fake_rejects_bad_auth_and_a_request_not_ending_with_the_user() -> None:
    async with FakeOpenAI(api_key=KEY) as fake, httpx.AsyncClient() as client:
        url = f"{fake.base_url}/chat/completions"
        ok = {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}
        unauth = await client.post(url, json=ok)
        wrong_last = await client.post(
            url,
            json={"model": "m", "messages": [{"role": "assistant", "content": "x"}]},
            headers={"authorization": f"Bearer {KEY}"},
        )
        plain = await client.post(url, json=ok, headers={"authorization": f"Bearer {KEY}"})
        assert unauth.status_code == 401 and unauth.json()["error"]["code"] == "invalid_api_key"
        assert wrong_last.status_code == 400 and set(wrong_last.json()["error"]) == {"message", "type", "param", "code"}
        assert plain.json()["choices"][0]["message"]["content"] == "Hello! I am a fake chat model."


def test_fake_runs_in_a_background_thread_for_sync_code() -> None:
    fake = FakeOpenAI(api_key=KEY, replies="From a thread.").start_in_thread()
    try:
        client = OpenAI(api_key=KEY, base_url=fake.base_url, max_retries=0)
        stream = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "Hi"}], stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        client.close()
    finally:
        fake.stop_thread()
    assert text == "From a thread."
    with pytest.raises(httpx.ConnectError):  # stopped means stopped
        httpx.post(f"{fake.base_url}/chat/completions", json={})


async def test_left_out_arguments_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeOpenAI(api_key=KEY, replies="From the environment.") as fake:
        monkeypatch.setenv("OPENAI_MODEL", "env-model")
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        result = await run_processor(OpenAILLM(), [UserTextFrame(text="Hi")])
        assert result.text() == "From the environment."
        assert fake.requests[0].body["model"] == "env-model"
        monkeypatch.delenv("OPENAI_MODEL")
        with pytest.raises(ValueError, match="OPENAI_MODEL"):
            OpenAILLM()


async def test_warm_up_looks_the_model_up_on_start() -> None:
    async with FakeOpenAI(api_key=KEY, replies="Warm.") as fake:
        await run_processor(
            OpenAILLM(model="llama3.2", api_key=KEY, base_url=fake.base_url), [UserTextFrame(text="Hi")]
        )
        assert fake.lookups == ["/v1/models/llama3.2"] and len(fake.requests) == 1


def test_warm_up_builds_the_chunk_models_the_first_reply_would_build() -> None:
    # A fresh interpreter: in this one, earlier tests have built them already.
    code = """
from openai.types.chat.chat_completion_chunk import ChatCompletionChunk, Choice, ChoiceDelta
from voxline.processors.openai_compat import OpenAILLM
models = (ChatCompletionChunk, Choice, ChoiceDelta)
assert not any(m.__pydantic_complete__ for m in models)
OpenAILLM(model="m", api_key="k")._prebuild()
assert all(m.__pydantic_complete__ for m in models)
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
