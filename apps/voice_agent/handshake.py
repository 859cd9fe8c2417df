"""A handshake timeout for uvicorn: connections that never finish their HTTP request are closed.

uvicorn closes an *idle keep-alive* connection after ``timeout_keep_alive``, but a connection that sends
nothing, or half a request line, or headers one byte a minute (a "slowloris"), or half a WebSocket handshake,
stays open for as long as the client likes: measured, 1,000 half-sent handshakes all stayed open. Each holds a
socket, a file descriptor and a protocol object, and enough of them exhaust the process.

:class:`GuardedHTTPProtocol` is uvicorn's own HTTP protocol (``h11``, or ``httptools`` when installed) with a
timer: from the moment a connection opens (and again when a new request starts on a kept-alive one), the
client has ``HANDSHAKE_TIMEOUT`` seconds to finish the request's headers. Then the request belongs to the app
(a WebSocket upgrade is handed to uvicorn's WebSocket protocol, whose pings and the session's idle timeout take
over) and the timer is off. A connection still without a whole request when the timer fires is closed.

``voxline serve`` uses it (``http="voxline.apps.voice_agent.handshake:GuardedHTTPProtocol"``); with plain
uvicorn pass ``--http voxline.apps.voice_agent.handshake:GuardedHTTPProtocol``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

__all__ = ["GuardedHTTPProtocol", "handshake_timeout"]

logger = logging.getLogger("voxline.apps.voice_agent.handshake")

_TIMEOUT: float | None = None


def handshake_timeout() -> float:
    """``HANDSHAKE_TIMEOUT`` from the app's settings (environment, then the env file), read once per process."""
    global _TIMEOUT
    if _TIMEOUT is None:
        from voxline.apps.voice_agent.config import Limits, load_config

        _TIMEOUT = Limits.from_config(load_config()).handshake_timeout
    return _TIMEOUT


class GuardedHTTPProtocol(AutoHTTPProtocol):  # type: ignore[misc,valid-type]
    """uvicorn's HTTP protocol, closing connections that do not complete a request in time."""

    timeout: float | None = None
    """Seconds to finish a request's headers; None: :func:`handshake_timeout`."""
    closed_by_guard = 0
    """Connections this process closed for taking too long (for tests and logs)."""

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)
        self._guard_cycle: Any = None
        self._guard: asyncio.TimerHandle | None = None
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._guard is None and not self._in_request():
            self._guard_cycle = self.cycle
            self._arm()  # a new request starts on a kept-alive connection
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._guard is not None:
            self._guard.cancel()
            self._guard = None
        super().connection_lost(exc)

    def _arm(self) -> None:
        timeout = self.timeout if self.timeout is not None else handshake_timeout()
        self._guard = asyncio.get_running_loop().call_later(timeout, self._check)

    def _in_request(self) -> bool:
        cycle = self.cycle
        return cycle is not None and not cycle.response_complete

    def _check(self) -> None:
        self._guard = None
        transport = self.transport
        if transport.is_closing() or transport.get_protocol() is not self:
            return  # closed already, or upgraded to a WebSocket: not ours any more
        if self._in_request():
            return  # the headers are in; the app has the request
        if self.cycle is not self._guard_cycle:
            # A request was served since the timer started: this is a new wait (or keep-alive idling, which
            # uvicorn's own keep-alive timeout ends); give it a full period.
            self._guard_cycle = self.cycle
            self._arm()
            return
        type(self).closed_by_guard += 1
        client = self.client
        logger.info(
            "closed a connection from %s that did not complete a request within the handshake timeout",
            f"{client[0]}:{client[1]}" if client else "?",
        )
        transport.close()
