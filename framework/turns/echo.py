"""Echo: tell the bot's own voice, played by the client's speakers and picked up by its microphone, from the user.

The server knows every sample it sent, and — from the client's playback reports, or its own playback clock —
when each one played. :class:`EchoDetector` keeps that *reference* on the turn engine's clock. For a stretch
of microphone audio it searches the reference at every delay in ``[min_delay, max_delay]`` (the acoustic path
plus the uncertainty of the playback timing) for the best normalised cross-correlation; its square is the
share of the microphone's energy that a delayed, scaled copy of what played explains. Echo alone explains
nearly all of it (0.9 and more, whatever its level); the user talking, alone or over the echo, explains little
(the echo's share of the total). So a VAD start whose audio is ≥ ``threshold`` explained is echo: it never
interrupts and never becomes a user turn.

What feeds it: the output side calls :meth:`EchoDetector.played` with each chunk of audio and the clock time
its first sample plays at the client (its playback clock, corrected by the client's reports where it has
them), :meth:`EchoDetector.stopped` when playback stops early (an interrupt: reference audio after that point
never played), and :meth:`EchoDetector.pause` / :meth:`EchoDetector.resume` around a ``playback`` pause (the
audio still to play is put aside and played on from the resume). The input side (the turn processor)
asks :meth:`EchoDetector.echo_share` with the microphone's last few hundred milliseconds.

Limits: one delayed copy is a single-path model of the room. A real room adds reverberation and the
loudspeaker's distortion, which lower the correlation of true echo; a browser with its own echo cancellation
(on by default in Chrome) leaves only a residue, which this catches when it is still speech-like. Tune
``threshold`` on recordings of the target devices.
"""

from __future__ import annotations

import logging
from collections import deque

import numpy as np
from voxline.audio.resample import resample
from voxline.turns.echo_chunks import Chunk, Held, Run

__all__ = ["EchoDetector"]

logger = logging.getLogger(__name__)

RATE = 16000


