"""The LLM contract, for every provider: the real SDK (google-genai, openai) against a fake server on loopback.

Each test runs twice, once per provider: happy path, history and system prompt, retries before the first token
and not after, empty streams, interruption (the fake sees the HTTP stream close within 100 ms), stalls, TTFT.
"""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import attrs
import pytest
from voxline.frames import InterruptFrame, LLMResponseEndFrame, LLMResponseStartFrame, TextFrame, UserTextFrame
from voxline.llm import LLMProcessor
from voxline.llm_retry import FirstTokenTimeout
from voxline.processors.gemini import GeminiLLM
from voxline.processors.openai_compat import OpenAILLM
from voxline.providers.backoff import Backoff
from voxline.testing import Interrupt, Sleep, drive, replies_ended, run_processor, texts_out
from voxline.testing.fakes._llm import FakeLLMServer
from voxline.testing.fakes.gemini import FakeGemini, Pacing
from voxline.testing.fakes.openai import FakeOpenAI

KEY = "test-key-0123456789"
FAST_RETRY = Backoff(attempts=3, initial=0.005, jitter=0)
# 60 words at 20 tokens/s: three seconds of margin for a test that interrupts after 0.15 s on a loaded machine.
LONG_REPLY = " ".join(["One two three four five six seven eight nine ten."] * 6)


@attrs.define
class Provider:
    name: str
    fake: FakeLLMServer
    make: Callable[..., LLMProcessor]

    def llm(self, **kwargs: Any) -> LLMProcessor:
        kwargs.setdefault("retry", FAST_RETRY)
        kwargs.setdefault("first_token_timeout", 5.0)
        kwargs.setdefault("stall_timeout", 5.0)
        return self.make(**kwargs)

    def turns(self, index: int) -> tuple[tuple[str, str], ...]:
        chat = self.fake.requests[index].chat
        assert chat is not None
        return chat.turns


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A loopback port whose accept queue is full: new connections get no SYN-ACK, so connecting hangs."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.05)
    yield port
    for sock in [*fillers, server]:
        sock.close()


@pytest.fixture(params=["gemini", "openai"])
async def provider(request: pytest.FixtureRequest) -> AsyncIterator[Provider]:
    if request.param == "gemini":
        async with FakeGemini(api_key=KEY) as gemini:
            yield Provider("gemini", gemini, lambda **kw: GeminiLLM(api_key=KEY, base_url=gemini.url, **kw))
    else:
        async with FakeOpenAI(api_key=KEY) as oai:
            yield Provider(
                "openai", oai, lambda **kw: OpenAILLM(model="test-model", api_key=KEY, base_url=oai.base_url, **kw)
            )


async def test_happy_path_streams_the_reply(provider: Provider) -> None:
    provider.fake.replies = "Hello there, friend."
    llm = provider.llm(system_prompt="Be terse.")
    result = await run_processor(llm, [UserTextFrame(text="Hi")])
    assert result.errors == []
    assert [f.text for f in result.downstream_of(TextFrame)] == ["Hello", " there,", " friend."]
    assert len(result.downstream_of(LLMResponseStartFrame)) == 1
    assert result.downstream_of(LLMResponseEndFrame)[0].interrupted is False
    assert [(t.role, t.text) for t in llm.context] == [("user", "Hi"), ("assistant", "Hello there, friend.")]


async def test_second_turn_carries_history_and_system_prompt(provider: Provider) -> None:
    provider.fake.replies = ["First answer.", "Second answer."]
    llm = provider.llm(system_prompt="You are a terse voice assistant.")
    await drive(llm, [UserTextFrame(text="Question one"), replies_ended(1), UserTextFrame(text="Question two")])
    assert len(provider.fake.requests) == 2
    first, second = (r.chat for r in provider.fake.requests)
    assert first is not None and second is not None
    assert first.system == second.system == "You are a terse voice assistant."
    assert first.turns == (("user", "Question one"),)
    assert second.turns == (("user", "Question one"), ("assistant", "First answer."), ("user", "Question two"))


