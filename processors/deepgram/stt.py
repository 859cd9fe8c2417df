"""Deepgram live speech-to-text (Nova-3) over the SDK's async WebSocket client, built to survive the network.

Input: ``AudioFrame`` (mono Int16 at the input rate, 16 kHz in the voice agent; not forwarded). Output:
``TranscriptFrame`` for interim and final results (with confidence and word timings on the session's audio
clock), and one ``UserTextFrame`` per user turn — the ``is_final`` pieces of a long utterance joined, emitted
on ``speech_final``, on a ``Finalize`` answer (``from_finalize``) or on ``UtteranceEnd``. Metric
``stt.latency``: from the arrival of the audio at the end of the user's speech to the arrival of the final
transcript.

Why the machinery:

* Deepgram closes a socket that hears nothing for ~10 s (1011 ``NET-0001``), so a KeepAlive goes out whenever
  no audio has been sent for ``keepalive_interval`` seconds (≤ 5 s).
* The SDK has no reconnect. A connection task reconnects with capped exponential backoff and jitter; audio is
  kept until Deepgram finalises it (:class:`~._replay.ReplayBuffer`), so after a drop the unfinished utterance
  and everything said while reconnecting are replayed and no speech is lost. Timestamps of the new connection
  restart at 0 and are shifted back onto the session clock.
* 401/403 is final: one attempt, one clear error (without the key), no retry storm. Other failures are retried
  and, after ``max_retries`` consecutive failures, an ``ErrorFrame`` tells the client while retries go on.
* The SDK yields ``None`` for message types it does not know; those are skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from voxline.frames import (
    AudioFrame,
    EndFrame,
    Frame,
    MetricsFrame,
    StartFrame,
    TranscriptFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    UserTextFrame,
    Word,
)
from voxline.processor import Direction, Processor
from voxline.processors.deepgram._common import Backoff, deepgram_client, describe_failure, http_status, resolve_config
from voxline.processors.deepgram._replay import ReplayBuffer

__all__ = ["DeepgramSTT"]

logger = logging.getLogger("voxline.processors.deepgram.stt")


def _flag(value: bool) -> str:
    return "true" if value else "false"


class DeepgramSTT(Processor):
    """Live STT. Every Deepgram option the issue names is a keyword; ``options`` passes any other query keyword
    of ``listen.v1.connect`` (e.g. ``{"keyterm": [...], "numerals": "true"}``).

    ``speaking_frames`` makes this stage emit ``UserStartedSpeakingFrame`` / ``UserStoppedSpeakingFrame`` from
    Deepgram's results (off by default: a local VAD usually owns those).
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        model: str = "nova-3",
        language: str = "en",
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
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self._api_key, self.base_url = resolve_config(api_key, base_url)
        if endpointing is True:
            raise ValueError("endpointing is milliseconds of silence (e.g. 300), or False to turn it off")
        if not 0 < keepalive_interval <= 5:
            raise ValueError("keepalive_interval must be in (0, 5] seconds: Deepgram closes idle sockets after ~10 s")
        self.model = model
        self.language = language
        self.sample_rate = sample_rate
        self.interim_results = interim_results
        self.endpointing = endpointing
        self.utterance_end_ms = utterance_end_ms
        self.smart_format = smart_format
        self.punctuate = punctuate
        self.vad_events = vad_events
        self.options = dict(options or {})
        self.keepalive_interval = keepalive_interval
        self.max_retries = max_retries
        self.backoff = backoff or Backoff()
        self.close_timeout = close_timeout
        self.speaking_frames = speaking_frames
        self._buffer = ReplayBuffer(max_buffer_seconds)
        self._client: Any = None
        self._conn: Any = None
        self._ready = False
        self._ready_event = asyncio.Event()  # mirrors _ready, for the graceful close to wait on
        self._closing = False
        self._failed = False
        self._offset = 0.0
        self._last_activity = 0.0
        self._runner: asyncio.Task[Any] | None = None
        self._turn: list[str] = []
        self._in_turn = False
        self._speech_end: float | None = None
        self._final_wall = 0.0
        self._bad_format_reported = False
        self._lost_reported = 0.0
        self.connections = 0
        """Connections opened so far (a counter for tests and metrics)."""
        self.keepalives_sent = 0

    # --- public -------------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._ready

    async def finalize(self) -> bool:
        """Ask Deepgram to finalise what it has heard now (local end of speech). False when not connected."""
        conn = self._conn
        if conn is None or not self._ready:
            return False
        await conn.send_finalize()
        self._last_activity = time.monotonic()
        return True

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

    # --- frames -------------------------------------------------------------------------------------------

    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, AudioFrame):
            await self._on_audio(frame)
            return
        if isinstance(frame, StartFrame):
            if self.sample_rate is None:
                self.sample_rate = frame.audio_in_sample_rate
            self._open()
        elif isinstance(frame, EndFrame):
            await self._close_gracefully()
        await self.push(frame, direction)

    async def on_stop(self) -> None:
        self._closing = True
        self._ready = False
        self._conn = None

    def _open(self) -> None:
        if self._runner is None:
            self._client = deepgram_client(self._api_key, self.base_url)
            self._last_activity = time.monotonic()
            self._runner = self.create_task(self._run(), name=f"{self.name}-connection", epoch_bound=False)
            self.create_task(self._keepalive(), name=f"{self.name}-keepalive", epoch_bound=False)

    async def _on_audio(self, frame: AudioFrame) -> None:
        if self._failed or self._closing or not frame.pcm:
            return  # an empty binary message makes Deepgram close the socket (1008 DATA-0000)
        if frame.channels != 1 or frame.sample_rate != (self.sample_rate or 16000):
            if not self._bad_format_reported:
                self._bad_format_reported = True
                await self.push_error(
                    f"audio must be mono at {self.sample_rate or 16000} Hz for Deepgram STT; "
                    f"got {frame.channels} channel(s) at {frame.sample_rate} Hz (dropped)"
                )
            return
        chunk = self._buffer.append(bytes(frame.pcm), frame.duration, time.monotonic())
        conn = self._conn
        if self._ready and conn is not None:
            try:
                await conn.send_media(chunk.pcm)
            except Exception:  # the connection task sees the drop and reconnects; the chunk stays buffered
                self._ready = False
                return
            self._buffer.sent_seq = chunk.seq + 1
            self._last_activity = time.monotonic()

    # --- the connection -----------------------------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        while not self._nothing_left():
            try:
                async with self._client.listen.v1.connect(**self.connect_options()) as conn:
                    self.connections += 1
                    failures = 0
                    self._conn = conn
                    await self._replay(conn)
                    async for message in conn:
                        await self._on_message(message)
                if self._stopping():
                    return
                logger.info("%s: Deepgram closed the connection; reconnecting", self.name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._nothing_left():
                    return
                if http_status(exc) in (401, 403):
                    self._failed = True
                    await self.push_error(describe_failure("Deepgram STT", exc))
                    return
                failures += 1
                logger.warning("%s: %s (attempt %d)", self.name, describe_failure("connection lost", exc), failures)
                if failures == self.max_retries:
                    message = describe_failure(f"Deepgram STT unavailable after {failures} attempts", exc)
                    await self.push_error(message + "; still retrying")
            finally:
                self._ready = False
                self._ready_event.clear()
                self._conn = None
            await asyncio.sleep(self.backoff.delay(max(1, failures)))

    def _stopping(self) -> bool:
        return self._closing

    def _nothing_left(self) -> bool:
        """Closing, and no audio is waiting for Deepgram (otherwise the graceful close still delivers it)."""
        return self._closing and len(self._buffer) == 0

    async def _replay(self, conn: Any) -> None:
        """Send what Deepgram has not finalised (in order), then let new audio go straight through."""
        self._offset = self._buffer.replay_start
        lost = self._buffer.lost_seconds - self._lost_reported
        if lost > 0:  # the outage outlasted the replay buffer: say so rather than lose it silently
            self._lost_reported = self._buffer.lost_seconds
            logger.warning("%s: %.2f s of audio could not be kept while Deepgram was unreachable", self.name, lost)
        seq = self._buffer.first_seq
        while (chunk := self._buffer.first_unsent(seq)) is not None:
            await conn.send_media(chunk.pcm)
            seq = chunk.seq + 1
        self._buffer.sent_seq = seq
        self._ready = True  # no await since the loop found nothing left: no chunk can slip between
        self._ready_event.set()
        self._last_activity = time.monotonic()

    async def _keepalive(self) -> None:
        while True:
            wait = self._last_activity + self.keepalive_interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            conn = self._conn
            if conn is not None and self._ready:
                with contextlib.suppress(Exception):  # a dead socket is the connection task's business
                    await conn.send_keep_alive()
                    self.keepalives_sent += 1
            self._last_activity = time.monotonic()

    async def _close_gracefully(self) -> None:
        """CloseStream, then wait (bounded) for the last results and the server's close.

        A connection still opening (or replaying) is given the same bounded time to get ready first, so the
        audio buffered before the end of the stream is still transcribed.
        """
        self._closing = True
        runner = self._runner
        if runner is None or runner.done():
            return
        deadline = time.monotonic() + self.close_timeout
        ready = asyncio.ensure_future(self._ready_event.wait())
        await asyncio.wait({ready, runner}, timeout=self.close_timeout, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        conn = self._conn
        if conn is not None and self._ready:
            with contextlib.suppress(Exception):
                await conn.send_close_stream()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(runner), max(0.0, deadline - time.monotonic()))

    # --- results ------------------------------------------------------------------------------------------

    async def _on_message(self, message: Any) -> None:
        kind = getattr(message, "type", None)
        if message is None or isinstance(message, (bytes, dict)) or kind is None:
            logger.debug("%s: skipped a message the SDK did not recognise", self.name)
        elif kind == "Results":
            await self._on_results(message)
        elif kind == "UtteranceEnd":
            if self._turn:
                await self._end_turn()
        elif kind == "SpeechStarted":
            await self._begin_turn()
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
        text = (alt.transcript or "").strip() if alt is not None else ""
        if text and alt is not None:
            await self._begin_turn()
            words = tuple(
                Word(
                    text=w.punctuated_word or w.word,
                    start=float(w.start) + self._offset,
                    end=float(w.end) + self._offset,
                    confidence=w.confidence,
                )
                for w in (alt.words or ())
            )
            frame = TranscriptFrame(
                text=text,
                is_final=is_final,
                confidence=alt.confidence,
                words=words,
                language=(getattr(alt, "languages", None) or [self.language])[0],  # detected, with language="multi"
                speech_final=is_final and bool(message.speech_final),
            )
            await self.push(frame)
            if is_final:
                self._turn.append(text)
                self._speech_end = words[-1].end if words else end
                self._final_wall = time.monotonic()
        if is_final and (message.speech_final or message.from_finalize):
            if self._turn:
                await self._end_turn()
            elif self._in_turn:  # speech started (VAD event) but no words came: a noise, not a turn
                self._in_turn = False
                if self.speaking_frames:
                    await self.push(UserStoppedSpeakingFrame(audio_time=end))

    async def _begin_turn(self) -> None:
        if not self._in_turn:
            self._in_turn = True
            if self.speaking_frames:
                await self.push(UserStartedSpeakingFrame())

    async def _end_turn(self) -> None:
        text = " ".join(self._turn)
        self._turn.clear()
        self._in_turn = False
        speech_end = self._speech_end
        if self.speaking_frames:
            await self.push(UserStoppedSpeakingFrame(audio_time=speech_end))
        arrival = self._buffer.arrival(speech_end) if speech_end is not None else None
        if arrival is not None:
            latency = max(0.0, self._final_wall - arrival)
            await self.push(
                MetricsFrame(name="stt.latency", value=latency, unit="s", source=self.name, epoch=self.epoch)
            )
        await self.push(UserTextFrame(text=text))
