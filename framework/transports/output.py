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
faster than real time, so the output keeps a playback clock (the transport's
:class:`~voxline.transports.playback.PlaybackClock`) and says ``stopped`` when the sent audio should have
finished playing (at once on an interruption). It also pushes Bot{Started,Stopped}SpeakingFrame upstream so
that earlier stages (the turn engine deciding on barge-in, say) know when the bot talks.

``BotPlaybackFrame`` (the turn engine holding the bot while it finds out whether the user is barging in)
becomes the additive ``playback`` message (``pause`` / ``resume``) and stops or restarts the playback clock; a
client that ignores it keeps playing. Before the first audio of each epoch the output sends ``playback``
``start`` with the epoch, which the client's ``played`` reports name.

The same clock says how much of a reply the user heard when they cut it: on an interrupt the output pushes a
:class:`~voxline.frames.BotHeardTextFrame` upstream with the seconds of that reply's audio that had played by
now — the client's own ``played`` reports where it sends them, else the server's estimate (sent audio minus
what is still ahead on the clock; the browser's buffer and output latency are not counted, so it errs towards
"heard"). A listener attached to the transport (the session's echo detector) is told when each chunk plays.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from voxline.frames import (
    AudioFrame,
    BotHeardTextFrame,
    BotPlaybackFrame,
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
    UserTurnEndedFrame,
)
from voxline.processor import UPSTREAM, Direction, Processor
from voxline.transports.metrics import TurnMetrics
from voxline.transports.protocol import (
    audio_message,
    error_message,
    event_message,
    playback_message,
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
        self.playback = transport.playback
        self._generating = False
        self._bot_speaking = False
        self._stop_timer: asyncio.TimerHandle | None = None
        self._out_rate = transport.params.audio_out_rate
        self._announced: int | None = None  # the epoch whose playback "start" went out
        self._paused = False  # a "pause" went out (and no "resume" yet)

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
            self._paused = False
            self.playback.stop()
            self._bot_stopped()
            writer.put_nowait(status_message("interrupted"))
            if heard is not None:
                await self.push(heard, UPSTREAM)
        elif isinstance(frame, BotPlaybackFrame):
            self._playback_action(frame.action)
        elif isinstance(frame, UserTurnEndedFrame):
            if frame.speech_end is not None:  # the turn engine's clock is time.monotonic()
                self.metrics.mark_user_end(min(time.monotonic_ns(), int(frame.speech_end * 1e9)))
        elif isinstance(frame, TTSStartedFrame):
            if frame.epoch is not None and frame.epoch >= self.epoch:
                self.playback.begin(frame.epoch)
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
        writer = self.transport.writer
        epoch = self.epoch if frame.epoch is None else frame.epoch
        if epoch != self._announced and epoch >= writer.fence_epoch:
            self._announced = epoch
            writer.put_nowait(playback_message("start", epoch), epoch)
        if not await writer.put(audio_message(frame.pcm), frame.epoch, prompt=True):
            return
        self.metrics.mark_first_audio(time.monotonic_ns())
        self.playback.audio(epoch, frame.pcm, frame.sample_rate or self._out_rate)
        if self._stop_timer is not None:
            self._stop_timer.cancel()
            self._stop_timer = None
        if not self._bot_speaking:
            self._bot_speaking = True
            self.transport.writer.put_nowait(_BOT_STARTED)
            await self.push(BotStartedSpeakingFrame(), UPSTREAM)

    def _heard(self) -> BotHeardTextFrame | None:
        """How much of the reply this interrupt cuts had played, if a reply was being spoken."""
        epoch = self.playback.epoch
        if epoch is None or epoch >= self.epoch or not (self._generating or self._bot_speaking):
            return None
        played = self.playback.position() if self._bot_speaking else self.playback.sent
        return BotHeardTextFrame(epoch=epoch, played_seconds=played)

    # --- the bot's speaking state ---------------------------------------------------------------------

    def _playback_action(self, action: str) -> None:
        """The turn engine pauses the bot (or lets it go on): tell the client, and hold the playback clock."""
        if action == "pause":
            if not self._bot_speaking or self._paused:
                return  # nothing is playing: nothing to hold (and no resume will be owed)
            self._paused = True
            self.playback.pause()
            if self._stop_timer is not None:
                self._stop_timer.cancel()
                self._stop_timer = None
            self.transport.writer.put_nowait(playback_message("pause"))
        elif self._paused:
            self._paused = False
            self.playback.resume()
            self.transport.writer.put_nowait(playback_message("resume"))
            if not self._generating:
                self._schedule_bot_stopped()

    def _schedule_bot_stopped(self) -> None:
        if not self._bot_speaking or self._paused:
            return
        delay = self.playback.ahead()
        if self._stop_timer is not None:
            self._stop_timer.cancel()
        self._stop_timer = asyncio.get_running_loop().call_later(delay, self._bot_stopped)

    def _bot_stopped(self) -> None:
        if self._stop_timer is not None:
            self._stop_timer.cancel()
            self._stop_timer = None
        if not self._bot_speaking:
            return
        self._bot_speaking = False
        self.transport.writer.put_nowait(_BOT_STOPPED)
        self.create_task(self.push(BotStoppedSpeakingFrame(), UPSTREAM), name="bot-stopped", epoch_bound=False)

    async def on_stop(self) -> None:
        if self._stop_timer is not None:
            self._stop_timer.cancel()
            self._stop_timer = None
