"""Fuzz: over 10,000 hostile, broken and good client messages into one session, then a normal turn in the same
session. Asserted: no crash (no exception logged, no pipeline error, the session never ends), exactly one
``error`` for every message that must be refused and none for the others, and the turn afterwards works.

Messages come from a seeded generator (``tests/fuzz_messages.py``; ``VOXLINE_FUZZ_SEED`` picks another seed),
which knows from how it built each message whether it must be refused. The transport runs in-process over an
in-memory socket with a fake clock for its rate limits, so floods are deterministic: an interrupt storm, a
storm of bad messages, and audio at 10x real time. A second test sends the same kinds of messages through the
real app's session code (admission, the structured lifetime) over an in-memory ASGI WebSocket.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from app_helpers import EchoStage
from fuzz_messages import MAX_BYTES, Generator, Message
from transport_helpers import MemorySocket, ScriptedBot
from voxline.pipeline import Pipeline
from voxline.task import PipelineTask
from voxline.transports import TransportParams, WebSocketTransport

SEED = int(os.environ.get("VOXLINE_FUZZ_SEED", "20261205"))
RANDOM_SEGMENT = 2250
"""Messages per random segment; four segments and three floods make over 10,000 messages."""


class FakeClock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


class Fuzzed:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.socket = MemorySocket()
        self.bot = ScriptedBot(bytes_per_turn=64_000, chunks=2, chunk_delay=0.0)
        params = TransportParams(max_message_bytes=MAX_BYTES, clock=self.clock)
        self.transport = WebSocketTransport(self.socket, params)
        self.task = PipelineTask(Pipeline([self.transport.input(), self.bot, self.transport.output()]))
        self.sent = 0
        self.expected_errors = 0
        self.by_category: Counter[str] = Counter()

    async def send(self, message: Message) -> int:
        """Send one message, wait until the input has handled it; returns how many errors it caused."""
        before = self.transport.input().rejected
        if message.kind == "bytes":
            assert isinstance(message.payload, bytes)
            self.socket.send_bytes(message.payload)
        else:
            self.socket.send(message.payload)
        self.sent += 1
        self.by_category[message.category] += 1
        inp = self.transport.input()
        for _ in range(10_000):
            if inp.received == self.sent and not inp.handling:
                break
            await asyncio.sleep(0)
        else:  # pragma: no cover - a hang is a failure too
            raise AssertionError(f"message {self.sent} ({message.category}) was never handled")
        return inp.rejected - before

    async def random_segment(self, gen: Generator, count: int) -> None:
        """Paced like a well-behaved client (no limit applies): exactly the bad messages get an error."""
        for _ in range(count):
            message = gen.next()
            self.clock.now += max(0.02, message.audio_seconds)
            errors = await self.send(message)
            expected = 1 if message.bad else 0
            assert errors == expected, (message.category, str(message.payload)[:200], self.errors()[-1:])
            self.expected_errors += errors

    async def drained(self) -> None:
        """Wait until every error the input made has reached the client."""
        rejected = self.transport.input().rejected
        await self.socket.wait_for(lambda sent: len([m for m in sent if m["type"] == "error"]) >= rejected, 5)

    def errors(self) -> list[str]:
        return [str(e) for e in self.socket.of_type("error")]


@pytest.fixture
async def fuzzed(caplog: pytest.LogCaptureFixture) -> AsyncIterator[Fuzzed]:
    caplog.set_level(logging.WARNING)
    f = Fuzzed()
    f.transport.send_status("connected")
    runner = asyncio.create_task(f.task.run())
    await f.task.wait_until_running()
    try:
        yield f
    finally:
        f.socket.disconnect()
        await asyncio.wait_for(runner, 5)
        await f.transport.aclose()
    problems = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert problems == [], [r.getMessage()[:300] for r in problems[:5]]


async def test_ten_thousand_fuzzed_messages_then_a_normal_turn(fuzzed: Fuzzed) -> None:
    f = fuzzed
    gen = Generator(SEED)
    await f.random_segment(gen, RANDOM_SEGMENT)

    # An interrupt storm: a full bucket (200, a second's worth) passes, the rest is refused, one error each.
    f.clock.now += 1.1
    storm = [await f.send(Message("text", '{"type":"interrupt"}', False, "interrupt flood")) for _ in range(500)]
    assert storm.count(0) == 200 and storm.count(1) == 300
    f.expected_errors += 300
    await f.drained()
    assert all(e.startswith("too many messages") for e in f.errors()[-300:])
    await f.random_segment(gen, RANDOM_SEGMENT)

    # Audio at 10x real time: 20 ms chunks 2 ms apart. The 2 s burst passes, then only what 2x real time
    # allows; every refused chunk gets its error, nothing is queued.
    f.clock.now += 1.1
    heard_before = f.bot.heard + 0
    f.bot.bytes_per_turn = 10**9
    flood: list[int] = []
    for _ in range(300):
        f.clock.now += 0.002
        flood.append(await f.send(Message("text", json.dumps({"type": "audio", "data": "AA" * 428}), False, "10x")))
    accepted = flood.count(0)
    await f.drained()
    # the model: 2 s of credit, earning 2 x 2 ms per chunk and spending 20 ms per accepted chunk
    assert 125 <= accepted <= 160, accepted
    assert all(e.startswith("audio is arriving faster") for e in f.errors()[-flood.count(1) :])
    f.expected_errors += flood.count(1)
    assert (f.bot.heard - heard_before) // 2 == accepted * 321  # "AA" * 428 is 321 samples
    f.bot.bytes_per_turn = 64_000
    await f.random_segment(gen, RANDOM_SEGMENT)

    # A storm of bad messages: each gets exactly one error, about its content or about the rate.
    f.clock.now += 1.1
    bad = [await f.send(Message("text", "{nope", True, "bad flood")) for _ in range(400)]
    assert bad == [1] * 400
    f.expected_errors += 400
    await f.random_segment(gen, RANDOM_SEGMENT)

    assert f.sent >= 10_000
    # A normal turn in the same session.
    f.clock.now += 1.1
    f.socket.send({"type": "text", "data": "and now a normal question"})
    await f.socket.wait_for(lambda sent: f.bot.turns[-1:] == ["and now a normal question"], timeout=5)
    await f.socket.wait_for(lambda sent: sent[-1] == {"type": "status", "data": "complete"}, timeout=5)
    # No crash: the session never ended, no stage reported an error, every error was sent.
    assert not f.transport.ended.is_set() and not f.task.errors
    assert f.transport.input().rejected == f.expected_errors == len(f.errors())
    assert f.transport.errors_suppressed == 0
    assert len(f.by_category) >= 20, f.by_category
    print(f"fuzz: {f.sent} messages, {f.expected_errors} refused, {len(f.by_category)} kinds: {dict(f.by_category)}")


# --- through the real app's session code -------------------------------------------------------------------


class AsgiWebSocket:
    """The ASGI side of one WebSocket in memory: what Starlette's ``WebSocket`` reads and writes."""

    def __init__(self) -> None:
        self.inbound: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.inbound.put_nowait({"type": "websocket.connect"})
        self.sent: list[dict[str, Any]] = []
        self.closed: int | None = None
        self.changed = asyncio.Event()
        self.scope: dict[str, Any] = {
            "type": "websocket",
            "path": "/ws",
            "headers": [(b"host", b"127.0.0.1:8000")],
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8000),
            "scheme": "ws",
            "query_string": b"",
            "subprotocols": [],
        }

    async def receive(self) -> dict[str, Any]:
        return await self.inbound.get()

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "websocket.send":
            self.sent.append(json.loads(message["text"]))
        elif message["type"] == "websocket.close":
            self.closed = message.get("code", 1000)
        self.changed.set()

    def client_sends(self, message: Message | str) -> None:
        if isinstance(message, str):
            self.inbound.put_nowait({"type": "websocket.receive", "text": message})
        elif message.kind == "bytes":
            self.inbound.put_nowait({"type": "websocket.receive", "bytes": message.payload})
        else:
            self.inbound.put_nowait({"type": "websocket.receive", "text": message.payload})


