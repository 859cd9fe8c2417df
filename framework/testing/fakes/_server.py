"""Shared plumbing of the fake provider servers: one loopback port for WebSocket *and* plain HTTP requests.

Real providers serve their WebSocket and REST endpoints on one host (Deepgram: ``wss://`` and ``https://``
on ``api.deepgram.com``), and voxline derives one from the other, so a fake has to do the same on one port.
``websockets`` only parses ``GET`` upgrade requests; :class:`_HttpOrWebSocket` (a ``create_connection``
subclass, the extension point ``websockets`` documents) looks at the first bytes of each connection and hands
anything that is not a ``GET`` to a minimal HTTP/1.1 responder (keep-alive, chunked streaming bodies).

:class:`FakeServer` runs in the caller's event loop (``async with``) or in a background thread
(:meth:`FakeServer.start_in_thread`) for sync tests that run the app in another thread, as every fake does
(:mod:`._loopback`). It binds 127.0.0.1 port 0 only.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any, Self

import attrs
from voxline.testing.fakes._loopback import LoopbackServer, chunk, response_head
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

__all__ = ["FakeServer", "HttpRequest", "HttpResponse"]


@attrs.frozen
class HttpRequest:
    """A plain HTTP request received by a fake: header names are lower-cased."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@attrs.define
class HttpResponse:
    """What a fake answers. A ``body`` iterator is streamed with chunked encoding; raising ``ConnectionAbortedError``
    in it aborts the TCP connection mid-body (a dropped stream)."""

    status: int = 200
    headers: dict[str, str] = attrs.field(factory=dict)
    body: bytes | AsyncIterator[bytes] = b""


class _HttpOrWebSocket(ServerConnection):
    """A websockets connection that answers non-GET requests itself (see the module docstring)."""

    owner: FakeServer  # set on the subclass made per server

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sniff = b""
        self._mode: str | None = None
        self._http_reader: asyncio.StreamReader | None = None
        self._http_task: asyncio.Task[None] | None = None
        self._mode_known: asyncio.Future[None] = self.loop.create_future()

    def data_received(self, data: bytes) -> None:
        if self._mode is None:
            self._sniff += data
            if len(self._sniff) < 4 and b" " not in self._sniff:
                return
            data, self._sniff = self._sniff, b""
            self._mode = "ws" if data.startswith(b"GET ") else "http"
            if self._mode == "http":
                self._http_reader = asyncio.StreamReader()
                self._http_task = self.loop.create_task(self._serve_http(self._http_reader))
                self.owner._http_connections.add(self)
            if not self._mode_known.done():
                self._mode_known.set_result(None)
        if self._http_reader is not None:
            self._http_reader.feed_data(data)
        else:
            super().data_received(data)

    def eof_received(self) -> None:
        if self._http_reader is not None:
            self._http_reader.feed_eof()
            return
        super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._http_reader is not None and not self._http_reader.at_eof():
            self._http_reader.feed_eof()
        super().connection_lost(exc)

    async def handshake(self, *args: Any, **kwargs: Any) -> None:
        await asyncio.wait([self._mode_known, self.connection_lost_waiter], return_when=asyncio.FIRST_COMPLETED)
        if self._http_task is not None:
            await asyncio.gather(self._http_task, return_exceptions=True)
            return  # the server sees a non-OPEN connection and aborts the (finished) transport
        await super().handshake(*args, **kwargs)

    async def _serve_http(self, reader: asyncio.StreamReader) -> None:
        transport = self.transport
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                url = urllib.parse.urlsplit(target)
                query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
                request = HttpRequest(method=method, path=url.path, query=query, headers=headers, body=body)
                response = await self.owner.handle_http(request)
                if not await _write_response(transport, response):
                    transport.abort()
                    return
        except Exception:
            transport.abort()
        finally:
            self.owner._http_connections.discard(self)
            if not transport.is_closing():
                transport.close()


async def _write_response(transport: asyncio.Transport, response: HttpResponse) -> bool:
    headers = dict(response.headers)
    if isinstance(response.body, bytes):
        headers["Content-Length"] = str(len(response.body))
    else:
        headers["Transfer-Encoding"] = "chunked"
    transport.write(response_head(response.status, headers))
    if isinstance(response.body, bytes):
        transport.write(response.body)
        return True
    try:
        async for piece in response.body:
            if piece:
                transport.write(chunk(piece))
    except ConnectionAbortedError:
        return False
    transport.write(chunk(b""))
    return True


class FakeServer(LoopbackServer):
    """Base of the fake providers: override :meth:`handle_websocket`, :meth:`check_handshake`, :meth:`handle_http`.

    ``async with FakeServer() as fake:`` serves in the running loop; ``fake.start_in_thread()`` /
    ``fake.stop_thread()`` serve from a daemon thread with its own loop (see :class:`LoopbackServer`).
    :attr:`base_url` is ``http://127.0.0.1:<port>`` and :attr:`ws_url` the same with ``ws://``.
    """

    def __init__(self) -> None:
        super().__init__()
        self._server: Server | None = None
        self._http_connections: set[_HttpOrWebSocket] = set()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def open_http_connections(self) -> int:
        """Plain-HTTP connections a client still holds open (keep-alive): 0 once clients closed theirs."""
        return len(self._http_connections)

    # --- what fakes override ------------------------------------------------------------------------------

    async def handle_websocket(self, connection: ServerConnection) -> None:
        """Serve one accepted WebSocket connection until it ends."""
        await connection.close(1008, "no websocket endpoint here")

    def check_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        """Accept (``None``) or reject (a ``Response``) a WebSocket upgrade request."""
        return None

    async def handle_http(self, request: HttpRequest) -> HttpResponse:
        """Answer one plain HTTP request."""
        return HttpResponse(404, {"Content-Type": "text/plain"}, b"not found")

    # --- running in this loop -----------------------------------------------------------------------------

    async def start(self) -> Self:
        owner = self
        connection_class = type("Connection", (_HttpOrWebSocket,), {"owner": owner})
        self._server = await serve(
            self.handle_websocket,
            "127.0.0.1",
            0,
            process_request=self.check_handshake,
            create_connection=connection_class,
            open_timeout=None,
            server_header=None,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for connection in list(self._http_connections):  # idle keep-alive connections of HTTP clients
                connection.transport.close()
            try:
                await asyncio.wait_for(asyncio.shield(self._server.wait_closed()), 5.0)
            except TimeoutError:  # a client that never answers the close: do not hang the test run
                for open_connection in list(self._server.all_connections):
                    open_connection.transport.abort()
                await self._server.wait_closed()
            self._server = None
