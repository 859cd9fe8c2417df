"""The audio a live STT connection might still need: everything Deepgram has not finalised yet, bounded.

A dropped socket loses what the server had heard but not finalised, and what arrives while reconnecting was
never sent. Keeping the audio after the end of the last ``is_final`` result covers both: on reconnect it is
replayed from there, so the new connection hears the whole unfinished utterance. (When each stretch of audio
*arrived* is the STT base's audio clock, not this buffer's business.)
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from itertools import islice
from operator import attrgetter
from typing import NamedTuple

__all__ = ["Chunk", "ReplayBuffer"]


class Chunk(NamedTuple):
    """One frame of session audio (a tuple: 0.25 µs to make, where a frozen attrs class took 0.42)."""

    seq: int
    start: float
    end: float
    pcm: bytes


class ReplayBuffer:
    """Chunks of session audio (times in seconds since the session's first sample), oldest first."""

    def __init__(self, max_seconds: float) -> None:
        self.max_seconds = max_seconds
        self.audio_time = 0.0
        """End of the newest audio appended, in session audio time."""
        self.lost_seconds = 0.0
        """Audio dropped by the bound before it was ever sent (it never reached Deepgram)."""
        self.sent_seq = 0
        """Chunks with a smaller ``seq`` have been sent on the current connection."""
        self._chunks: deque[Chunk] = deque()
        self._next_seq = 0

    def __len__(self) -> int:
        return len(self._chunks)

    @property
    def buffered_seconds(self) -> float:
        return self._chunks[-1].end - self._chunks[0].start if self._chunks else 0.0

    @property
    def replay_start(self) -> float:
        """Session time of the first audio a new connection will receive."""
        return self._chunks[0].start if self._chunks else self.audio_time

    def append(self, pcm: bytes, duration: float) -> Chunk:
        start = self.audio_time
        self.audio_time = end = start + duration
        chunk = Chunk(self._next_seq, start, end, pcm)
        self._next_seq += 1
        chunks = self._chunks
        chunks.append(chunk)
        if end - chunks[0].start > self.max_seconds:
            self._trim()
        return chunk

    def _trim(self) -> None:
        chunks = self._chunks
        while chunks and self.buffered_seconds > self.max_seconds:
            old = chunks.popleft()
            if old.seq >= self.sent_seq:
                self.lost_seconds += old.end - old.start

    def finalized_until(self, t: float) -> None:
        """Deepgram will not revise audio before ``t``: it need not be replayed. (A final drops a turn's worth of
        chunks, ~500: found by bisection on their rising ends and dropped in C, not one Python step each.)"""
        chunks = self._chunks
        done = bisect_right(chunks, t + 1e-6, key=_END)
        if done == len(chunks):
            chunks.clear()
        elif done:
            rest = list(islice(chunks, done, None))
            chunks.clear()
            chunks.extend(rest)

    def first_unsent(self, seq: int) -> Chunk | None:
        """The first chunk with ``seq`` ≥ ``seq`` still held, or None when caught up."""
        if not self._chunks:
            return None
        index = max(0, seq - self._chunks[0].seq)
        return self._chunks[index] if index < len(self._chunks) else None

    def unsent(self) -> list[Chunk]:
        """The chunks from :attr:`sent_seq` on, oldest first (the newest few, in the live path)."""
        count = min(len(self._chunks), self._next_seq - self.sent_seq)
        return [self._chunks[-k] for k in range(count, 0, -1)]

    def unsent_seconds(self) -> float:
        """Seconds of audio from :attr:`sent_seq` on: what the next message would carry (no list made)."""
        count = min(len(self._chunks), self._next_seq - self.sent_seq)
        return self.audio_time - self._chunks[-count].start if count > 0 else 0.0

    @property
    def first_seq(self) -> int:
        return self._chunks[0].seq if self._chunks else self._next_seq


_END = attrgetter("end")
