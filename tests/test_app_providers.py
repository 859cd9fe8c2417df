"""The whole agent over real sockets: a WebSocket client → uvicorn → the app → the official SDKs → the fake
Deepgram and Gemini servers on 127.0.0.1 (pointed at through DEEPGRAM_BASE_URL / GEMINI_BASE_URL)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from app_helpers import Client, cloud_env, serve_app, silence, tone
from starlette.config import Config
from voxline.apps.voice_agent import create_app

fakes_deepgram = pytest.importorskip("voxline.testing.fakes.deepgram")
fakes_gemini = pytest.importorskip("voxline.testing.fakes.gemini")
try:
    from voxline.processors.deepgram import DeepgramTTS  # noqa: F401
except ImportError:  # pragma: no cover - the Deepgram TTS processor has not landed in this checkout
    pytest.skip("voxline.processors.deepgram.DeepgramTTS is not available", allow_module_level=True)

from voxline.testing.fakes._llm import Pacing  # noqa: E402

UTTERANCE = tone(0.4) + silence(0.6)
REPLY_1 = "Hello there. I am the fake model, and this is my first answer."
REPLY_2 = "This is the second answer."


@attrs.define
class Agent:
    url: str
    deepgram: Any
    gemini: Any


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[Agent]:
    async with agent_with(tmp_path) as a:
        yield a


def agent_with(
    tmp_path: Path,
    *,
    pacing: Pacing | None = None,
    replies: list[str] | None = None,
    env: dict[str, str] | None = None,
    **deepgram: Any,
) -> Any:
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def run() -> AsyncIterator[Agent]:
        dg = fakes_deepgram.FakeDeepgram(transcripts=["what is the weather", "and tomorrow"], **deepgram)
        gm = fakes_gemini.FakeGemini(replies=replies or [REPLY_1, REPLY_2], pacing=pacing)
        async with dg, gm:
            environ = {
                **cloud_env(dg, gm),
                "LOG_DIR": str(tmp_path / "logs"),
                **(env or {}),
            }
            app = create_app(Config(environ=environ), static_dir=tmp_path, preload=False)
            async with serve_app(app) as url:
                yield Agent(url, dg, gm)

    return run()


def _statuses(client: Client) -> list[str]:
    return [str(s) for s in client.of_type("status")]


async def test_full_turn_then_a_second_turn_that_keeps_history(agent: Agent) -> None:
    async with Client.connect(agent.url) as client:
        await client.wait_message("session")
        assert client.messages[0] == {"type": "status", "data": "connected"}
        session = client.of_type("session")[0]
        assert session["engines"] == {"stt": "deepgram", "llm": "gemini", "tts": "deepgram"}
        assert session["offline_demo"] is False and session["missing"] == []
        assert session["ready"] is True and session["problems"] == []

        await client.send_audio(UTTERANCE, pause=0.002)
        await client.wait_message("status", "complete", timeout=15)
        kinds = [m["type"] for m in client.messages]
        finals = [t for t in client.of_type("transcript") if t["is_final"]]
        assert [t["text"] for t in finals] == ["what is the weather"]
        assert "".join(client.of_type("text_chunk")) == REPLY_1
        audio = b"".join(base64.b64decode(a) for a in client.of_type("audio"))
        assert len(audio) > 0 and len(audio) % 2 == 0
        assert kinds.index("transcript") < _index(client, "status", "generating") < kinds.index("text_chunk")
        assert kinds.index("audio") < _index(client, "status", "complete")
        (metrics,) = client.of_type("metrics")
        assert metrics["turn"] == 1
        for field in ("stt_ms", "llm_ttft_ms", "tts_ttfb_ms", "voice_to_voice_ms"):
            assert isinstance(metrics[field], float) and metrics[field] >= 0, (field, metrics)
        speaking = client.of_type("speaking")
        # The user's speaking events come from the turn engine's Silero VAD, to which a tone is no speech (the
        # STT's words alone made the turn); spoken turns: test_app_turns.py.
        assert {"who": "bot", "state": "started"} in speaking
        assert agent.deepgram.speak_connections[0].query["model"] == "aura-asteria-en"  # the default voice

        await client.send_audio(UTTERANCE, pause=0.002)
        await client.wait_message("status", "complete", count=2, timeout=15)
        assert "".join(client.of_type("text_chunk")) == REPLY_1 + REPLY_2
    second = agent.gemini.requests[1].chat
    assert second.turns == (("user", "what is the weather"), ("assistant", REPLY_1), ("user", "and tomorrow"))


async def test_a_full_turn_over_the_rest_tts_transport(tmp_path: Path) -> None:
    async with agent_with(tmp_path, env={"DEEPGRAM_TTS_TRANSPORT": "rest"}) as a, Client.connect(a.url) as client:
        await client.send_audio(UTTERANCE, pause=0.002)
        await client.wait_message("status", "complete", timeout=15)
        assert "".join(client.of_type("text_chunk")) == REPLY_1
        audio = b"".join(base64.b64decode(x) for x in client.of_type("audio"))
        (metrics,) = client.of_type("metrics")
        assert isinstance(metrics["tts_ttfb_ms"], float)
    assert a.deepgram.speak_connections == []  # no speak WebSocket: one POST /v1/speak per sentence
    spoken = [json.loads(r.body)["text"] for r in a.deepgram.rest_requests]
    assert len(spoken) >= 2 and "".join(spoken) == REPLY_1
    assert all(r.query["model"] == "aura-asteria-en" for r in a.deepgram.rest_requests)
    assert len(audio) == sum(a.deepgram.tts_audio_bytes(text) for text in spoken)  # every byte, nothing more


async def test_markdown_is_not_spoken_but_the_client_gets_the_raw_text(tmp_path: Path) -> None:
    markdown = "**Sure!** The `forecast` says *sunny*. See [the map](https://example.com/map) for more."
    async with agent_with(tmp_path, replies=[markdown]) as a, Client.connect(a.url) as client:
        await client.send_audio(UTTERANCE, pause=0.002)
        await client.wait_message("status", "complete", timeout=15)
        assert "".join(client.of_type("text_chunk")) == markdown  # the page renders the Markdown itself
    spoken = [m["text"] for c in a.deepgram.speak_connections for m in c.messages if m.get("type") == "Speak"]
    said = " ".join(spoken)
    assert spoken and "forecast" in said and "the map" in said
    for mark in ("*", "`", "[", "](", "https://"):
        assert mark not in said, (mark, spoken)


async def test_interrupt_mid_reply_sends_no_old_audio_after_the_status(tmp_path: Path) -> None:
    # A slow TTS stream: 50 ms of audio every 20 ms, so audio is still flowing when the interrupt comes.
    slow_tts = {"tts_chunk_bytes": 2400, "tts_chunk_interval": 0.02, "tts_seconds_per_char": 0.08}
    async with agent_with(tmp_path, **slow_tts) as a, Client.connect(a.url) as client:
        await client.send_audio(UTTERANCE, pause=0.002)
        await client.wait_message("audio", count=3, timeout=15)
        t_interrupt = time.monotonic()
        await client.send({"type": "interrupt"})
        await client.wait_message("status", "interrupted")
        await asyncio.sleep(0.6)
        idx = _index(client, "status", "interrupted")
        late = [m["type"] for m in client.messages[idx + 1 :] if m["type"] in ("audio", "text_chunk")]
        assert late == []
        assert "complete" not in _statuses(client)
        t_status = next(t for t, m in client.log if m == {"type": "status", "data": "interrupted"})
        assert t_status - t_interrupt < 1.0
        # the TTS provider was told to drop what it was still synthesising
        assert any("Clear" in c.message_types() for c in a.deepgram.speak_connections)
        # and the conversation goes on
        await client.send_audio(UTTERANCE, pause=0.002)
        await client.wait_message("status", "complete", timeout=15)


@pytest.mark.parametrize("transport", ["websocket", "rest"])
async def test_after_a_barge_in_the_model_is_told_only_what_was_heard(tmp_path: Path, transport: str) -> None:
    # The fake speaks 0.05 s per character: "Hello there. " plays for 0.65 s, the second sentence 2.5 s more.
    # Audio is sent faster than real time, so only the server's playback clock knows what has played: 1.2 s in,
    # the second sentence's "I am the fake" (its words by their share of the characters).
    env = {"DEEPGRAM_TTS_TRANSPORT": transport}
    async with agent_with(tmp_path, env=env) as a, Client.connect(a.url) as client:
        await client.send_audio(UTTERANCE, pause=0.002)
        await client.wait_message("audio", timeout=15)
        await asyncio.sleep(1.2)  # the first sentence has played, the second is under way
        await client.send({"type": "interrupt"})
        await client.wait_message("status", "interrupted")
        done = _statuses(client).count("complete")
        await client.send_audio(UTTERANCE, pause=0.002)
        await client.wait_message("status", "complete", count=done + 1, timeout=15)
    second = a.gemini.requests[1].chat
    user, (role, heard), again = second.turns
    assert user == ("user", "what is the weather") and again == ("user", "and tomorrow") and role == "assistant"
    assert heard.endswith(" [interrupted]")
    words = heard.removesuffix(" [interrupted]").split()
    assert REPLY_1.startswith(" ".join(words)) and 4 <= len(words) <= 8, heard  # "Hello there. I am the fake"


async def test_bad_input_gets_errors_and_the_session_continues(agent: Agent) -> None:
    async with Client.connect(agent.url) as client:
        await client.wait_message("session")
        bad: list[Any] = [
            "this is not json",
            {"type": "sing"},
            {"type": "audio", "data": "***"},
            {"type": "audio", "data": base64.b64encode(b"\x01\x02\x03").decode()},
            {"type": "audio", "data": "A" * (1 << 20)},
            b"\x00\x00\x00\x00",
        ]
        for message in bad:
            await client.send(message)
        await client.wait_message("error", count=len(bad))
        errors = [str(e) for e in client.of_type("error")]
        for needle in ("not valid JSON", "unknown message type 'sing'", "base64", "odd number", "too large", "binary"):
            assert any(needle in e for e in errors), (needle, errors)
        await client.send_audio(UTTERANCE, pause=0.002)
        await client.wait_message("status", "complete", timeout=15)


async def test_binary_audio_after_opting_in(agent: Agent) -> None:
    async with Client.connect(agent.url) as client:
        await client.send({"type": "config", "data": {"binary_audio": True}})
        for i in range(0, len(UTTERANCE), 640):
            await client.send(UTTERANCE[i : i + 640])
            await asyncio.sleep(0.002)
        await client.wait_message("status", "complete", timeout=15)
        assert client.of_type("error") == []


async def test_disconnect_mid_reply_closes_every_provider_socket_within_2_s(tmp_path: Path) -> None:
    async with agent_with(tmp_path, pacing=Pacing(first_token_delay=0.0, tokens_per_second=5)) as a:
        async with Client.connect(a.url) as client:
            await client.send_audio(UTTERANCE, pause=0.002)
            await client.wait_message("text_chunk", timeout=15)
            assert a.deepgram.listen_connections and a.deepgram.speak_connections
            request = a.gemini.requests[-1]
            assert request.disconnected_at is None  # the reply is still streaming
            await client.ws.close()
            closed_at = time.monotonic()
        async with asyncio.timeout(2):
            for connection in a.deepgram.connections:
                await connection.closed.wait()
            await request.wait_disconnected(timeout=2)
        assert time.monotonic() - closed_at < 2
        assert all(c.close_code is not None for c in a.deepgram.connections)


def _index(client: Client, kind: str, data: Any) -> int:
    return next(i for i, m in enumerate(client.messages) if m["type"] == kind and m.get("data") == data)