class EchoDetector:
    """The reference-correlation echo detector. Times are on the turn engine's clock (seconds)."""

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
        self._held: Held | None = None  # the reference a pause put aside (and audio sent during it)
        self._run: Run | None = None  # the back-to-back chunks being resampled as one stream
        self._pending: deque[Chunk] = deque()  # played, not resampled yet: ordered, their [lo, hi) disjoint
        self._horizon = 0  # outputs before this absolute index are no longer kept (the ring has moved past them)
        self.checks = 0
        self.resampled = 0
        """Chunks resampled into the reference so far (a counter for tests and metrics)."""
        self.last_share = 0.0

    # --- the output side ------------------------------------------------------------------------------------

    def played(self, pcm: bytes, sample_rate: int, at: float) -> None:
        """The client plays ``pcm`` (Int16 mono at ``sample_rate``) from clock time ``at`` on.

        Chunks that follow each other without a gap are resampled as one stream, with the end of the run
        resampled again in front of each chunk, so the reference is what the client plays without a break.
        Resampling each chunk on its own rounded its length to whole samples (and its start to the sample grid):
        a seam of a sample at every chunk of odd length, against which a check window across it matches on one
        side only (``test_back_to_back_chunks_of_odd_length_make_one_seamless_reference``).

        Lazily: a chunk of a run is only placed here, and resampled when a check (or a pause) first reads its part
        of the reference, into the same samples as at once (``tests/test_turns_echo_lazy.py`` holds the two equal).
        Checks come only when the VAD hears speech, so most of what plays is never compared against, and
        resampling every chunk was most of the reply path's CPU (64-70 µs per 100 ms chunk; placing one costs
        ~5). A check pays for what it reads: its window and the delays it searches, ~0.75 s of reference (~0.5 ms
        of CPU in 100 ms chunks). Later writes (the next chunk's rewrite of the run's end, a stop, a gap) take
        their range from the chunks still pending, so the order of the writes is kept.
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
                self._held.samples = np.concatenate((self._held.samples, samples))
                return
            if self._t0 is None:
                self._t0 = at
            start = self._index(at)
        else:
            if self._t0 is None:
                self._t0 = at
            if run is None or not run.follows(sample_rate, at):
                run = self._run = Run(sample_rate, self.sample_rate, self._index(at), at)
            chunk = run.add(pcm, self.sample_rate, at)
            if chunk.lo > self._until:  # a gap: nothing played in between
                self._zero(self._until, chunk.lo - self._until)
            if chunk.lo < self._horizon or chunk.hi - chunk.lo > len(self._ring):  # not in practice: at once
                self.resampled += 1
                self._write(chunk.lo, chunk.samples(self.sample_rate)[chunk.lo - chunk.origin :])
            elif chunk.hi > chunk.lo:
                self._claim(chunk.lo, chunk.hi)
                self._insert(chunk)
            self._advance(chunk.hi)
            return
        if start > self._until:  # a gap: nothing played in between
            self._zero(self._until, start - self._until)
        self._write(start, samples)
        self._advance(start + len(samples))

    def stopped(self, at: float) -> None:
        """Playback stopped at ``at`` (an interrupt): reference audio after it (or held by a pause) never played."""
        self._held, self._run = None, None
        self._cut(at)

    def _cut(self, at: float) -> None:
        if self._t0 is None:
            return
        cut = max(0, self._index(at))
        if cut < self._until:
            self._zero(cut, self._until - cut)
            self._until = cut

    def pause(self, at: float) -> None:
        """Playback paused at ``at`` (``playback: pause``): what was to play after it waits for :meth:`resume`;
        audio :meth:`played` while paused joins it."""
        if self._t0 is None or self._held is not None:
            return
        self._run = None
        cut = max(0, self._index(at))
        chunks = self._take(cut) if cut < self._until else []
        samples = self._read(cut, self._until) if cut < self._until else np.zeros(0, dtype=np.float32)
        self._held = Held(cut, samples, chunks)
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
        if held is None or not len(held.samples):
            return
        start = self._index(at)
        if held.chunks and (start < self._horizon or len(held.samples) > len(self._ring)):  # not in practice
            held = Held(held.base, held.settled(self.sample_rate), [])
        pcm = (np.clip(held.samples, -1, 1) * 32767).astype("<i2").tobytes()
        self.played(pcm, self.sample_rate, at)
        shift = start - held.base
        for chunk in held.chunks:  # the pending chunks go on owing their part, where it plays now
            chunk.origin, chunk.lo, chunk.hi, chunk.rounds = (
                chunk.origin + shift,
                chunk.lo + shift,
                chunk.hi + shift,
                chunk.rounds + 1,
            )
            self._claim(chunk.lo, chunk.hi)
            self._insert(chunk)

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
        logger.debug("EchoDetector: share %.3f at %+.0f ms", self.last_share, 1000 * (hi - best) / self.sample_rate)
        return self.last_share

    def is_echo(self, mic: np.ndarray, end: float) -> bool:
        """Whether ``mic`` is (mostly) the bot's own voice."""
        return self.echo_share(mic, end) >= self.threshold

    # --- the ring -------------------------------------------------------------------------------------------

    def _index(self, at: float) -> int:
        assert self._t0 is not None
        return round((at - self._t0) * self.sample_rate)

    def _advance(self, end: int) -> None:
        """Outputs up to ``end`` were written (or placed): the ring keeps the last ``len(_ring)`` before the end."""
        if end <= self._until:
            return
        self._until = end
        horizon = end - len(self._ring)
        if horizon > self._horizon:
            self._horizon = horizon
            pending = self._pending
            while pending and pending[0].hi <= horizon:  # overwritten in the ring before anything read it
                pending.popleft()

    def _aliases(self, start: int, stop: int) -> list[tuple[int, int]]:
        """The absolute ranges in ``[_horizon, _horizon + len(_ring))`` (where every pending chunk lies) whose ring
        slots ``[start, stop)`` shares: the range itself but for a stop that moved ``_until`` back (or a write
        longer than the ring), after which a write or read reaches slots of other times."""
        size, horizon = len(self._ring), self._horizon
        if horizon <= start and stop <= horizon + size:
            return [(start, stop)]
        if stop - start >= size:
            return [(horizon, horizon + size)]
        a = horizon + (start - horizon) % size
        b = a + stop - start
        return [(a, b)] if b <= horizon + size else [(a, horizon + size), (horizon, b - size)]

    def _insert(self, chunk: Chunk) -> None:
        """Queue ``chunk`` in order of position (after :meth:`_claim` made room: its range overlaps no other)."""
        pending = self._pending
        i = len(pending)
        while i and pending[i - 1].lo >= chunk.hi:  # behind a move back (a realign to an earlier time): rare
            i -= 1
        pending.insert(i, chunk)

    def _claim(self, start: int, stop: int) -> None:
        """A write of outputs ``[start, stop)`` comes after the pending chunks: they no longer owe that range."""
        pending = self._pending
        i = len(pending)
        while i and pending[i - 1].hi > start:
            i -= 1
            chunk = pending[i]
            if chunk.lo >= stop:
                continue
            if chunk.lo < start and chunk.hi > stop:  # the write falls inside it: it goes into the ring first
                del pending[i]
                self._resample(chunk)
            elif chunk.lo < start:
                chunk.hi = start
            elif chunk.hi > stop:
                chunk.lo = stop
            else:
                del pending[i]

    def _take(self, start: int) -> list[Chunk]:
        """Take the pending chunks' parts from ``start`` on out of the queue (a pause holds them), in order."""
        pending, taken = self._pending, []
        while pending and pending[-1].hi > start:
            chunk = pending.pop()
            lo = max(chunk.lo, start, self._horizon)
            if lo < chunk.hi:
                taken.append(chunk.part(lo, chunk.hi))
            if chunk.lo < start:  # the part before the pause stays
                chunk.hi = start
                pending.append(chunk)
                break
        taken.reverse()
        return taken

    def _settle(self, start: int, stop: int) -> None:
        """Resample into the ring every pending chunk that owes outputs in ``[start, stop)`` (a read is coming)."""
        pending = self._pending
        if not pending or pending[-1].hi <= start or pending[0].lo >= stop:
            return
        due = [chunk for chunk in pending if chunk.hi > start and chunk.lo < stop]
        for chunk in due:
            pending.remove(chunk)
            self._resample(chunk)

    def _resample(self, chunk: Chunk) -> None:
        self.resampled += 1
        chunk.lo = max(chunk.lo, self._horizon)
        if chunk.lo < chunk.hi:
            self._put(chunk.lo, chunk.values(self.sample_rate))

    def _write(self, start: int, samples: np.ndarray) -> None:
        size = len(self._ring)
        samples = samples[-size:]
        if len(samples) == 0:
            return
        for lo, hi in self._aliases(start, start + len(samples)):
            self._claim(lo, hi)
        self._put(start, samples)

    def _zero(self, start: int, count: int) -> None:
        """:meth:`_write` of ``count`` zeros (at most the ring's size) without making them: a reply after a long
        silence fills the whole ring (1.3 MB at 20 s)."""
        size = len(self._ring)
        count = min(count, size)
        if count <= 0:
            return
        for lo, hi in self._aliases(start, start + count):
            self._claim(lo, hi)
        pos = start % size
        first = min(count, size - pos)
        self._ring[pos : pos + first] = 0.0
        self._ring[: count - first] = 0.0

    def _put(self, start: int, samples: np.ndarray) -> None:
        size = len(self._ring)
        samples = samples[-size:]
        pos = start % size
        first = min(len(samples), size - pos)
        self._ring[pos : pos + first] = samples[:first]
        self._ring[: len(samples) - first] = samples[first:]

    def _read(self, start: int, stop: int) -> np.ndarray:
        """Absolute samples [start, stop); zeros where nothing (kept) played."""
        out = np.zeros(max(0, stop - start), dtype=np.float32)
        size = len(self._ring)
        lo, hi = max(start, self._until - size, 0), min(stop, self._until)
        for a, b in self._aliases(lo, hi):
            self._settle(a, b)
        for i in range(lo, hi, size):  # at most two pieces in practice
            j = min(hi, i + size)
            pos = i % size
            first = min(j - i, size - pos)
            out[i - start : i - start + first] = self._ring[pos : pos + first]
            out[i - start + first : j - start] = self._ring[: j - i - first]
        return out
