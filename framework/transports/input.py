"""The head of a voice pipeline: reads the client's WebSocket and turns messages into frames.

Each message becomes a frame pushed downstream at once: audio → :class:`AudioFrame`, ``interrupt`` →
:class:`InterruptFrame`, a typed ``text`` → :class:`UserTextFrame`. A ``played`` report is no frame: it
corrects the transport's :class:`~voxline.transports.playback.PlaybackClock`. When the client disconnects, the input
pushes a :class:`CancelFrame`, which ends the pipeline task; stopping the task then closes every stage's
provider connections.

**Reading starts early; pushing waits for the start.** :meth:`WebSocketTransport.start` starts the reader as
soon as the socket is accepted, while the pipeline is still starting (models loading, providers connecting):
a client that leaves then is noticed at once (the transport's :attr:`~WebSocketTransport.ended` is set, and the
session can cancel the start instead of finishing it for nobody). Messages read before the pipeline's
StartFrame has passed wait in a small bounded buffer and are pushed, in order, right after it; nothing
overtakes the start. A pipeline whose transport was not started early starts reading at the StartFrame.

**Every message is answered or used; the reader never dies of one.** A message refused by the limits (message
rate, audio rate; :mod:`voxline.transports.limits`) or the parser gets an ``error`` and is dropped; an
unexpected exception while handling one message is logged and answered with an ``error`` too, and reading goes
on. If the reader itself fails, the client is told and the transport ends (``ended``), so the session is torn
down whole, never left half-alive.

The input is also where errors end: an :class:`ErrorFrame` travelling upstream past it is sent to the client.
And it raises the writer's epoch fence the moment it enters a new epoch, *before* the interrupt travels down
the pipeline, so no message of the interrupted reply can leave after the client asked to stop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from voxline.frames import AudioFrame, CancelFrame, ErrorFrame, Frame, InterruptFrame, StartFrame, UserTextFrame
from voxline.processor import DOWNSTREAM, UPSTREAM, Direction, Processor
from voxline.transports.protocol import (
    AudioIn,
    ConfigIn,
    Inbound,
    InterruptIn,
    PlayedIn,
    ProtocolError,
    TextIn,
)

if TYPE_CHECKING:
    from voxline.transports.session import WebSocketTransport

__all__ = ["WebSocketInput"]

logger = logging.getLogger("voxline.transports.input")

EARLY_MESSAGES = 64
EARLY_BYTES = 4 << 20
"""Messages read before the pipeline runs wait in a buffer this big; when it is full, reading pauses."""


class WebSocketInput(Processor):
    """Reads one client's messages and pushes them into the pipeline as frames."""

    def __init__(self, transport: WebSocketTransport, *, name: str = "WebSocketInput") -> None:
        super().__init__(name=name)
        self.transport = transport
        self._reader: asyncio.Task[None] | None = None
        self._live = False
        self._early: deque[Mapping[str, Any]] = deque()
        self._early_bytes = 0
        self._went_live = asyncio.Event()  # the StartFrame has passed
        self._live_event = asyncio.Event()  # ... and the early buffer has been pushed
        self.handling = False
        """A message is being pushed into the pipeline (a stage behind may hold the reader up)."""
        self.received = 0
        """Messages received from the client (good and bad)."""
        self.rejected = 0
        """Messages answered with an error (refused by a limit or the parser, or failed while handled)."""
        self.errors_reported: list[str] = []
        """Pipeline errors (ErrorFrames travelling upstream) this input passed on to the client."""

    async def process(self, frame: Frame, direction: Direction) -> None:
        if direction is UPSTREAM:
            if isinstance(frame, ErrorFrame):
                self.transport.turn_pending_since = None  # a failing stage may never answer
                self.errors_reported.append(frame.message)
                self.transport.send_error(frame.message)
            await self.push(frame, direction)
            return
        await self.push(frame, direction)
        if isinstance(frame, StartFrame) and not self._went_live.is_set():
            self.transport.writer.start()
            self._went_live.set()
            self.start_reading()
            if self._early:
                self.create_task(self._drain_early(), name=f"{self.name}-early", epoch_bound=False)
            else:
                self._set_live()

    async def push_error(self, message: str, *, exception: BaseException | None = None, fatal: bool = False) -> None:
        # Errors of the input's own tasks start upstream of it: tell the client here, or nobody would.
        self.errors_reported.append(message)
        self.transport.send_error(message)
        await super().push_error(message, exception=exception, fatal=fatal)

    @property
    def started(self) -> bool:
        """The pipeline's StartFrame has passed this input."""
        return self._went_live.is_set()

    def start_reading(self) -> None:
        """Start the reader task (once). Before the StartFrame, what it reads waits in the early buffer."""
        if self._reader is None:
            self._reader = self.create_task(self._read(), name=f"{self.name}-read", epoch_bound=False)

    async def stop_reading(self) -> None:
        """Cancel the reader task if it still runs (the pipeline's stop cancels it too)."""
        reader = self._reader
        if reader is not None and not reader.done():
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    def _enter_epoch(self, epoch: int) -> None:
        # Fence the writer first: from here on nothing of an older epoch reaches the client.
        self.transport.writer.fence(epoch)
        super()._enter_epoch(epoch)

    # --- the reader task ------------------------------------------------------------------------------

    async def _read(self) -> None:
        transport = self.transport
        websocket = transport.websocket
        reason = "client disconnected"
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
                if not self._live:
                    await self._hold_early(message)
                    continue
                await self._on_message(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in the reading loop itself: end the session whole, and say why
            logger.exception("the reader failed")
            transport.send_error(f"The session failed: {type(exc).__name__}: {exc}")
            reason = f"the reader failed: {type(exc).__name__}: {exc}"
        if reason == "client disconnected":
            transport.disconnected.set()
        transport.end(reason)
        if self._went_live.is_set():
            await self.push(CancelFrame(reason=reason), DOWNSTREAM)

    async def _hold_early(self, message: Mapping[str, Any]) -> None:
        self._early.append(message)
        self._early_bytes += _size(message)
        if len(self._early) >= EARLY_MESSAGES or self._early_bytes >= EARLY_BYTES:
            await self._live_event.wait()  # full: stop reading (the socket applies back-pressure) until it is pushed

    async def _drain_early(self) -> None:
        """Push what arrived before the start, in order; then the reader pushes directly."""
        try:
            while self._early:
                message = self._early.popleft()
                self._early_bytes -= _size(message)
                await self._on_message(message)
        finally:
            self._early.clear()
            self._early_bytes = 0
            self._set_live()  # no await since the buffer was found empty: the reader cannot slip in between

    def _set_live(self) -> None:
        self._live = True
        self._live_event.set()

    async def _on_message(self, message: Mapping[str, Any]) -> None:
        """One client message: limits, parsing, then its frame. Whatever goes wrong, the client hears of it."""
        transport = self.transport
        try:
            text = message.get("text")
            data = text if text is not None else (message.get("bytes") or b"")
            refused = transport.limiter.message(len(data))
            if refused is not None:
                self._refuse(refused)
                return
            parser = transport.parser
            item: Inbound = parser.parse_text(data) if isinstance(data, str) else parser.parse_bytes(data)
            self.handling = True
            await self._handle(item)
        except ProtocolError as exc:
            self._refuse(str(exc))
        except Exception as exc:  # a bug handling this one message: say so, keep reading
            logger.exception("could not handle a client message")
            self._refuse(f"the server could not handle that message ({type(exc).__name__})")
        finally:
            self.handling = False

    def _refuse(self, error: str) -> None:
        self.rejected += 1
        logger.warning("bad client message: %s", error)
        self.transport.report_bad_input(error)

    async def _handle(self, item: Inbound) -> None:
        transport = self.transport
        if type(item) is AudioIn:
            pcm = item.pcm
            if not pcm:
                return  # an empty chunk carries nothing (and would upset a streaming STT)
            samples = len(pcm) // 2
            refused = transport.limiter.audio(samples / transport.params.audio_in_rate)
            if refused is not None:
                self._refuse(refused)
                return
            transport.note_activity()
            transport.audio_clock.note(samples)
            # Stamped with the epoch here, so that push() need not copy the frame to stamp it.
            frame = AudioFrame(pcm=pcm, sample_rate=transport.params.audio_in_rate, epoch=self.epoch)
            await self.push(frame, DOWNSTREAM)
        elif type(item) is InterruptIn:
            logger.info("client interrupt")
            await self.push(InterruptFrame(reason="client interrupt"), DOWNSTREAM)
        elif type(item) is TextIn:
            transport.note_activity()
            await self._typed_turn(item.text)
        elif type(item) is PlayedIn:
            transport.playback.report(item.epoch, item.seconds)
        elif type(item) is ConfigIn:
            logger.info("client config: binary_audio=%s", transport.parser.binary_audio)

    async def _typed_turn(self, text: str) -> None:
        """A typed turn barges in like speech would and is answered. It is not echoed back: the client that
        typed it already shows it."""
        if self.transport.bot_active:
            await self.push(InterruptFrame(reason="typed turn"), DOWNSTREAM)
        self.transport.typed_turn_ns = time.monotonic_ns()
        self.transport.turn_pending_since = self.transport.params.clock()
        await self.push(UserTextFrame(text=text), DOWNSTREAM)


def _size(message: Mapping[str, Any]) -> int:
    text = message.get("text")
    return len(text) if text is not None else len(message.get("bytes") or b"")
