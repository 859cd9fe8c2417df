"""Deepgram live speech-to-text (Nova-3) over the SDK's async WebSocket client, built to survive the network.

A thin :class:`~voxline.stt.STTProcessor` on a :class:`~voxline.providers.socket.ProviderSocket`: the base
assembles turns, speaking frames and ``stt.latency``; the socket connects, keeps alive and reconnects. What is
Deepgram's own:

* **The socket opens with the first audio**, not at the start of the session: Deepgram closes a listen socket
  that has received no audio within about 10 s (1011 ``NET-0001``), and KeepAlives alone do not prevent it
  ("you must send at least one audio message", STT troubleshooting). A session whose user is quiet (or whose
  microphone is not on yet) therefore holds no socket; the first audio waits in the replay buffer for the
  handshake and goes out first on the new socket. Once audio has flowed, a ``KeepAlive`` goes out whenever none
  has been sent for ``keepalive_interval`` seconds (≤ 5 s).
* **Replay.** Audio is kept until Deepgram finalises it (:class:`~._replay.ReplayBuffer`, bounded), so after a
  drop the unfinished utterance and everything said while reconnecting are sent first on the new connection
  (the socket's replay hook) and no speech is lost. Timestamps of the new connection restart at 0 and are
  shifted back onto the session's audio clock.
* **Turns.** ``is_final`` pieces are joined into one turn, ended on ``speech_final``, on the answer to a
  ``Finalize`` (``from_finalize``) or on ``UtteranceEnd``; ``SpeechStarted`` starts one.
  :meth:`~voxline.stt.STTProcessor.finalize` sends ``Finalize``.
* **Fewer messages** (set by the turn engine, which runs a VAD upstream; both 0 by default: every frame as it
  comes). Each message costs the SDK's framing, a mask and a send call. Deepgram asks for 20-100 ms of audio per
  message ("Streaming buffer sizes should be between 20 and 100 milliseconds of audio",
  https://developers.deepgram.com/docs/measuring-streaming-latency). ``quiet_message_seconds``: while the VAD says
  the user is not speaking, audio below :data:`QUIET_DBFS` (a quiet room) is held while another frame like the
  last still fits in a message of that length (100 ms: five 20 ms frames, three of 30 ms); louder audio goes at
  once with whatever was held, so speech reaches Deepgram as soon as it is louder than the room, whether or not the
  VAD has confirmed it. ``speech_message_seconds``: from the VAD's start until its stop, while the bot is silent,
  messages of up to that much audio (a few interims come that much later; the turn is decided at the VAD's stop,
  which sends the held audio at once, before the engine's ``Finalize``). While the bot speaks
  (``BotStartedSpeakingFrame`` until ``BotStoppedSpeakingFrame``, from the output upstream) speech goes frame by
  frame: its interims decide a barge-in. Held audio also goes out before ``Finalize`` and ``CloseStream``, and a
  reconnect replays it like any unsent audio.
* The SDK yields ``None`` for message types it does not know; those are skipped. A Deepgram ``Error`` message is
  a non-fatal ``ErrorFrame``. ``EndFrame`` sends ``CloseStream`` and waits (bounded) for the last results.
"""

from __future__ import annotations

import logging
from typing import Any

from voxline.audio import below_dbfs
from voxline.frames import (
    AudioFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    Word,
)
from voxline.processor import DOWNSTREAM, UPSTREAM, Direction
from voxline.processors.deepgram._common import deepgram_socket, resolve_config
from voxline.processors.deepgram._replay import ReplayBuffer
from voxline.processors.deepgram.provider import STT_LANGUAGE, STT_MODEL
from voxline.providers.backoff import Backoff
from voxline.providers.socket import ProviderSocket
from voxline.stt import STTProcessor

__all__ = ["DeepgramSTT"]

logger = logging.getLogger("voxline.processors.deepgram.stt")


def _flag(value: bool) -> str:
    return "true" if value else "false"