async def test_retries_before_the_first_token(provider: Provider) -> None:
    provider.fake.fail(429, times=2)
    result = await run_processor(provider.llm(), [UserTextFrame(text="Hi")])
    assert [r.status for r in provider.fake.requests] == [429, 429, 200]
    assert result.errors == [] and result.text()


async def test_server_errors_are_retried_but_client_errors_are_not(provider: Provider) -> None:
    provider.fake.fail(503)
    result = await run_processor(provider.llm(), [UserTextFrame(text="Hi")])
    assert [r.status for r in provider.fake.requests] == [503, 200] and result.errors == []

    provider.fake.fail(400, message="Invalid argument.")
    result = await run_processor(provider.llm(), [UserTextFrame(text="Hi")])
    assert [r.status for r in provider.fake.requests][2:] == [400]
    [error] = result.errors
    assert "400" in error.message and "Invalid argument." in error.message and not error.fatal


async def test_no_retry_after_the_first_token_and_the_next_turn_works(provider: Provider) -> None:
    provider.fake.replies = ["Part of a reply that fails.", "A whole reply."]
    provider.fake.error_mid_stream(after_tokens=2)
    llm = provider.llm()
    result = await drive(llm, [UserTextFrame(text="One"), replies_ended(1), UserTextFrame(text="Two")])
    assert len(provider.fake.requests) == 2  # one per turn: the broken one was not retried
    [error] = result.errors
    assert not error.fatal
    assert [e.interrupted for e in result.downstream_of(LLMResponseEndFrame)] == [False, False]
    assert result.text() == "Part ofA whole reply."
    assert provider.turns(1) == (("user", "One"), ("assistant", "Part of [interrupted]"), ("user", "Two"))


async def test_dropped_connection_mid_stream_ends_the_turn(provider: Provider) -> None:
    provider.fake.replies = "Part of a reply that breaks."
    provider.fake.drop_mid_stream(after_tokens=2)
    result = await run_processor(provider.llm(), [UserTextFrame(text="One")])
    assert len(provider.fake.requests) == 1
    assert len(result.errors) == 1 and result.text() == "Part of"


async def test_empty_stream_is_retried(provider: Provider) -> None:
    provider.fake.replies = "Now with words."
    provider.fake.empty()
    result = await run_processor(provider.llm(), [UserTextFrame(text="Hi")])
    assert [r.fault is not None for r in provider.fake.requests] == [True, False]
    assert result.text() == "Now with words." and result.errors == []


async def test_interruption_closes_the_http_stream_and_records_the_partial_reply(provider: Provider) -> None:
    provider.fake.replies = LONG_REPLY
    provider.fake.pacing = Pacing(first_token_delay=0.0, tokens_per_second=20)
    llm = provider.llm()
    # The pipeline stays up 0.4 s after the interrupt: only cancellation, not shutdown, can close the stream early.
    result = await drive(llm, [UserTextFrame(text="Count"), texts_out(2), Interrupt(), Sleep(0.4)])
    [request] = provider.fake.requests
    interrupt = result.downstream_of(InterruptFrame)[0]
    assert not request.completed and request.disconnected_at is not None
    assert request.disconnected_at - interrupt.created_ns / 1e9 <= 0.1
    out = result.downstream
    cut = out.index(interrupt)
    assert [f for f in out[cut:] if isinstance(f, TextFrame)] == []
    end = next(f for f in out[cut:] if isinstance(f, LLMResponseEndFrame))
    assert end.interrupted and end.epoch == 0
    heard = "".join(f.text for f in out[:cut] if isinstance(f, TextFrame))
    assert heard and LONG_REPLY.startswith(heard) and heard != LONG_REPLY
    assert (llm.context.turns[-1].text, llm.context.turns[-1].interrupted) == (heard, True)


