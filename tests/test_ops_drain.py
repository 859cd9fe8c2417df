"""Graceful drain: a SIGTERM'd agent stops taking sessions at once, lets every live reply finish (and play),
tells its clients, closes them with 1012 and exits within DRAIN_TIMEOUT. Against real `voxline serve` processes
(one worker and two) on the fake Deepgram and Gemini servers."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import pytest
from app_helpers import Client, serve_app
from ops_support import agent_env, ahttp, cloud_env, cloud_fakes, open_clients, record, served
from starlette.config import Config
from voxline.apps.voice_agent import create_app
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

REPLY = (
    "Here is the forecast for the whole week ahead. Monday and Tuesday stay sunny and warm, "
    "Wednesday brings clouds, and the weekend ends with light rain in the evening."
)
BOT_STOPPED = {"who": "bot", "state": "stopped"}


def _assert_whole_reply_then_1012(client: Any) -> None:
    """The reply arrived whole and was played out (by the server's playback clock) before the 1012 close."""
    messages = client.messages
    kinds = [(m["type"], m.get("data")) for m in messages]
    assert ("status", "draining") in kinds, kinds[-8:]
    assert client.text() == REPLY, client.text()
    complete = kinds.index(("status", "complete"))
    stopped = max(i for i, k in enumerate(kinds) if k == ("speaking", BOT_STOPPED))
    assert stopped > complete, "the server closed before the reply's audio had played"
    assert kinds[-1] == ("speaking", BOT_STOPPED) or kinds.index(("status", "draining")) > stopped
    assert client.of_type("audio"), "no audio"
    assert client.close_code == 1012


async def test_sigterm_with_20_sessions_mid_reply_finishes_every_reply_then_exits(tmp_path: Path) -> None:
    async with cloud_fakes(REPLY) as (dg, gm), contextlib.AsyncExitStack() as stack:
        env = agent_env(tmp_path, DRAIN_TIMEOUT="15", **cloud_env(dg, gm))
        server = stack.enter_context(served(tmp_path, env))
        clients = await open_clients(f"{server.ws}/ws", 20, stack)
        for client in clients:
            await client.send({"type": "text", "data": "what is the weather this week"})
        for client in clients:  # every reply under way, none finished
            await client.wait_message("text_chunk", timeout=20)
        assert not any(("status", "complete") in [(m["type"], m.get("data")) for m in c.messages] for c in clients)

        sent = server.sigterm()
        status, body = await ahttp(f"{server.url}/health")
        health_after = time.monotonic() - sent
        assert (status, body["status"]) == (503, "draining")
        assert (await ahttp(f"{server.url}/livez"))[0] == 200
        with pytest.raises(InvalidStatus) as refused:
            await connect(f"{server.ws}/ws", open_timeout=5)
        assert refused.value.response.status_code == 503

        await asyncio.gather(*(c.closed(timeout=20) for c in clients))
        exit_code = await asyncio.to_thread(server.process.wait, 20)
        exited = time.monotonic() - sent
        for client in clients:
            _assert_whole_reply_then_1012(client)
        closes = sorted((c.closed_at or 0) - sent for c in clients)
        assert exited <= 15, exited
        assert exit_code in (0, -15)
        assert "drained in" in server.logs()
        record(
            "drain-20-sessions",
            sessions=20,
            cut_mid_sentence=0,
            health_503_after_s=round(health_after, 3),
            first_close_s=round(closes[0], 2),
            last_close_s=round(closes[-1], 2),
            exit_s=round(exited, 2),
            drain_timeout_s=15,
        )


async def test_with_two_workers_each_drains_its_own_sessions(tmp_path: Path) -> None:
    async with cloud_fakes(REPLY) as (dg, gm), contextlib.AsyncExitStack() as stack:
        env = agent_env(tmp_path, DRAIN_TIMEOUT="15", **cloud_env(dg, gm))
        server = stack.enter_context(served(tmp_path, env, workers=2))
        clients = await open_clients(f"{server.ws}/ws", 8, stack)
        for client in clients:
            await client.send({"type": "text", "data": "and the week?"})
        for client in clients:
            await client.wait_message("text_chunk", timeout=20)
        status, metrics = await ahttp(f"{server.url}/metrics")
        assert status == 200 and 'voxline_sessions_total{resumed="false"} 8.0' in metrics  # both workers, summed

        sent = server.sigterm()
        await asyncio.gather(*(c.closed(timeout=25) for c in clients))
        await asyncio.to_thread(server.process.wait, 25)
        exited = time.monotonic() - sent
        for client in clients:
            _assert_whole_reply_then_1012(client)
        assert exited <= 15, exited
        logs = sorted(p.name for p in server.log_dir.glob("voice-backend*.log"))
        assert logs == ["voice-backend.worker-0.log", "voice-backend.worker-1.log"], logs
        assert server.logs().count("drained in") == 2  # each worker drained its own
        assert "set REDIS_URL" in server.output()  # resuming across workers needs the shared store: serve says so
        record("drain-2-workers", sessions=8, exit_s=round(exited, 2), drain_timeout_s=15)


# --- in-process: the drain's own rules -----------------------------------------------------------------------


async def test_sessions_still_busy_near_the_timeout_are_closed_and_the_drain_ends_in_time(tmp_path: Path) -> None:
    """A reply longer than the drain's budget is cut (1012) when force_margin remains: the process still exits
    within DRAIN_TIMEOUT."""
    async with cloud_fakes(REPLY, tokens_per_second=3) as (dg, gm):
        environ = {"LOG_DIR": "", "DRAIN_TIMEOUT": "2", **cloud_env(dg, gm)}
        app = create_app(Config(environ=environ), static_dir=tmp_path, preload=False)
        state = app.state.agent
        async with serve_app(app) as url, Client.connect(url) as client:
            await client.wait_message("session")
            await client.send({"type": "text", "data": "a long one please"})
            await client.wait_message("text_chunk", timeout=10)
            started = time.monotonic()
            await state.drain.run(lambda: state.sessions)
            took = time.monotonic() - started
            await client.wait_for(lambda _: client._reader.done(), timeout=5)
            assert client.ws.close_code == 1012
            assert ("status", "draining") in [(m["type"], m.get("data")) for m in client.messages]
            assert state.drain.closed_busy == 1 and state.sessions == 0
            assert 1.4 <= took <= 2.0, took  # forced at DRAIN_TIMEOUT - force_margin (0.5 s), done before 2 s


async def test_an_idle_session_closes_at_once_and_health_says_draining(tmp_path: Path) -> None:
    async with cloud_fakes(REPLY) as (dg, gm):
        app = create_app(Config(environ={"LOG_DIR": "", **cloud_env(dg, gm)}), static_dir=tmp_path, preload=False)
        state = app.state.agent
        async with serve_app(app) as url, Client.connect(url) as client:
            await client.wait_message("session")
            base = url.replace("ws://", "http://")
            assert (await ahttp(f"{base}/health"))[0] == 200
            started = time.monotonic()
            drained = asyncio.create_task(state.drain.run(lambda: state.sessions))
            await client.wait_for(lambda _: client._reader.done(), timeout=5)
            assert time.monotonic() - started < 1.0  # nothing to finish: closed at the first check
            assert client.ws.close_code == 1012
            status, body = await ahttp(f"{base}/health")
            assert (status, body["status"]) == (503, "draining")
            assert (await ahttp(f"{base}/livez")) == (200, {"status": "alive", "draining": True, "sessions": 0})
            await drained
