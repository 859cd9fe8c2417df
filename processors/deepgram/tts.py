"""Deepgram Aura text-to-speech over one speak WebSocket per session (Speak, Flush, Clear, Close).

Each ``SpeakTextFrame`` is sent as ``Speak`` the moment it arrives. ``Flush`` (which makes Deepgram speak
what it has) goes out at once when nothing is being synthesised — so the first sentence of a reply is spoken
while the LLM still writes the second — and otherwise when the previous flush's audio is complete or the reply
ends. That keeps the audio flowing without gaps while sending far fewer Flushes than sentences: Deepgram allows
20 per 60 s and processes no more until the window has passed (it answers a Warning and speaks nothing), so
once half of a window's budget is spent a reply's early Flush is skipped and its text goes with the Flush that
ends the reply, and a Flush the window has no room for waits until it has (plus :data:`FLUSH_MARGIN`) instead
of being refused. The window is counted on the stage's ``clock`` (injectable). The socket is opened at the
start of the session and kept.

Whose audio is it? Deepgram answers the Flushes of one socket in order, each with its audio and then
``Flushed``; so the stage keeps a queue of *segments* (the text of one Flush, its epoch, when it was sent) and
credits incoming audio to the oldest one; ``tts.ttfb`` is measured per segment. On an interrupt it sends
``Clear`` and queues a clear marker: audio that still arrives before ``Cleared`` belongs to the old segments
and is dropped by the base's epoch check, and ``Cleared`` retires everything up to the marker. The SDK returns
``Cleared`` as a ``SpeakV1Flushed`` object, so messages are dispatched on their ``type``, never their class.

The socket is a :class:`~voxline.providers.socket.ProviderSocket`: a dropped socket is reopened with capped
exponential backoff (the socket's replay hook sends again the text that got no audio yet; a sentence cut off
mid-audio is reported, not repeated); a refused key (401/403) is reported at once and retried every 30-60 s;
while the client has been told Deepgram is unreachable, sentences are skipped, not queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs
from voxline.frames import EndFrame, Frame, SettingsFrame, SpeakTextFrame, StartFrame
from voxline.processor import Direction
from voxline.processors.deepgram._common import deepgram_socket, resolve_config, speak_pieces
from voxline.processors.deepgram.provider import TTS_VOICE
from voxline.providers.backoff import Backoff
from voxline.providers.socket import ProviderSocket
from voxline.tts import TTSProcessor

FLUSH_LIMIT = 20
"""Flushes Deepgram processes per :data:`FLUSH_WINDOW` seconds on one socket; past it, a Warning and no processing
until the window has passed (Deepgram docs, "Flush": Limits)."""
FLUSH_WINDOW = 60.0
FLUSH_MARGIN = 1.0
"""Seconds a Flush held back by a full window waits beyond it: Deepgram counts a Flush when it arrives, a little
after it was sent, so its window frees a little later than ours."""
EARLY_FLUSH_SHARE = 0.5
"""The early Flush (the first words of a reply while the model still writes) is sent only while fewer than this
share of :data:`FLUSH_LIMIT` went out in the window: the rest of the budget is kept for the Flushes that end a
reply or follow a ``Flushed``, without which text would never be spoken."""

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
        voice: str = TTS_VOICE.default,
        sample_rate: int = 24000,
        speed: float | None = None,
        max_retries: int = 5,
        backoff: Backoff | None = None,
        connect_timeout: float = 10.0,
        close_timeout: float = 2.0,
        drain_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        name: str | None = None,
    ) -> None:
        """``clock``: seconds on the scale of ``time.monotonic()`` (a test may shift it), for the Flush window."""
        if sample_rate not in (8000, 16000, 24000, 32000, 48000):
            raise ValueError(f"Aura's WebSocket speaks linear16 at 8, 16, 24, 32 or 48 kHz, not {sample_rate} Hz")
        super().__init__(sample_rate=sample_rate, drain_timeout=drain_timeout, name=name)
        self._api_key, self.base_url = resolve_config(api_key, base_url)
        self.voice = voice
        self.speed = speed
        self.connect_timeout = connect_timeout
        self.close_timeout = close_timeout
        self.socket: ProviderSocket[Any] = deepgram_socket(
            self,
            api_key=self._api_key,
            base_url=self.base_url,
            endpoint="speak",
            options=self.connect_options,
            what="Deepgram TTS",
            on_message=self._on_message,
            on_open=self._resend_unspoken,
            on_drop=self._after_drop,
            on_outage=self._abandon_all,
            backoff=backoff,
            report_after=max_retries,
        )
        self._idle = asyncio.Event()
        self._idle.set()
        self._segments: deque[_Segment] = deque()
        self._unflushed: list[str] = []  # text sent with Speak that no Flush covers yet
        self._unflushed_epoch = 0
        self._last_done = 0.0
        self.clock = clock
        self._flush_times: deque[float] = deque()  # when each Flush of the current window went out
        self._flush_timer: asyncio.TimerHandle | None = None  # a Flush held back until the window has room

    @property
    def connections(self) -> int:
        """Sockets opened so far (a counter for tests and metrics)."""
        return self.socket.connections

    def connect_options(self) -> dict[str, Any]:
        """Keyword arguments of ``speak.v1.connect`` (the socket's query parameters)."""
        opts: dict[str, Any] = {"model": self.voice, "encoding": "linear16", "sample_rate": str(self.sample_rate)}
        if self.speed is not None:
            opts["speed"] = self.speed
        return opts

    # --- frames -------------------------------------------------------------------------------------------

    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, StartFrame):
            self.socket.start()  # at once: no sentence should pay for the handshake
        elif isinstance(frame, EndFrame):
            await self._drain()
            # Close, then wait for the server's close 1000.
            await self.socket.close(lambda conn: conn.send_close(), timeout=self.close_timeout)
        await super().process(frame, direction)

    async def on_stop(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        self.socket.stop()

    @property
    def flushes_in_window(self) -> int:
        """Flushes sent in the last :data:`FLUSH_WINDOW` seconds (what Deepgram's limit of :data:`FLUSH_LIMIT`
        counts)."""
        return self._window(self.clock())

    async def health_check(self) -> None:
        """Healthy when the speak socket (which reconnects on its own) is open (what a fallback probes)."""
        self.socket.start()
        if not await self.socket.wait_ready(self.connect_timeout):
            raise ConnectionError(f"Deepgram TTS is not connected ({self.socket.last_close or 'no connection yet'})")

    # --- the TTSProcessor hooks ---------------------------------------------------------------------------

    async def speak(self, frame: SpeakTextFrame, epoch: int) -> None:
        self.socket.start()
        if self.socket.outage is not None and not self.socket.ready:
            logger.debug("%s: not speaking while Deepgram is unavailable (%s)", self.name, self.socket.outage)
            return
        if not await self.socket.wait_ready(self.connect_timeout):
            raise ConnectionError(f"Deepgram TTS: no connection within {self.connect_timeout:g} s")
        if self._unflushed and self._unflushed_epoch != epoch:
            self._unflushed.clear()
        self._unflushed.append(frame.text)
        self._unflushed_epoch = epoch
        self._idle.clear()
        await self._send_speak(frame.text)
        if not self._pending() and self._early_flush_allowed():
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
        if not self.socket.ready:
            # No socket: nothing to clear on the server; the old text must just never be sent again.
            self._segments = deque(s for s in self._segments if not s.clear and s.epoch >= epoch)
            self._check_idle()
            return
        self._segments.append(_Segment(epoch=epoch, text="", sent_at=time.monotonic(), clear=True))
        await self.socket.send(lambda conn: conn.send_clear())

    async def on_settings(self, settings: SettingsFrame) -> None:
        voice = settings.settings.get("voice")
        if isinstance(voice, str) and voice != self.voice:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), self.drain_timeout)
            self.voice = voice
            # The server closes; the socket reopens with the new model.
            await self.socket.send(lambda conn: conn.send_close())

    # --- the socket ---------------------------------------------------------------------------------------

    def _window(self, now: float) -> int:
        while self._flush_times and now - self._flush_times[0] >= FLUSH_WINDOW:
            self._flush_times.popleft()
        return len(self._flush_times)

    def _early_flush_allowed(self) -> bool:
        """Whether the flush budget leaves room for an early Flush (see :data:`EARLY_FLUSH_SHARE`). Skipped, the
        text goes with the reply's last Flush: the reply starts later but is spoken."""
        return self._window(self.clock()) < FLUSH_LIMIT * EARLY_FLUSH_SHARE

    def _pending(self) -> bool:
        """Some flushed text has not had all its audio yet."""
        return any(not s.clear for s in self._segments)

    async def _send_speak(self, text: str) -> None:
        # A dead socket is the socket's business: it resends what got no audio on the next connection.
        await self.socket.send(lambda conn: _speak(conn, text))

    async def _flush(self, conn: Any = None) -> None:
        """Turn the unflushed text into a segment and ask Deepgram to speak it (on ``conn`` while replaying)."""
        if not self._unflushed:
            return
        now = self.clock()
        if self._window(now) >= FLUSH_LIMIT:
            self._hold_flush(now)  # Deepgram would refuse it (a Warning, nothing spoken): it waits for room
            return
        segment = _Segment(epoch=self._unflushed_epoch, text="".join(self._unflushed), sent_at=time.monotonic())
        self._unflushed.clear()
        self._segments.append(segment)
        self._flush_times.append(now)
        if conn is not None:
            await conn.send_flush()
        else:
            await self.socket.send(lambda conn: conn.send_flush())

    def _hold_flush(self, now: float) -> None:
        """Flush once the oldest Flush of the window has left it (and :data:`FLUSH_MARGIN` more)."""
        if self._flush_timer is not None:
            return
        wait = max(0.0, self._flush_times[0] + FLUSH_WINDOW - now) + FLUSH_MARGIN
        logger.warning(
            "%s: %d Deepgram Flushes in %g s (its limit): the next text waits %.1f s",
            self.name,
            len(self._flush_times),
            FLUSH_WINDOW,
            wait,
        )
        self._flush_timer = asyncio.get_running_loop().call_later(wait, self._held_flush_due)

    def _held_flush_due(self) -> None:
        self._flush_timer = None
        if not self._pending():
            self.create_task(self._flush(), name=f"{self.name}-held-flush", epoch_bound=False)

    async def _resend_unspoken(self, conn: Any) -> None:
        """The socket's replay hook: flushed text that got no audio is sent and flushed again, unflushed text resent."""
        self._segments = deque(s for s in self._segments if not s.clear and s.epoch >= self.epoch)
        if self._unflushed_epoch < self.epoch:
            self._unflushed.clear()
        for segment in list(self._segments):
            segment.sent_at = time.monotonic()
            await _speak(conn, segment.text)
            await conn.send_flush()
        for text in self._unflushed:
            await _speak(conn, text)
        if not self._pending():
            await self._flush(conn)

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

    async def _abandon_all(self, outage: str = "") -> None:
        """The client was told Deepgram is unavailable: drop what waits for audio (sentences are skipped meanwhile)."""
        self._segments.clear()
        self._unflushed.clear()
        self._idle.set()

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


async def _speak(conn: Any, text: str) -> None:
    """``Speak`` ``text``, in pieces of at most 2000 characters (Deepgram closes 1009 ``BIG-0001`` beyond)."""
    from deepgram.speak.v1 import SpeakV1Text

    for piece in speak_pieces(text):
        await conn.send_text(SpeakV1Text(text=piece))
