"""The echo detector before its reference was kept lazily (voxline.turns.echo at 814fa22), for equivalence tests.

``EchoDetector`` now resamples a played chunk only when a check reads it; this copy of the previous code
resamples each one as it is played. ``tests/test_turns_echo_lazy.py`` holds the two to bit-identical references
and shares over random sequences of plays, pauses, realigns, stops and checks.
"""

from __future__ import annotations

from math import gcd

import numpy as np
from voxline.audio.resample import resample

RATE = 16000
CONTEXT = 0.02
"""Seconds of a run's earlier audio resampled again in front of each chunk: twice soxr HQ's reach (measured: a
cut disturbs 62-81 output samples at 16 kHz, whatever the input rate), so the outputs from :data:`REWRITE`
before the chunk on equal those of the whole run resampled at once."""
REWRITE = 160
"""Output samples before a chunk that are written again: the previous chunk's end, resampled without what
followed it."""


class _Run:
    """A run of back-to-back chunks at one input rate, resampled as one stream (see :meth:`EchoDetector.played`)."""

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

    def add(self, pcm: bytes, out_rate: int, at: float) -> tuple[int, np.ndarray]:
        """Resample ``pcm`` with the run's tail in front; returns (absolute index, samples) to write."""
        chunk = np.frombuffer(pcm, dtype="<i2")
        start = self.n - len(self.tail)  # input index of the tail's first sample
        first = -(-start // self.p) * self.p  # on the output grid: input index a multiple of p
        data = np.concatenate((self.tail[first - start :], chunk))
        out = np.frombuffer(resample(data.tobytes(), self.rate, out_rate), dtype="<i2")
        at_index = self.out0 + first * self.q // self.p
        skip = 0
        if first > 0:  # the first outputs lack what came before ``first``: keep only those near the chunk
            skip = max(0, self.out0 + -(-self.n * self.q // self.p) - REWRITE - at_index)
        skip = max(skip, self.floor - at_index)
        self.n += len(chunk)
        self.tail = data[-self.keep :]
        self.until = at + len(chunk) / self.rate
        return at_index + skip, out[skip:].astype(np.float32) * (1.0 / 32768.0)


class EagerEchoDetector:
    """voxline.turns.EchoDetector as of 814fa22, which resampled every chunk as it was played."""

    def __init__(
        self,
        *,
        threshold: float = 0.5,
        min_delay: float = -0.05,
        max_delay: float = 0.4,
        history: float = 20.0,
        sample_rate: int = RATE,
    ) -> None:
        if not 0 < threshold < 1:
            raise ValueError(f"EchoDetector.threshold must be between 0 and 1, got {threshold}")
        if max_delay <= min_delay:
            raise ValueError(f"EchoDetector.max_delay ({max_delay}) must exceed min_delay ({min_delay})")
        self.threshold = threshold
        self.min_delay = min_delay
        self.max_delay = max_delay
        self.sample_rate = sample_rate
        self._ring = np.zeros(int(history * sample_rate), dtype=np.float32)
        self._t0: float | None = None  # clock time of absolute sample 0
        self._until = 0  # absolute index one past the last sample written
        self._held: np.ndarray | None = None  # the reference a pause put aside (and audio sent during it)
        self._run: _Run | None = None  # the back-to-back chunks being resampled as one stream
        self.checks = 0
        self.last_share = 0.0

    # --- the output side ------------------------------------------------------------------------------------

    def played(self, pcm: bytes, sample_rate: int, at: float) -> None:
        """The client plays ``pcm`` (Int16 mono at ``sample_rate``) from clock time ``at`` on.

        Chunks that follow each other without a gap are resampled as one stream, with the end of the run
        resampled again in front of each chunk, so the reference is what the client plays without a break.
        Resampling each chunk on its own rounded its length to whole samples (and its start to the sample grid):
        a seam of a sample at every chunk of odd length, against which a check window across it matches on one
        side only (``test_back_to_back_chunks_of_odd_length_make_one_seamless_reference``).
        """
        if not pcm:
            return
        run = self._run
        if sample_rate == self.sample_rate or self._held is not None:
            self._run = None
            if sample_rate != self.sample_rate:
                pcm = resample(pcm, sample_rate, self.sample_rate)
            samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) * (1.0 / 32768.0)
            if self._held is not None:  # paused: the client queues it behind what the pause held back
                self._held = np.concatenate((self._held, samples))
                return
            if self._t0 is None:
                self._t0 = at
            start = self._index(at)
        else:
            if self._t0 is None:
                self._t0 = at
            if run is None or not run.follows(sample_rate, at):
                run = self._run = _Run(sample_rate, self.sample_rate, self._index(at), at)
            start, samples = run.add(pcm, self.sample_rate, at)
        if start > self._until:  # a gap: nothing played in between
            self._write(self._until, np.zeros(min(start - self._until, len(self._ring)), dtype=np.float32))
        self._write(start, samples)
        self._until = max(self._until, start + len(samples))

    def stopped(self, at: float) -> None:
        """Playback stopped at ``at`` (an interrupt): reference audio after it (or held by a pause) never played."""
        self._held, self._run = None, None
        self._cut(at)

    def _cut(self, at: float) -> None:
        if self._t0 is None:
            return
        cut = max(0, self._index(at))
        if cut < self._until:
            self._write(cut, np.zeros(min(self._until - cut, len(self._ring)), dtype=np.float32))
            self._until = cut

    def pause(self, at: float) -> None:
        """Playback paused at ``at`` (``playback: pause``): what was to play after it waits for :meth:`resume`;
        audio :meth:`played` while paused joins it."""
        if self._t0 is None or self._held is not None:
            return
        self._run = None
        cut = max(0, self._index(at))
        self._held = self._read(cut, self._until) if cut < self._until else np.zeros(0, dtype=np.float32)
        self._cut(at)

    @property
    def paused(self) -> bool:
        return self._held is not None

    def realign(self, at: float, lag: float, since: float | None = None) -> None:
        """The client's report says its playback is ``lag`` seconds behind the reference at ``at`` (ahead if
        negative): what had not played by then is moved to play from ``at`` on. With ``since`` (the start of a
        run of audio no report had checked: the lag is the client's from that start, e.g. its jitter buffer)
        the whole run from ``since`` is moved by ``lag``, so the audio that played before the report is where
        the client played it too."""
        if self._t0 is None or self._held is not None or lag == 0:
            return
        cut = at - lag if since is None else min(since, at - lag)
        run = self._run
        moved_from, moved_to = max(0, self._index(cut)), max(0, self._index(cut + lag))
        self.pause(cut)
        self.resume(cut + lag)
        if run is not None:  # the run goes on where it was moved to; what stayed before the cut is not rewritten
            run.out0 += moved_to - moved_from
            run.floor = max(run.floor + moved_to - moved_from, moved_to)
            run.until += lag
            self._run = run

    def resume(self, at: float) -> None:
        """Playback resumed at ``at``: the audio held at the pause plays from here on."""
        held, self._held = self._held, None
        if held is not None and len(held):
            pcm = (np.clip(held, -1, 1) * 32767).astype("<i2").tobytes()
            self.played(pcm, self.sample_rate, at)

    # --- the input side -------------------------------------------------------------------------------------

    def echo_share(self, mic: np.ndarray, end: float) -> float:
        """The share (0-1) of ``mic``'s energy that a delayed, scaled copy of what played explains.

        ``mic`` is float32 mono at :attr:`sample_rate` whose last sample was captured at clock time ``end``.
        """
        self.checks += 1
        self.last_share = 0.0
        n = len(mic)
        if self._t0 is None or n < self.sample_rate // 20:
            return 0.0
        mic = mic.astype(np.float64)
        mic_energy = float(mic @ mic)
        if mic_energy < 1e-7 * n:
            return 0.0
        lo, hi = round(self.min_delay * self.sample_rate), round(self.max_delay * self.sample_rate)
        first = self._index(end) - n
        seg = self._read(first - hi, first - lo + n).astype(np.float64)
        if not seg.any():
            return 0.0
        size = 1 << (len(seg) + n).bit_length()
        corr = np.fft.irfft(np.fft.rfft(seg, size) * np.conj(np.fft.rfft(mic, size)), size)[: hi - lo + 1]
        energy = np.concatenate(([0.0], np.cumsum(seg * seg)))
        window = energy[n : n + hi - lo + 1] - energy[: hi - lo + 1]
        valid = window > 1e-7 * n
        if not valid.any():
            return 0.0
        share = np.zeros_like(corr)
        share[valid] = corr[valid] ** 2 / (mic_energy * window[valid])
        best = int(share.argmax())
        self.last_share = float(min(1.0, share[best]))
        return self.last_share

    def is_echo(self, mic: np.ndarray, end: float) -> bool:
        """Whether ``mic`` is (mostly) the bot's own voice."""
        return self.echo_share(mic, end) >= self.threshold

    # --- the ring -------------------------------------------------------------------------------------------

    def _index(self, at: float) -> int:
        assert self._t0 is not None
        return round((at - self._t0) * self.sample_rate)

    def _write(self, start: int, samples: np.ndarray) -> None:
        size = len(self._ring)
        samples = samples[-size:]
        if len(samples) == 0:
            return
        pos = start % size
        first = min(len(samples), size - pos)
        self._ring[pos : pos + first] = samples[:first]
        self._ring[: len(samples) - first] = samples[first:]

    def _read(self, start: int, stop: int) -> np.ndarray:
        """Absolute samples [start, stop); zeros where nothing (kept) played."""
        out = np.zeros(max(0, stop - start), dtype=np.float32)
        size = len(self._ring)
        lo, hi = max(start, self._until - size, 0), min(stop, self._until)
        for i in range(lo, hi, size):  # at most two pieces in practice
            j = min(hi, i + size)
            pos = i % size
            first = min(j - i, size - pos)
            out[i - start : i - start + first] = self._ring[pos : pos + first]
            out[i - start + first : j - start] = self._ring[: j - i - first]
        return out
