"""Interim transcripts for an STT whose final comes from a non-streaming model (whisper).

whisper transcribes a finished utterance; it cannot say what it has heard so far. The user still wants to
see their words appear while they speak, so :class:`~voxline.processors.local.whisper.WhisperSTT`
takes its interims from one of these sources (both measured in tests/bench/bench_local_engines.py; see
docs/local-engines.md for the figures behind the default):

* :class:`PocketsphinxInterims`: a streaming pocketsphinx decoder (its cheaper one-pass search with tighter
  pruning: the final comes from whisper anyway) fed in batches of ``batch_secs`` on the shared pocketsphinx
  pool. A new hypothesis every 0.1 s, about 0.1 s of CPU per second of speech, and rougher words than
  whisper's. pocketsphinx holds the GIL while it decodes: each batch stalls the event loop ~10-20 ms.
* :class:`WhisperInterims`: whisper run again on the utterance so far, every ``every_secs`` of new speech,
  only when the whisper pool has a free worker (interims never delay anyone's final). Better words, fewer
  updates, about 0.5 s of CPU each.

Each source calls ``deliver(utterance_id, text)`` on the event loop; the processor drops what arrives for an
utterance that has already had its final.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from voxline.processors.local.pool import ModelPool
from voxline.processors.local.whisper_engine import Transcript, WhisperEngine
from voxline.processors.local.workers import WorkerPool

__all__ = ["POCKETSPHINX_POOL", "InterimSource", "PocketsphinxInterims", "WhisperInterims"]

logger = logging.getLogger("voxline.local")

Deliver = Callable[[int, str], None]

POCKETSPHINX_POOL = WorkerPool("pocketsphinx", 2)
"""Decoding threads shared by every session's pocketsphinx interim decoder."""

# The one-pass search with tighter pruning: 0.096 of real time in CPU instead of 0.157 (measured on 12 flite
# sentences), the last interim's WER 12.2 % instead of 11.0 %. Interims are replaced by whisper's final, and
# pocketsphinx holds the GIL while it decodes (docs/local-engines.md), so cheaper is worth more here.
_INTERIM_OPTIONS = (("fwdflat", False), ("maxhmmpf", 3000), ("topn", 2))


def interim_decoders() -> ModelPool[Any]:
    from voxline.processors.local.stt import decoder_pool

    return decoder_pool(None, _INTERIM_OPTIONS)


class InterimSource:
    """What the processor needs of an interim source. The base gives no interims (``interims="none"``)."""

    async def open(self, deliver: Deliver) -> None:
        """Session start: load what is needed (off the loop)."""

    def begin(self, utterance_id: int, pcm: bytes) -> None:
        """The user started speaking; ``pcm`` is the pre-roll (the audio just before the VAD noticed)."""

    def audio(self, pcm: bytes, utterance: bytearray) -> None:
        """More speech; ``utterance`` is all of the utterance's audio so far (do not keep a reference)."""

    def end(self) -> None:
        """The utterance ended: work on it is no longer wanted."""

    async def close(self) -> None:
        """Session end: free what :meth:`open` took, once no job uses it."""


