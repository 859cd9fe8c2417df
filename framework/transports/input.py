"""The head of a voice pipeline: reads the client's WebSocket and turns messages into frames.

The input starts reading once the pipeline's StartFrame has passed it, so nothing overtakes the start. Each
message becomes a frame pushed downstream at once: audio → :class:`AudioFrame`, ``interrupt`` →
:class:`InterruptFrame`, a typed ``text`` → :class:`UserTextFrame`. A bad message gets an ``error`` message and
reading goes on. When the client disconnects, the input pushes a :class:`CancelFrame`, which ends the
pipeline task; stopping the task then closes every stage's provider connections.

The input is also where errors end: an :class:`ErrorFrame` travelling upstream past it is sent to the client.
And it raises the writer's epoch fence the moment it enters a new epoch, *before* the interrupt travels down
the pipeline, so no message of the interrupted reply can leave after the client asked to stop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from voxline.frames import AudioFrame, CancelFrame, ErrorFrame, Frame, InterruptFrame, StartFrame, UserTextFrame
from voxline.processor import DOWNSTREAM, UPSTREAM, Direction, Processor
from voxline.transports.protocol import (
    AudioIn,
    ConfigIn,
    Inbound,
    InterruptIn,
    ProtocolError,
    TextIn,
)

if TYPE_CHECKING:
    from voxline.transports.session import WebSocketTransport

__all__ = ["WebSocketInput"]

logger = logging.getLogger("voxline.transports.input")


class WebSocketInput(Processor):
    """Reads one client's messages and pushes them into the pipeline as frames."""

    def __init__(self, transport: WebSocketTransport, *, name: str = "WebSocketInput") -> None:
        super().__init__(name=name)
        self.transport = transport
        self._reader: asyncio.Task[None] | None = None
        self.received = 0
        """Messages received from the client (good and bad)."""
        self.rejected = 0
        """Messages answered with an error."""
        self.errors_reported: list[str] = []
        """Pipeline errors (ErrorFrames travelling upstream) this input passed on to the client."""

    async def process(self, frame: Frame, direction: Direction) -> None:
        if direction is UPSTREAM:
            if isinstance(frame, ErrorFrame):
                self.errors_reported.append(frame.message)
                self.transport.send_error(frame.message)
            await self.push(frame, direction)
            return
        await self.push(frame, direction)
        if isinstance(frame, StartFrame) and self._reader is None:
            self.transport.writer.start()
            self._reader = self.create_task(self._read(), name=f"{self.name}-read", epoch_bound=False)

    def _enter_epoch(self, epoch: int) -> None:
        # Fence the writer first: from here on nothing of an older epoch reaches the client.
        self.transport.writer.fence(epoch)
        super()._enter_epoch(epoch)

    async def _read(self) -> None:
        websocket = self.transport.websocket
        parser = self.transport.parser
        try:
            while True:
                try:
                    message = await websocket.receive()
                except Exception as exc:  # the socket is gone (Starlette raises once it saw the disconnect)
                    logger.info("client socket closed: %s", exc)
                    break
                kind = message.get("type")
                if kind == "websocket.disconnect":
                    logger.info("client disconnected (code %s)", message.get("code"))
                    break
                if kind != "websocket.receive":
                    continue
                self.received += 1
                try:
                    text = message.get("text")
                    if text is not None:
                        item: Inbound = parser.parse_text(text)
                    else:
                        item = parser.parse_bytes(message.get("bytes") or b"")
                except ProtocolError as exc:
                    self.rejected += 1
                    logger.warning("bad client message: %s", exc)
                    self.transport.send_error(str(exc))
                    continue
                await self._handle(item)
        finally:
            self.transport.disconnected.set()
        await self.push(CancelFrame(reason="client disconnected"), DOWNSTREAM)

    async def _handle(self, item: Inbound) -> None:
        if type(item) is AudioIn:
            pcm = item.pcm
            if not pcm:
                return  # an empty chunk carries nothing (and would upset a streaming STT)
            self.transport.audio_clock.note(len(pcm) // 2)
            # Stamped with the epoch here, so that push() need not copy the frame to stamp it.
            frame = AudioFrame(pcm=pcm, sample_rate=self.transport.params.audio_in_rate, epoch=self.epoch)
            await self.push(frame, DOWNSTREAM)
        elif type(item) is InterruptIn:
            logger.info("client interrupt")
            await self.push(InterruptFrame(reason="client interrupt"), DOWNSTREAM)
        elif type(item) is TextIn:
            await self._typed_turn(item.text)
        elif type(item) is ConfigIn:
            logger.info("client config: binary_audio=%s", self.transport.parser.binary_audio)

    async def _typed_turn(self, text: str) -> None:
        """A typed turn barges in like speech would and is answered. It is not echoed back: the client that
        typed it already shows it."""
        if self.transport.bot_active:
            await self.push(InterruptFrame(reason="typed turn"), DOWNSTREAM)
        self.transport.typed_turn_ns = time.monotonic_ns()
        await self.push(UserTextFrame(text=text), DOWNSTREAM)
