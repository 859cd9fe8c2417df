"""Admission control and session limits of the voice agent, over real sockets where it matters: who may
connect (Origin, session caps), how long a session may live (idle, time limit), and that every refusal or
ending is an ``error`` the client can read followed by a clean close."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from app_helpers import Client, EchoStage, cloud_env, serve_app, silence
from starlette.config import Config
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from voxline.apps.voice_agent import create_app
from voxline.apps.voice_agent.config import ConfigError, Settings
from voxline.apps.voice_agent.origins import parse_origin
from voxline.frames import Frame, TextFrame, UserTextFrame
from voxline.processor import Direction
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

NO_PIPELINE = {"STT_PROVIDER": "deepgram"}  # no key: the session cannot build a pipeline, and waits for us


def _app(tmp_path: Path, **env: str) -> Any:
    return create_app(Config(environ={"LOG_DIR": "", **env}), static_dir=tmp_path, preload=False)


@asynccontextmanager
async def _served(tmp_path: Path, **env: str) -> AsyncIterator[tuple[str, Any]]:
    app = _app(tmp_path, **env)
    async with serve_app(app) as url:
        yield url, app.state.agent


async def _refused(url: str, *, origin: str | None = None) -> tuple[str, int | None]:
    """Connect; return the error the server sent and the close code."""
    async with connect(url + "/ws", origin=origin, ping_interval=None) as ws:  # type: ignore[arg-type]
        error = await asyncio.wait_for(ws.recv(), 5)
        await asyncio.wait_for(ws.wait_closed(), 5)
        return str(error), ws.close_code


# --- Origin ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("https://voice.example.com", ("https", "voice.example.com", 443)),
        ("http://LOCALHOST:8000/", ("http", "localhost", 8000)),
        ("http://[::1]:8000", ("http", "::1", 8000)),
        ("chrome-extension://127.0.0.1:8000", None),
        ("null", None),
        ("file://", None),
        ("https://user@voice.example.com", None),
        ("https://voice.example.com/path", None),
        ("https://voice.example.com:99999", None),
    ],
)
def test_origins_are_parsed_as_scheme_host_port(text: str, parsed: tuple[str, str, int] | None) -> None:
    assert parse_origin(text) == parsed


def test_a_cors_origins_entry_that_is_not_an_origin_stops_the_app() -> None:
    with pytest.raises(ConfigError, match=r"'yourdomain\.com' is not an origin"):
        Settings.from_config(Config(environ={"CORS_ORIGINS": "https://ok.example, yourdomain.com"}))


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({}, True),  # not a browser
        ({"origin": "http://testserver"}, True),  # the agent's own page (the socket it came in on)
        ({"origin": "https://ok.example"}, True),  # listed
        ({"origin": "https://ok.example:443"}, True),  # the same origin, default port written out
        ({"origin": "http://ok.example"}, False),  # listed with https only
        ({"origin": "https://ok.example:8443"}, False),  # another port is another origin
        ({"origin": "https://evil.example"}, False),
        ({"origin": "http://evil.example", "host": "evil.example"}, False),  # DNS rebinding: Host = Origin
        ({"origin": "chrome-extension://testserver"}, False),
        ({"origin": "null"}, False),  # file:// pages, sandboxed frames
    ],
)
def test_the_origin_check(tmp_path: Path, headers: dict[str, str], allowed: bool) -> None:
    with (
        TestClient(_app(tmp_path, CORS_ORIGINS="https://ok.example", **NO_PIPELINE)) as client,
        client.websocket_connect("/ws", headers=headers) as ws,
    ):
        first = ws.receive_json()
        if allowed:
            assert first == {"type": "status", "data": "connected"}
            return
        assert first["type"] == "error" and "does not accept sessions from pages of" in first["data"]
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_json()
        assert info.value.code == 1008


async def test_over_loopback_the_own_origin_has_every_loopback_name_and_nothing_else(tmp_path: Path) -> None:
    async with _served(tmp_path, **NO_PIPELINE) as (url, agent):
        port = url.rsplit(":", 1)[1]
        for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}", f"http://[::1]:{port}"):
            async with Client.connect(url) as plain:
                await plain.wait_message("session")
            async with connect(url + "/ws", origin=origin, ping_interval=None) as ws:  # type: ignore[arg-type]
                assert '"connected"' in str(await ws.recv())
        for origin in (f"https://127.0.0.1:{port}", "http://127.0.0.1:1", f"http://attacker.example:{port}"):
            error, code = await _refused(url, origin=origin)
            assert code == 1008 and origin in error
        assert agent.admission.refused[1008] == 3


# --- session caps --------------------------------------------------------------------------------------------


async def test_max_sessions_refuses_with_1013_and_admits_again_when_one_leaves(tmp_path: Path) -> None:
    async with _served(tmp_path, MAX_SESSIONS="2", MAX_SESSIONS_PER_IP="5", **NO_PIPELINE) as (url, agent):
        async with Client.connect(url) as first, Client.connect(url) as second:
            await first.wait_message("session")
            await second.wait_message("session")
            error, code = await _refused(url)
            assert code == 1013 and "at most 2 sessions at once" in error
            assert agent.sessions == 2
        async with asyncio.timeout(3):
            while agent.sessions:  # noqa: ASYNC110 - the server counts down once each session is torn down
                await asyncio.sleep(0.01)
        async with Client.connect(url) as third:
            await third.wait_message("session")


async def test_one_address_may_hold_only_so_many_sessions(tmp_path: Path) -> None:
    async with _served(tmp_path, MAX_SESSIONS_PER_IP="1", **NO_PIPELINE) as (url, _):
        async with Client.connect(url) as first:
            await first.wait_message("session")
            error, code = await _refused(url)
            assert code == 1013 and "Too many sessions from your address" in error
        with TestClient(_app(tmp_path, MAX_SESSIONS_PER_IP="1", **NO_PIPELINE)) as client:
            assert client.get("/health").json()["limits"] == {
                "max_sessions": 50,
                "max_sessions_per_ip": 1,
                "refused": {},
            }


# --- session limits ------------------------------------------------------------------------------------------


async def test_an_idle_session_is_closed_with_an_error(tmp_path: Path) -> None:
    async with _served(tmp_path, IDLE_TIMEOUT="0.4", **NO_PIPELINE) as (url, agent):
        async with Client.connect(url) as client:
            start = time.monotonic()
            await client.wait_for(lambda m: client._reader.done(), timeout=5)
            took = time.monotonic() - start
            assert 0.35 <= took <= 2.0
            assert "no audio or text from the client for 0.4 s" in client.of_type("error")[-1]
            assert client.ws.close_code == 1000
        assert agent.sessions == 0


async def test_audio_keeps_a_session_alive_past_the_idle_timeout(tmp_path: Path, monkeypatch: Any) -> None:
    from voxline.apps.voice_agent import session as session_module

    monkeypatch.setattr(session_module, "build_processors", lambda settings, plan: [EchoStage()])
    async with _served(tmp_path, IDLE_TIMEOUT="0.4") as (url, _), Client.connect(url) as client:
        for _ in range(8):  # 1.2 s, three idle timeouts' worth, of quiet microphone audio
            await client.send_audio(silence(0.1))
            await asyncio.sleep(0.15)
        await client.send({"type": "text", "data": "still here"})
        await client.wait_message("text_chunk", "you said: still here")
        assert client.of_type("error") == []


async def test_a_session_ends_at_its_time_limit_even_when_busy(tmp_path: Path, monkeypatch: Any) -> None:
    from voxline.apps.voice_agent import session as session_module

    monkeypatch.setattr(session_module, "build_processors", lambda settings, plan: [EchoStage()])
    async with _served(tmp_path, MAX_SESSION_SECONDS="0.6") as (url, _), Client.connect(url) as client:
        with pytest.raises((ConnectionError, ConnectionClosed)):
            for i in range(100):
                await client.send({"type": "text", "data": f"turn {i}"})
                await client.wait_message("text_chunk", f"you said: turn {i}", timeout=2)
                await asyncio.sleep(0.05)
        assert "time limit of 0.6 s" in client.of_type("error")[-1]
        assert client.ws.close_code == 1000
        assert len(client.of_type("text_chunk")) >= 3


async def test_idle_timeout_closes_the_provider_sockets(tmp_path: Path) -> None:
    fakes_deepgram = pytest.importorskip("voxline.testing.fakes.deepgram")
    fakes_gemini = pytest.importorskip("voxline.testing.fakes.gemini")
    pytest.importorskip("voxline.processors.deepgram")
    pytest.importorskip("voxline.processors.gemini")
    async with fakes_deepgram.FakeDeepgram() as dg, fakes_gemini.FakeGemini() as gm:
        env = {
            **cloud_env(dg, gm),
            "IDLE_TIMEOUT": "0.5",
        }
        async with _served(tmp_path, **env) as (url, agent), Client.connect(url) as client:
            # The listen socket opens with the first audio (Deepgram closes a socket that hears none for 10 s):
            # a little silence opens both provider sockets, then the client goes quiet.
            await client.send_audio(silence(0.1))
            async with asyncio.timeout(5):
                while not dg.listen_connections or not dg.speak_connections:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            await client.wait_for(lambda m: client._reader.done(), timeout=5)
            assert "IDLE_TIMEOUT" in client.of_type("error")[-1]
            async with asyncio.timeout(3):
                for connection in dg.connections:
                    await connection.closed.wait()
            assert agent.sessions == 0


async def test_a_slow_reply_is_not_idle_time(tmp_path: Path, monkeypatch: Any) -> None:
    """The user asked and waits: a model slow to its first token must not get the session closed."""
    from voxline.apps.voice_agent import session as session_module

    class SlowEcho(EchoStage):
        async def process(self, frame: Frame, direction: Direction) -> None:
            if isinstance(frame, UserTextFrame):
                self.create_task(self._reply(frame.text))  # as an LLM stage does: the reader is free again
                return
            await super().process(frame, direction)

        async def _reply(self, text: str) -> None:
            await asyncio.sleep(1.0)  # time to first token: 2.5 idle timeouts
            await self.push(TextFrame(text=f"you said: {text}"))

    monkeypatch.setattr(session_module, "build_processors", lambda settings, plan: [SlowEcho()])
    async with _served(tmp_path, IDLE_TIMEOUT="0.4") as (url, _), Client.connect(url) as client:
        await client.send({"type": "text", "data": "take your time"})
        await client.wait_message("text_chunk", "you said: take your time", timeout=5)
        assert client.of_type("error") == []
