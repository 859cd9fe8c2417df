"""The echo detector's played audio on its way into the reference: runs of chunks, and chunks not resampled yet.

:class:`~voxline.turns.echo.EchoDetector` keeps what the client played as a 16 kHz reference. The TTS audio comes
at 24 kHz, chunk by chunk: a :class:`Run` of back-to-back chunks is resampled as one stream (each chunk with
the run's last :data:`CONTEXT` seconds in front, the outputs near its start written again), and each chunk
becomes a :class:`Chunk` that owes its stretch of the reference and is resampled only when something reads it.
:class:`Held` is what a pause put aside, pending chunks included.
"""

from __future__ import annotations

from math import gcd

import numpy as np
import soxr

__all__ = ["CONTEXT", "REWRITE", "Chunk", "Held", "Run", "resampled_length"]

CONTEXT = 0.02
"""Seconds of a run's earlier audio resampled again in front of each chunk: twice soxr HQ's reach (measured: a
cut disturbs 62-81 output samples at 16 kHz, whatever the input rate), so the outputs from :data:`REWRITE`
before the chunk on equal those of the whole run resampled at once."""
REWRITE = 160
"""Output samples before a chunk that are written again: the previous chunk's end, resampled without what
followed it."""


class Chunk:
    """A played chunk whose reference is not resampled yet: the detector resamples it when a read needs it.
    ``data`` (Int16 at ``rate``) resamples to the outputs from absolute index ``origin`` on; of them the detector
    still owes ``[lo, hi)`` (later writes took the rest)."""

    __slots__ = ("data", "hi", "lo", "origin", "rate", "rounds")

    def __init__(self, data: np.ndarray, rate: int, origin: int, lo: int, hi: int, rounds: int = 0) -> None:
        self.data, self.rate, self.origin, self.lo, self.hi = data, rate, origin, lo, hi
        self.rounds = rounds  # pauses (and realigns) it was held through: each rounds it to Int16 again

    def part(self, lo: int, hi: int) -> Chunk:
        return Chunk(self.data, self.rate, self.origin, lo, hi, self.rounds)

    def values(self, out_rate: int) -> np.ndarray:
        """The outputs it owes, ``[lo, hi)``, as they were when they were written (and held)."""
        out = self.samples(out_rate)[self.lo - self.origin : self.hi - self.origin]
        for _ in range(self.rounds):  # what the detector's resume does to the reference it held
            out = (np.clip(out, -1, 1) * 32767).astype("<i2").astype(np.float32) * (1.0 / 32768.0)
        return out

    def samples(self, out_rate: int) -> np.ndarray:
        """The outputs from ``origin`` on, as :func:`~voxline.audio.resample.resample` rounds them to Int16, over
        32768: the same float32 values as that bytes round trip, without it (the scalings are powers of two)."""
        x = self.data.astype(np.float32) / np.float32(32768)
        out: np.ndarray = soxr.resample(x, self.rate, out_rate, quality="HQ")  # resample()'s quality
        return np.clip(np.rint(out * np.float32(32768)), -32768, 32767) * np.float32(1.0 / 32768.0)


class Held:
    """What a pause put aside: the reference from absolute index ``base`` on (and audio played during the pause
    after it), where ``chunks`` (positioned from ``base``) still owe their part, not resampled yet."""

    __slots__ = ("base", "chunks", "samples")

    def __init__(self, base: int, samples: np.ndarray, chunks: list[Chunk]) -> None:
        self.base, self.samples, self.chunks = base, samples, chunks

    def settled(self, out_rate: int) -> np.ndarray:
        """The held reference with the chunks' outputs in place."""
        out = self.samples.copy()
        for chunk in self.chunks:
            out[chunk.lo - self.base : chunk.hi - self.base] = chunk.values(out_rate)
        return out


class Run:
    """A run of back-to-back chunks at one input rate, resampled as one stream (see ``EchoDetector.played``)."""

    __slots__ = ("floor", "keep", "n", "out0", "p", "q", "rate", "tail", "until")

    def __init__(self, rate: int, out_rate: int, out0: int, at: float) -> None:
        g = gcd(rate, out_rate)
        self.rate, self.p, self.q = rate, rate // g, out_rate // g  # p input samples make q output samples
        self.out0 = out0  # absolute output index of the run's input sample 0
        self.floor = out0  # outputs before this index are not rewritten (a realign moved the run past them)
        self.n = 0  # input samples in the run so far
        self.keep = int(CONTEXT * rate) + self.p
        self.tail = np.zeros(0, dtype="<i2")  # the run's last ``keep`` input samples
        self.until = at  # clock time where the next back-to-back chunk starts

    def follows(self, rate: int, at: float) -> bool:
        return rate == self.rate and abs(at - self.until) <= 0.5 / rate

    def add(self, pcm: bytes, out_rate: int, at: float) -> Chunk:
        """``pcm`` with the run's tail in front, and the absolute outputs ``[lo, hi)`` its resampling writes."""
        chunk = np.frombuffer(pcm, dtype="<i2")
        start = self.n - len(self.tail)  # input index of the tail's first sample
        first = -(-start // self.p) * self.p  # on the output grid: input index a multiple of p
        data = np.concatenate((self.tail[first - start :], chunk))
        at_index = self.out0 + first * self.q // self.p
        skip = 0
        if first > 0:  # the first outputs lack what came before ``first``: keep only those near the chunk
            skip = max(0, self.out0 + -(-self.n * self.q // self.p) - REWRITE - at_index)
        skip = max(skip, self.floor - at_index)
        self.n += len(chunk)
        self.tail = data[-self.keep :]
        self.until = at + len(chunk) / self.rate
        lo = at_index + skip
        return Chunk(
            data, self.rate, at_index, lo, max(lo, at_index + resampled_length(len(data), self.rate, out_rate))
        )


def resampled_length(n: int, rate: int, out_rate: int) -> int:
    """How many samples ``soxr.resample`` makes of ``n``: python-soxr's one-shot rounds ``n * out_rate / rate``
    to the nearest (``tests/test_turns_echo_lazy.py`` checks it against soxr at every rate the output takes)."""
    return int(n * out_rate / rate + 0.5)