class DeepgramSTT(STTProcessor):
    """Live STT. Every Deepgram option the issue names is a keyword; ``options`` passes any other query keyword
    of ``listen.v1.connect`` (e.g. ``{"keyterm": [...], "numerals": "true"}``).

    ``speaking_frames`` makes this stage emit ``UserStartedSpeakingFrame`` / ``UserStoppedSpeakingFrame`` from
    Deepgram's results (off by default: a local VAD usually owns those). ``max_retries`` consecutive failed
    connection attempts are reported to the client once; retries go on (``backoff``).
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        model: str = STT_MODEL.default,
        language: str = STT_LANGUAGE.default,
        sample_rate: int | None = None,
        interim_results: bool = True,
        endpointing: int | bool = 300,
        utterance_end_ms: int | None = 1000,
        smart_format: bool = True,
        punctuate: bool = True,
        vad_events: bool = False,
        options: dict[str, Any] | None = None,
        keepalive_interval: float = 4.0,
        max_retries: int = 5,
        backoff: Backoff | None = None,
        max_buffer_seconds: float = 15.0,
        close_timeout: float = 2.0,
        speaking_frames: bool = False,
        quiet_message_seconds: float = 0.0,
        speech_message_seconds: float = 0.0,
        name: str | None = None,
    ) -> None:
        super().__init__(sample_rate=sample_rate, speaking_frames=speaking_frames, name=name)
        self._api_key, self.base_url = resolve_config(api_key, base_url)
        if endpointing is True:
            raise ValueError("endpointing is milliseconds of silence (e.g. 300), or False to turn it off")
        if not 0 < keepalive_interval <= 5:
            raise ValueError("keepalive_interval must be in (0, 5] seconds: Deepgram closes idle sockets after ~10 s")
        self.model = model
        self.language = language
        self.interim_results = interim_results
        self.endpointing = endpointing
        self.utterance_end_ms = utterance_end_ms
        self.smart_format = smart_format
        self.punctuate = punctuate
        self.vad_events = vad_events
        self.options = dict(options or {})
        self.close_timeout = close_timeout
        for what, seconds in (("quiet", quiet_message_seconds), ("speech", speech_message_seconds)):
            if not 0 <= seconds <= MAX_MESSAGE_SECONDS:
                raise ValueError(f"{what}_message_seconds must be in [0, {MAX_MESSAGE_SECONDS}], got {seconds}")
        self.quiet_message_seconds = quiet_message_seconds
        """While a VAD upstream says the user is not speaking, quiet audio goes in messages of up to this length,
        as full as whole frames make them (0: every frame as it comes). See the module docstring."""
        self.speech_message_seconds = speech_message_seconds
        """While the VAD says the user speaks and the bot is silent, messages of up to this length (0: every
        frame as it comes). See the module docstring."""
        self.audio_messages = 0
        """Audio messages sent so far (replays included; for tests, benchmarks and metrics)."""
        self._user_speaking = False  # as the VAD upstream last said
        self._bot_speaking = False  # as the output last said (upstream)
        self._buffer = ReplayBuffer(max_buffer_seconds)
        self._offset = 0.0
        self._bad_format_reported = False
        self._lost_reported = 0.0
        self.socket: ProviderSocket[Any] = deepgram_socket(
            self,
            api_key=self._api_key,
            base_url=self.base_url,
            endpoint="listen",
            options=self.connect_options,
            what="Deepgram STT",
            on_message=self._on_message,
            on_open=self._replay,
            keepalive=_keep_alive,
            keepalive_interval=keepalive_interval,
            wanted=lambda: len(self._buffer) > 0,  # audio Deepgram has not finalised: open with the first audio
            backoff=backoff,
            report_after=max_retries,
        )

    # --- public -------------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.socket.ready

    @property
    def connections(self) -> int:
        """Connections opened so far (for tests and metrics)."""
        return self.socket.connections

    @property
    def keepalives_sent(self) -> int:
        return self.socket.keepalives_sent

    def connect_options(self) -> dict[str, Any]:
        """The keyword arguments of ``listen.v1.connect`` this stage uses (query parameters of the socket)."""
        opts: dict[str, Any] = {
            "model": self.model,
            "encoding": "linear16",
            "sample_rate": self.sample_rate or 16000,
            "channels": 1,
            "interim_results": _flag(self.interim_results),
            "endpointing": "false" if self.endpointing is False else int(self.endpointing),
            "smart_format": _flag(self.smart_format),
            "punctuate": _flag(self.punctuate),
            "language": self.language,
        }
        if self.utterance_end_ms is not None and self.interim_results:
            opts["utterance_end_ms"] = self.utterance_end_ms
        if self.vad_events:
            opts["vad_events"] = "true"
        opts.update(self.options)
        return opts

    # --- the STTProcessor hooks ---------------------------------------------------------------------------

    async def on_audio(self, frame: AudioFrame) -> None:
        rate = self.sample_rate or 16000
        if frame.channels != 1 or frame.sample_rate != rate:
            if not self._bad_format_reported:
                self._bad_format_reported = True
                await self.push_error(
                    f"audio must be mono at {rate} Hz for Deepgram STT; "
                    f"got {frame.channels} channel(s) at {frame.sample_rate} Hz (dropped)"
                )
            return
        pcm = frame.pcm if type(frame.pcm) is bytes else bytes(frame.pcm)
        buffer = self._buffer
        chunk = buffer.append(pcm, len(pcm) / (2 * rate))
        if not self.socket.ready:
            self.socket.wake()  # the first audio opens the socket; until it is ready the buffer holds the audio
            return
        up_to = self._message_seconds(pcm)
        if up_to and buffer.unsent_seconds() + (chunk.end - chunk.start) <= up_to + 1e-9:
            return  # held: another frame like it still fits (or it goes before Finalize, CloseStream, the VAD's stop)
        if buffer.sent_seq != chunk.seq:  # frames held before this one: all in one message
            await self._send_unsent()
        elif await self.socket.send(lambda conn: conn.send_media(pcm)):
            buffer.sent_seq = chunk.seq + 1
            self.audio_messages += 1

    def _message_seconds(self, pcm: bytes) -> float:
        """The most audio the message this frame goes in may carry (0: it goes now)."""
        if self._user_speaking:
            return 0.0 if self._bot_speaking else self.speech_message_seconds
        if self.quiet_message_seconds and below_dbfs(pcm, QUIET_DBFS):
            return self.quiet_message_seconds
        return 0.0

    async def _send_unsent(self) -> None:
        """Send the audio not sent yet on this connection, as one message."""
        chunks = self._buffer.unsent()
        if not chunks:
            return
        pcm = chunks[0].pcm if len(chunks) == 1 else b"".join(c.pcm for c in chunks)
        if await self.socket.send(lambda conn: conn.send_media(pcm)):
            self._buffer.sent_seq = chunks[-1].seq + 1
            self.audio_messages += 1

    async def process(self, frame: Frame, direction: Direction) -> None:
        if direction is DOWNSTREAM and isinstance(frame, (UserStartedSpeakingFrame, UserStoppedSpeakingFrame)):
            self._user_speaking = isinstance(frame, UserStartedSpeakingFrame)
            # The stop: the end of the speech goes now (before the engine's Finalize). The start: held audio goes
            # now unless speech is to gather in messages too (then it rides with the first one).
            gather = self._user_speaking and not self._bot_speaking and self.speech_message_seconds
            if self.socket.ready and not gather:
                await self._send_unsent()
        elif direction is UPSTREAM and isinstance(frame, (BotStartedSpeakingFrame, BotStoppedSpeakingFrame)):
            self._bot_speaking = isinstance(frame, BotStartedSpeakingFrame)
            if self._bot_speaking and self._user_speaking and self.socket.ready:
                await self._send_unsent()  # a possible barge-in: its words now, frame by frame from here on
        await super().process(frame, direction)

    async def on_finalize(self) -> bool:
        if self.socket.ready:
            await self._send_unsent()  # Deepgram finalises what it has heard: the held audio first
        return await self.socket.send(lambda conn: conn.send_finalize())

    async def on_end_of_stream(self) -> None:
        """``CloseStream``, then wait (≤ ``close_timeout``) for the last results and the server's close."""
        if self.socket.ready:
            await self._send_unsent()
        await self.socket.close(lambda conn: conn.send_close_stream(), timeout=self.close_timeout)

    async def on_stop(self) -> None:
        self.socket.stop()

    # --- the connection -----------------------------------------------------------------------------------

    async def _replay(self, conn: Any) -> None:
        """On a new connection: send what Deepgram has not finalised (in order) before live audio flows again."""
        self._offset = self._buffer.replay_start
        lost = self._buffer.lost_seconds - self._lost_reported
        if lost > 0:  # the outage outlasted the replay buffer: say so rather than lose it silently
            self._lost_reported = self._buffer.lost_seconds
            logger.warning("%s: %.2f s of audio could not be kept while Deepgram was unreachable", self.name, lost)
        seq = self._buffer.first_seq
        while (chunk := self._buffer.first_unsent(seq)) is not None:
            await conn.send_media(chunk.pcm)
            self.audio_messages += 1
            seq = chunk.seq + 1
        self._buffer.sent_seq = seq  # no await since the loop found nothing left: the socket turns ready now

    # --- results ------------------------------------------------------------------------------------------

    async def _on_message(self, message: Any) -> None:
        kind = getattr(message, "type", None)
        if message is None or isinstance(message, (bytes, dict)) or kind is None:
            logger.debug("%s: skipped a message the SDK did not recognise", self.name)
        elif kind == "Results":
            await self._on_results(message)
        elif kind == "UtteranceEnd":
            if self.turn_pending:
                await self.end_turn()
        elif kind == "SpeechStarted":
            await self.user_started_speaking()
        elif kind == "Error":
            detail = getattr(message, "description", None) or getattr(message, "variant", None) or "unknown"
            await self.push_error(f"Deepgram STT error: {detail}")

    async def _on_results(self, message: Any) -> None:
        is_final = bool(message.is_final)
        start = float(message.start or 0.0) + self._offset
        end = start + float(message.duration or 0.0)
        if is_final:
            self._buffer.finalized_until(end)
        alternatives = message.channel.alternatives if message.channel is not None else None
        alt = alternatives[0] if alternatives else None
        if alt is not None:
            words = [
                Word(
                    text=w.punctuated_word or w.word,
                    start=float(w.start) + self._offset,
                    end=float(w.end) + self._offset,
                    confidence=w.confidence,
                )
                for w in (alt.words or ())
            ]
            await self.push_transcript(
                alt.transcript or "",
                is_final=is_final,
                speech_final=bool(message.speech_final),
                words=words,
                confidence=alt.confidence,
                language=(getattr(alt, "languages", None) or [self.language])[0],  # detected, with language="multi"
                end=end,
            )
        if is_final and (message.speech_final or message.from_finalize):
            await self.end_turn()


MAX_MESSAGE_SECONDS = 0.1
"""The most audio one message may gather: Deepgram's "between 20 and 100 milliseconds" (module docstring)."""

QUIET_DBFS = -55.0
"""Only audio below this level (RMS) is held back while the user is quiet: the VAD's own quiet floor
(``VADParams.quiet_dbfs``), a level at which it does not even ask Silero. Anything louder goes out at once, so
speech the VAD has not confirmed (or misses) costs Deepgram no time."""


async def _keep_alive(conn: Any) -> None:
    await conn.send_keep_alive()
