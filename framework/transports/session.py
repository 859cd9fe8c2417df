"""One client connection: the socket, its writer, its parser and the state its input and output share.

:class:`WebSocketTransport` is what a custom pipeline needs to talk the voice agent's protocol::

    transport = WebSocketTransport(websocket)            # an accepted Starlette/ASGI WebSocket
    transport.send_status("connected")
    task = PipelineTask(Pipeline([transport.input(), stt, llm, tts, transport.output()]))
    try:
        await task.run()                                 # ends when the client disconnects
    finally:
        await transport.aclose()

The input reads the socket and pushes frames; the output turns frames into messages. Both hand their messages
to the same :class:`~voxline.transports.writer.SocketWriter`, so one task writes to the socket.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import attrs
from voxline.audio_clock import AudioClock
from voxline.transports.protocol import (
    MAX_MESSAGE_BYTES,
    ProtocolParser,
    error_message,
    event_message,
    status_message,
)
from voxline.transports.writer import SocketWriter

if TYPE_CHECKING:
    from voxline.transports.input import WebSocketInput
    from voxline.transports.output import WebSocketOutput

__all__ = ["AudioClock", "ServerWebSocket", "TransportParams", "WebSocketTransport"]


class ServerWebSocket(Protocol):
    """What the transport needs of a server-side WebSocket (Starlette's ``WebSocket`` has it).

    ``receive`` returns ASGI messages: ``{"type": "websocket.receive", "text": ...}`` or ``"bytes"``, and
    ``{"type": "websocket.disconnect"}`` when the client is gone.
    """

    async def receive(self) -> Mapping[str, Any]: ...

    async def send_text(self, data: str) -> None: ...


@attrs.frozen(slots=True, kw_only=True)
class TransportParams:
    """Limits and formats of one connection."""

    max_message_bytes: int = MAX_MESSAGE_BYTES
    """Inbound messages larger than this get an error message (and are not used)."""
    max_pending: int = 256
    """Outbound data messages queued before the producing stage has to wait."""
    audio_in_rate: int = 16000
    audio_out_rate: int = 24000
    session_id: str = ""


class WebSocketTransport:
    """The shared state of one connection; hands out its input and output processors."""

    def __init__(self, websocket: ServerWebSocket, params: TransportParams | None = None) -> None:
        self.websocket = websocket
        self.params = params or TransportParams()
        self.parser = ProtocolParser(max_message_bytes=self.params.max_message_bytes)
        self.writer = SocketWriter(
            websocket.send_text, max_pending=self.params.max_pending, name=f"ws-{self.params.session_id}"
        )
        self.audio_clock = AudioClock(self.params.audio_in_rate)
        self.disconnected = asyncio.Event()
        """Set when the client has gone (the socket closed or a send failed)."""
        self.typed_turn_ns: int | None = None
        """When the input last received a typed turn (a metrics anchor for the output)."""
        self._input: WebSocketInput | None = None
        self._output: WebSocketOutput | None = None

    def input(self) -> WebSocketInput:
        """The head processor: reads the socket and pushes frames. One per transport."""
        if self._input is None:
            from voxline.transports.input import WebSocketInput

            self._input = WebSocketInput(self)
        return self._input

    def output(self) -> WebSocketOutput:
        """The tail processor: sends frames to the client as protocol messages. One per transport."""
        if self._output is None:
            from voxline.transports.output import WebSocketOutput

            self._output = WebSocketOutput(self)
        return self._output

    @property
    def bot_active(self) -> bool:
        """A reply is being generated or spoken (used to decide whether a typed turn interrupts)."""
        return self._output is not None and self._output.reply_active

    # --- out-of-band messages (never dropped by an interruption) --------------------------------------

    def send_status(self, status: str) -> None:
        self._put(status_message(status))

    def send_error(self, message: str) -> None:
        self._put(error_message(message))

    def send_event(self, kind: str, data: Any) -> None:
        """An additive message such as ``session``: ``{"type": kind, "data": data}``."""
        self._put(event_message(kind, data))

    def _put(self, message: str) -> None:
        self.writer.start()
        self.writer.put_nowait(message)

    async def aclose(self, *, flush_timeout: float = 0.5) -> None:
        """Flush what is queued (briefly) and stop the writer task."""
        await self.writer.aclose(flush_timeout=flush_timeout)
