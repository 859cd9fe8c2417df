"""A stretch of user speech (VAD start → stop), its kind and the text the STT gave for it."""

from __future__ import annotations

from voxline.turns.words import tokens

__all__ = ["CANDIDATE", "ECHO", "TURN", "Stretch"]

TURN, CANDIDATE, ECHO = "turn", "candidate", "echo"
"""The kinds: part of the user's turn; a possible barge-in (the bot was speaking); the bot's own echo."""


class Stretch:
    """One stretch of user speech (VAD start → stop) and the text the STT gave for it.

    Besides the text, it keeps which words can be *relied on* for a barge-in: an interim word only once it has
    stood unchanged for a while (STTs revise the last words of an interim; on a hum they try one word after
    another), a final word unless the STT gave it a low confidence.
    """

    __slots__ = ("closed", "doubtful", "end", "final", "finals", "interim", "kind", "since", "start", "text_by")

    def __init__(self, kind: str, start: float) -> None:
        self.kind = kind
        self.start = start
        self.end: float | None = None
        self.finals: list[str] = []
        self.interim = ""
        self.since: list[tuple[str, float]] = []  # the interim's words, each with when it appeared there
        self.doubtful: set[str] = set()  # final words the STT was not sure of
        self.final: str | None = None  # the STT's text for the whole stretch, once in
        self.text_by: float | None = None  # stopped: give up waiting for its text then
        self.closed = False  # the STT sent its text for everything heard so far (it endpointed before the VAD)

    @property
    def text(self) -> str:
        if self.final is not None:
            return self.final
        return " ".join([*self.finals, self.interim]).strip()

    def set_interim(self, text: str, now: float) -> None:
        self.closed = False
        words = tokens(text)
        old = self.since
        self.since = [old[i] if i < len(old) and old[i][0] == w else (w, now) for i, w in enumerate(words)]
        self.interim = text.strip()

    def add_final(self, text: str, doubtful: set[str]) -> None:
        self.closed = False
        self.finals.append(text.strip())
        self.doubtful |= doubtful
        self.interim, self.since = "", []

    def reliable(self, now: float, stable: float, urgent: frozenset[str] = frozenset()) -> str:
        """The words that can be relied on now (see the class docstring); ``urgent`` words ("stop", "wait")
        count in an interim at once."""
        finals = self.final if self.final is not None else " ".join(self.finals)
        sure = [w for w in tokens(finals) if w not in self.doubtful]
        # An interim that spells letters ("n m h and man") is the STT reading a hum: none of it is relied on.
        spelled = any(len(w) == 1 and w not in ("a", "i") for w, _ in self.since)
        if self.final is None and not spelled:
            sure += [w for w, since in self.since if now - since >= stable - 1e-9 or w in urgent]
        return " ".join(sure)

    def next_stable(self, now: float, stable: float) -> float | None:
        """When the next interim word still settling will have stood long enough."""
        times = [since + stable for _, since in self.since if now - since < stable - 1e-9]
        return min(times) if times else None
