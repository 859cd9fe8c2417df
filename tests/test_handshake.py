"""The handshake timeout, with raw sockets against a real uvicorn: half-open HTTP and WebSocket handshakes are
closed; requests and sessions that did complete are not touched."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from app_helpers import Client, serve_app
from starlette.config import Config
from voxline.apps.voice_agent import create_app
from voxline.apps.voice_agent.handshake import GuardedHTTPProtocol

TIMEOUT = 0.5


class Guarded(GuardedHTTPProtocol):
    timeout = TIMEOUT


@pytest.fixture
async def url(tmp_path: Path) -> AsyncIterator[str]:
    app = create_app(Config(environ={"LOG_DIR": "", "STT_PROVIDER": "deepgram"}), static_dir=tmp_path, preload=False)
    async with serve_app(app, http=Guarded) as base:
        yield base


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("ws://").split(":")
    return host, int(port)


async def _closed_after(reader: asyncio.StreamReader, limit: float) -> float:
    """Seconds until the server closes the connection (EOF or reset); fails after ``limit``."""
    start = time.monotonic()
    async with asyncio.timeout(limit):
        try:
            while await reader.read(65536):
                pass
        except ConnectionError:
            pass
    return time.monotonic() - start


WS_HEAD = (
    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"  # ... and Sec-WebSocket-Version and the blank line never come
)


@pytest.mark.parametrize(
    "sent",
    [b"", b"GET /health HT", WS_HEAD, b"GET /health HTTP/1.1\r\nHost: x\r\n"],
    ids=["nothing", "half a request line", "half a websocket handshake", "headers without the end"],
)
async def test_a_half_sent_request_is_closed_after_the_timeout(url: str, sent: bytes) -> None:
    reader, writer = await asyncio.open_connection(*_address(url))
    writer.write(sent)
    took = await _closed_after(reader, TIMEOUT + 2)
    assert TIMEOUT - 0.05 <= took <= TIMEOUT + 1
    writer.close()


async def test_a_slowloris_is_closed_although_bytes_keep_coming(url: str) -> None:
    reader, writer = await asyncio.open_connection(*_address(url))
    closed = asyncio.ensure_future(_closed_after(reader, TIMEOUT + 2))
    dripped = 0
    for byte in b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100:  # 6 s of drip at most
        if closed.done():
            break
        writer.write(bytes([byte]))
        dripped += 1
        await asyncio.sleep(0.05)
    assert await closed <= TIMEOUT + 1
    assert 5 <= dripped < 40  # bytes kept coming, and the server closed anyway
    writer.close()


async def test_many_half_open_handshakes_are_all_closed_and_their_fds_freed(url: str) -> None:
    fds_before = len(os.listdir("/proc/self/fd"))
    connections = [await asyncio.open_connection(*_address(url)) for _ in range(200)]
    for _, writer in connections:
        writer.write(WS_HEAD)
    took = await asyncio.gather(*(_closed_after(reader, TIMEOUT + 3) for reader, _ in connections))
    assert max(took) <= TIMEOUT + 2
    for _, writer in connections:
        writer.close()
    await asyncio.sleep(0.1)
    assert len(os.listdir("/proc/self/fd")) <= fds_before + 2


async def test_complete_requests_and_sessions_outlive_the_timeout(url: str) -> None:
    reader, writer = await asyncio.open_connection(*_address(url))
    writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    status = await reader.readline()
    assert status.startswith(b"HTTP/1.1 200")
    writer.close()
    async with Client.connect(url) as client:  # a session that cannot build its pipeline: it waits for us
        await client.wait_message("error")
        await asyncio.sleep(TIMEOUT * 3)
        await client.send({"type": "interrupt"})
        await asyncio.sleep(0.1)
        assert client.ws.close_code is None  # still open


async def test_a_kept_alive_connection_gets_a_fresh_period_per_request(url: str) -> None:
    reader, writer = await asyncio.open_connection(*_address(url))
    for _ in range(3):  # each request completes within the timeout; together they take longer than it
        await asyncio.sleep(TIMEOUT * 0.6)
        writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert (await reader.readline()).startswith(b"HTTP/1.1 200")
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        assert b'"engines"' in await reader.readexactly(length)
    writer.close()
