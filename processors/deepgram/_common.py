"""What the Deepgram processors share: the client from key + base URL, error wording, backoff, key redaction.

Configuration comes from arguments first, then the environment: ``DEEPGRAM_API_KEY`` and ``DEEPGRAM_BASE_URL``
(an ``http(s)://`` base for regional endpoints, self-hosted Deepgram and the test fake; the WebSocket URL is
derived from it, ``http``→``ws`` and ``https``→``wss``). The SDK itself reads no base-URL variable.

The API key must never reach a log line or an error message. Errors are worded here from status codes and
exception types — never from ``str(exc)`` of the SDK, whose ``ApiError`` text embeds request headers — and a
logging filter scrubs the key from the ``websockets`` client's DEBUG handshake lines, which print every header.
"""

from __future__ import annotations

import logging
import os
import random
import urllib.parse
from typing import Any

__all__ = [
    "MAX_SPEAK_CHARS",
    "Backoff",
    "KeyRedactor",
    "deepgram_client",
    "describe_failure",
    "http_status",
    "resolve_config",
    "speak_pieces",
]

DEFAULT_BASE_URL = "https://api.deepgram.com"

MAX_SPEAK_CHARS = 2000
"""Aura's limit per ``Speak`` message and per REST request: "The input limit is currently 2000 characters for the
text input of each Speak message" (Streaming TTS, Limits); REST answers 413 "Input text exceeds maximum
character limit of 2000." (API reference). Longer text is sent in pieces."""


def resolve_config(api_key: str | None, base_url: str | None) -> tuple[str, str]:
    """The API key and the http(s) base URL to use; raises ``ValueError`` with a clear message when unusable."""
    key = api_key if api_key is not None else os.environ.get("DEEPGRAM_API_KEY", "")
    if not key.strip():
        raise ValueError("Deepgram needs an API key: pass api_key= or set DEEPGRAM_API_KEY")
    base = base_url or os.environ.get("DEEPGRAM_BASE_URL") or DEFAULT_BASE_URL
    parts = urllib.parse.urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"DEEPGRAM_BASE_URL must be an http:// or https:// URL, got {base!r}")
    return key.strip(), base.rstrip("/")


def websocket_base(base_url: str) -> str:
    """``http://h:p/x`` → ``ws://h:p/x``; ``https://…`` → ``wss://…``."""
    scheme, rest = base_url.split("://", 1)
    return ("wss" if scheme == "https" else "ws") + "://" + rest


def deepgram_client(api_key: str, base_url: str, http: Any = None) -> Any:
    """An ``AsyncDeepgramClient`` for ``base_url`` (imported here so ``import voxline`` stays light).

    ``http`` is an ``httpx.AsyncClient`` the caller owns and closes (REST keeps connections alive; a stage
    must not leave them behind when it stops).
    """
    from deepgram import AsyncDeepgramClient, DeepgramClientEnvironment

    ws = websocket_base(base_url)
    environment = DeepgramClientEnvironment(base=base_url, production=ws, agent=ws, agent_rest=base_url)
    KeyRedactor.install(api_key)
    return AsyncDeepgramClient(api_key=api_key, environment=environment, httpx_client=http)


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of a failed handshake or request, if the exception carries one."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status
    response = getattr(exc, "response", None)  # websockets InvalidStatus
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def describe_failure(what: str, exc: BaseException) -> str:
    """A user-facing sentence about a failed Deepgram call, built without the exception's text (no key)."""
    status = http_status(exc)
    if status in (401, 403):
        return f"{what}: Deepgram rejected the API key (HTTP {status}); check DEEPGRAM_API_KEY"
    if status is not None:
        return f"{what}: Deepgram answered HTTP {status}"
    if hasattr(exc, "rcvd") and hasattr(exc, "sent"):  # websockets ConnectionClosed: code/reason hold no secret
        frame = exc.rcvd or exc.sent
        if frame is None:
            return f"{what}: connection lost (1006)"
        return f"{what}: connection closed ({frame.code}{' ' + frame.reason if frame.reason else ''})"
    return f"{what}: {type(exc).__name__}"


class Backoff:
    """Exponential backoff with full jitter, capped: delay n is uniform in [base·2ⁿ/2, base·2ⁿ], ≤ ``maximum``."""

    def __init__(self, initial: float = 0.25, maximum: float = 5.0, rng: random.Random | None = None) -> None:
        self.initial = initial
        self.maximum = maximum
        self._rng = rng or random.Random()

    def delay(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (1-based)."""
        ceiling = min(self.maximum, self.initial * (2 ** max(0, attempt - 1)))
        return self._rng.uniform(ceiling / 2, ceiling)


class KeyRedactor(logging.Filter):
    """Replaces known API keys with ``***`` in log records of the loggers the SDK stack writes to."""

    _secrets: set[str] = set()
    _installed = False
    LOGGERS = ("websockets", "websockets.client", "deepgram", "httpx", "httpcore")

    @classmethod
    def install(cls, secret: str) -> None:
        if len(secret) >= 4:
            cls._secrets.add(secret)
        if not cls._installed:
            cls._installed = True
            redactor = cls()
            for name in cls.LOGGERS:
                logging.getLogger(name).addFilter(redactor)

    @classmethod
    def scrub(cls, text: str) -> str:
        for secret in cls._secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
            message = record.getMessage()
            scrubbed = self.scrub(message)
            if scrubbed != message:
                record.msg, record.args = scrubbed, None
        return True


def speak_pieces(text: str, limit: int = MAX_SPEAK_CHARS) -> list[str]:
    """``text`` cut into pieces of at most ``limit`` characters, at the last whitespace where there is one; the
    pieces joined give ``text`` back. Deepgram refuses longer text (WebSocket: close 1009 ``BIG-0001``)."""
    pieces: list[str] = []
    while len(text) > limit:
        cut = max(text.rfind(" ", 0, limit), text.rfind("\n", 0, limit)) + 1
        cut = cut if cut > 0 else limit
        pieces.append(text[:cut])
        text = text[cut:]
    if text:
        pieces.append(text)
    return pieces
