"""Conversation context: the system prompt and the turns so far, as an LLM processor sends them.

The context is the one mutable object in a pipeline, and it has one owner: the LLM processor that appends the
user's turn and its own reply. An interrupted reply is cut to the text the user actually heard
(:meth:`Context.cut_last_assistant`) and marked as interrupted, so the next request tells the model the truth
about what was said.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import attrs

__all__ = ["Context", "Turn"]

Role = Literal["user", "assistant"]


@attrs.frozen(slots=True)
class Turn:
    """One message. ``interrupted`` marks an assistant turn the user cut short."""

    role: Role = attrs.field(validator=attrs.validators.in_(("user", "assistant")))
    text: str = attrs.field(validator=attrs.validators.instance_of(str))
    interrupted: bool = False


class Context:
    """A system prompt plus alternating user/assistant turns, bounded to the last ``max_turns`` turns."""

    def __init__(self, system_prompt: str = "", *, max_turns: int = 64) -> None:
        if max_turns < 2:
            raise ValueError(f"Context.max_turns must be at least 2, got {max_turns}")
        self.system_prompt = system_prompt
        self.max_turns = max_turns
        self._turns: list[Turn] = []

    @property
    def turns(self) -> tuple[Turn, ...]:
        return tuple(self._turns)

    def __iter__(self) -> Iterator[Turn]:
        return iter(tuple(self._turns))

    def __len__(self) -> int:
        return len(self._turns)

    def add_user(self, text: str) -> None:
        """Append a user turn; consecutive user turns (the user spoke twice) are merged into one."""
        text = text.strip()
        if not text:
            return
        if self._turns and self._turns[-1].role == "user":
            self._turns[-1] = Turn("user", f"{self._turns[-1].text} {text}")
        else:
            self._turns.append(Turn("user", text))
        self._trim()

    def add_assistant(self, text: str, *, interrupted: bool = False) -> None:
        """Append the assistant's reply (possibly partial)."""
        self._turns.append(Turn("assistant", text, interrupted))
        self._trim()

    def cut_last_assistant(self, heard: str) -> None:
        """Cut the last assistant turn to ``heard`` (what was played before a barge-in) and mark it interrupted.

        A reply of which nothing was heard is removed entirely.
        """
        if not self._turns or self._turns[-1].role != "assistant":
            return
        if heard.strip():
            self._turns[-1] = Turn("assistant", heard, interrupted=True)
        else:
            self._turns.pop()

    def ends_with_user(self) -> bool:
        """Every request must end with a user turn."""
        return bool(self._turns) and self._turns[-1].role == "user"

    def messages(self) -> list[dict[str, str]]:
        """OpenAI-style messages: ``[{"role": "system"|"user"|"assistant", "content": ...}]``."""
        out: list[dict[str, str]] = []
        if self.system_prompt:
            out.append({"role": "system", "content": self.system_prompt})
        out.extend({"role": t.role, "content": t.text} for t in self._turns)
        return out

    def _trim(self) -> None:
        excess = len(self._turns) - self.max_turns
        if excess > 0:
            del self._turns[:excess]
        # The history sent to a model must start with a user turn.
        while self._turns and self._turns[0].role != "user":
            del self._turns[0]