async def test_fuzzed_messages_through_the_apps_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from starlette.config import Config
    from starlette.websockets import WebSocket
    from voxline.apps.voice_agent import create_app
    from voxline.apps.voice_agent import session as session_module
    from voxline.apps.voice_agent.session import run_session

    caplog.set_level(logging.WARNING)
    monkeypatch.setattr(session_module, "build_processors", lambda settings, plan: [EchoStage()])
    env = {"LOG_DIR": "", "MAX_MESSAGE_BYTES": str(MAX_BYTES), "MAX_MESSAGES_PER_SECOND": "0", "MAX_AUDIO_SPEED": "0"}
    state = create_app(Config(environ=env), static_dir=tmp_path, preload=False).state.agent
    asgi = AsgiWebSocket()
    session = asyncio.create_task(run_session(WebSocket(asgi.scope, asgi.receive, asgi.send), state))
    gen = Generator(SEED + 1)
    bad = 0
    for _ in range(3000):
        message = gen.next()
        bad += message.bad
        asgi.client_sends(message)
        if asgi.inbound.qsize() > 50:
            await asyncio.sleep(0)  # let the session keep up, as a socket's flow control would
    asgi.client_sends(json.dumps({"type": "text", "data": "the last word"}))
    async with asyncio.timeout(20):
        while {"type": "text_chunk", "data": "you said: the last word"} not in asgi.sent:
            asgi.changed.clear()
            await asgi.changed.wait()
    assert len([m for m in asgi.sent if m["type"] == "error"]) == bad
    assert asgi.closed is None and state.sessions == 1
    asgi.inbound.put_nowait({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait_for(session, 5)
    assert state.sessions == 0
    problems = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert problems == [], [r.getMessage()[:300] for r in problems[:5]]
