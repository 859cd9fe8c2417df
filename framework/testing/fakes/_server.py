"""Shared plumbing of the fake provider servers: one loopback port for WebSocket *and* plain HTTP requests.

Real providers serve their WebSocket and REST endpoints on one host (Deepgram: ``wss://`` and ``https://``
on ``api.deepgram.com``), and voxline derives one from the other, so a fake has to do the same on one port.
``websockets`` only parses ``GET`` upgrade requests; :class:`_HttpOrWebSocket` (a ``create_connection``
subclass, the extension point ``websockets`` documents) looks at the first bytes of each connection and hands
anything that is not a ``GET`` to a minimal HTTP/1.1 responder (keep-alive, chunked streaming bodies).

:class:`FakeServer` runs in the caller's event loop (``async with``) or in a background thread
(:meth:`FakeServer.start_in_thread`) for sync tests that run the app in another thread. It binds 127.0.0.1
port 0 only.
"""

from __future__ import annotations

import asyncio
import threading
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any, Self, TypeVar

import attrs
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

__all__ = ["FakeServer", "HttpRequest", "HttpResponse"]

T = TypeVar("T")


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


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}
_REASONS |= {429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}


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
    reason = _REASONS.get(response.status, "Status")
    head = [f"HTTP/1.1 {response.status} {reason}"]
    headers = dict(response.headers)
    if isinstance(response.body, bytes):
        headers["Content-Length"] = str(len(response.body))
    else:
        headers["Transfer-Encoding"] = "chunked"
    head += [f"{k}: {v}" for k, v in headers.items()]
    transport.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
    if isinstance(response.body, bytes):
        transport.write(response.body)
        return True
    try:
        async for chunk in response.body:
            if chunk:
                transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    except ConnectionAbortedError:
        return False
    transport.write(b"0\r\n\r\n")
    return True


class FakeServer:
    """Base of the fake providers: override :meth:`handle_websocket`, :meth:`check_handshake`, :meth:`handle_http`.

    ``async with FakeServer() as fake:`` serves in the running loop; ``fake.start_in_thread()`` /
    ``fake.stop_thread()`` serve from a daemon thread with its own loop. :attr:`base_url` is
    ``http://127.0.0.1:<port>`` and :attr:`ws_url` the same with ``ws://``.
    """

    def __init__(self) -> None:
        self.port = 0
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
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

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # --- running in a background thread -------------------------------------------------------------------

    def start_in_thread(self, timeout: float = 10.0) -> Self:
        """Serve from a daemon thread with its own event loop; returns once the port is bound."""
        ready = threading.Event()
        failure: list[BaseException] = []

        async def main() -> None:
            self._stopped = asyncio.Event()
            try:
                await self.start()
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                raise
            ready.set()
            await self._stopped.wait()
            await self.stop()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(main())
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name=f"{type(self).__name__}-thread", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError(f"{type(self).__name__} did not start within {timeout} s")
        if failure:
            raise failure[0]
        return self

    def stop_thread(self, timeout: float = 10.0) -> None:
        """Stop a server started with :meth:`start_in_thread` and join its thread."""
        loop, stopped, thread = self._loop, self._stopped, self._thread
        if loop is None or stopped is None or thread is None:
            return
        loop.call_soon_threadsafe(stopped.set)
        thread.join(timeout)
        self._thread = self._loop = None

    def run_sync(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Call ``fn()`` in the server's loop: directly from that loop's thread, else handed over thread-safely
        (a server started with :meth:`start_in_thread` must not be touched from the test's thread)."""
        loop = self._loop
        if loop is None or loop.is_closed() or threading.current_thread() is self._thread:
            return fn()

        async def call() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), loop).result(timeout)

    def call_in_loop(self, fn: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
        """Run ``fn()`` in the server's thread loop from another thread and return its result."""
        if self._loop is None:
            raise RuntimeError("the server is not running in a thread")

        async def call() -> Any:
            return await fn()

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(timeout)
