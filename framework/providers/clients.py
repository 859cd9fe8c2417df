"""SDK clients and SSL contexts shared by every session of a process, and one call to close them at shutdown.

A provider SDK client is configuration plus a connection pool; building one per session is waste, measured on
the voice agent: a ``genai.Client`` costs ~1.6 MiB of native memory that is never returned, and every HTTP client
builds an SSL context (CA bundle loaded: ~20 ms of CPU and ~0.8 MB), five per session even for plain ``http://``
URLs. So stages take their clients from here:

* :func:`shared_client` — one client per *key* (provider, a fingerprint of the API key, endpoint, options) and
  event loop, built on first use and reused by every later session. Connection pools belong to the loop that
  opened them, so a process with several loops (tests, a fake server in a thread) gets one per loop. Stages never
  close a shared client; :func:`aclose_shared` closes those of the running loop (the voice agent's lifespan calls
  it at shutdown), and a loop that ends (``asyncio.run``, a test's loop) closes the ones it still holds: they are
  registered with the loop as an async generator, which ``loop.shutdown_asyncgens()`` finalises.
* :func:`ssl_context` — one verifying SSL context per process for ``https://``/``wss://`` endpoints (the CA
  bundle loaded once; ``SSL_CERT_FILE``/``SSL_CERT_DIR`` honoured as httpx does), and for plain ``http://``/
  ``ws://`` endpoints a context without a single CA: nothing to load, and a redirect to TLS fails verification
  instead of trusting anything. Both are built once per process.

The WebSocket connections of the Deepgram SDK are the exception: the SDK opens them with ``websockets``'
legacy client, which asks asyncio for a fresh default SSL context per ``wss://`` connection, and it offers no
per-connection way to pass one (only a process-wide monkey-patch of its modules). Plain ``ws://`` needs none.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import ssl
import threading
import urllib.parse
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Hashable
from typing import Any, TypeVar, cast

__all__ = ["aclose_shared", "fingerprint", "shared_client", "shared_clients", "ssl_context"]

logger = logging.getLogger("voxline.providers.clients")

T = TypeVar("T")

Closer = Callable[[Any], Awaitable[object]]


def fingerprint(secret: str | None) -> str:
    """A short one-way digest of ``secret`` for use in a cache key, so no key is held (or printed) in clear."""
    return hashlib.sha256((secret or "").encode()).hexdigest()[:16]


# --- SSL contexts -------------------------------------------------------------------------------------------

_SSL_LOCK = threading.Lock()
_VERIFYING: ssl.SSLContext | None = None
_PLAIN: ssl.SSLContext | None = None


def ssl_context(url: str | None) -> ssl.SSLContext:
    """The process's SSL context for ``url``: verifying for https/wss (and None: the providers' defaults are
    https), CA-less for plain http/ws (see the module docstring). Built once each, on first use."""
    global _VERIFYING, _PLAIN
    scheme = urllib.parse.urlsplit(url).scheme.lower() if url else "https"
    with _SSL_LOCK:
        if scheme in ("http", "ws"):
            if _PLAIN is None:
                _PLAIN = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, but trusts no CA: no TLS will do
            return _PLAIN
        if _VERIFYING is None:
            _VERIFYING = _verifying_context()
        return _VERIFYING


def _verifying_context() -> ssl.SSLContext:
    cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    if not cafile and not capath:
        import certifi  # a dependency of httpx, which every provider SDK here uses

        cafile = certifi.where()
    return ssl.create_default_context(cafile=cafile, capath=capath)


# --- shared clients -----------------------------------------------------------------------------------------


class _LoopClients:
    """The shared clients of one event loop, closed when the loop shuts its async generators down."""

    def __init__(self) -> None:
        self.clients: dict[Hashable, tuple[Any, Closer | None]] = {}
        self._guard = self._close_at_loop_end()
        # Run the generator to its ``yield`` now: that registers it with the running loop, whose
        # ``shutdown_asyncgens()`` (asyncio.run, asyncio.Runner, uvicorn) will then run its ``finally``.
        with contextlib.suppress(StopIteration):
            self._guard.asend(None).send(None)

    async def _close_at_loop_end(self) -> AsyncGenerator[None]:
        try:
            yield
        finally:
            await self.aclose()

    async def aclose(self) -> int:
        clients, self.clients = self.clients, {}
        for client, close in clients.values():
            if close is None:
                continue
            try:
                await close(client)
            except Exception as exc:  # one client failing to close must not keep the others open
                logger.warning("closing a shared %s failed: %s", type(client).__name__, type(exc).__name__)
        return len(clients)


_LOOPS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClients] = weakref.WeakKeyDictionary()
_LOOPS_LOCK = threading.Lock()


def _clients_of(loop: asyncio.AbstractEventLoop) -> _LoopClients:
    with _LOOPS_LOCK:
        entry = _LOOPS.get(loop)
        if entry is None:
            entry = _LOOPS[loop] = _LoopClients()
        return entry


def shared_client(key: Hashable, build: Callable[[], T], close: Callable[[T], Awaitable[object]] | None = None) -> T:
    """The client cached under ``key`` for the running event loop, built with ``build()`` the first time.

    ``key`` must say everything the client is built from (provider, :func:`fingerprint` of the key, endpoint,
    options), since whoever asks first builds it for everyone. ``close(client)`` is awaited by
    :func:`aclose_shared` and when the loop ends; stages must not close the client themselves.
    """
    entry = _clients_of(asyncio.get_running_loop())
    found = entry.clients.get(key)
    if found is None:
        client = build()
        entry.clients[key] = (client, cast("Closer | None", close))
        return client
    return cast("T", found[0])


def shared_clients() -> list[Any]:
    """The clients shared in the running event loop (for diagnostics and tests)."""
    entry = _LOOPS.get(asyncio.get_running_loop())
    return [client for client, _ in entry.clients.values()] if entry is not None else []


async def aclose_shared() -> int:
    """Close every shared client of the running event loop; returns how many there were.

    Call it once at shutdown, after the sessions have ended (the voice agent's lifespan does). A session started
    afterwards builds fresh clients, so calling it early costs connections, never correctness.
    """
    entry = _LOOPS.get(asyncio.get_running_loop())
    return await entry.aclose() if entry is not None else 0
