"""Who may open a session: an optional static token, and short-lived signed session tokens.

Off by default (anyone who passes the ``Origin`` check gets a session). Two settings turn it on, alone or together:

* ``AUTH_TOKEN`` — a static bearer token, for servers and trusted clients: ``Authorization: Bearer <token>`` on
  the WebSocket handshake, or ``/ws?token=<token>`` (browsers cannot set headers on a WebSocket). It also guards
  ``POST /session`` and ``/metrics``.
* ``SESSION_SECRET`` — an HMAC-SHA256 key. Your backend asks ``POST /session`` (with ``AUTH_TOKEN``) for a token
  that opens sessions for ``SESSION_TOKEN_TTL`` seconds and hands it to the browser, which connects to
  ``/ws?token=<session token>``: the static token never reaches a browser. Or your backend mints the same
  tokens itself with the shared secret (:func:`mint_session_token`; the format is in docs/security.md).

Every comparison is constant-time (``hmac.compare_digest``). A refused client gets what every refusal gets
(:mod:`~voxline.apps.voice_agent.admission`): an ``error`` saying what is missing, then close code 1008. A
client resuming a conversation (``?resume=``, :mod:`~voxline.apps.voice_agent.resume`) is admitted by its resume
token alone: it proves the conversation was opened with valid credentials, and it works once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

from voxline.apps.voice_agent.ops_settings import Operations

__all__ = ["TOKEN_PREFIX", "Auth", "mint_session_token", "verify_session_token"]

TOKEN_PREFIX = "v1"
MAX_TOKEN_CHARS = 512


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _signature(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())


def mint_session_token(secret: str, ttl: float, *, now: float | None = None) -> tuple[str, int]:
    """A session token valid for ``ttl`` seconds, and when it expires (Unix seconds).

    ``v1.<expiry>.<nonce>.<signature>``: the signature is HMAC-SHA256 over ``v1.<expiry>.<nonce>`` with the
    secret, base64url without padding. The nonce makes every token different; the expiry is not secret.
    """
    expires = int((time.time() if now is None else now) + ttl)
    payload = f"{TOKEN_PREFIX}.{expires}.{_b64(secrets.token_bytes(12))}"
    return f"{payload}.{_signature(secret, payload)}", expires


def verify_session_token(secret: str, token: str, *, now: float | None = None) -> str | None:
    """None when ``token`` is a valid, unexpired session token; otherwise why not (``invalid``/``expired``)."""
    if len(token) > MAX_TOKEN_CHARS:
        return "invalid"
    payload, _, signature = token.rpartition(".")
    parts = payload.split(".")
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1].isdigit():
        return "invalid"
    if not hmac.compare_digest(signature.encode(), _signature(secret, payload).encode()):
        return "invalid"
    if int(parts[1]) < (time.time() if now is None else now):
        return "expired"
    return None


def bearer(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The token a request presents: ``Authorization: Bearer ...`` first, else ``?token=...``."""
    header = headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return query.get("token") or None


class Auth:
    """The app's credentials check (one per app)."""

    def __init__(self, ops: Operations) -> None:
        self._token = str(ops.auth_token) if ops.auth_token is not None else None
        self._secret = str(ops.session_secret) if ops.session_secret is not None else None
        self.ttl = ops.session_token_ttl

    @property
    def required(self) -> bool:
        return self._token is not None or self._secret is not None

    @property
    def can_mint(self) -> bool:
        return self._secret is not None

    def is_static(self, token: str | None) -> bool:
        """``token`` is the static ``AUTH_TOKEN`` (constant time)."""
        return (
            self._token is not None and token is not None and hmac.compare_digest(token.encode(), self._token.encode())
        )

    def check(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        """None when the request may open a session; otherwise what the client is told is wrong."""
        if not self.required:
            return None
        token = bearer(headers, query)
        if token is None:
            return "missing"
        if self.is_static(token):
            return None
        if self._secret is not None:
            return verify_session_token(self._secret, token)
        return "invalid"

    def allows_admin(self, headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
        """The request may use the operator's routes (``/session``, ``/metrics``): ``AUTH_TOKEN``, when set."""
        return self._token is None or self.is_static(bearer(headers, query))

    def mint(self) -> tuple[str, int]:
        assert self._secret is not None
        return mint_session_token(self._secret, self.ttl)


REFUSALS = {
    "missing": "This voice agent needs a token: connect with Authorization: Bearer <token> or /ws?token=<token>.",
    "invalid": "This voice agent did not accept your token. Ask the site that sent you here for a new one.",
    "expired": "Your session token has expired. Ask the site that sent you here for a new one.",
}
"""What a refused client is told, by why."""
