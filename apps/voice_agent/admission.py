"""Admission control: whether a new WebSocket may become a session, and the count of live sessions.

Checked in this order, before any processor is built; the first that fails refuses the connection:

1. **Origin** (:mod:`~voxline.apps.voice_agent.origins`): a browser page of a site the agent does not trust.
   Close code 1008 (policy violation).
2. **Credentials** (:mod:`~voxline.apps.voice_agent.auth`), when ``AUTH_TOKEN`` or ``SESSION_SECRET`` is set: no
   token, a wrong one, or an expired session token. Close code 1008.
3. **MAX_SESSIONS**: the process already serves that many sessions. Close code 1013 (try again later).
4. **MAX_SESSIONS_PER_IP**: this client address already holds that many. Close code 1013.

(A draining process refuses even earlier, with HTTP 503: :mod:`~voxline.apps.voice_agent.drain`.)

A refused client is not left guessing: the socket is accepted, gets one ``error`` message saying what was
refused and why, and is closed with the code above (a browser cannot read an HTTP refusal of a WebSocket
handshake; it would only see a failed connection). No pipeline, provider connection or model is touched.

An admitted session holds a :class:`Slot` until its handler has finished tearing it down, so the counts (and
``/health``'s ``sessions``) include sessions that are still closing their provider sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from typing import Any

import attrs
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket
from voxline.apps.voice_agent.auth import REFUSALS, Auth
from voxline.apps.voice_agent.config import Settings
from voxline.apps.voice_agent.drain import SERVICE_RESTART
from voxline.apps.voice_agent.origins import OriginPolicy
from voxline.transports.protocol import error_message

__all__ = ["Admission", "Refusal", "Slot", "refuse", "refuse_draining"]

logger = logging.getLogger("voxline.apps.voice_agent.admission")

POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013


@attrs.frozen
class Refusal:
    code: int
    message: str
    """Sent to the client as an ``error``, and logged."""
    reason: str
    """The close frame's reason (short: at most 123 bytes)."""
    kind: str = "other"
    """For metrics: ``origin``, ``unauthorized``, ``server_full``, ``per_address`` (a bounded set)."""


class Slot:
    """One admitted session's place in the counts; :meth:`release` (or leaving the ``with``) gives it back."""

    def __init__(self, admission: Admission, address: str) -> None:
        self._admission = admission
        self.address = address
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._admission._release(self.address)

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Admission:
    """The checks above, and the live counts they use (one instance per app)."""

    def __init__(self, settings: Settings) -> None:
        self.origins = OriginPolicy(settings.cors_origins)
        self.auth = Auth(settings.ops)
        self.max_sessions = settings.limits.max_sessions
        self.max_per_address = settings.limits.max_sessions_per_ip
        self.live = 0
        self.per_address: Counter[str] = Counter()
        self.refused: Counter[int] = Counter()
        """Refusals by close code, since the start."""

    def admit(self, websocket: WebSocket, *, authenticated: bool = False) -> Slot | Refusal:
        """A slot for this connection, or why it is refused. Synchronous: check and count cannot interleave.

        ``authenticated``: the credentials were checked another way (a resume token); skip that check.
        """
        origin = websocket.headers.get("origin")
        refusal: Refusal | None = None
        address = websocket.client.host if websocket.client else "?"
        denied = None if authenticated else self.auth.check(websocket.headers, websocket.query_params)
        if not self.origins.allows(origin, websocket.scope):
            refusal = Refusal(
                POLICY_VIOLATION,
                f"This voice agent does not accept sessions from pages of {origin[:200] if origin else '?'}. "
                "Its operator can allow that origin in CORS_ORIGINS.",
                "origin not allowed",
                "origin",
            )
        elif denied is not None:
            refusal = Refusal(POLICY_VIOLATION, REFUSALS[denied], f"token {denied}", "unauthorized")
        elif self.live >= self.max_sessions:
            refusal = Refusal(
                TRY_AGAIN_LATER,
                f"The voice agent is busy: it serves at most {self.max_sessions} sessions at once. "
                "Try again in a moment.",
                "server full",
                "server_full",
            )
        elif self.per_address[address] >= self.max_per_address:
            refusal = Refusal(
                TRY_AGAIN_LATER,
                f"Too many sessions from your address: at most {self.max_per_address} at once. "
                "Close one (another tab?) and try again.",
                "too many sessions from this address",
                "per_address",
            )
        if refusal is not None:
            self.refused[refusal.code] += 1
            logger.warning("refused a session from %s (origin %s): %s", address, origin, refusal.reason)
            return refusal
        self.live += 1
        self.per_address[address] += 1
        return Slot(self, address)

    def _release(self, address: str) -> None:
        self.live -= 1
        self.per_address[address] -= 1
        if self.per_address[address] <= 0:
            del self.per_address[address]

    def health(self) -> dict[str, Any]:
        return {
            "max_sessions": self.max_sessions,
            "max_sessions_per_ip": self.max_per_address,
            "refused": {str(code): n for code, n in sorted(self.refused.items())},
        }


async def refuse(websocket: WebSocket, refusal: Refusal, *, timeout: float = 5.0) -> None:
    """Accept, send the ``error``, close with the refusal's code. Bounded: a client that does not read cannot
    hold the handler."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(timeout):
            await websocket.accept()
            await websocket.send_text(error_message(refusal.message))
            await websocket.close(code=refusal.code, reason=refusal.reason)


async def refuse_draining(websocket: WebSocket, *, timeout: float = 5.0) -> None:
    """A draining process turns a new session away with HTTP 503 on the handshake, so a proxy that retries on
    503 hands it to another backend; a server that cannot send an HTTP response there gets the usual refusal
    (``error``, then close code 1012: reconnect, elsewhere)."""
    message = "This voice agent is restarting. Connect again (another server will take the session)."
    with contextlib.suppress(Exception):
        async with asyncio.timeout(timeout):
            if "websocket.http.response" in websocket.scope.get("extensions", {}):
                body = {"status": "draining", "error": message}
                await websocket.send_denial_response(JSONResponse(body, 503, headers={"Retry-After": "1"}))
                return
            await websocket.accept()
            await websocket.send_text(error_message(message))
            await websocket.close(code=SERVICE_RESTART, reason="server draining")
