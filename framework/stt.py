"""The base of every speech-to-text stage: the user's audio in; transcripts, the user's turn and its latency out.

A provider subclass connects the audio to its engine and reports what the engine recognised. Everything a voice
pipeline needs around that is done here, once, so every STT stage behaves the same:

* **Audio.** Input ``AudioFrame``\\ s travelling downstream are consumed (not forwarded); empty ones are dropped.
  Each is noted on the stage's :class:`~voxline.audio_clock.AudioClock` (seconds of audio received, and when
  each stretch arrived) and handed to :meth:`STTProcessor.on_audio`. ``TTSAudioFrame``\\ s pass through.
* **Transcripts and the turn.** The subclass calls :meth:`STTProcessor.push_transcript` for every interim and
  final result. The final pieces of one utterance are collected; :meth:`STTProcessor.end_turn` then pushes the
  turn: ``UserStoppedSpeakingFrame`` (with ``speaking_frames``), ``MetricsFrame("stt.latency")`` and one
  ``UserTextFrame`` with the pieces joined by spaces. A turn that ends with no words (a noise the engine's VAD
  took for speech) pushes only the stop.
* **Speaking frames.** With ``speaking_frames=True`` the stage pushes ``UserStartedSpeakingFrame`` at the first
  words of a turn, or when the subclass calls :meth:`STTProcessor.user_started_speaking` (an engine's speech
  event). Off by default: a local VAD in front of the stage usually owns them.
* **stt.latency**: from the moment the audio holding the end of the user's speech reached the stage (the last
  final word's end, or the ``speech_end`` the subclass gives, mapped through the audio clock) to the moment the
  turn's last final piece came from the engine. Once per turn with words.
* **finalize().** Public: ask the engine to end the current utterance now, because something else decided the
  user's turn is over (a turn detector, a push-to-talk release). The subclass implements
  :meth:`STTProcessor.on_finalize`; the engine's answer comes back as usual, through :meth:`end_turn`.
* **End of stream.** ``EndFrame`` waits for :meth:`STTProcessor.on_end_of_stream` (the engine's last results,
  bounded by the subclass), so the user's last words are not lost when a pipeline ends.

Interruptions do not touch the user's utterance in progress: it is usually the very reason for the barge-in and
belongs to the new turn. Transcripts pushed from a subclass's own (not epoch-bound) task carry the stage's
current epoch.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from voxline.audio_clock import AudioClock
from voxline.frames import (
    AudioFrame,
    EndFrame,
    Frame,
    MetricsFrame,
    StartFrame,
    TranscriptFrame,
    TTSAudioFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    UserTextFrame,
    Word,
)
from voxline.processor import DOWNSTREAM, Direction, Processor

__all__ = ["STTProcessor"]


class STTProcessor(Processor):
    """Base of every speech-to-text stage (see the module docstring).

    Subclass contract:

    * ``async def on_audio(frame)`` — send one non-empty input ``AudioFrame`` to the engine. Required.
    * ``async def on_finalize() -> bool`` — ask the engine to end the utterance now; False if it cannot (not
      connected, nothing heard). The default cannot.
    * ``async def on_end_of_stream()`` — the pipeline is ending: get the engine's last results out (bounded).
    * Report results with :meth:`push_transcript`, end turns with :meth:`end_turn`, and speech starts (an
      engine's VAD event) with :meth:`user_started_speaking`.

    ``sample_rate`` is the input rate the engine expects; None takes it from the ``StartFrame``.
    ``clock_horizon`` is how many audio frames the clock remembers arrival times for (4096 frames of 20 ms: about 80 s).
    """

    def __init__(
        self,
        *,
        sample_rate: int | None = None,
        speaking_frames: bool = False,
        clock_horizon: int = 4096,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.sample_rate = sample_rate
        self.speaking_frames = speaking_frames
        self.clock = AudioClock(sample_rate or 16000, horizon=clock_horizon)
        """The stage's audio clock: every input frame, noted as it arrives."""
        self._clock_horizon = clock_horizon
        self._pieces: list[str] = []
        self._in_turn = False
        self._speech_end: float | None = None
        self._result_end: float | None = None
        self._final_ns = 0

    # --- what subclasses implement ------------------------------------------------------------------------

    async def on_audio(self, frame: AudioFrame) -> None:
        """Send ``frame`` (input audio, never empty) to the engine."""
        raise NotImplementedError(f"{type(self).__name__} must implement on_audio()")

    async def on_finalize(self) -> bool:
        """Ask the engine to end the current utterance now; False when it cannot."""
        return False

    async def on_end_of_stream(self) -> None:
        """The stream is ending: deliver the engine's last results before returning (bounded)."""

    async def health_check(self) -> None:
        """Raise unless the engine can transcribe now (what a fallback probes). The default cannot tell:
        ``NotImplementedError`` (a fallback then trusts the stage again after its cooldown)."""
        raise NotImplementedError(f"{type(self).__name__} has no health check")

    # --- public -------------------------------------------------------------------------------------------

    async def finalize(self) -> bool:
        """End the user's current utterance now (a turn detector decided the turn is over).

        The engine finalises what it has heard; its final result ends the turn as usual (``UserTextFrame``).
        Returns False, without raising, when the engine cannot (e.g. its connection is not open).
        """
        return await self.on_finalize()

    @property
    def turn_pending(self) -> bool:
        """Final pieces of the current turn are waiting for :meth:`end_turn`."""
        return bool(self._pieces)

    # --- what subclasses call -----------------------------------------------------------------------------

    async def push_transcript(
        self,
        text: str,
        *,
        is_final: bool,
        speech_final: bool = False,
        words: Iterable[Word] = (),
        confidence: float | None = None,
        language: str | None = None,
        end: float | None = None,
    ) -> None:
        """Report one result. ``end`` is where the result's audio ends on the audio clock (used for the turn's
        end of speech when it has no word timings). Final text is collected for the turn; empty text pushes no
        frame (a final with no words still records its ``end``)."""
        text = text.strip()
        words = tuple(words)
        if is_final:
            self._result_end = end if end is not None else self._result_end
        if not text:
            return
        await self.user_started_speaking()
        if is_final:
            self._final_ns = time.monotonic_ns()
            self._pieces.append(text)
            self._speech_end = words[-1].end if words else end
        frame = TranscriptFrame(
            text=text,
            is_final=is_final,
            confidence=confidence,
            words=words,
            language=language,
            speech_final=is_final and speech_final,
        )
        await self.push(frame, DOWNSTREAM)

    async def user_started_speaking(self) -> None:
        """The user started a turn (words, or an engine's speech event): ``UserStartedSpeakingFrame``, once."""
        if not self._in_turn:
            self._in_turn = True
            if self.speaking_frames:
                await self.push(UserStartedSpeakingFrame(), DOWNSTREAM)

    async def end_turn(self, *, speech_end: float | None = None) -> None:
        """The user's turn is over: push the stop, ``stt.latency`` and the joined ``UserTextFrame``.

        ``speech_end`` (audio clock) overrides where the user's speech ended: by default the end of the last final
        word (or result). Without final text, only the stop is pushed (if a turn had started).
        """
        end = speech_end if speech_end is not None else (self._speech_end if self._pieces else self._result_end)
        text = " ".join(self._pieces)
        self._pieces.clear()
        started, self._in_turn = self._in_turn, False
        if self.speaking_frames and (started or text):
            await self.push(UserStoppedSpeakingFrame(audio_time=end), DOWNSTREAM)
        if not text:
            return
        arrived = self.clock.wall_ns(end) if end is not None else None
        if arrived is not None:
            latency = max(0.0, (self._final_ns - arrived) / 1e9)
            metric = MetricsFrame(name="stt.latency", value=latency, unit="s", source=self.name, epoch=self.epoch)
            await self.push(metric, DOWNSTREAM)
        await self.push(UserTextFrame(text=text), DOWNSTREAM)

    # --- frames -------------------------------------------------------------------------------------------

    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, AudioFrame) and direction is DOWNSTREAM and not isinstance(frame, TTSAudioFrame):
            if frame.pcm:
                self._note(frame)
                await self.on_audio(frame)
            return
        if isinstance(frame, StartFrame):
            if self.sample_rate is None:
                self.sample_rate = frame.audio_in_sample_rate
            if self.clock.seconds == 0 and self.clock.sample_rate != self.sample_rate:
                self.clock = AudioClock(self.sample_rate, horizon=self._clock_horizon)
        elif isinstance(frame, EndFrame):
            await self.on_end_of_stream()
        await self.push(frame, direction)

    def _note(self, frame: AudioFrame) -> None:
        if frame.sample_rate == self.clock.sample_rate:
            self.clock.note(frame.num_samples)
        else:
            self.clock.note_seconds(frame.duration)
