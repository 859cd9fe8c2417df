"""Helpers for app tests and the app benchmark: serve an ASGI app with uvicorn on a free loopback port, and a
WebSocket client that records every message with its arrival time."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from voxline.frames import Frame, TextFrame, UserTextFrame
from voxline.processor import Direction, Processor
from websockets.asyncio.client import ClientConnection, connect


def cloud_env(dg: Any, gm: Any) -> dict[str, str]:
    """The settings that point the agent at a FakeDeepgram ``dg`` and a FakeGemini ``gm``."""
    return {
        "DEEPGRAM_API_KEY": "test-key",
        "GEMINI_API_KEY": "test-key",
        "DEEPGRAM_BASE_URL": dg.base_url,
        "GEMINI_BASE_URL": gm.url,
    }


@asynccontextmanager
async def serve_app(app: Any, **options: Any) -> AsyncIterator[str]:
    """Run ``app`` under uvicorn in this event loop on 127.0.0.1:<free port>; yields ``ws://host:port``.

    ``options`` go to ``uvicorn.Config`` (``http=...``, say)."""
    config = uvicorn.Config(
        app,
        **{
            "host": "127.0.0.1",
            "port": 0,
            "log_config": None,
            "lifespan": "on",
            "ws_ping_interval": None,
            "ws_per_message_deflate": False,  # as `voxline serve` runs it: base64 PCM does not compress
            **options,
        },
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


def tone(seconds: float, *, rate: int = 16000, freq: float = 440.0, amplitude: int = 8000) -> bytes:
    """A sine tone as Int16 PCM: "speech" as far as an energy-based fake STT is concerned."""
    n = int(seconds * rate)
    return b"".join(
        int(amplitude * math.sin(2 * math.pi * freq * i / rate)).to_bytes(2, "little", signed=True) for i in range(n)
    )


def silence(seconds: float, *, rate: int = 16000) -> bytes:
    return b"\x00\x00" * int(seconds * rate)


class Client:
    """A seed-protocol client over a real WebSocket; records ``(arrival monotonic s, message)``."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.log: list[tuple[float, dict[str, Any]]] = []
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    @asynccontextmanager
    async def connect(cls, url: str) -> AsyncIterator[Client]:
        async with connect(url + "/ws", max_size=None, ping_interval=None) as ws:
            client = cls(ws)
            try:
                yield client
            finally:
                client._reader.cancel()

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self.log.append((time.monotonic(), json.loads(raw)))
                self._changed.set()
        except Exception:
            pass
        self._changed.set()

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [m for _, m in self.log]

    def of_type(self, kind: str) -> list[Any]:
        return [m.get("data") for m in self.messages if m["type"] == kind]

    async def send(self, message: Any) -> None:
        await self.ws.send(message if isinstance(message, (str, bytes)) else json.dumps(message))

    async def send_audio(self, pcm: bytes, *, chunk: int = 640, pause: float = 0.0) -> None:
        for i in range(0, len(pcm), chunk):
            await self.send({"type": "audio", "data": base64.b64encode(pcm[i : i + chunk]).decode()})
            if pause:
                await asyncio.sleep(pause)

    async def wait_for(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self.messages):
                self._changed.clear()
                if self._reader.done() and not predicate(self.messages):
                    raise ConnectionError(f"socket closed; got {[m['type'] for m in self.messages]}")
                await self._changed.wait()

    async def wait_message(self, kind: str, data: Any = None, *, count: int = 1, timeout: float = 10.0) -> None:
        def seen(messages: list[dict[str, Any]]) -> bool:
            hits = [m for m in messages if m["type"] == kind and (data is None or m.get("data") == data)]
            return len(hits) >= count

        await self.wait_for(seen, timeout)


class EchoStage(Processor):
    """The whole pipeline's middle in one stage, for tests of the app around it: a typed turn is answered with
    its own text (``you said: ...``)."""

    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, UserTextFrame):
            await self.push(TextFrame(text=f"you said: {frame.text}"))
            return
        await self.push(frame, direction)
