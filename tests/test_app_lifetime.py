"""A session's lifetime is one structured scope: whatever fails — a message, the reader, the writer, the
client, the pipeline's start — the client hears of it and the session either goes on or is torn down whole and
counted down; never a half-dead session. Over real sockets, against uvicorn."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from app_helpers import Client, serve_app
from starlette.config import Config
from voxline.apps.voice_agent import create_app
from voxline.frames import Frame, TextFrame, UserTextFrame
from voxline.processor import Direction, Processor
from websockets.asyncio.client import connect


class Echo(Processor):
    """The pipeline's middle in one stage: a typed turn is answered with its own text."""

    def __init__(self) -> None:
        super().__init__(name="Echo")
        self.stopped = False

    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, UserTextFrame):
            await self.push(TextFrame(text=f"you said: {frame.text}"))
            return
        await self.push(frame, direction)

    async def on_stop(self) -> None:
        self.stopped = True


@asynccontextmanager
async def _agent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stages: Callable[[], list[Processor]] = lambda: [Echo()]
) -> AsyncIterator[tuple[str, Any]]:
    from voxline.apps.voice_agent import session as session_module

    monkeypatch.setattr(session_module, "build_processors", lambda settings, plan: stages())
    app = create_app(Config(environ={"LOG_DIR": ""}), static_dir=tmp_path, preload=False)
    async with serve_app(app) as url:
        yield url, app.state.agent


