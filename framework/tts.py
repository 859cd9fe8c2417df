"""The shared base of every text-to-speech stage: epochs, held response ends, odd bytes and the TTFB metric.

A TTS stage sits after the sentence aggregator. It consumes :class:`~voxline.frames.SpeakTextFrame` (one
sentence or clause at a time, so the first audio never waits for the whole reply) and pushes
:class:`~voxline.frames.TTSAudioFrame` (mono Int16 at :attr:`TTSProcessor.sample_rate`, 24 kHz by default)
stamped with the epoch of the text it speaks. Everything else is forwarded: ``TextFrame``,
``TranscriptFrame`` and friends pass straight through (they do not wait behind synthesis), while
``SpeakTextFrame``, ``LLMResponseEndFrame``, ``EndFrame`` and ``SettingsFrame`` are handled in order by the
queue worker.

Two styles of subclass fit:

(a) **Request/response** (local engines, Deepgram REST). Implement only :meth:`TTSProcessor.synthesize`, an
    async generator of PCM chunks for one piece of text. The base runs it in the worker, pushes each chunk as
    it comes, measures TTFB per chunk, and — because an interrupt cancels the worker mid-synthesis — stops
    old work the moment the user barges in.

(b) **A persistent streaming socket** (Deepgram Aura WebSocket). Override :meth:`TTSProcessor.speak` to send
    the text and return at once; a receive task owned by the subclass calls :meth:`TTSProcessor.push_audio`
    (with the epoch of the text the audio belongs to) and :meth:`TTSProcessor.push_ttfb`. Override
    :meth:`TTSProcessor.wait_until_spoken` to wait until the provider has delivered all audio sent so far,
    and :meth:`TTSProcessor.on_interrupt` to tell the provider to drop what it is still synthesising.

What the base guarantees, for both styles:

* ``TTSStartedFrame(epoch)`` before the first audio of a reply; ``TTSStoppedFrame(epoch)`` after its last
  audio, when it is interrupted, or at the end of the stream — always paired.
* ``LLMResponseEndFrame`` is held until the audio of that response has been pushed (so the output's
  "complete" status follows the audio), and that wait ends at once on an interrupt (the queue does not cancel
  a worker busy with a control frame, so the base races the wait against an interrupt future).
* Audio of an epoch older than the stage's current one is dropped, however late it arrives.
* An odd byte at the end of a provider chunk is carried over to the next chunk of the same epoch; an
  ``AudioFrame`` with an odd length is never produced.
* What was heard: the base keeps, per epoch, where in the pushed audio each piece of text began (its first
  audio) and ended (at :meth:`TTSProcessor.end_of_audio`), with the provider's word timings where it gives
  them. When the output reports how many seconds of an interrupted reply had played (a
  :class:`~voxline.frames.BotHeardTextFrame` travelling upstream), the base passes on the text heard, to the
  word: the pieces that had played in full, then the words of the piece playing whose middle had played
  (placed by the provider's timings, else by their share of the piece's characters), for the LLM stage to cut
  its context to. The bookkeeping behind that is :mod:`voxline.tts_heard`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

from voxline.frames import (
    BotHeardTextFrame,
    EndFrame,
    Frame,
    InterruptFrame,
    LLMResponseEndFrame,
    MetricsFrame,
    SettingsFrame,
    SpeakTextFrame,
    SystemFrame,
    TTSAudioFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from voxline.processor import DOWNSTREAM, UPSTREAM, Direction, Processor
from voxline.queued import QueuedProcessor
from voxline.tts_heard import DEFAULT_SECONDS_PER_CHAR, Timeline, WordTimes

__all__ = ["DEFAULT_SECONDS_PER_CHAR", "TTSProcessor", "WordTimes"]

logger = logging.getLogger("voxline.tts")

_QUEUED = (SystemFrame, SpeakTextFrame, LLMResponseEndFrame, EndFrame, SettingsFrame)


class TTSProcessor(QueuedProcessor):
    """Base of every TTS stage. Subclasses implement :meth:`synthesize` (style a) or the streaming hooks (b).

    ``sample_rate`` is the rate of the PCM the subclass produces (24 kHz in the voice agent).
    ``drain_timeout`` bounds how long a response end is held waiting for audio that never comes; after it the
    stage reports an error and lets the response end through rather than hanging the conversation.
    """

    def __init__(self, *, sample_rate: int = 24000, drain_timeout: float = 30.0, name: str | None = None) -> None:
        super().__init__(name=name)
        self.sample_rate = sample_rate
        self.drain_timeout = drain_timeout
        self._speaking: int | None = None  # epoch of the reply whose TTSStartedFrame went out, if any
        self._carry = b""
        self._carry_epoch = -1
        self._interrupted: asyncio.Future[None] | None = None
        self._timelines: dict[int, Timeline] = {}
        self._seconds_per_char = DEFAULT_SECONDS_PER_CHAR  # measured on this stage's pieces as they end
        self._words: WordTimes | None = None
        self.dropped_audio_bytes = 0
        """Bytes of audio dropped because their epoch was over (a counter for tests and metrics)."""

    # --- what subclasses implement ------------------------------------------------------------------------

    def synthesize(self, text: str) -> AsyncIterator[bytes]:
        """Style (a): yield mono Int16 PCM at :attr:`sample_rate` for ``text``, chunk by chunk, as it is made.

        Chunks may have any length (an odd byte is carried over). Raise to report a failure: the base turns it
        into an ``ErrorFrame`` and the session goes on with the next sentence.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement synthesize() or override speak()")

    async def speak(self, frame: SpeakTextFrame, epoch: int) -> None:
        """Speak one piece of text. The default runs :meth:`synthesize` and pushes its audio as it comes.

        Style (b) overrides this to send the text down its socket and return without waiting for audio.
        """
        started = time.monotonic()
        first = True
        self._words = None
        async for chunk in self.synthesize(frame.text):
            if not chunk:
                continue
            if first:
                first = False
                await self.push_ttfb(time.monotonic() - started, epoch)
            await self.push_audio(chunk, epoch)
        words, self._words = self._words, None
        self.end_of_audio(epoch, frame.text, words)

    def report_words(self, words: WordTimes) -> None:
        """Style (a): :meth:`synthesize` tells where each word of its text starts, ``(seconds from its first
        audio, first char, char after the end)``, when the engine says (espeak-ng does)."""
        self._words = list(words)

    async def wait_until_spoken(self) -> None:
        """Return once every piece of text handed to :meth:`speak` has had its audio pushed.

        Style (a) pushes audio inside ``speak``, so the default returns at once. The base cancels this wait
        when an interrupt arrives or :attr:`drain_timeout` passes.
        """

    async def on_interrupt(self, epoch: int) -> None:
        """Epoch ``epoch`` began: stop provider-side work of older epochs (style b sends its Clear here).

        Called before the interrupt is forwarded, so a provider clear is on the wire before any text of the
        new epoch can be. Must be quick and must not raise for a dead connection.
        """

    async def on_settings(self, settings: SettingsFrame) -> None:
        """Apply a settings change (e.g. ``{"voice": ...}``) in order with the text. The frame is forwarded."""

    async def health_check(self) -> None:
        """Raise unless the provider can speak now (what a fallback probes): by default the first chunk of a short
        :meth:`synthesize`; ``NotImplementedError`` when the stage cannot be probed that way (style b)."""
        async for chunk in self.synthesize("OK."):
            if chunk:
                return
        raise RuntimeError("the health check got no audio")

    # --- what subclasses call -----------------------------------------------------------------------------

    async def push_audio(self, pcm: bytes, epoch: int) -> None:
        """Push synthesised audio that belongs to ``epoch``; dropped if that epoch is over.

        Odd byte counts are carried over to the next call for the same epoch.
        """
        if epoch < self._epoch:
            self.dropped_audio_bytes += len(pcm)
            return
        if self._carry and self._carry_epoch == epoch:
            pcm = self._carry + pcm
        self._carry = b""
        if len(pcm) % 2:
            self._carry = bytes(pcm[-1:])
            self._carry_epoch = epoch
            pcm = pcm[:-1]
        if not pcm:
            return
        await self._ensure_started(epoch)
        timeline = self._timelines.get(epoch)
        if timeline is not None:
            timeline.audio(len(pcm) / (2 * self.sample_rate))
        await self.push(TTSAudioFrame(pcm=bytes(pcm), sample_rate=self.sample_rate, epoch=epoch), DOWNSTREAM)

    def end_of_audio(self, epoch: int, text: str | None = None, words: WordTimes | None = None) -> None:
        """The provider finished a piece of audio for ``epoch``: a dangling half sample is discarded.

        ``text`` is the text that audio speaks, when the subclass knows it (it may join several
        ``SpeakTextFrame`` texts, e.g. one provider flush); None means the oldest text not yet ended. It is how
        the base knows what a user who barged in had heard. ``words``: the provider's word timings for that
        text, ``(seconds from its first audio, first char, char after the end)`` per word, where it gives them;
        without them the words are placed by their share of the characters.
        """
        if self._carry_epoch == epoch:
            self._carry = b""
        timeline = self._timelines.get(epoch)
        if timeline is not None:
            piece = timeline.end(text, words)
            if piece is not None and piece.end is not None and len(piece.text.strip()) >= 20:
                rate = (piece.end - piece.start) / len(piece.text.strip())
                self._seconds_per_char += 0.3 * (rate - self._seconds_per_char)

    def spoken_text(self, epoch: int) -> str:
        """The text of ``epoch`` whose audio has been pushed in full, in order (a fallback resends the rest)."""
        timeline = self._timelines.get(epoch)
        return "".join(text for _, text in timeline.ends) if timeline is not None else ""

    async def push_ttfb(self, seconds: float, epoch: int) -> None:
        """Report time to first byte of one piece of text (``MetricsFrame(name="tts.ttfb")``), downstream."""
        if epoch < self._epoch:
            return
        await self.push(MetricsFrame(name="tts.ttfb", value=seconds, unit="s", source=self.name, epoch=epoch))

    # --- the frame flow -----------------------------------------------------------------------------------

    async def _deliver(self, frame: Frame, direction: Direction) -> None:
        # Only what has to wait for synthesis goes through the queue; text, transcripts and the rest are
        # forwarded inline (after the epoch gate) so the client sees them without TTS delay.
        if isinstance(frame, _QUEUED):
            await super()._deliver(frame, direction)
        else:
            await Processor._deliver(self, frame, direction)

    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, SpeakTextFrame):
            epoch = self._epoch if frame.epoch is None else frame.epoch
            if frame.text.strip():
                self._timeline(epoch).pending.append(frame.text)
                await self._ensure_started(epoch)
                await self.speak(frame, epoch)
        elif isinstance(frame, BotHeardTextFrame) and direction is UPSTREAM and frame.text is None:
            timeline = self._timelines.get(frame.epoch) if frame.epoch is not None else None
            if timeline is not None:
                text = timeline.heard(frame.played_seconds, self._seconds_per_char)
                frame = BotHeardTextFrame(epoch=frame.epoch, played_seconds=frame.played_seconds, text=text)
            await self.push(frame, direction)
        elif isinstance(frame, InterruptFrame):
            await self._interrupt(frame, direction)
        elif isinstance(frame, LLMResponseEndFrame):
            if not frame.interrupted:
                await self._drain()
            await self._stop_speaking()
            await self.push(frame, direction)
        elif isinstance(frame, EndFrame):
            await self._drain()
            await self._stop_speaking()
            await self.push(frame, direction)
        elif isinstance(frame, SettingsFrame):
            await self.on_settings(frame)
            await self.push(frame, direction)
        else:
            await self.push(frame, direction)

    async def _interrupt(self, frame: InterruptFrame, direction: Direction) -> None:
        # Synchronous bookkeeping first, so a worker woken by the interrupt future sees a finished reply.
        old, self._speaking = self._speaking, None
        interrupted, self._interrupted = self._interrupted, None
        if interrupted is not None and not interrupted.done():
            interrupted.set_result(None)
        self._carry = b""
        try:
            await self.on_interrupt(self._epoch)
        except Exception as exc:  # the interrupt must get through whatever the provider does
            logger.warning("%s: on_interrupt failed: %s", self.name, exc)
        await self.push(frame, direction)
        if old is not None:
            await self.push(TTSStoppedFrame(epoch=old), DOWNSTREAM)

    def _timeline(self, epoch: int) -> Timeline:
        timeline = self._timelines.get(epoch)
        if timeline is None:
            for old in [e for e in self._timelines if e < epoch - 1]:
                del self._timelines[old]  # a report comes during the interrupt that ends its epoch: keep one back
            timeline = self._timelines[epoch] = Timeline()
        return timeline

    async def _ensure_started(self, epoch: int) -> None:
        if self._speaking is None:
            self._speaking = epoch
            await self.push(TTSStartedFrame(epoch=epoch), DOWNSTREAM)

    async def _stop_speaking(self) -> None:
        if self._speaking is not None:
            epoch, self._speaking = self._speaking, None
            await self.push(TTSStoppedFrame(epoch=epoch), DOWNSTREAM)

    async def _drain(self) -> None:
        """Wait for :meth:`wait_until_spoken`, but no longer than an interrupt or :attr:`drain_timeout`."""
        if self._speaking is None:
            return
        loop = asyncio.get_running_loop()
        if self._interrupted is None or self._interrupted.done():
            self._interrupted = loop.create_future()
        interrupted = self._interrupted
        waiter = loop.create_task(self.wait_until_spoken(), name=f"{self.name}-drain")
        try:
            done, _ = await asyncio.wait(
                {waiter, interrupted}, timeout=self.drain_timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            waiter.cancel()
            await asyncio.gather(waiter, return_exceptions=True)
        if not done:
            await self.push_error(f"no audio end from the TTS provider within {self.drain_timeout:g} s")
        elif waiter in done and not waiter.cancelled() and waiter.exception() is not None:
            exc = waiter.exception()
            await self.push_error(f"TTS failed while finishing a reply: {exc}", exception=exc)
