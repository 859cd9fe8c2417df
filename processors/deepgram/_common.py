"""What the Deepgram processors share: configuration, the process's shared client, error wording, Speak limits.

Configuration comes from arguments first, then the environment: ``DEEPGRAM_API_KEY`` and ``DEEPGRAM_BASE_URL``
(an ``http(s)://`` base for regional endpoints, self-hosted Deepgram and the test fake; the WebSocket URL is
derived from it, ``http``→``ws`` and ``https``→``wss``). The SDK itself reads no base-URL variable.

One ``AsyncDeepgramClient`` per key and endpoint serves every session of the process
(:func:`voxline.providers.clients.shared_client`), with one httpx client for REST on the process's SSL context;
the WebSocket stages open their own connections through it. The API key is registered with the process-wide
redactor (:mod:`voxline.providers.redaction`), and errors are worded from status and close codes
(:func:`voxline.providers.socket.describe_failure`) — never from ``str(exc)`` of the SDK, whose ``ApiError`` text
embeds the request headers.
"""

from __future__ import annotations

import os
import urllib.parse
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import attrs
from voxline.providers.clients import fingerprint, shared_client, ssl_context
from voxline.providers.redaction import hide_secret
from voxline.providers.socket import ProviderSocket
from voxline.providers.socket import describe_failure as _describe

if TYPE_CHECKING:
    from voxline.processor import Processor

__all__ = [
    "KEY_SETTING",
    "MAX_SPEAK_CHARS",
    "PROVIDER",
    "deepgram_client",
    "deepgram_socket",
    "describe_failure",
    "resolve_config",
    "speak_pieces",
    "websocket_base",
]

DEFAULT_BASE_URL = "https://api.deepgram.com"
PROVIDER = "Deepgram"
KEY_SETTING = "DEEPGRAM_API_KEY"

MAX_SPEAK_CHARS = 2000
"""Aura's limit per ``Speak`` message and per REST request: "The input limit is currently 2000 characters for the
text input of each Speak message" (Streaming TTS, Limits); REST answers 413 "Input text exceeds maximum
character limit of 2000." (API reference). Longer text is sent in pieces."""

REST_READ_TIMEOUT = 30.0
REST_CONNECT_TIMEOUT = 5.0


def resolve_config(api_key: str | None, base_url: str | None) -> tuple[str, str]:
    """The API key and the http(s) base URL to use; raises ``ValueError`` with a clear message when unusable.

    The key is registered with the process-wide redactor here, before anything can log it.
    """
    key = api_key if api_key is not None else os.environ.get("DEEPGRAM_API_KEY", "")
    if not key.strip():
        raise ValueError("Deepgram needs an API key: pass api_key= or set DEEPGRAM_API_KEY")
    base = base_url or os.environ.get("DEEPGRAM_BASE_URL") or DEFAULT_BASE_URL
    parts = urllib.parse.urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"DEEPGRAM_BASE_URL must be an http:// or https:// URL, got {base!r}")
    hide_secret(key.strip())
    return key.strip(), base.rstrip("/")


def websocket_base(base_url: str) -> str:
    """``http://h:p/x`` → ``ws://h:p/x``; ``https://…`` → ``wss://…``."""
    scheme, rest = base_url.split("://", 1)
    return ("wss" if scheme == "https" else "ws") + "://" + rest


def deepgram_client(api_key: str, base_url: str) -> Any:
    """The process's ``AsyncDeepgramClient`` for this key and endpoint (built on first use, never closed by a stage).

    Its httpx client (REST) uses the process's SSL context and times reads out after 30 s, connects after 5 s.
    """

    def build() -> _Clients:
        import httpx  # a dependency of deepgram-sdk; imported here so ``import voxline`` stays light
        from deepgram import AsyncDeepgramClient, DeepgramClientEnvironment

        ws = websocket_base(base_url)
        environment = DeepgramClientEnvironment(base=base_url, production=ws, agent=ws, agent_rest=base_url)
        http = httpx.AsyncClient(
            verify=ssl_context(base_url), timeout=httpx.Timeout(REST_READ_TIMEOUT, connect=REST_CONNECT_TIMEOUT)
        )
        return _Clients(AsyncDeepgramClient(api_key=api_key, environment=environment, httpx_client=http), http)

    return shared_client(("deepgram", fingerprint(api_key), base_url), build, close=_Clients.aclose).sdk


@attrs.frozen
class _Clients:
    """The SDK client and the httpx client it was given (which we built, so we close)."""

    sdk: Any
    http: Any

    async def aclose(self) -> None:
        await self.http.aclose()


def deepgram_socket(
    owner: Processor,
    *,
    api_key: str,
    base_url: str,
    endpoint: Literal["listen", "speak"],
    options: Callable[[], dict[str, Any]],
    what: str,
    **hooks: Any,
) -> ProviderSocket[Any]:
    """A :class:`~voxline.providers.socket.ProviderSocket` to Deepgram's ``listen`` or ``speak`` WebSocket.

    Each connection is opened through the process's shared client with ``options()`` as its query (read at every
    connect, so a changed voice applies to the next socket) and a session id of its own
    (``x-deepgram-session-id``, which the SDK would otherwise set once per shared client). ``hooks`` are the
    socket's (``on_message``, ``on_open``, ``keepalive``, ``wanted``, ``backoff``, ``report_after``, ...).
    """
    session = {"x-deepgram-session-id": str(uuid.uuid4())}

    def connect() -> Any:
        client = deepgram_client(api_key, base_url)
        api = client.listen.v1 if endpoint == "listen" else client.speak.v1
        query = dict(options())
        # A stage's own request options (e.g. extra query parameters the SDK has no keyword for) join ours.
        extra = dict(query.pop("request_options", None) or {})
        headers = {**extra.get("additional_headers", {}), **session}
        return api.connect(**query, request_options={**extra, "additional_headers": headers})

    return ProviderSocket(owner, connect, what=what, provider=PROVIDER, key_setting=KEY_SETTING, **hooks)


def describe_failure(what: str, exc: BaseException) -> str:
    """A user-facing sentence about a failed Deepgram call (no key): "…: Deepgram answered HTTP 500"."""
    return _describe(what, exc, provider=PROVIDER, key_setting=KEY_SETTING)


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