async def _counted_down(agent: Any, timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while agent.sessions:  # noqa: ASYNC110 - polling the server's count from outside
            await asyncio.sleep(0.01)


async def _closed(client: Client) -> int | None:
    await client.wait_for(lambda _: client._reader.done(), timeout=5)
    return client.ws.close_code


async def _turn(client: Client, text: str) -> None:
    await client.send({"type": "text", "data": text})
    await client.wait_message("text_chunk", f"you said: {text}")


async def test_the_issues_tiny_message_gets_an_error_and_the_session_lives_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _agent(tmp_path, monkeypatch) as (url, agent):
        async with Client.connect(url) as client:
            await client.wait_message("session")
            for _ in range(3):
                await client.send("[" * 5000)
            await client.wait_message("error", count=3)
            assert all("too deeply" in e for e in client.of_type("error"))
            await _turn(client, "still there?")
            assert agent.sessions == 1
        await _counted_down(agent)


async def test_a_lone_surrogate_typed_and_echoed_does_not_mute_the_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _agent(tmp_path, monkeypatch) as (url, _), Client.connect(url) as client:
        await client.send('{"type": "text", "data": "hi \\ud800"}')
        await client.wait_message("text_chunk", "you said: hi \ufffd")
        await _turn(client, "and again")


async def test_a_reader_that_fails_is_reported_and_the_session_torn_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from voxline.transports.input import WebSocketInput

    async def broken(self: WebSocketInput, message: Any) -> None:
        raise RuntimeError("a bug in the reader")

    echo = Echo()
    async with _agent(tmp_path, monkeypatch, lambda: [echo]) as (url, agent), Client.connect(url) as client:
        await client.wait_message("session")
        monkeypatch.setattr(WebSocketInput, "_on_message", broken)
        await client.send({"type": "interrupt"})
        assert await _closed(client) == 1011
        assert "The session failed: RuntimeError: a bug in the reader" in client.of_type("error")
        await _counted_down(agent)
        assert echo.stopped


async def test_a_writer_that_fails_tears_the_session_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from voxline.transports import writer as writer_module

    def broken(text: str) -> str:
        raise RuntimeError("a bug in the writer")

    echo = Echo()
    async with _agent(tmp_path, monkeypatch, lambda: [echo]) as (url, agent), Client.connect(url) as client:
        await client.wait_message("session")
        monkeypatch.setattr(writer_module, "encodable", broken)
        await client.send({"type": "text", "data": "café"})  # the echo is not ASCII: the writer's repair runs
        assert await _closed(client) == 1011
        await _counted_down(agent)
        assert echo.stopped


async def test_a_client_that_leaves_while_the_pipeline_starts_never_gets_it_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The start finishes (a model goes back to its pool, not to waste), then the pipeline stops without
    running: no StartFrame, so no provider is ever connected for a client that has gone."""
    from voxline.frames import StartFrame

    states: list[str] = []

    class SlowStart(Echo):
        async def on_start(self) -> None:
            states.append("starting")
            await asyncio.sleep(0.3)  # a model loading
            states.append("started")

        async def process(self, frame: Frame, direction: Direction) -> None:
            if isinstance(frame, StartFrame):
                states.append("running")
            await super().process(frame, direction)

        async def on_stop(self) -> None:
            states.append("stopped")

    async with _agent(tmp_path, monkeypatch, lambda: [SlowStart()]) as (url, agent):
        ws = await connect(url + "/ws", ping_interval=None)
        async with asyncio.timeout(3):
            while not states:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        ws.transport.abort()  # gone, without a close frame
        await _counted_down(agent)
        assert states == ["starting", "started", "stopped"]


async def test_a_start_that_takes_too_long_for_a_gone_client_is_abandoned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from voxline.apps.voice_agent import lifetime

    monkeypatch.setattr(lifetime, "START_WAIT", 0.2)
    states: list[str] = []

    class NeverStarts(Echo):
        async def on_start(self) -> None:
            states.append("starting")
            try:
                await asyncio.sleep(30)  # a provider that will not answer
            except asyncio.CancelledError:
                states.append("cancelled")
                raise

    async with _agent(tmp_path, monkeypatch, lambda: [NeverStarts()]) as (url, agent):
        ws = await connect(url + "/ws", ping_interval=None)
        async with asyncio.timeout(3):
            while not states:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        ws.transport.abort()
        t0 = time.monotonic()
        await _counted_down(agent)
        assert time.monotonic() - t0 < 1.5
        assert states == ["starting", "cancelled"]


async def test_dropped_clients_are_counted_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with _agent(tmp_path, monkeypatch) as (url, agent):
        clients = [await connect(url + "/ws", ping_interval=None) for _ in range(5)]
        for ws in clients:
            await ws.recv()
        assert agent.sessions == 5
        for ws in clients:
            ws.transport.abort()
        await _counted_down(agent)
        assert not agent.tasks


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sigterm_with_live_sessions_exits_promptly(tmp_path: Path) -> None:
    """The issue's hang: a session whose reader had died kept `voxline serve` from exiting for minutes."""
    port = _free_port()
    env = {**os.environ, "LOG_DIR": "", "STT_PROVIDER": "deepgram", "DEEPGRAM_API_KEY": ""}
    cmd = [sys.executable, "-m", "voxline.apps.cli", "serve", "--port", str(port), "--env-file", str(tmp_path / "x")]
    server = subprocess.Popen(cmd, env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)

    async def clients() -> None:
        deadline = time.monotonic() + 20
        while True:
            try:
                opened = [await connect(f"ws://127.0.0.1:{port}/ws", ping_interval=None) for _ in range(3)]
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline
                await asyncio.sleep(0.1)
        for ws in opened:
            await ws.send("[" * 5000)
            while json.loads(await ws.recv())["type"] != "error" or False:
                pass
        server.send_signal(signal.SIGTERM)
        for ws in opened:
            await asyncio.wait_for(ws.wait_closed(), 10)

    try:
        asyncio.run(clients())
        t0 = time.monotonic()
        server.wait(timeout=10)
        assert time.monotonic() - t0 < 10
    finally:
        if server.poll() is None:
            server.kill()
        server.communicate(timeout=10)


async def test_a_bug_in_the_session_code_is_told_and_the_socket_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from voxline.apps.voice_agent import session as session_module

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in the session code")

    monkeypatch.setattr(session_module, "PipelineTask", broken)
    async with _agent(tmp_path, monkeypatch) as (url, agent), Client.connect(url) as client:
        assert await _closed(client) == 1011
        assert client.of_type("error")[-1] == "The session failed: RuntimeError"
        await _counted_down(agent)
