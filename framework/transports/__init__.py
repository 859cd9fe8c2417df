"""WebSocket transport for voice pipelines: the voice agent's wire protocol, reusable without the app.

* :class:`WebSocketTransport` — one client connection; hands out its :class:`WebSocketInput` (pipeline head)
  and :class:`WebSocketOutput` (pipeline tail), which share one :class:`SocketWriter` (the only task that
  writes to the socket).
* :mod:`voxline.transports.protocol` — parsing client messages and building server messages
  (``docs/protocol.md``).

The transport needs nothing of a web framework but a server WebSocket with ``receive()`` (ASGI messages) and
``send_text()``: Starlette's ``WebSocket`` fits as it is.
"""

from __future__ import annotations

from voxline.transports.input import WebSocketInput
from voxline.transports.output import WebSocketOutput
from voxline.transports.protocol import MAX_MESSAGE_BYTES, ProtocolError, ProtocolParser
from voxline.transports.session import AudioClock, ServerWebSocket, TransportParams, WebSocketTransport
from voxline.transports.writer import SocketWriter

__all__ = [
    "MAX_MESSAGE_BYTES",
    "AudioClock",
    "ProtocolError",
    "ProtocolParser",
    "ServerWebSocket",
    "SocketWriter",
    "TransportParams",
    "WebSocketInput",
    "WebSocketOutput",
    "WebSocketTransport",
]
