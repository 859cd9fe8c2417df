"""Shared provider clients and SSL contexts: one per process (per key and endpoint), never closed by a session."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Iterator

import pytest
from voxline.frames import AudioFrame, SpeakTextFrame, UserTextFrame
from voxline.pipeline import Pipeline
from voxline.processors.deepgram import DeepgramSTT, DeepgramTTS
from voxline.processors.gemini import GeminiLLM
from voxline.processors.openai_compat import OpenAILLM
from voxline.providers.clients import aclose_shared, shared_client, shared_clients, ssl_context
from voxline.testing import Sleep, run_processor
from voxline.testing.fakes.deepgram import FakeDeepgram
from voxline.testing.fakes.gemini import FakeGemini
from voxline.testing.fakes.openai import FakeOpenAI

pytestmark = pytest.mark.filterwarnings("ignore:websockets.exceptions.InvalidStatusCode is deprecated")


@pytest.fixture
def ssl_contexts_built(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[ssl.SSLContext]]:
    """Every SSL context constructed while the test runs (``ssl.SSLContext`` is a Python class: its ``__new__``
    can be wrapped)."""
    built: list[ssl.SSLContext] = []
    original = ssl.SSLContext.__new__

    def counting(cls: type[ssl.SSLContext], *args: object, **kwargs: object) -> ssl.SSLContext:
        context = original(cls, *args, **kwargs)  # type: ignore[arg-type]
        built.append(context)
        return context

    monkeypatch.setattr(ssl.SSLContext, "__new__", counting)
    yield built


async def test_sessions_share_one_client_that_only_the_process_closes() -> None:
    async with FakeGemini(api_key="g-key", replies="Hi there.") as fake:
        first = await run_processor(GeminiLLM(api_key="g-key", base_url=fake.url), [UserTextFrame(text="Hello")])
        [client] = shared_clients()
        second = await run_processor(GeminiLLM(api_key="g-key", base_url=fake.url), [UserTextFrame(text="Again")])
        assert shared_clients() == [client]  # the first session's stop did not close it: the second used it
        assert first.text() == second.text() == "Hi there." and not first.errors + second.errors
        other_key = GeminiLLM(api_key="another-key", base_url=fake.url)
        await run_processor(other_key, [])
        assert len(shared_clients()) == 2  # one per key and endpoint
        assert await aclose_shared() == 2
        assert shared_clients() == []
        # A session after the shutdown call builds a fresh client and works.
        third = await run_processor(GeminiLLM(api_key="g-key", base_url=fake.url), [UserTextFrame(text="Hi")])
        assert third.text() == "Hi there." and shared_clients() != [client]
        await aclose_shared()


async def test_no_ssl_context_per_session_and_none_with_ca_for_plain_urls(
    ssl_contexts_built: list[ssl.SSLContext],
) -> None:
    async with (
        FakeDeepgram(api_key="d-key", transcripts=["Hi."]) as dg,
        FakeGemini(api_key="g-key", replies="Hello.") as gemini,
        FakeOpenAI(api_key="o-key", replies="Hello.") as oai,
    ):

        def session() -> Pipeline:
            return Pipeline(
                [
                    DeepgramSTT(api_key="d-key", base_url=dg.base_url),
                    GeminiLLM(api_key="g-key", base_url=gemini.url),
                    OpenAILLM(api_key="o-key", base_url=oai.base_url, model="m"),
                    DeepgramTTS(api_key="d-key", base_url=dg.base_url),
                ]
            )

        pcm = AudioFrame(pcm=b"\x00\x00" * 1600, sample_rate=16000)
        await run_processor(session(), [pcm, SpeakTextFrame(text="Hi."), Sleep(0.2)])
        first = len(ssl_contexts_built)
        for _ in range(3):
            await run_processor(session(), [pcm, SpeakTextFrame(text="Hi."), Sleep(0.2)])
        assert len(ssl_contexts_built) == first  # nothing per session (was 5)
        assert len(shared_clients()) == 3  # Deepgram (STT and TTS share it), Gemini, OpenAI
        await aclose_shared()
    # The plain-URL context is the process's one, with no CA to load (a redirect to TLS would fail, not trust).
    plain = ssl_context("http://127.0.0.1:1")
    assert plain is ssl_context("ws://127.0.0.1:2") and plain.cert_store_stats()["x509_ca"] == 0
    assert plain.verify_mode == ssl.CERT_REQUIRED and plain.check_hostname
    verifying = ssl_context("https://api.deepgram.com")
    assert verifying is ssl_context("wss://api.deepgram.com") is ssl_context(None)
    assert verifying.cert_store_stats()["x509_ca"] > 0


def test_a_loop_that_ends_closes_the_clients_it_still_holds() -> None:
    closed: list[object] = []

    class Client:
        pass

    async def close(client: Client) -> None:
        await asyncio.sleep(0)
        closed.append(client)

    async def session() -> Client:
        client = shared_client(("test", "k"), Client, close)
        assert shared_client(("test", "k"), Client, close) is client
        return client

    results: list[Client] = []
    thread = threading.Thread(target=lambda: results.append(asyncio.run(session())))
    thread.start()
    thread.join(10)
    assert closed == results  # asyncio.run's shutdown of async generators closed it
