"""What the user heard of a reply: where each spoken piece of text sits in an epoch's audio, and its words.

Its own module because it is pure bookkeeping with no frames, tasks or I/O: :class:`~voxline.tts.TTSProcessor`
feeds a :class:`Timeline` per epoch (audio pushed, pieces of text ended, the provider's word timings) and asks
it, when the output reports how many seconds of an interrupted reply had played, for the text heard, to the
word. Kept apart, the rules (a piece heard in full, then the words whose middle had played, placed by the
provider's timings or else by their share of the characters) are tested on their own, without a pipeline
(tests/test_heard_text.py).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence

__all__ = ["DEFAULT_SECONDS_PER_CHAR", "Piece", "Timeline", "WordTimes"]

_WORD = re.compile(r"\S+")

DEFAULT_SECONDS_PER_CHAR = 0.065
"""Speech runs at about 15 characters a second: the length of a piece whose audio has not ended yet is guessed
from this until the stage has timed pieces of its own."""

WordTimes = Sequence[tuple[float, int, int]]
"""Word timings of one piece: ``(seconds from the piece's first audio, first char, char after the end)``."""


class Piece:
    """The audio of one spoken text (or of several joined, one provider flush): where it began and ended in the
    epoch's audio, and the provider's word timings when it gives them."""

    __slots__ = ("end", "start", "text", "words")

    def __init__(self, start: float, end: float | None, text: str, words: WordTimes | None = None) -> None:
        self.start, self.end, self.text, self.words = start, end, text, words

    def heard(self, elapsed: float, duration: float) -> str:
        """The text up to the last word whose middle had played ``elapsed`` seconds into ``duration``."""
        spans = [(m.start(), m.end()) for m in _WORD.finditer(self.text)]
        if not spans or duration <= 0:
            return ""
        if self.words:  # the provider's timings: a word lasts until the next one starts
            times = sorted(self.words)
            middles = [
                ((t + (times[i + 1][0] if i + 1 < len(times) else max(duration, t))) / 2, end)
                for i, (t, _, end) in enumerate(times)
            ]
        else:  # a share of the piece by characters (speech time is close to proportional to letters)
            chars = spans[-1][1]
            middles = [((a + b) / 2 / chars * duration, b) for a, b in spans]
        cut = 0
        for middle, end in middles:
            if middle > elapsed + 0.001:
                break
            cut = max(cut, end)
        return self.text[:cut]


class Timeline:
    """One epoch's audio: seconds pushed so far, and where each spoken piece of text began and ended."""

    __slots__ = ("ends", "open_start", "pending", "pieces", "pushed")

    def __init__(self) -> None:
        self.pushed = 0.0
        self.ends: list[tuple[float, str]] = []
        self.pieces: list[Piece] = []
        self.pending: deque[str] = deque()  # texts handed to speak() whose audio has not ended yet
        self.open_start: float | None = None  # where the audio of the piece not ended yet began

    def audio(self, seconds: float) -> None:
        if self.open_start is None:
            self.open_start = self.pushed
        self.pushed += seconds

    def end(self, text: str | None, words: WordTimes | None = None) -> Piece | None:
        """The audio of ``text`` (one or several pending texts, joined; None: the oldest) ended here."""
        pending = self.pending
        if not pending:
            return None
        if text is not None:
            # Texts before the match never got audio (a failed request, an outage): they were not heard.
            for start in range(len(pending)):
                joined, stop = "", start
                while stop < len(pending) and len(joined) < len(text):
                    joined += pending[stop]
                    stop += 1
                if joined == text:
                    for _ in range(stop):
                        pending.popleft()
                    return self._ended(text, words)
        return self._ended(pending.popleft(), words)

    def _ended(self, text: str, words: WordTimes | None) -> Piece:
        start = self.open_start if self.open_start is not None else (self.ends[-1][0] if self.ends else 0.0)
        self.open_start = None
        piece = Piece(start, self.pushed, text, words)
        self.ends.append((self.pushed, text))
        self.pieces.append(piece)
        return piece

    def heard(self, played_seconds: float, seconds_per_char: float = DEFAULT_SECONDS_PER_CHAR) -> str:
        """The pieces whose audio had played in full after ``played_seconds`` (1 ms of rounding slack), then the
        words of the piece playing then whose middle had played."""
        out: list[str] = []
        for piece in self.pieces:
            assert piece.end is not None
            if piece.end <= played_seconds + 0.001:
                out.append(piece.text)
                continue
            if played_seconds > piece.start:
                out.append(piece.heard(played_seconds - piece.start, piece.end - piece.start))
            return "".join(out)
        if self.open_start is not None and self.pending and played_seconds > self.open_start:
            # Cut while its audio was still arriving: its length is the audio so far, or a guess from its letters.
            text = self.pending[0]
            duration = max(self.pushed - self.open_start, len(text) * seconds_per_char)
            out.append(Piece(self.open_start, None, text).heard(played_seconds - self.open_start, duration))
        return "".join(out)
