"""Deepgram Aura text-to-speech over one speak WebSocket per session (Speak, Flush, Clear, Close).

Each ``SpeakTextFrame`` is sent as ``Speak`` the moment it arrives. ``Flush`` (which makes Deepgram speak
what it has) goes out at once when nothing is being synthesised — so the first sentence of a reply is spoken
while the LLM still writes the second — and otherwise when the previous flush's audio is complete or the reply
ends. That keeps the audio flowing without gaps while sending far fewer Flushes than sentences: Deepgram allows
20 per 60 s and warns beyond. The socket is opened at the start of the session and kept.

Whose audio is it? Deepgram answers the Flushes of one socket in order, each with its audio and then
``Flushed``; so the stage keeps a queue of *segments* (the text of one Flush, its epoch, when it was sent) and
credits incoming audio to the oldest one; ``tts.ttfb`` is measured per segment. On an interrupt it sends
``Clear`` and queues a clear marker: audio that still arrives before ``Cleared`` belongs to the old segments
and is dropped by the base's epoch check, and ``Cleared`` retires everything up to the marker. The SDK returns
``Cleared`` as a ``SpeakV1Flushed`` object, so messages are dispatched on their ``type``, never their class.

A dropped socket is reopened with capped exponential backoff; text that got no audio yet is sent again, a
sentence cut off mid-audio is reported, not repeated. 401/403 is reported once and not retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any

import attrs
from voxline.frames import EndFrame, Frame, SettingsFrame, SpeakTextFrame, StartFrame
from voxline.processor import Direction
from voxline.processors.deepgram._common import (
    Backoff,
    deepgram_client,
    describe_failure,
    http_status,
    resolve_config,
    speak_pieces,
)
from voxline.tts import TTSProcessor

__all__ = ["DeepgramTTS"]

logger = logging.getLogger("voxline.processors.deepgram.tts")


@attrs.define(eq=False)
class _Segment:
    epoch: int
    text: str
    sent_at: float
    audio_bytes: int = 0
    clear: bool = False  # a marker: everything before it is retired by the next Cleared


class DeepgramTTS(TTSProcessor):
    """Aura TTS over a WebSocket. ``voice`` is any Aura-1 or Aura-2 model name (``aura-2-thalia-en`` …).

    ``SettingsFrame({"voice": ...})`` switches voice between replies (the socket is reopened with the new model).
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        voice: str = "aura-asteria-en",
        sample_rate: int = 24000,
        speed: float | None = None,
        max_retries: int = 5,
        backoff: Backoff | None = None,
        connect_timeout: float = 10.0,
        close_timeout: float = 2.0,
        drain_timeout: float = 30.0,
        name: str | None = None,
    ) -> None:
        if sample_rate not in (8000, 16000, 24000, 32000, 48000):
            raise ValueError(f"Aura's WebSocket speaks linear16 at 8, 16, 24, 32 or 48 kHz, not {sample_rate} Hz")
        super().__init__(sample_rate=sample_rate, drain_timeout=drain_timeout, name=name)
        self._api_key, self.base_url = resolve_config(api_key, base_url)
        self.voice = voice
        self.speed = speed
        self.max_retries = max_retries
        self.backoff = backoff or Backoff()
        self.connect_timeout = connect_timeout
        self.close_timeout = close_timeout
        self._client: Any = None
        self._conn: Any = None
        self._connected = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._segments: deque[_Segment] = deque()
        self._unflushed: list[str] = []  # text sent with Speak that no Flush covers yet
        self._unflushed_epoch = 0
        self._send_lock = asyncio.Lock()
        self._runner: asyncio.Task[Any] | None = None
        self._closing = False
        self._failed: str | None = None
        self._outage = False
        self._last_done = 0.0
        self.connections = 0
        """Sockets opened so far (a counter for tests and metrics)."""

    def connect_options(self) -> dict[str, Any]:
        """Keyword arguments of ``speak.v1.connect`` (the socket's query parameters)."""
        opts: dict[str, Any] = {"model": self.voice, "encoding": "linear16", "sample_rate": str(self.sample_rate)}
        if self.speed is not None:
            opts["speed"] = self.speed
        return opts

    # --- frames -------------------------------------------------------------------------------------------

    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, StartFrame):
            self._open()
        elif isinstance(frame, EndFrame):
            await self._drain()
            await self._close_gracefully()
        await super().process(frame, direction)

    async def on_stop(self) -> None:
        self._closing = True
        self._conn = None

    def _open(self) -> None:
        if self._runner is None:
            self._client = deepgram_client(self._api_key, self.base_url)
            self._runner = self.create_task(self._run(), name=f"{self.name}-socket", epoch_bound=False)

    # --- the TTSProcessor hooks ---------------------------------------------------------------------------

    async def speak(self, frame: SpeakTextFrame, epoch: int) -> None:
        self._open()
        if self._failed is not None:
            logger.debug("%s: not speaking (%s)", self.name, self._failed)
            return
        if self._outage and not self._connected.is_set():
            logger.debug("%s: not speaking while Deepgram is unreachable (reported)", self.name)
            return
        try:
            await asyncio.wait_for(self._connected.wait(), self.connect_timeout)
        except TimeoutError:
            raise ConnectionError(f"Deepgram TTS: no connection within {self.connect_timeout:g} s") from None
        if self._unflushed and self._unflushed_epoch != epoch:
            self._unflushed.clear()
        self._unflushed.append(frame.text)
        self._unflushed_epoch = epoch
        self._idle.clear()
        await self._send_speak(frame.text)
        if not self._pending():
            await self._flush()

    async def wait_until_spoken(self) -> None:
        if not self._pending():
            await self._flush()  # otherwise the rest goes with the next Flushed, as one more Flush
        await self._idle.wait()

    async def on_interrupt(self, epoch: int) -> None:
        had_text = bool(self._unflushed)
        self._unflushed.clear()
        if not self._pending() and not had_text:
            return
        conn = self._conn
        if conn is None or not self._connected.is_set():
            # No socket: nothing to clear on the server; the old text must just never be sent again.
            self._segments = deque(s for s in self._segments if not s.clear and s.epoch >= epoch)
            self._check_idle()
            return
        self._segments.append(_Segment(epoch=epoch, text="", sent_at=time.monotonic(), clear=True))
        with contextlib.suppress(Exception):
            async with self._send_lock:
                await conn.send_clear()

    async def on_settings(self, settings: SettingsFrame) -> None:
        voice = settings.settings.get("voice")
        if isinstance(voice, str) and voice != self.voice:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), self.drain_timeout)
            self.voice = voice
            conn = self._conn
            if conn is not None:
                with contextlib.suppress(Exception):
                    async with self._send_lock:
                        await conn.send_close()  # the server closes; the socket task reopens with the new model

    # --- the socket ---------------------------------------------------------------------------------------

    def _pending(self) -> bool:
        """Some flushed text has not had all its audio yet."""
        return any(not s.clear for s in self._segments)

    async def _send_speak(self, text: str) -> None:
        from deepgram.speak.v1 import SpeakV1Text

        conn = self._conn
        if conn is None:
            return  # dropped meanwhile: the socket task resends what got no audio
        async with self._send_lock:
            with contextlib.suppress(Exception):  # a dead socket is the socket task's business
                for piece in speak_pieces(text):  # at most 2000 characters per Speak message
                    await conn.send_text(SpeakV1Text(text=piece))

    async def _flush(self) -> None:
        """Turn the unflushed text into a segment and ask Deepgram to speak it."""
        if not self._unflushed:
            return
        segment = _Segment(epoch=self._unflushed_epoch, text="".join(self._unflushed), sent_at=time.monotonic())
        self._unflushed.clear()
        self._segments.append(segment)
        conn = self._conn
        if conn is None:
            return
        async with self._send_lock:
            with contextlib.suppress(Exception):
                await conn.send_flush()

    async def _run(self) -> None:
        failures = 0
        while not self._stopping():
            try:
                async with self._client.speak.v1.connect(**self.connect_options()) as conn:
                    self.connections += 1
                    failures = 0
                    self._outage = False
                    self._conn = conn
                    await self._resend_unspoken()
                    self._connected.set()
                    async for message in conn:
                        await self._on_message(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._stopping():
                    return
                if http_status(exc) in (401, 403):
                    self._failed = describe_failure("Deepgram TTS", exc)
                    self._abandon_all()
                    await self.push_error(self._failed)
                    return
                failures += 1
                logger.warning("%s: %s (attempt %d)", self.name, describe_failure("socket lost", exc), failures)
                if failures == self.max_retries:
                    self._outage = True  # reported once; sentences are skipped, not queued, until it is back
                    self._abandon_all()
                    await self.push_error(describe_failure(f"Deepgram TTS unavailable after {failures} attempts", exc))
            finally:
                self._connected.clear()
                self._conn = None
            if self._stopping():
                return
            await self._after_drop()
            await asyncio.sleep(self.backoff.delay(max(1, failures)))

    def _stopping(self) -> bool:
        return self._closing

    async def _resend_unspoken(self) -> None:
        """On a new socket: flushed text that got no audio is sent and flushed again, unflushed text resent."""
        self._segments = deque(s for s in self._segments if not s.clear and s.epoch >= self.epoch)
        if self._unflushed_epoch < self.epoch:
            self._unflushed.clear()
        for segment in list(self._segments):
            segment.sent_at = time.monotonic()
            await self._send_speak(segment.text)
            async with self._send_lock:
                await self._conn.send_flush()
        for text in self._unflushed:
            await self._send_speak(text)
        if not self._pending():
            await self._flush()

    async def _after_drop(self) -> None:
        """Forget clear markers and sentences cut off mid-audio; keep the ones that got no audio (resent)."""
        kept: deque[_Segment] = deque()
        for segment in self._segments:
            if segment.clear or segment.epoch < self.epoch:
                continue
            if segment.audio_bytes:
                self.end_of_audio(segment.epoch)
                await self.push_error(f"Deepgram TTS connection lost mid-sentence: {segment.text[:40]!r} cut off")
                continue
            kept.append(segment)
        self._segments = kept
        if self._unflushed_epoch < self.epoch:
            self._unflushed.clear()
        self._check_idle()

    def _abandon_all(self) -> None:
        self._segments.clear()
        self._unflushed.clear()
        self._idle.set()

    async def _close_gracefully(self) -> None:
        self._closing = True
        conn, runner = self._conn, self._runner
        if conn is not None and self._connected.is_set():
            with contextlib.suppress(Exception):
                async with self._send_lock:
                    await conn.send_close()
        if runner is not None and not runner.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(runner), self.close_timeout)

    # --- what the server says -----------------------------------------------------------------------------

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, bytes):
            await self._on_audio(message)
            return
        kind = getattr(message, "type", None)
        if kind == "Flushed":
            await self._retire_head()
        elif kind == "Cleared":
            while self._segments:
                if self._segments.popleft().clear:
                    break
            if not self._pending():
                await self._flush()
            self._check_idle()
        elif kind == "Warning":
            logger.warning("%s: Deepgram warning: %s", self.name, getattr(message, "description", ""))
        elif kind != "Metadata":
            logger.debug("%s: skipped a message the SDK did not recognise (%s)", self.name, kind)

    async def _on_audio(self, data: bytes) -> None:
        segment = self._segments[0] if self._segments else None
        if segment is None or segment.clear:
            self.dropped_audio_bytes += len(data)  # nothing asked for it (or it was cleared): never play it
            return
        if segment.audio_bytes == 0:
            started = max(segment.sent_at, self._last_done)
            await self.push_ttfb(time.monotonic() - started, segment.epoch)
        segment.audio_bytes += len(data)
        await self.push_audio(data, segment.epoch)

    async def _retire_head(self) -> None:
        if self._segments and not self._segments[0].clear:
            segment = self._segments.popleft()
            self.end_of_audio(segment.epoch, segment.text)  # one Flush may speak several pieces of text
            self._last_done = time.monotonic()
        if not self._pending():
            await self._flush()  # the text that came in meanwhile is next
        self._check_idle()

    def _check_idle(self) -> None:
        if not self._pending() and not self._unflushed:
            self._idle.set()
