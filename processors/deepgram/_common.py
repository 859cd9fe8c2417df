"""What the Deepgram processors share: configuration, the process's shared client, error wording, Speak limits.

Configuration comes from arguments first, then the environment: ``DEEPGRAM_API_KEY`` and ``DEEPGRAM_BASE_URL``
(an ``http(s)://`` base for regional endpoints, self-hosted Deepgram and the test fake; the WebSocket URL is
derived from it, ``http``→``ws`` and ``https``→``wss``). The SDK itself reads no base-URL variable.

One ``AsyncDeepgramClient`` per key and endpoint serves every session of the process
(:func:`voxline.providers.clients.shared_client`), with one httpx client for REST on the process's SSL context.
The WebSocket stages open their sockets here (:func:`open_socket`) and hand each one to the SDK's own socket
client, which sends and parses every message; see :func:`open_socket` for why the handshake is not the SDK's
``connect()``. The API key is registered with the process-wide
redactor (:mod:`voxline.providers.redaction`), and errors are worded from status and close codes
(:func:`voxline.providers.socket.describe_failure`) — never from ``str(exc)`` of the SDK, whose ``ApiError`` text
embeds the request headers.
"""

from __future__ import annotations

import contextlib
import functools
import os
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Callable
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
    "open_socket",
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

    Each connection is opened by :func:`open_socket` with ``options()`` as its query (read at every connect, so
    a changed voice applies to the next socket) and a session id of its own (``x-deepgram-session-id``).
    ``hooks`` are the socket's (``on_message``, ``on_open``, ``keepalive``, ``wanted``, ``backoff``,
    ``report_after``, ...).
    """
    session = {
        "Authorization": f"Token {api_key}",
        "User-Agent": _user_agent(),
        "x-deepgram-session-id": str(uuid.uuid4()),
    }
    base = websocket_base(base_url)

    def connect() -> Any:
        # The process's SDK client is built as before (REST uses it): building it also installs the SDK's
        # redaction of credential headers on the ``websockets`` client and server loggers.
        deepgram_client(api_key, base_url)
        query = dict(options())
        # A stage's own request options (extra query parameters the SDK has no keyword for, such as
        # ``filler_words``; extra headers) join ours, as the SDK's ``request_options`` would add them.
        extra = dict(query.pop("request_options", None) or {})
        query.update(extra.get("additional_query_parameters") or {})
        headers = {**(extra.get("additional_headers") or {}), **session}
        return open_socket(f"{base}/v1/{endpoint}?{query_string(query)}", headers, endpoint)

    return ProviderSocket(owner, connect, what=what, provider=PROVIDER, key_setting=KEY_SETTING, **hooks)


@contextlib.asynccontextmanager
async def open_socket(url: str, headers: dict[str, str], endpoint: Literal["listen", "speak"]) -> AsyncIterator[Any]:
    """One Deepgram WebSocket, yielded as the SDK's ``AsyncV1SocketClient`` (its ``send_media``/``send_text``/...
    and its message parsing), opened the way the SDK's ``listen.v1.connect`` / ``speak.v1.connect`` open it —
    the same ``websockets`` client protocol and defaults, the same URL and ``Authorization`` — with two
    differences the SDK offers no option for:

    * **No permessage-deflate.** The SDK lets ``websockets`` offer it; a server that accepts makes the client
      deflate every 20 ms audio message (a sync flush each: ~60-130 µs of CPU per message on the 2-core
      benchmark machine, the largest single cost of a session; docs/performance.md, "Capacity"). Linear16 PCM
      hardly compresses: 4-8 % off speech (three flite voices), 20-35 % off a -60 dBFS room-noise floor;
      only digital silence (all zeros) shrinks to almost nothing. RFC 7692 lets a client offer no extension,
      and every Deepgram message is unchanged.
    * **The process's SSL context** for ``wss://`` (:func:`voxline.providers.clients.ssl_context`): the SDK
      passes none, so asyncio built a new default context — loading the CA bundle — for every connection.

    A refused handshake raises ``websockets``' ``InvalidStatusCode``, whose ``status_code``
    :func:`~voxline.providers.socket.describe_failure` reads (the SDK wraps it in an ``ApiError`` carrying the
    same status).
    """
    from websockets.legacy.client import connect  # what the SDK's connect() uses

    if endpoint == "listen":
        from deepgram.listen.v1.socket_client import AsyncV1SocketClient
    else:
        from deepgram.speak.v1.socket_client import AsyncV1SocketClient  # type: ignore[assignment]
    secure = url.startswith("wss://")
    async with connect(url, extra_headers=headers, compression=None, ssl=ssl_context(url) if secure else None) as ws:
        yield AsyncV1SocketClient(websocket=ws)


def query_string(options: dict[str, Any]) -> str:
    """The socket's query as the SDK encodes it: ``None`` left out, booleans as ``true``/``false``, a list as one
    parameter per item (``keyterm=a&keyterm=b``)."""

    def value(v: Any) -> Any:
        return ("true" if v else "false") if isinstance(v, bool) else v

    pairs = [
        (key, value(item))
        for key, v in options.items()
        if v is not None
        for item in (v if isinstance(v, (list, tuple)) else [v])
    ]
    return urllib.parse.urlencode(pairs)


@functools.cache
def _user_agent() -> str:
    from importlib.metadata import version

    try:
        return f"deepgram-sdk/{version('deepgram-sdk')} voxline"
    except Exception:
        return "voxline"


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
