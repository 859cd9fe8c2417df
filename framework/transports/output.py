"""The tail of a voice pipeline: turns frames into protocol messages for the client.

===========================  =======================================================
frame (downstream)           message
===========================  =======================================================
TranscriptFrame              ``transcript`` ``{"text", "is_final"}`` (empty interims skipped)
TextFrame                    ``text_chunk``
TTSAudioFrame                ``audio`` (base64 24 kHz mono Int16)
LLMResponseStartFrame        ``status: generating``
LLMResponseEndFrame          ``metrics`` then ``status: complete`` (only ``metrics`` if interrupted)
InterruptFrame               ``metrics`` of the cut turn, then ``status: interrupted``
User{Started,Stopped}Speak.  ``speaking`` ``{"who": "user", "state": ...}``
MetricsFrame                 collected into the turn's ``metrics`` message
===========================  =======================================================

The output runs inline (no queue of its own): the session's :class:`~voxline.transports.writer.SocketWriter`
is the queue, and its one task does the sending. Data messages carry their epoch into the writer, so the
writer's fence drops them if an interruption overtakes them.

The bot's ``speaking`` state follows what the client hears, not what the server has sent: audio leaves
faster than real time, so the output keeps a playback clock and says ``stopped`` when the sent audio should
have finished playing (at once on an interruption). It also pushes Bot{Started,Stopped}SpeakingFrame
upstream so that earlier stages (a VAD deciding on barge-in, say) know when the bot talks.

The same clock says how much of a reply the user heard when they cut it: on an interrupt the output pushes a
:class:`~voxline.frames.BotHeardTextFrame` upstream with the seconds of that reply's audio that should have
played by now (sent audio minus what is still ahead on the clock). It is an estimate from the server's side:
the browser's buffer and output latency (tens of milliseconds) are not counted, so it errs towards "heard".
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from voxline.frames import (
    AudioFrame,
    BotHeardTextFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    DataFrame,
    ErrorFrame,
    Frame,
    InterruptFrame,
    LLMResponseEndFrame,
    LLMResponseStartFrame,
    MetricsFrame,
    TextFrame,
    TranscriptFrame,
    TTSAudioFrame,
    TTSStartedFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from voxline.processor import UPSTREAM, Direction, Processor
from voxline.transports.metrics import TurnMetrics
from voxline.transports.protocol import (
    audio_message,
    error_message,
    event_message,
    status_message,
    text_chunk_message,
    transcript_message,
)

if TYPE_CHECKING:
    from voxline.transports.session import WebSocketTransport

__all__ = ["WebSocketOutput"]

logger = logging.getLogger("voxline.transports.output")

_USER_STARTED = event_message("speaking", {"who": "user", "state": "started"})
_USER_STOPPED = event_message("speaking", {"who": "user", "state": "stopped"})
_BOT_STARTED = event_message("speaking", {"who": "bot", "state": "started"})
_BOT_STOPPED = event_message("speaking", {"who": "bot", "state": "stopped"})


class WebSocketOutput(Processor):
    """Sends one client everything the pipeline produces for it, as protocol messages."""

    def __init__(self, transport: WebSocketTransport, *, name: str = "WebSocketOutput") -> None:
        super().__init__(name=name)
        self.transport = transport
        self.metrics = TurnMetrics()
        self._generating = False
        self._bot_speaking = False
        self._playback_end_ns = 0
        self._stop_timer: asyncio.TimerHandle | None = None
        self._out_rate = transport.params.audio_out_rate
        self._spoken_epoch: int | None = None  # the reply whose speech is being sent, and its seconds sent
        self._sent_seconds = 0.0

    @property
    def reply_active(self) -> bool:
        """A reply is being generated or its audio is (by the playback clock) still playing."""
        return self._generating or self._bot_speaking

    async def process(self, frame: Frame, direction: Direction) -> None:
        if direction is UPSTREAM:
            await self.push(frame, direction)
            return
        if isinstance(frame, DataFrame):
            if isinstance(frame, TTSAudioFrame):
                await self._audio(frame)
            elif isinstance(frame, TextFrame):
                await self.transport.writer.put(text_chunk_message(frame.text), frame.epoch)
            elif isinstance(frame, TranscriptFrame):
                await self._transcript(frame)
            elif not isinstance(frame, AudioFrame):  # the user's own audio is not echoed back
                logger.debug("%s: no message for %s", self.name, frame.name)
            return
        await self._system_or_control(frame)
        await self.push(frame, direction)

    async def _system_or_control(self, frame: Frame) -> None:
        writer = self.transport.writer
        if isinstance(frame, MetricsFrame):
            self.metrics.add(frame)
        elif isinstance(frame, InterruptFrame):
            self.transport.turn_pending_since = None
            writer.fence(self.epoch)
            heard = self._heard()
            if self._generating or self.metrics.has_data:
                writer.put_nowait(event_message("metrics", self.metrics.take()))
            self._generating = False
            self._bot_stopped()
            writer.put_nowait(status_message("interrupted"))
            if heard is not None:
                await self.push(heard, UPSTREAM)
        elif isinstance(frame, TTSStartedFrame):
            if frame.epoch is not None and frame.epoch >= self.epoch and frame.epoch != self._spoken_epoch:
                self._spoken_epoch, self._sent_seconds = frame.epoch, 0.0
        elif isinstance(frame, LLMResponseStartFrame):
            self.transport.turn_pending_since = None
            epoch = self.epoch if frame.epoch is None else frame.epoch
            if epoch < self.epoch:
                return  # a reply that was cut before it began
            self._generating = True
            typed = self.transport.typed_turn_ns
            if typed is not None:
                self.metrics.mark_user_end(typed)
                self.transport.typed_turn_ns = None
            writer.put_nowait(status_message("generating"), epoch)
        elif isinstance(frame, LLMResponseEndFrame):
            await self._response_end(frame)
        elif isinstance(frame, UserStartedSpeakingFrame):
            writer.put_nowait(_USER_STARTED)
        elif isinstance(frame, UserStoppedSpeakingFrame):
            clock_ns = None if frame.audio_time is None else self.transport.audio_clock.wall_ns(frame.audio_time)
            self.metrics.mark_user_end(clock_ns if clock_ns is not None else time.monotonic_ns())
            writer.put_nowait(_USER_STOPPED)
        elif isinstance(frame, ErrorFrame):
            writer.put_nowait(error_message(frame.message))

    async def _response_end(self, frame: LLMResponseEndFrame) -> None:
        if not self._generating:
            return  # already reported (an interruption ended this reply)
        self._generating = False
        writer = self.transport.writer
        writer.put_nowait(event_message("metrics", self.metrics.take()))
        stale = frame.epoch is not None and frame.epoch < self.epoch
        if not frame.interrupted and not stale:
            writer.put_nowait(status_message("complete"))
        self._schedule_bot_stopped()

    async def _transcript(self, frame: TranscriptFrame) -> None:
        if not frame.text:
            return
        if frame.is_final and self.transport.turn_pending_since is None:
            self.transport.turn_pending_since = self.transport.params.clock()
        if frame.is_final and self.metrics.anchor_ns is None:
            self.metrics.mark_user_end(time.monotonic_ns())  # no end-of-speech event: the final text is the best
        await self.transport.writer.put(transcript_message(frame.text, frame.is_final), frame.epoch)

    async def _audio(self, frame: TTSAudioFrame) -> None:
        if not await self.transport.writer.put(audio_message(frame.pcm), frame.epoch, prompt=True):
            return
        now = time.monotonic_ns()
        self.metrics.mark_first_audio(now)
        seconds = frame.num_samples / (frame.sample_rate or self._out_rate)
        self._playback_end_ns = max(self._playback_end_ns, now) + int(seconds * 1e9)
        if frame.epoch != self._spoken_epoch:
            self._spoken_epoch, self._sent_seconds = frame.epoch, 0.0
        self._sent_seconds += seconds
        if self._stop_timer is not None:
            self._stop_timer.cancel()
            self._stop_timer = None
        if not self._bot_speaking:
            self._bot_speaking = True
            self.transport.writer.put_nowait(_BOT_STARTED)
            await self.push(BotStartedSpeakingFrame(), UPSTREAM)

    def _heard(self) -> BotHeardTextFrame | None:
        """How much of the reply this interrupt cuts had played, if a reply was being spoken."""
        epoch = self._spoken_epoch
        if epoch is None or epoch >= self.epoch or not (self._generating or self._bot_speaking):
            return None
        self._spoken_epoch = None
        ahead = max(0.0, (self._playback_end_ns - time.monotonic_ns()) / 1e9) if self._bot_speaking else 0.0
        return BotHeardTextFrame(epoch=epoch, played_seconds=max(0.0, self._sent_seconds - ahead))

    # --- the bot's speaking state ---------------------------------------------------------------------

    def _schedule_bot_stopped(self) -> None:
        if not self._bot_speaking:
            return
        delay = max(0.0, (self._playback_end_ns - time.monotonic_ns()) / 1e9)
        if self._stop_timer is not None:
            self._stop_timer.cancel()
        self._stop_timer = asyncio.get_running_loop().call_later(delay, self._bot_stopped)

    def _bot_stopped(self) -> None:
        if self._stop_timer is not None:
            self._stop_timer.cancel()
            self._stop_timer = None
        self._playback_end_ns = 0
        if not self._bot_speaking:
            return
        self._bot_speaking = False
        self.transport.writer.put_nowait(_BOT_STOPPED)
        self.create_task(self.push(BotStoppedSpeakingFrame(), UPSTREAM), name="bot-stopped", epoch_bound=False)

    async def on_stop(self) -> None:
        if self._stop_timer is not None:
            self._stop_timer.cancel()
            self._stop_timer = None
