"""Gemini specifics: request shape (thinking, model path, API versions), configuration, secrets, and the fake itself.

The shared LLM contract (retries, interruption, stalls, TTFT) is in test_llm_providers.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

import httpx
import pytest
from google import genai
from google.genai import errors, types
from starlette.config import Config
from voxline.context import Context
from voxline.frames import UserTextFrame
from voxline.processors.gemini import DEFAULT_MODEL, GeminiLLM, thinking_config_for
from voxline.providers.backoff import Backoff
from voxline.testing import Interrupt, Sleep, drive, replies_ended, run_processor, texts_out
from voxline.testing.fakes.gemini import FakeGemini, Pacing

KEY = "AIzaFakeKey-abcdefghijklmnop"


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gemini-2.5-flash", {"thinking_budget": 0}),
        ("gemini-2.5-flash-lite", {"thinking_budget": 0}),
        ("gemini-2.5-pro", {"thinking_budget": 128}),
        ("gemini-3.8-flash", {"thinking_level": "LOW"}),  # 3.7+ Flash refuses MINIMAL (issue 8)
        ("gemini-3.7-flash", {"thinking_level": "LOW"}),
        ("gemini-3.6-flash", {"thinking_level": "MINIMAL"}),
        ("models/gemini-3.5-flash-lite", {"thinking_level": "MINIMAL"}),
        ("gemini-3.1-pro-preview", {"thinking_level": "LOW"}),
        ("gemini-flash-latest", {}),  # an alias: its target moves, so no thinking field (the model's default)
    ],
)
async def test_thinking_is_the_fastest_setting_the_model_accepts(model: str, expected: dict[str, object]) -> None:
    async with FakeGemini(api_key=KEY, replies="Ok.") as fake:
        result = await run_processor(GeminiLLM(api_key=KEY, base_url=fake.url, model=model), [UserTextFrame(text="Hi")])
        assert result.errors == []
        [request] = fake.requests
        assert FakeGemini.thinking_config(request) == expected
        assert request.path == f"/v1/models/{model.removeprefix('models/')}:streamGenerateContent"


def test_thinking_config_never_sets_both_and_unknown_models_get_none() -> None:
    for model in ("gemini-2.5-flash", "gemini-3.8-flash", "gemini-4-argon"):
        config = thinking_config_for(model)
        assert config is not None and (config.thinking_budget is None) != (config.thinking_level is None)
    for model in ("something-else", "gemini-3.9-flash", "gemini-flash-latest", "gemini-2.0-flash"):
        assert thinking_config_for(model) is None


async def test_fake_rejects_both_thinking_fields_like_the_api() -> None:
    async with FakeGemini(api_key=KEY) as fake:
        client = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=fake.url))
        config = types.GenerateContentConfig(
            thinking_config=types.ThinkingConfig(thinking_budget=0, thinking_level=types.ThinkingLevel.MINIMAL)
        )
        # google-genai 3.4 sends the request on the first iteration (its continuation wrapper), not on the await.
        stream = await client.aio.models.generate_content_stream(model="gemini-3.8-flash", contents="Hi", config=config)
        with pytest.raises(errors.ClientError) as info:
            async for _ in stream:
                pass
        assert info.value.code == 400 and info.value.status == "INVALID_ARGUMENT"
        await client.aio.aclose()


async def test_default_model_and_request_body() -> None:
    assert DEFAULT_MODEL == "gemini-3.8-flash"
    async with FakeGemini(api_key=KEY, replies="Sure.") as fake:
        llm = GeminiLLM(api_key=KEY, base_url=fake.url, system_prompt="Be brief.", max_output_tokens=200)
        await run_processor(llm, [UserTextFrame(text="Hello")])
        [request] = fake.requests
        assert request.headers["x-goog-api-key"] == KEY
        assert request.body["contents"] == [{"parts": [{"text": "Hello"}], "role": "user"}]
        assert request.body["systemInstruction"]["parts"] == [{"text": "Be brief."}]
        assert request.body["generationConfig"]["maxOutputTokens"] == 200
        assert "temperature" not in request.body["generationConfig"]  # deprecated for 3.x: not sent by default


async def test_v1beta_and_a_base_url_path_prefix_are_served() -> None:
    async with FakeGemini(api_key=KEY, replies="Fine.") as fake:
        llm = GeminiLLM(api_key=KEY, base_url=fake.url, api_version="v1beta")
        result = await run_processor(llm, [UserTextFrame(text="Hi")])
        assert result.text() == "Fine." and fake.requests[0].path.startswith("/v1beta/models/")


async def test_interrupted_reply_is_sent_back_marked() -> None:
    async with FakeGemini(api_key=KEY, replies=[" ".join(["One two three four five six."] * 8), "Ok."]) as fake:
        fake.pacing = Pacing(tokens_per_second=20)
        llm = GeminiLLM(api_key=KEY, base_url=fake.url)
        await drive(llm, [UserTextFrame(text="Count"), texts_out(2), Interrupt(), UserTextFrame(text="Stop")])
        contents = fake.requests[1].body["contents"]
        assert [c["role"] for c in contents] == ["user", "model", "user"]
        assert contents[1]["parts"][0]["text"].endswith(" [interrupted]")


async def test_history_in_extra_body_sends_the_body_typed_contents_send() -> None:
    """The SDK gets the newest turn as a dict and the history rides in ``HttpOptions.extra_body``; the wire body
    must be exactly what google-genai builds from its own ``types.Content`` objects: on every turn, after an
    interrupted one, with the system prompt and options."""
    long = " ".join(["One two three four five six."] * 8)
    async with FakeGemini(api_key=KEY, replies=[long, "Ok.", "Fine."]) as fake:
        fake.pacing = Pacing(tokens_per_second=20)
        llm = GeminiLLM(api_key=KEY, base_url=fake.url, system_prompt="Be brief.", max_output_tokens=99)
        steps = [UserTextFrame(text="Count"), texts_out(2), Interrupt(), UserTextFrame(text="Stop")]
        await drive(llm, [*steps, replies_ended(2), UserTextFrame(text="And now?")])
        sent = [r.body for r in fake.requests]
        partial = llm.context.turns[1]
        assert partial.interrupted and partial.text and len(sent) == 3

        def typed(*turns: tuple[str, str]) -> list[types.Content]:
            return [types.Content(role=role, parts=[types.Part(text=text)]) for role, text in turns]

        cut = ("model", partial.text + " [interrupted]")
        expected = [
            typed(("user", "Count")),
            typed(("user", "Count"), cut, ("user", "Stop")),
            typed(("user", "Count"), cut, ("user", "Stop"), ("model", "Ok."), ("user", "And now?")),
        ]
        fake.pacing = Pacing()
        client = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=fake.url))
        for contents in expected:
            stream = await client.aio.models.generate_content_stream(
                model=llm.model, contents=contents, config=llm.request_config(llm.context)
            )
            async for _ in stream:
                pass
        await client.aio.aclose()
        assert [r.body for r in fake.requests[3:]] == sent
        assert sent[2]["contents"][1] == {"role": "model", "parts": [{"text": partial.text + " [interrupted]"}]}


async def test_history_rides_in_extra_body_only_when_it_is_plain_text() -> None:
    class WithOwnOptions(GeminiLLM):
        def request_config(self, context: Context) -> types.GenerateContentConfig:
            config = super().request_config(context)
            config.http_options = types.HttpOptions(extra_body={"labels": {"app": "test"}})
            return config

    context = Context("Be brief.")
    context.add_user("One")
    context.add_assistant("Two", interrupted=True)
    context.add_user("Three")
    llm = WithOwnOptions(api_key=KEY)
    contents, config = llm.request_arguments(context)
    assert contents == [{"role": "user", "parts": [{"text": "Three"}]}]
    assert config.http_options is not None and config.http_options.extra_body == {
        "labels": {"app": "test"},
        "contents": llm.request_contents(context),
    }
    assert llm.request_config(context).http_options is not None  # a fresh config each time, not the one changed

    # A part that is not plain text has other names on the wire: then the SDK converts everything itself.
    class WithFile(GeminiLLM):
        def request_contents(self, context: Context) -> list[types.ContentDict]:
            file: types.PartDict = {
                "file_data": {"file_uri": "https://example.com/a.pdf", "mime_type": "application/pdf"}
            }
            return [{"role": "user", "parts": [file]}, *super().request_contents(context)]

    async with FakeGemini(api_key=KEY, replies="Ok.") as fake:
        llm = WithFile(api_key=KEY, base_url=fake.url)
        contents, config = llm.request_arguments(context)
        assert len(contents) == 4 and config.http_options is None
        await run_processor(llm, [UserTextFrame(text="Hi")])
        [request] = fake.requests
        assert request.body["contents"][0]["parts"][0].keys() == {"fileData"}  # the SDK renamed it
        assert request.body["contents"][1] == {"role": "user", "parts": [{"text": "Hi"}]}


async def test_api_key_never_reaches_logs_or_error_messages(caplog: pytest.LogCaptureFixture) -> None:
    async with FakeGemini(api_key="the-right-key") as fake:
        with caplog.at_level(logging.DEBUG):
            llm = GeminiLLM(api_key=KEY, base_url=fake.url)
            result = await run_processor(llm, [UserTextFrame(text="Hi")])
            [error] = result.errors
            assert "401" in error.message and not error.fatal
            assert len(fake.requests) == 1  # an auth failure is not retried

            # A server that echoes the key back: it is redacted from what we report.
            fake.api_key = KEY
            fake.fail(500, times=3, message=f"backend rejected key {KEY}")
            llm = GeminiLLM(api_key=KEY, base_url=fake.url, retry=Backoff(initial=0.001, attempts=3))
            result = await run_processor(llm, [UserTextFrame(text="Hi")])
            [error] = result.errors
            assert "backend rejected key ***" in error.message
        assert KEY not in caplog.text
        assert all(KEY not in e.message for e in result.errors)


def test_configuration_from_env_and_validation() -> None:
    llm = GeminiLLM.from_config(
        Config(environ={"GEMINI_API_KEY": KEY, "GEMINI_MODEL": "gemini-2.5-flash", "GEMINI_BASE_URL": "http://x:1"})
    )
    assert llm.model == "gemini-2.5-flash" and llm.thinking.thinking_budget == 0
    assert GeminiLLM.from_config(Config(environ={"GEMINI_API_KEY": KEY})).model == DEFAULT_MODEL
    thinking = GeminiLLM.from_config({"GEMINI_API_KEY": KEY, "GEMINI_THINKING": "high"}).thinking
    assert thinking is not None and thinking.thinking_level is not None and thinking.thinking_level.value == "HIGH"
    with pytest.raises(ValueError, match="GEMINI_API_KEY"):
        GeminiLLM.from_config(Config(environ={}))
    with pytest.raises(ValueError, match="http") as info:
        GeminiLLM(api_key=KEY, base_url="ftp://example")
    assert KEY not in str(info.value)


# --- the fake's wire format ---------------------------------------------------------------------------


async def test_fake_sse_framing_is_exact() -> None:
    async with FakeGemini(api_key=KEY, replies="Hello there, friend.") as fake:
        async with httpx.AsyncClient() as client:
            response = await client.post(
                f"{fake.url}/v1beta/models/gemini-3.8-flash:streamGenerateContent?alt=sse",
                headers={"x-goog-api-key": KEY},
                json={"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]},
            )
        assert response.status_code == 200 and response.headers["content-type"] == "text/event-stream"
        assert response.headers["transfer-encoding"] == "chunked"
        raw = response.content
        assert raw.endswith(b"\r\n\r\n")
        events = raw.split(b"\r\n\r\n")[:-1]
        assert all(e.startswith(b"data: {") for e in events)
        bodies = [json.loads(e.removeprefix(b"data: ")) for e in events]
        assert "".join(b["candidates"][0]["content"]["parts"][0]["text"] for b in bodies) == "Hello there, friend."
        assert bodies[-1]["candidates"][0]["finishReason"] == "STOP" and "usageMetadata" in bodies[-1]
        assert all("finishReason" not in b["candidates"][0] for b in bodies[:-1])


async def test_fake_rejects_missing_and_wrong_keys_with_google_errors() -> None:
    async with FakeGemini(api_key=KEY) as fake, httpx.AsyncClient() as client:
        url = f"{fake.url}/v1/models/gemini-3.8-flash:streamGenerateContent?alt=sse"
        body = {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}
        missing = await client.post(url, json=body)
        wrong = await client.post(url, json=body, headers={"x-goog-api-key": "nope"})
        model_last = await client.post(
            url, json={"contents": [{"role": "model", "parts": [{"text": "x"}]}]}, headers={"x-goog-api-key": KEY}
        )
        assert missing.status_code == 403 and missing.json()["error"]["status"] == "PERMISSION_DENIED"
        assert wrong.status_code == 401 and wrong.json()["error"]["status"] == "UNAUTHENTICATED"
        assert model_last.status_code == 400 and set(model_last.json()["error"]) == {"code", "message", "status"}


async def test_fake_observes_the_sdk_closing_a_cancelled_stream() -> None:
    async with FakeGemini(api_key=KEY, replies="a b c d e f g h i j", pacing=Pacing(tokens_per_second=10)) as fake:
        client = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=fake.url))

        first_chunk = asyncio.Event()

        async def consume() -> None:
            async for _ in await client.aio.models.generate_content_stream(model="gemini-3.8-flash", contents="Hi"):
                first_chunk.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(first_chunk.wait(), 5)
        cancelled_at = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        disconnected_at = await fake.requests[0].wait_disconnected(timeout=1.0)
        assert disconnected_at - cancelled_at <= 0.1
        assert not fake.requests[0].completed
        await client.aio.aclose()


def test_fake_runs_in_a_background_thread_for_sync_code() -> None:
    fake = FakeGemini(api_key=KEY, replies="From a thread.", pacing=Pacing(first_token_delay=0.01))
    with fake.running_in_thread():
        client = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=fake.url))
        chunks = list(client.models.generate_content_stream(model="gemini-3.8-flash", contents="Hi"))
        client.close()
    assert "".join(c.text or "" for c in chunks) == "From a thread."
    assert fake.requests[0].completed


async def test_fake_turns_a_broken_reply_function_into_a_500_not_a_hang() -> None:
    def broken(chat: object) -> str:
        raise ZeroDivisionError("oops")

    async with FakeGemini(api_key=KEY, replies=broken) as fake:
        llm = GeminiLLM(api_key=KEY, base_url=fake.url, retry=Backoff(attempts=1))
        result = await run_processor(llm, [UserTextFrame(text="Hi")], timeout=5)
        [error] = result.errors
        assert "500" in error.message and "ZeroDivisionError" in error.message


async def test_a_processor_can_run_again_after_it_stopped() -> None:
    async with FakeGemini(api_key=KEY, replies="Again.") as fake:
        llm = GeminiLLM(api_key=KEY, base_url=fake.url)
        for _ in range(2):
            result = await run_processor(llm, [UserTextFrame(text="Hi")])
            assert result.errors == [] and result.text() == "Again."


async def test_thought_parts_are_not_part_of_the_reply() -> None:
    async with FakeGemini(api_key=KEY, replies="The answer.", thought="Let me think about this...") as fake:
        llm = GeminiLLM(api_key=KEY, base_url=fake.url)
        result = await run_processor(llm, [UserTextFrame(text="Hi")])
        assert result.text() == "The answer."
        assert llm.context.turns[-1].text == "The answer."


async def test_a_refusal_is_reported_once_not_retried() -> None:
    async with FakeGemini(api_key=KEY, finish_reason="SAFETY") as fake:
        fake.empty(times=3)
        result = await run_processor(GeminiLLM(api_key=KEY, base_url=fake.url), [UserTextFrame(text="Hi")])
        assert len(fake.requests) == 1
        [error] = result.errors
        assert "declined" in error.message and "SAFETY" in error.message and not error.fatal


async def test_left_out_arguments_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeGemini(api_key=KEY, replies="From the environment.") as fake:
        monkeypatch.setenv("GEMINI_API_KEY", KEY)
        monkeypatch.setenv("GEMINI_BASE_URL", fake.url)
        monkeypatch.setenv("GEMINI_MODEL", "gemini-2.5-flash")
        result = await run_processor(GeminiLLM(), [UserTextFrame(text="Hi")])
        assert result.text() == "From the environment."
        assert fake.requests[0].path == "/v1/models/gemini-2.5-flash:streamGenerateContent"
        monkeypatch.delenv("GEMINI_MODEL")
        assert GeminiLLM().model == DEFAULT_MODEL
        monkeypatch.delenv("GEMINI_API_KEY")
        with pytest.raises(ValueError, match="GEMINI_API_KEY"):
            GeminiLLM()


async def test_warm_up_looks_the_model_up_on_start(caplog: pytest.LogCaptureFixture) -> None:
    async with FakeGemini(api_key=KEY, replies="Warm.") as fake:
        await run_processor(GeminiLLM(api_key=KEY, base_url=fake.url), [UserTextFrame(text="Hi")])
        assert fake.lookups == ["/v1/models/gemini-3.8-flash"]
        await run_processor(GeminiLLM(api_key=KEY, base_url=fake.url, warm_up=False), [UserTextFrame(text="Hi")])
        assert len(fake.lookups) == 1 and len(fake.requests) == 2

        # A rejected key shows up in the log at once; only the turn itself reports an ErrorFrame.
        with caplog.at_level(logging.INFO, logger="voxline.llm"):
            llm = GeminiLLM(api_key="wrong-key-123", base_url=fake.url)
            result = await run_processor(llm, [Sleep(0.2)])
        assert result.errors == []
        assert "model lookup ahead of the first turn failed" in caplog.text and "401" in caplog.text
        assert "wrong-key-123" not in caplog.text
