"""Which web pages may open a voice session: the ``Origin`` check on ``/ws``.

Browsers do not apply CORS to WebSockets: any page the user visits can open ``ws://127.0.0.1:8000/ws`` and
talk to the agent (spending its provider credits, or listening to what it says). A browser always sends the
page's origin, so the server decides. Allowed are:

* clients that send no ``Origin`` (not a browser page: the CLI, a test, another server);
* the agent's **own** origin: the scheme and port of the socket the connection actually arrived on (the ASGI
  scope's ``server`` and ``scheme``), with that socket's address or a loopback name (``localhost``,
  ``127.0.0.1``, ``[::1]``) as the host — the page served by this very server, whether it was opened as
  ``http://localhost:8000`` or ``http://192.168.1.5:8000`` (and in a container published on the same port,
  ``docker run -p 8000:8000``);
* the origins listed in ``CORS_ORIGINS`` (``*`` allows every origin: only for a trusted network).

Origins are compared as (scheme, host, port) tuples, default ports filled in, never as strings and never
against the ``Host`` header: with DNS rebinding an attacker's page has ``Host`` = ``Origin`` =
``http://evil.example:8000`` while talking to 127.0.0.1, and ``chrome-extension://...``, ``file://`` (``null``)
and other schemes name no web origin of ours. Behind a proxy or a port mapping, the page's public origin differs
from the socket's: list it in ``CORS_ORIGINS``.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["Origin", "OriginPolicy", "parse_origin"]

Origin = tuple[str, str, int]
"""(scheme, host, port): ``("https", "voice.example.com", 443)``."""

_DEFAULT_PORTS = {"http": 80, "https": 443}
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def parse_origin(text: str) -> Origin | None:
    """``scheme://host[:port]`` as a comparable tuple; None if ``text`` is not an http(s) origin."""
    try:
        parts = urllib.parse.urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host or parts.username is not None or parts.password is not None:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    return scheme, host.lower().rstrip("."), port if port is not None else _DEFAULT_PORTS[scheme]


class OriginPolicy:
    """Decides whether a WebSocket's ``Origin`` may open a session."""

    def __init__(self, allowed: Iterable[str]) -> None:
        entries = [a.strip() for a in allowed if a.strip()]
        self.any = "*" in entries
        self.allowed: frozenset[Origin] = frozenset(
            origin for origin in (parse_origin(a) for a in entries if a != "*") if origin is not None
        )

    @staticmethod
    def invalid_entries(allowed: Iterable[str]) -> list[str]:
        """The entries of a configured list that are neither ``*`` nor an http(s) origin."""
        return [a for a in allowed if a.strip() and a.strip() != "*" and parse_origin(a) is None]

    def allows(self, origin_header: str | None, scope: Mapping[str, Any]) -> bool:
        """``origin_header`` (None: no header) of a connection with this ASGI ``scope``."""
        if origin_header is None or self.any:
            return True
        origin = parse_origin(origin_header)
        if origin is None:  # "null", chrome-extension://..., garbage
            return False
        return origin in self.allowed or origin in own_origins(scope)


def own_origins(scope: Mapping[str, Any]) -> set[Origin]:
    """The origins of the agent's own page for a connection that arrived on ``scope["server"]``."""
    server = scope.get("server")
    if not server or server[1] is None:
        return set()
    host, port = str(server[0]).lower(), int(server[1])
    scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    return {(scheme, h, port) for h in (host, *_LOOPBACK_NAMES)}
