"""Streaming speech-to-text with pocketsphinx, offline: its wheel bundles an English acoustic model and LM.

A :class:`~voxline.stt.STTProcessor`: the base consumes the input audio, notes it on the audio clock and turns
the final into the user's turn. Put a :class:`~voxline.processors.vad.SileroVAD` in front (or use
:func:`local_stt`, which does): the VAD says when the user starts and stops speaking, this stage recognises what
was said. It keeps the last ``pre_roll_secs`` of audio while the user is quiet (the VAD reports a start only
after ``start_secs`` of speech, and the decoder needs those first syllables), and while the user speaks emits
interim ``TranscriptFrame(is_final=False)`` whenever the hypothesis changes. At the VAD's end of speech — or
when :meth:`~voxline.stt.STTProcessor.finalize` is called — it emits the final
``TranscriptFrame(is_final=True, speech_final=True)``, a ``UserTextFrame`` with the turn's text, and two
metrics: ``stt.latency``, from the arrival of the audio at the end of the user's speech to the final (as for
the cloud STT: it includes the VAD's ``stop_secs`` of silence), and ``stt.finalize``, from the VAD's
end-of-speech event to the final (the decoder's own share).

Decoding runs off the event loop on one thread per session (a single-thread executor), so the utterance is
decoded in order. Audio is handed over in batches of at least ``batch_secs`` (a start or end of speech flushes
at once): one thread hop per 20 ms frame would cost the loop about as much as a VAD window, for interim
results nobody can read that fast. When decoding falls behind, batches grow, up to 0.5 s of audio each, so
interim results still come while the decoder catches up.

Interruptions do not touch a user utterance in progress. An interrupt cancels the *bot's* work of older
epochs; the user's speech is not old work — it is usually the very reason for the barge-in, and it belongs to
the new turn. So the decoding pump is not epoch-bound, the decoder state survives the interrupt, and the
transcripts it produces are stamped with the epoch current when they are pushed (the newest), so they reach
the LLM of the new turn.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from voxline.frames import (
    AudioFrame,
    Frame,
    MetricsFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    Word,
)
from voxline.pipeline import Pipeline
from voxline.processor import Direction, Processor
from voxline.processors.local import require
from voxline.processors.local.audio import TARGET_RATE, To16kMono
from voxline.processors.local.pool import ModelPool
from voxline.stt import STTProcessor

__all__ = ["PocketsphinxSTT", "local_stt"]

_BYTES_PER_SEC = TARGET_RATE * 2
_MAX_BATCH_BYTES = _BYTES_PER_SEC // 2  # 0.5 s of audio per decoding job at most


_Options = tuple[tuple[str, Any], ...]


def _load_decoder(grammar: str | None, options: _Options) -> Any:
    """A pocketsphinx decoder with the bundled en-us model (0.4-0.6 s: call it off the loop)."""
    ps = require("pocketsphinx")
    decoder = ps.Decoder(samprate=TARGET_RATE, loglevel="FATAL", **dict(options))
    if grammar is not None:
        decoder.add_jsgf_string("voxline", grammar)
        decoder.activate_search("voxline")
    return decoder


def _reset_decoder(decoder: Any) -> None:
    with contextlib.suppress(RuntimeError):  # no utterance was open
        decoder.end_utt()


# One pool per configuration: a decoder's search is part of its state. Decoders are stateful and not thread-safe,
# so sessions never share one; they reuse the idle decoders of finished sessions instead of loading anew.
_POOLS: dict[tuple[str | None, _Options], ModelPool[Any]] = {}


def decoder_pool(grammar: str | None = None, options: _Options = ()) -> ModelPool[Any]:
    key = (grammar, options)
    pool = _POOLS.get(key)
    if pool is None:
        pool = _POOLS[key] = ModelPool(lambda: _load_decoder(grammar, options), reset=_reset_decoder)
    return pool


class _Start:
    """Start of an utterance; ``audio_start`` is where its first sample (the pre-roll's) is on the audio clock."""

    __slots__ = ("audio_start",)

    def __init__(self, audio_start: float) -> None:
        self.audio_start = audio_start


class _End:
    """End of an utterance: when the VAD's event came (wall clock), and where speech ended (audio clock)."""

    __slots__ = ("received", "speech_end", "words")

    def __init__(self, received: float, speech_end: float) -> None:
        self.received = received
        self.speech_end = speech_end
        self.words: tuple[Word, ...] = ()  # filled in by the decoding thread


_Op = bytes | _Start | _End


class PocketsphinxSTT(STTProcessor):
    """Offline streaming STT. Needs the VAD's speaking frames upstream of it; see the module docstring.

    Options:

    * ``grammar``: a JSGF grammar; recognition is then limited to its phrases (a fixed command set, or
      deterministic tests on synthetic speech).
    * ``interim_results=False``: no interim transcripts.
    * ``second_pass=False``: skip pocketsphinx's second (flat-lexicon) search at the end of an utterance. The
      final comes 40-70 ms sooner, but more words are wrong (WER 8.8 % -> 12.3 % on flite speech, measured).
    * ``decoder_options``: passed to pocketsphinx's ``Config`` as they are (e.g. ``{"maxhmmpf": 3000}`` trades a
      little accuracy for less CPU); an unknown option fails at start.
    """

    def __init__(
        self,
        *,
        pre_roll_secs: float = 0.5,
        batch_secs: float = 0.1,
        interim_results: bool = True,
        grammar: str | None = None,
        second_pass: bool = True,
        decoder_options: Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        if pre_roll_secs < 0 or batch_secs < 0:
            raise ValueError("PocketsphinxSTT: pre_roll_secs and batch_secs must be >= 0")
        self.interim_results = interim_results
        self.grammar = grammar
        self.second_pass = second_pass
        options = dict(decoder_options or {})
        if not second_pass:
            options["fwdflat"] = False
        self._options: _Options = tuple(sorted(options.items()))
        try:
            hash(self._options)
        except TypeError:
            raise TypeError("PocketsphinxSTT.decoder_options values must be str, int, float or bool") from None
        self._pre_roll_bytes = int(pre_roll_secs * TARGET_RATE) * 2
        self._batch_bytes = int(batch_secs * TARGET_RATE) * 2
        self._convert = To16kMono()
        self._decoder: Any = None
        self._executor: ThreadPoolExecutor | None = None
        self._pre_roll: collections.deque[bytes] = collections.deque()
        self._pre_roll_len = 0
        self._in_speech = False
        self._ops: list[_Op] = []
        self._pending_audio = 0
        self._wake: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._pump: asyncio.Task[None] | None = None
        # Touched only by the decoding thread:
        self._last_interim = ""
        self._utt_start = 0.0
        self.decode_seconds = 0.0
        """Wall time the decoding thread spent in its jobs, for benchmarks."""
        self.decode_cpu_seconds = 0.0
        """CPU time of the decoding thread in its jobs (less than the wall time when the machine is busy)."""
        self.audio_seconds = 0.0
        """Seconds of audio handed to the decoder, for benchmarks (real-time factor = decode / audio)."""

    # --- lifecycle ----------------------------------------------------------------------------------------

    async def on_start(self) -> None:
        known = require("pocketsphinx").Config()
        unknown = [name for name, _ in self._options if name not in known]
        if unknown:
            raise ValueError(f"pocketsphinx has no decoder option {', '.join(map(repr, unknown))}")
        self._decoder = await decoder_pool(self.grammar, self._options).acquire()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{self.name}-decode")
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._pump = self.create_task(self._run_pump(), name=f"{self.name}-pump", epoch_bound=False)

    async def on_stop(self) -> None:
        executor, self._executor = self._executor, None
        decoder, self._decoder = self._decoder, None
        pool = decoder_pool(self.grammar, self._options)

        def retire() -> None:
            # A decode job may still be running: the decoder goes back to the pool only after it finished.
            # Off the loop, because closing an open utterance costs a final decoding pass (60-120 ms).
            if executor is not None:
                executor.shutdown(wait=True)
            if decoder is not None:
                pool.release(decoder)

        await asyncio.to_thread(retire)

    # --- frames -------------------------------------------------------------------------------------------

    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, UserStartedSpeakingFrame):
            self._on_started()
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self._on_stopped(frame.audio_time)
        await super().process(frame, direction)  # the base consumes audio and forwards the rest

    async def on_audio(self, frame: AudioFrame) -> None:
        pcm = self._convert.convert(frame.pcm, frame.sample_rate, frame.channels)
        if not pcm:  # a resampler holding back its first samples (8 kHz input): pocketsphinx refuses b""
            return
        if self._in_speech:
            self._queue(pcm)
            return
        self._pre_roll.append(pcm)
        self._pre_roll_len += len(pcm)
        while self._pre_roll and self._pre_roll_len - len(self._pre_roll[0]) >= self._pre_roll_bytes:
            self._pre_roll_len -= len(self._pre_roll.popleft())

    async def on_finalize(self) -> bool:
        """End the utterance now (a turn detector decided before the VAD did); False if none is open."""
        if not self._in_speech:
            return False
        self._on_stopped()
        return True

    async def on_end_of_stream(self) -> None:
        # The last words must not be lost: finish the utterance and wait for its final before the end.
        if self._in_speech:
            self._on_stopped()
        if self._idle is not None and self._pump is not None and not self._pump.done():
            await self._idle.wait()

    def _on_started(self) -> None:
        if self._in_speech:
            return
        self._in_speech = True
        self._queue(_Start(self.clock.seconds - self._pre_roll_len / _BYTES_PER_SEC))
        if self._pre_roll:
            self._queue(b"".join(self._pre_roll))
            self._pre_roll.clear()
            self._pre_roll_len = 0

    def _on_stopped(self, audio_time: float | None = None) -> None:
        if not self._in_speech:
            return
        self._in_speech = False
        # Where speech ended on the audio clock (the VAD's word for it; all audio so far without one). The base
        # maps it to the moment that audio arrived for stt.latency.
        self._queue(_End(time.perf_counter(), audio_time if audio_time is not None else self.clock.seconds))

    def _queue(self, op: _Op) -> None:
        self._ops.append(op)
        if isinstance(op, bytes):
            self._pending_audio += len(op)
            if self._pending_audio < self._batch_bytes:
                return
        if self._wake is not None and self._idle is not None:
            self._idle.clear()
            self._wake.set()

    # --- decoding -----------------------------------------------------------------------------------------

    async def _run_pump(self) -> None:
        """Hands the queued operations to the decoding thread, one batch at a time, and emits what it found."""
        assert self._wake is not None and self._idle is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                while self._ops:
                    ops = self._take_batch()
                    results = await loop.run_in_executor(self._executor, self._decode, ops)
                    for text, end in results:
                        await self._emit(text, end)
            except Exception as exc:  # a bad batch costs this utterance, not the session
                await self.push_error(f"pocketsphinx failed: {exc}", exception=exc)
            finally:
                self._idle.set()

    def _take_batch(self) -> list[_Op]:
        """The queued operations up to ``_MAX_BATCH_SECS`` of audio. When decoding has fallen behind, the
        backlog is decoded in slices, so interim results keep coming while it catches up."""
        audio = 0
        for i, op in enumerate(self._ops):
            if isinstance(op, bytes):
                audio += len(op)
                if audio >= _MAX_BATCH_BYTES:
                    batch, self._ops = self._ops[: i + 1], self._ops[i + 1 :]
                    self._pending_audio = sum(len(o) for o in self._ops if isinstance(o, bytes))
                    return batch
        batch, self._ops, self._pending_audio = self._ops, [], 0
        return batch

    def _decode(self, ops: list[_Op]) -> list[tuple[str, _End | None]]:
        """Runs on the decoding thread: feed audio, read hypotheses. Returns (text, end of utterance or None)."""
        decoder = self._decoder
        out: list[tuple[str, _End | None]] = []
        started, cpu = time.perf_counter(), time.thread_time()
        fed = False
        for op in ops:
            if isinstance(op, bytes):
                decoder.process_raw(op, False, False)
                self.audio_seconds += len(op) / _BYTES_PER_SEC
                fed = True
            elif isinstance(op, _Start):
                try:
                    decoder.start_utt()
                except RuntimeError:  # an utterance left open by a failed batch
                    decoder.end_utt()
                    decoder.start_utt()
                self._last_interim = ""
                self._utt_start = op.audio_start
            else:
                decoder.end_utt()
                hyp = decoder.hyp()
                out.append((hyp.hypstr if hyp is not None else "", op))
                op.words = self._words()
                fed = False
        if fed and self.interim_results:
            hyp = decoder.hyp()
            text = hyp.hypstr if hyp is not None else ""
            if text and text != self._last_interim:
                self._last_interim = text
                out.append((text, None))
        self.decode_seconds += time.perf_counter() - started
        self.decode_cpu_seconds += time.thread_time() - cpu
        return out

    def _words(self) -> tuple[Word, ...]:
        """The final's words with their times on the input's audio clock (pocketsphinx counts 10 ms frames)
        and pocketsphinx's posterior probability as the confidence. Runs on the decoding thread."""
        start = self._utt_start
        return tuple(
            Word(
                seg.word.split("(")[0],  # "capital(2)": the dictionary's second pronunciation
                start + seg.start_frame / 100,
                start + (seg.end_frame + 1) / 100,
                min(1.0, max(0.0, seg.prob)),  # a posterior, but rounding can take it to 1.0001
            )
            for seg in self._decoder.seg()
            if seg.word[:1] not in ("<", "[", "+")  # <s>, </s>, <sil>, [NOISE], +fillers+
        )

    async def _emit(self, text: str, end: _End | None) -> None:
        if end is None:
            await self.push_transcript(text, is_final=False)
            return
        finalized = time.perf_counter() - end.received
        text = text.strip()
        if not text:
            return  # a noise the VAD took for speech: no turn
        await self.push_transcript(text, is_final=True, speech_final=True, words=end.words)
        await self.push(MetricsFrame(name="stt.finalize", value=finalized, unit="s", source=self.name))
        await self.end_turn(speech_end=end.speech_end)


def local_stt(*, vad: Processor | None = None, stt: PocketsphinxSTT | None = None) -> Pipeline:
    """VAD + pocketsphinx as one stage: ``Pipeline([SileroVAD(), PocketsphinxSTT()])``."""
    from voxline.processors.vad import SileroVAD

    return Pipeline([vad or SileroVAD(), stt or PocketsphinxSTT()], name="local-stt")
