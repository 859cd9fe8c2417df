"""Self-healing requests: a 400 naming an optional field the request carried drops that field, once, for good.

Against the fakes, whose rules refuse what the providers refuse: a model whose documented rules changed (a fake
model that takes only ``HIGH``), a thinking level the model refuses, OpenAI's reasoning models refusing
``max_tokens`` and ``temperature``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from google.genai import types
from voxline.frames import UserTextFrame
from voxline.processors.gemini import GeminiLLM
from voxline.processors.openai_compat import OpenAILLM
from voxline.providers.backoff import Backoff
from voxline.request_fields import REDUCED_REQUESTS, OptionalField, ReducedRequests, refused_field
from voxline.testing import drive, replies_ended, run_processor
from voxline.testing.fakes.gemini import FakeGemini
from voxline.testing.fakes.openai import FakeOpenAI
from voxline.testing.fakes.rules.gemini import MODELS, ModelThinking

KEY = "AIzaFakeKey-abcdefghijklmnop"
MINIMAL = types.ThinkingConfig(thinking_level=types.ThinkingLevel.MINIMAL)


@pytest.fixture(autouse=True)
def fresh_memory() -> Iterator[None]:
    """Each test starts and ends with nothing dropped (keys hold the fake's port, but be tidy)."""
    REDUCED_REQUESTS.forget()
    yield
    REDUCED_REQUESTS.forget()


def heal_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == "voxline.llm" and "refused the request's" in r.getMessage()
    ]


async def test_a_refused_thinking_level_is_dropped_and_the_turn_completes(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "voxline.llm")
    async with FakeGemini(api_key=KEY, replies=["Hello.", "Again."]) as fake:
        llm = GeminiLLM(api_key=KEY, base_url=fake.url, model="gemini-3.8-flash", thinking=MINIMAL, warm_up=False)
        result = await drive(llm, [UserTextFrame(text="Hi"), replies_ended(1), UserTextFrame(text="More")])
        assert result.errors == [] and result.text() == "Hello.Again."
        first, healed, later = fake.requests
        assert FakeGemini.thinking_config(first) == {"thinking_level": "MINIMAL"} and first.status == 400
        assert FakeGemini.thinking_config(healed) == {} == FakeGemini.thinking_config(later)
        assert healed.status == later.status == 200
        assert llm.dropped_fields == {"thinking"}
    [warning] = heal_warnings(caplog)
    assert "thinking" in warning and "Thinking level MINIMAL is not supported for this model" in warning
    assert "gemini-3.8-flash" in warning and KEY not in warning


async def test_the_reduced_request_is_kept_process_wide_per_model_and_endpoint(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "voxline.llm")
    async with FakeGemini(api_key=KEY, replies="Ok.") as fake:

        def stage(model: str) -> GeminiLLM:
            return GeminiLLM(api_key=KEY, base_url=fake.url, model=model, thinking=MINIMAL, warm_up=False)

        await run_processor(stage("gemini-3.8-flash"), [UserTextFrame(text="Hi")])
        assert len(fake.requests) == 2
        # A new stage (a new session) for the same model and endpoint sends the reduced request at once.
        again = await run_processor(stage("gemini-3.8-flash"), [UserTextFrame(text="Hi")])
        assert again.errors == [] and len(fake.requests) == 3
        assert FakeGemini.thinking_config(fake.requests[2]) == {}
        # Another model is another key: 3.6 Flash accepts MINIMAL and keeps it.
        other = await run_processor(stage("gemini-3.6-flash"), [UserTextFrame(text="Hi")])
        assert other.errors == [] and FakeGemini.thinking_config(fake.requests[3]) == {"thinking_level": "MINIMAL"}
    assert len(heal_warnings(caplog)) == 1


