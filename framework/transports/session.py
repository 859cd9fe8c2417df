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

The transport also says when the connection is over, whatever the cause: :attr:`WebSocketTransport.ended` is
set when the client disconnects, when sending to it fails, or when the reader fails (the reason is in
:attr:`~WebSocketTransport.end_reason`). A session that waits on it alongside its pipeline is torn down whole
instead of living on half-dead. Call :meth:`~WebSocketTransport.start` right after accepting the socket to have
a client that leaves during the pipeline's start noticed at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import attrs
from voxline.audio_clock import AudioClock
from voxline.transports.limits import InputLimiter
from voxline.transports.playback import PlaybackClock, PlaybackListener
from voxline.transports.protocol import (
    MAX_MESSAGE_BYTES,
    MAX_TEXT_CHARS,
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

logger = logging.getLogger("voxline.transports.session")


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
    """Outbound data messages queued before the producing stage has to wait. Errors answering bad input are
    not sent while this many messages wait (a client that does not read cannot grow the queue without end)."""
    max_text_chars: int = MAX_TEXT_CHARS
    """Longest typed turn accepted (characters)."""
    max_messages_per_second: float | None = 200.0
    """Inbound messages a second (bursts up to a second's worth); more are refused with an error. None: off."""
    max_audio_speed: float | None = 2.0
    """Inbound audio faster than this many times real time is refused with an error. None: off."""
    audio_burst_seconds: float = 2.0
    """Seconds of audio that may arrive at once (a network stall) before the audio rate applies."""
    audio_in_rate: int = 16000
    audio_out_rate: int = 24000
    session_id: str = ""
    clock: Callable[[], float] = time.monotonic
    """The clock of the limits and of :attr:`WebSocketTransport.last_activity` (tests drive a fake one)."""


class WebSocketTransport:
    """The shared state of one connection; hands out its input and output processors."""

    def __init__(self, websocket: ServerWebSocket, params: TransportParams | None = None) -> None:
        self.websocket = websocket
        self.params = p = params or TransportParams()
        self.parser = ProtocolParser(max_message_bytes=p.max_message_bytes, max_text_chars=p.max_text_chars)
        self.limiter = InputLimiter(
            messages_per_second=p.max_messages_per_second,
            audio_speed=p.max_audio_speed,
            audio_burst_seconds=p.audio_burst_seconds,
            clock=p.clock,
        )
        self.writer = SocketWriter(
            websocket.send_text, max_pending=p.max_pending, name=f"ws-{p.session_id}", on_failure=self._writer_failed
        )
        self.audio_clock = AudioClock(p.audio_in_rate)
        self.disconnected = asyncio.Event()
        """Set when the client has gone (the socket closed or a send failed)."""
        self.ended = asyncio.Event()
        """Set when the connection is over for any reason: see :attr:`end_reason`."""
        self.end_reason: str | None = None
        """Why :attr:`ended` was set (the first reason wins)."""
        self.last_activity = p.clock()
        """When the client last sent audio or a typed turn (the transport's clock); for an idle timeout."""
        self.errors_suppressed = 0
        """Errors answering bad input that were not sent because the client was not reading."""
        self.typed_turn_ns: int | None = None
        """When the input last received a typed turn (a metrics anchor for the output)."""
        self.playback = PlaybackClock()
        """Where the client's playback is (the output feeds it, the client's ``played`` reports correct it)."""
        self.turn_pending_since: float | None = None
        """When the user's last turn ended (a typed turn, or a final transcript) if no reply has started since
        (the transport's clock): the client is waiting for the server."""
        self._input: WebSocketInput | None = None
        self._output: WebSocketOutput | None = None

    def start(self) -> None:
        """Start the writer and the reader now (right after accepting the socket), not at the pipeline's start.

        What the client sends meanwhile waits for the pipeline (in order); a client that leaves meanwhile sets
        :attr:`ended` at once.
        """
        self.writer.start()
        self.input().start_reading()

    def end(self, reason: str) -> None:
        """Mark the connection as over (idempotent: the first reason is kept)."""
        if self.end_reason is None:
            self.end_reason = reason
        self.ended.set()

    def note_activity(self) -> None:
        """The client sent audio or a typed turn (the input calls this)."""
        self.last_activity = self.params.clock()

    def report_bad_input(self, message: str) -> None:
        """An ``error`` answering a bad client message, unless the client is not reading what it is sent."""
        if self.writer.pending >= self.params.max_pending:
            self.errors_suppressed += 1
            return
        self.send_error(message)

    def _writer_failed(self, reason: str) -> None:
        if self.writer.client_gone:
            self.disconnected.set()
        self.end(reason)

    def attach_echo(self, listener: PlaybackListener | None) -> None:
        """Tell ``listener`` (an echo detector) what the client plays and when, from now on."""
        self.playback.listener = listener

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
    def live(self) -> bool:
        """The pipeline runs: its StartFrame has passed the input (messages are pushed, not held)."""
        return self._input is not None and self._input.started

    @property
    def busy(self) -> bool:
        """The server, not the client, is behind: the input is still pushing a message into the pipeline."""
        return self._input is not None and self._input.handling

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
        """Flush what is queued (briefly) and stop the writer task; stop the reader if it still runs."""
        await self.writer.aclose(flush_timeout=flush_timeout)
        if self._input is not None:
            await self._input.stop_reading()
