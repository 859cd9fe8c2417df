"""Offline speech-to-text with whisper tiny.en: live interims while the user speaks, whisper's final at the end.

Put a :class:`~voxline.processors.vad.SileroVAD` in front: its speaking frames say where a turn starts and
ends. Like every voxline STT stage (docs/architecture.md), this one consumes input ``AudioFrame``\\ s (not
forwarded), emits interim ``TranscriptFrame(is_final=False)`` while the user speaks, and at the VAD's end of
speech one final ``TranscriptFrame(is_final=True, speech_final=True)`` (with its ``words``, each on the input's
audio clock, its confidence the lower of whisper's for the word and for the transcript), one
``UserTextFrame`` with the same text, and the metrics ``stt.latency`` (from the arrival of the audio at the end
of speech to the final: it includes the VAD's ``stop_secs`` of silence) and ``stt.finalize`` (from the VAD's
end event to the final).

whisper does not stream, so:

* **Interims** come from an :mod:`interim source <voxline.processors.local.interims>`: pocketsphinx (the
  default: cheap and word by word) or whisper re-run on the growing utterance. The final replaces them.
* **Speculation hides some of whisper's latency.** A transcription takes about 0.3-0.6 s. The VAD waits
  ``stop_secs`` of silence before it ends a turn (0.5 s by default; 0.2 s under the voice agent's turn engine),
  time that is spent anyway: this stage runs its own Silero analyzer on the same audio, and as soon as the user
  has been quiet for ``speculate_secs`` (0.1 s) it transcribes the utterance so far. When the VAD then ends the
  turn and no speech came in between, that transcript is the final, often already finished; otherwise the
  utterance is transcribed again.
* **Shared, bounded work.** The model is loaded once per process off the event loop
  (:class:`~voxline.processors.local.whisper_engine.WhisperEngine`) and every session's transcriptions share
  one bounded pool, finals ahead of interims. Nothing heavier than a Silero window runs on the loop.

Interruptions do not touch the user's utterance (as for pocketsphinx): what the user says is why the
interrupt happened and belongs to the new turn, so transcripts are stamped with the epoch current when they
are pushed.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import Any, Literal

import attrs
from voxline.frames import (
    AudioFrame,
    EndFrame,
    Frame,
    MetricsFrame,
    TranscriptFrame,
    TTSAudioFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    UserTextFrame,
    Word,
)
from voxline.processor import DOWNSTREAM, Direction, Processor
from voxline.processors.local.audio import TARGET_RATE, To16kMono
from voxline.processors.local.interims import InterimSource, PocketsphinxInterims, WhisperInterims
from voxline.processors.local.whisper_engine import Transcript, WhisperEngine

__all__ = ["InterimsFrom", "WhisperSTT"]

logger = logging.getLogger("voxline.local")

InterimsFrom = Literal["pocketsphinx", "whisper", "none"]

_WINDOW_SAMPLES = 512  # one Silero window: how far the speculation's audio may fall short of the VAD's end


@attrs.define
class _Speculation:
    job: asyncio.Future[Transcript]
    covered: int  # samples of the stream it has heard


@attrs.define
class _Interim:
    utterance: int
    text: str


@attrs.define
class _Final:
    utterance: int
    job: asyncio.Future[Transcript]
    received: float  # when the VAD's end event came (perf_counter)
    speech_end: float  # when the audio at the end of speech had arrived
    start: float  # the utterance's first sample on the input audio clock (seconds)


class WhisperSTT(Processor):
    """Offline STT: whisper tiny.en finals, live interims. Needs a VAD upstream; see the module docstring.

    * ``interims``: ``"pocketsphinx"`` (default), ``"whisper"`` (whisper on the growing utterance every
      ``interim_every_secs`` of speech, only when the pool has a free worker) or ``"none"``.
    * ``speculate_secs``: transcribe after this much silence, before the VAD's end of turn; ``None`` turns it
      off (the final then starts at the VAD's end).
    * ``pre_roll_secs``: audio kept from before the VAD's start event (it fires ``start_secs`` into speech).
    * ``max_secs``: an utterance this long is transcribed as a turn of its own and a new one begins (whisper
      sees 30 s at a time; the audio kept for a turn stays bounded).
    * ``engine``: a :class:`WhisperEngine`; default: the process-wide :meth:`WhisperEngine.shared`.
    """

    def __init__(
        self,
        *,
        interims: InterimsFrom = "pocketsphinx",
        speculate_secs: float | None = 0.1,
        pre_roll_secs: float = 0.5,
        interim_every_secs: float = 0.5,
        max_secs: float = 30.0,
        engine: WhisperEngine | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        if interims not in ("pocketsphinx", "whisper", "none"):
            raise ValueError(f"WhisperSTT.interims must be pocketsphinx, whisper or none, got {interims!r}")
        if pre_roll_secs < 0 or max_secs <= 0 or (speculate_secs is not None and speculate_secs <= 0):
            raise ValueError("WhisperSTT: pre_roll_secs must be >= 0, max_secs > 0 and speculate_secs > 0 (or None)")
        self.max_secs = max_secs
        self._max_utterance_bytes = int(max_secs * TARGET_RATE) * 2
        self.interims = interims
        self.speculate_secs = speculate_secs
        self.engine = engine or WhisperEngine.shared()
        self._source: InterimSource = (
            PocketsphinxInterims()
            if interims == "pocketsphinx"
            else WhisperInterims(self.engine, every_secs=interim_every_secs)
            if interims == "whisper"
            else InterimSource()
        )
        self._pre_roll_bytes = int(pre_roll_secs * TARGET_RATE) * 2
        self._convert = To16kMono()
        self._pre_roll: collections.deque[bytes] = collections.deque()
        self._pre_roll_len = 0
        self._samples = 0  # the input's audio clock, in 16 kHz samples (as the VAD counts)
        self._arrivals: collections.deque[tuple[int, float]] = collections.deque(maxlen=1000)
        self._utterance: bytearray | None = None  # the current utterance's audio, pre-roll included
        self._utterance_id = 0
        self._utterance_start = 0.0  # its first sample (pre-roll included) on the input audio clock, seconds
        self._finalised = 0  # the last utterance whose final went out (or is on its way)
        self._speculation: _Speculation | None = None
        self._analyzer: Any = None
        self._vad_model: Any = None
        self._out: asyncio.Queue[_Interim | _Final] = asyncio.Queue()
        self._emitter: asyncio.Task[None] | None = None
        self._last_interim = ""
        self.speculation_hits = 0
        """Finals taken from a speculative transcription (for benchmarks)."""
        self.speculation_misses = 0
        """Speculative transcriptions thrown away because the user spoke again."""

    # --- lifecycle ----------------------------------------------------------------------------------------

    async def on_start(self) -> None:
        await self.engine.load()
        if self.speculate_secs is not None:
            from voxline.processors.vad import SILERO_MODELS, SileroVADAnalyzer, VADParams

            self._vad_model = await SILERO_MODELS.acquire()
            params = VADParams(start_secs=0.1, stop_secs=self.speculate_secs)
            self._analyzer = SileroVADAnalyzer(self._vad_model, params)
        await self._source.open(self._on_interim)
        self._emitter = self.create_task(self._emit(), name=f"{self.name}-emit", epoch_bound=False)

    async def on_stop(self) -> None:
        self._drop_speculation()
        await self._source.close()
        model, self._vad_model, self._analyzer = self._vad_model, None, None
        if model is not None:
            from voxline.processors.vad import SILERO_MODELS

            SILERO_MODELS.release(model)

    # --- frames -------------------------------------------------------------------------------------------

    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, AudioFrame) and not isinstance(frame, TTSAudioFrame) and direction is DOWNSTREAM:
            self._on_audio(self._convert.convert(frame.pcm, frame.sample_rate, frame.channels))
            return
        if isinstance(frame, UserStartedSpeakingFrame):
            self._on_started()
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self._on_stopped(frame.audio_time)
        elif isinstance(frame, EndFrame):
            # The last words must not be lost: finish the utterance and push its final before the end.
            self._on_stopped(None)
            if self._emitter is not None and not self._emitter.done():
                await self._out.join()
        await self.push(frame, direction)

    def _on_audio(self, pcm: bytes) -> None:
        self._samples += len(pcm) // 2
        self._arrivals.append((self._samples, time.perf_counter()))
        utterance = self._utterance
        if utterance is not None and len(utterance) >= self._max_utterance_bytes:
            # A turn that never ends (a radio in the room, a monologue) must not grow without bound: what was
            # said so far becomes a turn of its own, and the rest a new one.
            logger.warning("%s: an utterance reached %.0f s: transcribing it as a turn", self.name, self.max_secs)
            self._on_stopped(None)
            self._on_started()
            utterance = self._utterance
        if utterance is not None:
            utterance += pcm
            self._source.audio(pcm, utterance)
        else:
            self._pre_roll.append(pcm)
            self._pre_roll_len += len(pcm)
            while self._pre_roll and self._pre_roll_len - len(self._pre_roll[0]) >= self._pre_roll_bytes:
                self._pre_roll_len -= len(self._pre_roll.popleft())
        if self._analyzer is not None:
            for event in self._analyzer.feed(pcm):
                if utterance is None:
                    continue
                if event.started:
                    self._drop_speculation(missed=True)  # the user goes on: that transcript is out of date
                elif self._speculation is None:
                    self._speculation = _Speculation(self._transcribe(utterance), self._samples)

    def _on_started(self) -> None:
        if self._utterance is not None:
            return
        pre_roll = b"".join(self._pre_roll)
        self._pre_roll.clear()
        self._pre_roll_len = 0
        self._utterance = bytearray(pre_roll)
        self._utterance_start = (self._samples - len(pre_roll) // 2) / TARGET_RATE
        self._utterance_id += 1
        self._last_interim = ""
        self._drop_speculation()
        self._source.begin(self._utterance_id, pre_roll)

    def _on_stopped(self, audio_time: float | None) -> None:
        utterance, self._utterance = self._utterance, None
        if utterance is None:
            return
        now = time.perf_counter()
        end = self._samples if audio_time is None else round(audio_time * TARGET_RATE)
        # When did the audio at the end of speech arrive? The first frame that reached past it.
        speech_end = next((wall for clock, wall in self._arrivals if clock >= end), now)
        self._source.end()
        speculation, self._speculation = self._speculation, None
        if speculation is not None and speculation.covered >= end - _WINDOW_SAMPLES:
            job = speculation.job
            self.speculation_hits += 1
        else:
            if speculation is not None:
                speculation.job.cancel()
                self.speculation_misses += 1
            job = self._transcribe(utterance)
        self._finalised = self._utterance_id
        self._out.put_nowait(_Final(self._utterance_id, job, now, speech_end, self._utterance_start))

    def _transcribe(self, utterance: bytearray) -> asyncio.Future[Transcript]:
        job = asyncio.ensure_future(self.engine.transcribe(bytes(utterance), urgent=True))
        job.add_done_callback(_consume)  # a job nobody awaits any more (a session that ended) logs nothing
        return job

    def _drop_speculation(self, *, missed: bool = False) -> None:
        speculation, self._speculation = self._speculation, None
        if speculation is not None:
            speculation.job.cancel()
            self.speculation_misses += missed

    def _on_interim(self, utterance: int, text: str) -> None:
        if utterance > self._finalised:
            self._out.put_nowait(_Interim(utterance, text))

    # --- output, in order ---------------------------------------------------------------------------------

    async def _emit(self) -> None:
        while True:
            item = await self._out.get()
            try:
                if isinstance(item, _Interim):
                    if item.text != self._last_interim:
                        self._last_interim = item.text
                        await self.push(TranscriptFrame(text=item.text, is_final=False))
                else:
                    await self._final(item)
            except Exception as exc:  # one bad utterance costs that utterance, not the session
                await self.push_error(f"whisper failed: {exc}", exception=exc)
            finally:
                self._out.task_done()

    async def _final(self, final: _Final) -> None:
        try:
            result = await final.job
        except asyncio.CancelledError:
            # Cancelling this task while it awaits the job cancels the job too, so the job's state cannot
            # tell the two apart: only the task's own pending cancellation says the stage is stopping.
            task = asyncio.current_task()
            if final.job.cancelled() and not (task is not None and task.cancelling()):
                return  # the job alone was cancelled (the engine shut down): no final, the stage goes on
            raise
        now = time.perf_counter()
        text = result.text
        if text:
            await self.push(
                TranscriptFrame(
                    text=text,
                    is_final=True,
                    speech_final=True,
                    confidence=result.confidence,
                    words=_words(result, final.start),
                    language="en",
                )
            )
        await self.push(MetricsFrame(name="stt.latency", value=now - final.speech_end, unit="s", source=self.name))
        await self.push(MetricsFrame(name="stt.finalize", value=now - final.received, unit="s", source=self.name))
        if text:
            await self.push(UserTextFrame(text=text))


def _words(result: Transcript, start: float) -> tuple[Word, ...]:
    """The transcript's words on the input audio clock. A word's confidence is the lower of whisper's probability
    for it and its confidence in the whole transcript: the transcript's tells a made-up sentence (on a short
    "uh-huh": "Thank you." 0.37-0.44, each word of it likely on its own), the word's a made-up word ("call,
    uh, …" → "call us?": "us" 0.22 in a transcript of 0.81)."""
    whole = 1.0 if result.confidence is None else result.confidence
    return tuple(
        Word(text=w.text, start=start + w.start, end=start + w.end, confidence=min(whole, max(0.0, w.probability)))
        for w in result.words
    )


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved, so a dropped job's error is not logged as "never retrieved"