class PocketsphinxInterims(InterimSource):
    """Streaming pocketsphinx hypotheses; see the module docstring."""

    def __init__(self, *, batch_secs: float = 0.1, pool: WorkerPool | None = None) -> None:
        self._batch_bytes = int(batch_secs * 16000) * 2
        self._pool = pool or POCKETSPHINX_POOL
        self._decoder: Any = None
        self._lock = threading.Lock()  # held by a decoding job; close() takes it to know none runs
        self._closed = False
        self._ops: list[bytes | int | None] = []  # audio, start of utterance N, end of utterance
        self._pending = 0
        self._wake = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        self._deliver: Deliver | None = None
        self._utterance = 0  # touched by the decoding job only
        self._last = ""
        self.audio_seconds = 0.0

    async def open(self, deliver: Deliver) -> None:
        self._deliver = deliver
        self._decoder = await interim_decoders().acquire()
        self._pump = asyncio.get_running_loop().create_task(self._run(), name="pocketsphinx-interims")

    def begin(self, utterance_id: int, pcm: bytes) -> None:
        self._ops.append(utterance_id)
        self.audio(pcm, bytearray())

    def audio(self, pcm: bytes, utterance: bytearray) -> None:
        if pcm:
            self._ops.append(pcm)
            self._pending += len(pcm)
        if self._pending >= self._batch_bytes:
            self._wake.set()

    def end(self) -> None:
        self._ops.append(None)
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._ops:
                ops, self._ops, self._pending = self._ops, [], 0
                try:
                    found = await self._pool.run(self._decode, ops)
                except Exception as exc:  # interims are a nicety: a failed batch must not end the session
                    logger.warning("pocketsphinx interims failed: %s", exc)
                    continue
                for utterance, text in found:
                    assert self._deliver is not None
                    self._deliver(utterance, text)

    def _decode(self, ops: list[bytes | int | None]) -> list[tuple[int, str]]:
        out: list[tuple[int, str]] = []
        with self._lock:
            decoder = self._decoder
            if self._closed or decoder is None:
                return out
            fed = False
            for op in ops:
                if isinstance(op, bytes):
                    if self._utterance:
                        decoder.process_raw(op, False, False)
                        self.audio_seconds += len(op) / 32000
                        fed = True
                elif op is None:
                    if self._utterance:
                        decoder.end_utt()
                    self._utterance, fed = 0, False
                else:
                    with contextlib.suppress(RuntimeError):  # an utterance left open by a failed job
                        decoder.end_utt()
                    decoder.start_utt()
                    self._utterance, self._last = op, ""
            if fed:
                hyp = decoder.hyp()
                text = hyp.hypstr if hyp is not None else ""
                if text and text != self._last:
                    self._last = text
                    out.append((self._utterance, text))
        return out

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)

        def retire() -> None:
            with self._lock:  # waits for a job still decoding in its thread
                self._closed = True
                decoder, self._decoder = self._decoder, None
            if decoder is not None:
                interim_decoders().release(decoder)  # the pool's reset closes an open utterance

        await asyncio.to_thread(retire)


class WhisperInterims(InterimSource):
    """whisper on the growing utterance; see the module docstring."""

    def __init__(self, engine: WhisperEngine, *, every_secs: float = 0.5) -> None:
        if every_secs <= 0:
            raise ValueError(f"WhisperInterims.every_secs must be > 0, got {every_secs}")
        self._engine = engine
        self._every = int(every_secs * 16000) * 2
        self._new = 0
        self._utterance = 0
        self._job: asyncio.Future[Transcript] | None = None
        self._deliver: Deliver | None = None
        self.skipped = 0
        """Interim passes skipped because the whisper pool was busy (graceful degradation), for benchmarks."""

    async def open(self, deliver: Deliver) -> None:
        self._deliver = deliver

    def begin(self, utterance_id: int, pcm: bytes) -> None:
        self._utterance, self._new = utterance_id, len(pcm)

    def audio(self, pcm: bytes, utterance: bytearray) -> None:
        self._new += len(pcm)
        if self._new < self._every or self._job is not None:
            return
        if not self._engine.pool.idle:
            self.skipped += 1
            self._new = 0
            return
        self._new = 0
        utterance_id = self._utterance
        job = self._job = asyncio.ensure_future(self._engine.transcribe(bytes(utterance), urgent=False))

        def done(future: asyncio.Future[Transcript]) -> None:
            if self._job is future:
                self._job = None
            if future.cancelled() or future.exception() is not None:
                return
            if self._deliver is not None and future.result().text:
                self._deliver(utterance_id, future.result().text)

        job.add_done_callback(done)

    def end(self) -> None:
        job, self._job = self._job, None
        if job is not None:
            job.cancel()  # skipped if it has not started; a running pass finishes and is dropped

    async def close(self) -> None:
        self.end()
