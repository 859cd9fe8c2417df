"""A stretch of user speech (VAD start → stop), its kind and the text the STT gave for it."""

from __future__ import annotations

__all__ = ["CANDIDATE", "ECHO", "TURN", "Stretch"]

TURN, CANDIDATE, ECHO = "turn", "candidate", "echo"
"""The kinds: part of the user's turn; a possible barge-in (the bot was speaking); the bot's own echo."""


class Stretch:
    """One stretch of user speech (VAD start → stop) and the text the STT gave for it."""

    __slots__ = ("end", "final", "finals", "interim", "kind", "start", "text_by")

    def __init__(self, kind: str, start: float) -> None:
        self.kind = kind
        self.start = start
        self.end: float | None = None
        self.finals: list[str] = []
        self.interim = ""
        self.final: str | None = None  # the STT's text for the whole stretch, once in
        self.text_by: float | None = None  # stopped: give up waiting for its text then

    @property
    def text(self) -> str:
        if self.final is not None:
            return self.final
        return " ".join([*self.finals, self.interim]).strip()
