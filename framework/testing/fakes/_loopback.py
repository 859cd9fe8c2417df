"""What every fake provider server shares: running on 127.0.0.1 in the test's loop or in a thread, and HTTP/1.1.

A fake runs in the test's event loop (``async with``) or, for sync tests that run the app in another thread, on
its own loop in a daemon thread (:meth:`LoopbackServer.start_in_thread`, or ``with server.running_in_thread()``).
Both servers — :mod:`._http` (plain HTTP, for the LLM fakes) and :mod:`._server` (WebSocket and HTTP on one
port, for Deepgram) — subclass :class:`LoopbackServer` and implement only how they bind and close, and both
write HTTP/1.1 response heads and chunks with the helpers here.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator
from types import TracebackType
from typing import Any, Self, TypeVar

__all__ = ["REASONS", "LoopbackServer", "chunk", "response_head"]

T = TypeVar("T")

REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def response_head(status: int, headers: dict[str, str]) -> bytes:
    """An HTTP/1.1 status line and headers, up to the blank line."""
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunk(data: bytes) -> bytes:
    """One piece of a ``Transfer-Encoding: chunked`` body (``b""`` is the last chunk)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


class LoopbackServer:
    """Base of the fake servers: subclasses implement :meth:`start` (bind 127.0.0.1 port 0, set :attr:`port`) and
    :meth:`stop`; this class runs them in the caller's loop or in a thread, and hands calls to that thread."""

    def __init__(self) -> None:
        self.port = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None

    async def start(self) -> Self:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    # --- running in this loop -----------------------------------------------------------------------------

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

    @contextlib.contextmanager
    def running_in_thread(self) -> Iterator[Self]:
        """:meth:`start_in_thread` for as long as the ``with`` block lasts."""
        self.start_in_thread()
        try:
            yield self
        finally:
            self.stop_thread()

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