async def test_a_model_whose_rules_changed_degrades_to_its_default() -> None:
    """The table says 3.8 Flash takes LOW; a future 3.8 that takes only HIGH must still answer every turn."""
    changed = {**MODELS, "gemini-3.8-flash": ModelThinking(levels=frozenset({"HIGH"}))}
    async with FakeGemini(api_key=KEY, replies="Still here.", models=changed) as fake:
        llm = GeminiLLM(api_key=KEY, base_url=fake.url, model="gemini-3.8-flash", warm_up=False)
        result = await run_processor(llm, [UserTextFrame(text="Hi")])
    assert result.errors == [] and result.text() == "Still here."
    assert [FakeGemini.thinking_config(r) for r in fake.requests] == [{"thinking_level": "LOW"}, {}]


async def test_healing_is_not_a_retry_attempt() -> None:
    async with FakeGemini(api_key=KEY, replies="Ok.") as fake:
        llm = GeminiLLM(
            api_key=KEY, base_url=fake.url, model="gemini-3.7-flash", thinking=MINIMAL, retry=Backoff(attempts=1)
        )
        result = await run_processor(llm, [UserTextFrame(text="Hi")])
    assert result.errors == [] and [r.status for r in fake.requests] == [400, 200]


async def test_a_400_that_names_no_field_the_request_carried_is_reported_not_healed() -> None:
    async with FakeGemini(api_key=KEY, replies="Ok.", models=None) as fake:
        fake.fail(400, message="Request contains an invalid argument.")
        llm = GeminiLLM(api_key=KEY, base_url=fake.url, model="custom-model", warm_up=False)  # no thinking field
        result = await run_processor(llm, [UserTextFrame(text="Hi")])
        assert len(fake.requests) == 1 and llm.dropped_fields == frozenset()
        fake.fail(400, message="Thinking level is not supported for this model.")  # names thinking, which we never sent
        second = await run_processor(llm, [UserTextFrame(text="Hi")])
    assert len(result.errors) == 1 and "invalid argument" in result.errors[0].message
    assert len(second.errors) == 1 and len(fake.requests) == 2


async def test_openai_reasoning_model_drops_max_tokens_then_temperature(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "voxline.llm")
    async with FakeOpenAI(api_key="k", replies="Reasoned.") as fake:
        llm = OpenAILLM(model="o3-mini", api_key="k", base_url=fake.base_url, temperature=0.3, max_tokens=99)
        result = await run_processor(llm, [UserTextFrame(text="Hi")])
    assert result.errors == [] and result.text() == "Reasoned."
    bodies = [r.body for r in fake.requests]
    assert [("temperature" in b, "max_tokens" in b) for b in bodies] == [(True, True), (True, False), (False, False)]
    assert llm.dropped_fields == {"max_tokens", "temperature"}
    warnings = heal_warnings(caplog)
    assert len(warnings) == 2 and "max_tokens" in warnings[0] and "temperature" in warnings[1]


async def test_an_ordinary_openai_model_keeps_its_fields() -> None:
    async with FakeOpenAI(api_key="k", replies="Fine.") as fake:
        llm = OpenAILLM(model="llama3.2", api_key="k", base_url=fake.base_url, temperature=0.3, max_tokens=99)
        await run_processor(llm, [UserTextFrame(text="Hi")])
    [request] = fake.requests
    assert request.body["temperature"] == 0.3 and request.body["max_tokens"] == 99


def test_optional_field_matching_and_memory() -> None:
    thinking = OptionalField("thinking", (r"thinking", r"budget"))
    tokens = OptionalField("max_tokens", (r"max_tokens",))
    assert thinking.named_in("Budget 0 is invalid. This model only works in thinking mode.")
    assert not thinking.named_in("API key not valid. Please pass a valid API key.")
    assert refused_field([tokens, thinking], "'minimal' is not a supported THINKING level", dropped=()) is thinking
    assert (
        refused_field([tokens, thinking], "'minimal' is not a supported thinking level", dropped={"thinking"}) is None
    )
    memory = ReducedRequests()
    assert memory.drop(("p", "m"), "thinking") and not memory.drop(("p", "m"), "thinking")
    assert memory.dropped(("p", "m")) == {"thinking"} and memory.dropped(("p", "other")) == frozenset()
    memory.forget([("p", "m")])
    assert memory.snapshot() == {}
