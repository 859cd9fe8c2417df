"""A minimal HTTP/1.1 server for fake providers: keep-alive, chunked streaming, and disconnect timestamps.

Why not Starlette + uvicorn: a fake must *observe* the client going away (the moment an SDK closes a stream
is what barge-in tests measure) and must be able to misbehave on the wire — drop the TCP connection halfway,
stall, split events. An ``asyncio.Protocol`` sees the FIN or reset the moment it arrives, with no framework
between it and the socket. The server binds 127.0.0.1 only, on a free port.

Run it in the test's event loop (``async with FakeHttpServer(handler) as server``) or on its own loop in a
background thread (``with server.running_in_thread()``) for code that runs an app in another thread: that part,
and the HTTP/1.1 heads and chunks, every fake shares (:mod:`._loopback`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import attrs
from voxline.testing.fakes._loopback import LoopbackServer, chunk, response_head

__all__ = ["ClientGone", "FakeHttpServer", "HttpRequest", "HttpResponder"]

logger = logging.getLogger("voxline.testing.fakes")


class ClientGone(ConnectionError):
    """The client closed the connection while the server was still answering."""


@attrs.define
class HttpRequest:
    """One parsed request. Header names are lower-case. Times are ``time.monotonic()`` seconds."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    received_at: float
    path: str = ""
    query: dict[str, str] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        parts = urlsplit(self.target)
        self.path = parts.path
        self.query = {k: v[-1] for k, v in parse_qs(parts.query).items()}

    def json(self) -> Any:
        return json.loads(self.body or b"null")


Handler = Callable[[HttpRequest, "HttpResponder"], Awaitable[None]]


class HttpResponder:
    """Writes one response: a whole body, or a chunked stream; or drops the connection."""

    def __init__(self, conn: _Connection, keep_alive: bool) -> None:
        self._conn = conn
        self._keep_alive = keep_alive
        self.started = False
        self.finished = False

    @property
    def disconnected_at(self) -> float | None:
        """When the client closed the connection (monotonic seconds), or None while it is open."""
        return self._conn.disconnected_at

    async def wait_disconnected(self) -> None:
        await self._conn.closed.wait()

    def _head(self, status: int, headers: dict[str, str]) -> bytes:
        return response_head(status, {"connection": "keep-alive" if self._keep_alive else "close", **headers})

    async def send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        """A complete response with a Content-Length."""
        headers = {"content-type": content_type, "content-length": str(len(body))}
        self._conn.write(self._head(status, headers) + body)
        self.started = self.finished = True

    async def send_json(self, status: int, obj: Any) -> None:
        await self.send(status, json.dumps(obj).encode())

    async def start(self, status: int = 200, content_type: str = "text/event-stream") -> None:
        """Begin a chunked response; follow with :meth:`write` calls and :meth:`end`."""
        headers = {"content-type": content_type, "transfer-encoding": "chunked", "cache-control": "no-cache"}
        self._conn.write(self._head(status, headers))
        self.started = True

    async def write(self, data: bytes) -> None:
        """One chunk of the body. Raises :class:`ClientGone` if the client has gone away."""
        if data:
            self._conn.write(chunk(data))
        await asyncio.sleep(0)  # let the loop flush and notice a disconnect

    async def end(self) -> None:
        self._conn.write(chunk(b""))
        self.finished = True

    def abort(self) -> None:
        """Drop the TCP connection now (a reset), as a crashing server or a network fault would."""
        self._conn.abort()


class _Connection(asyncio.Protocol):
    """One client connection: buffers bytes, serves requests one after another, notes when it closes."""

    def __init__(self, handler: Handler, on_close: Callable[[_Connection], None]) -> None:
        self._handler = handler
        self._on_close = on_close
        self._buffer = bytearray()
        self._data = asyncio.Event()
        self._eof = False
        self.closed = asyncio.Event()
        self.disconnected_at: float | None = None
        self._transport: asyncio.Transport | None = None
        self._task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._task = asyncio.get_running_loop().create_task(self._serve())

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._data.set()

    def eof_received(self) -> bool:
        self._gone()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone()
        self._on_close(self)

    def _gone(self) -> None:
        if self.disconnected_at is None:
            self.disconnected_at = time.monotonic()
        self._eof = True
        self.closed.set()
        self._data.set()

    def write(self, data: bytes) -> None:
        if self._transport is None or self._transport.is_closing() or self._eof:
            raise ClientGone("the client closed the connection")
        self._transport.write(data)

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        if self._task is not None:
            self._task.cancel()

    async def _read_until(self, sep: bytes) -> bytes | None:
        while True:
            i = self._buffer.find(sep)
            if i >= 0:
                out = bytes(self._buffer[: i + len(sep)])
                del self._buffer[: i + len(sep)]
                return out
            if self._eof:
                return None
            self._data.clear()
            await self._data.wait()

    async def _read_exactly(self, n: int) -> bytes | None:
        while len(self._buffer) < n:
            if self._eof:
                return None
            self._data.clear()
            await self._data.wait()
        out = bytes(self._buffer[:n])
        del self._buffer[:n]
        return out

    async def _read_chunked(self) -> bytes | None:
        body = bytearray()
        while True:
            line = await self._read_until(b"\r\n")
            if line is None:
                return None
            size = int(line.split(b";")[0].strip() or b"0", 16)
            chunk = await self._read_exactly(size + 2)
            if chunk is None:
                return None
            if size == 0:
                return bytes(body)
            body += chunk[:-2]

    async def _serve(self) -> None:
        try:
            while True:
                head = await self._read_until(b"\r\n\r\n")
                if head is None:
                    return
                request = await self._parse(head)
                if request is None:
                    return
                keep_alive = request.headers.get("connection", "").lower() != "close"
                responder = HttpResponder(self, keep_alive)
                try:
                    await self._handler(request, responder)
                except ClientGone:
                    return
                except Exception as exc:
                    # A bug in a scripted reply function must fail the request loudly, not hang the client.
                    logger.error("fake server: the handler failed on %s %s", request.method, request.path, exc_info=exc)
                    if responder.started:
                        self.abort()
                        return
                    await responder.send_json(500, {"error": {"code": 500, "message": f"fake handler failed: {exc!r}"}})
                if not responder.finished or not keep_alive:
                    self.close()
                    return
        finally:
            if self._transport is not None and not self._transport.is_closing():
                self._transport.close()

    async def _parse(self, head: bytes) -> HttpRequest | None:
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = [*lines[0].split(" ", 2), "", ""][:3]
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        body: bytes | None = b""
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._read_chunked()
        elif "content-length" in headers:
            body = await self._read_exactly(int(headers["content-length"]))
        if body is None:
            return None
        return HttpRequest(method=method, target=target, headers=headers, body=body, received_at=time.monotonic())


class FakeHttpServer(LoopbackServer):
    """Serves ``handler(request, responder)`` on ``127.0.0.1:<free port>``; see the module docstring."""

    def __init__(self, handler: Handler, *, host: str = "127.0.0.1") -> None:
        super().__init__()
        self._handler = handler
        self._host = host
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (no trailing slash)."""
        if not self.port:
            raise RuntimeError("the fake server is not running")
        return f"http://{self._host}:{self.port}"

    async def start(self) -> Self:
        def connection() -> _Connection:
            conn = _Connection(self._handler, self._connections.discard)
            self._connections.add(conn)
            return conn

        self._server = await asyncio.get_running_loop().create_server(connection, self._host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for conn in list(self._connections):
            conn.close()
        await self._server.wait_closed()
        self._server = None