async def test_user_speaking_again_answers_the_merged_turn(provider: Provider) -> None:
    provider.fake.replies = lambda chat: LONG_REPLY if chat.last_user_text == "What is" else "Merged answer."
    provider.fake.pacing = Pacing(first_token_delay=0.0, tokens_per_second=20)
    llm = provider.llm()
    result = await drive(llm, [UserTextFrame(text="What is"), texts_out(2), UserTextFrame(text="the time?")])
    first, second = provider.fake.requests
    assert first.disconnected_at is not None and not first.completed and second.completed
    assert provider.turns(1) == (("user", "What is the time?"),)
    out = result.downstream
    cut = out.index(result.downstream_of(InterruptFrame)[0])
    assert "".join(f.text for f in out[cut:] if isinstance(f, TextFrame)) == "Merged answer."
    assert [(t.role, t.text) for t in llm.context] == [("user", "What is the time?"), ("assistant", "Merged answer.")]


async def test_stall_times_out_and_closes_the_stream(provider: Provider) -> None:
    provider.fake.replies = LONG_REPLY
    provider.fake.stall(after_tokens=2)
    result = await run_processor(provider.llm(stall_timeout=0.3), [UserTextFrame(text="Hi")])
    [request] = provider.fake.requests
    assert request.disconnected_at is not None
    [error] = result.errors
    assert "stalled" in error.message
    assert result.text() == "One two"


async def test_ttft_metric_measures_request_start_to_first_token(provider: Provider) -> None:
    provider.fake.pacing = Pacing(first_token_delay=0.2, tokens_per_second=0)
    started = time.monotonic()
    result = await run_processor(provider.llm(), [UserTextFrame(text="Hi")])
    [ttft] = [m for m in result.metrics if m.name == "llm.ttft"]
    assert 0.2 <= ttft.value <= time.monotonic() - started
    assert ttft.unit == "s" and ttft.epoch == 0


@pytest.mark.parametrize("name", ["gemini", "openai"])
async def test_connect_timeout_is_retried_then_reported(name: str, unanswered_port: int) -> None:
    base = f"http://127.0.0.1:{unanswered_port}"
    options: dict[str, Any] = {"connect_timeout": 0.2, "retry": Backoff(attempts=2, initial=0.001)}
    llm: LLMProcessor = (
        GeminiLLM(api_key=KEY, base_url=base, **options)
        if name == "gemini"
        else OpenAILLM(model="m", api_key=KEY, base_url=f"{base}/v1", **options)
    )
    started = time.monotonic()
    result = await run_processor(llm, [UserTextFrame(text="Hi")])
    [error] = result.errors
    assert "ConnectTimeout" in error.message and not error.fatal
    assert 0.4 <= time.monotonic() - started < 5.0  # two attempts of 0.2 s each, not the 15 s first-token timeout


async def test_a_stall_before_the_first_token_is_retried_at_a_few_times_the_providers_ttft(provider: Provider) -> None:
    """Issue 9: a stall before the first token used to mean 15 s of silence. The deadline now follows the TTFT the
    provider has shown (here ~50 ms, so the floor), and the retry answers long before the initial guess."""
    provider.fake.replies = "Here."
    provider.fake.pacing = Pacing(first_token_delay=0.05, tokens_per_second=100)
    policy = FirstTokenTimeout(initial=3.0, minimum=0.3, maximum=3.0)  # a fast model's rule, floor scaled down
    llm = provider.llm(first_token_timeout=policy)
    assert llm.first_token_deadline() == 3.0  # nothing timed yet
    steps: list[Any] = []
    for i in range(3):
        steps += [UserTextFrame(text=f"Question {i}"), replies_ended(i + 1)]
    await drive(llm, steps)
    deadline = llm.first_token_deadline()
    assert 0.3 <= deadline < 3.0  # 3 x the measured p90, at least the floor
    provider.fake.stall(after_tokens=0)  # the next request sends nothing at all
    result = await drive(llm, [UserTextFrame(text="Stalled?"), replies_ended(1)])
    assert len(provider.fake.requests) == 5 and provider.fake.requests[3].disconnected_at is not None
    assert result.text() == "Here." and result.errors == []
    [ttft] = [m.value for m in result.metrics if m.name == "llm.ttft"]
    assert deadline <= ttft < 3.0  # the stalled attempt was cut at the learned deadline, not the initial one
