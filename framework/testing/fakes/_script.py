"""What a test scripts on the fake LLM servers: replies (text or function calls), pacing, faults, and what a
reply function sees of a request. Both provider fakes (:mod:`~voxline.testing.fakes.gemini`,
:mod:`~voxline.testing.fakes.openai`) are scripted with these; :mod:`~voxline.testing.fakes._llm` serves them."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Literal

import attrs

__all__ = [
    "Call",
    "CallTools",
    "ChatRequest",
    "Fault",
    "FaultKind",
    "Pacing",
    "Replies",
    "Reply",
    "SeenResult",
    "split_tokens",
]


@attrs.frozen
class Pacing:
    """When tokens go out: ``first_token_delay`` seconds after the request, then ``tokens_per_second``.

    ``tokens_per_second=0`` sends the rest as fast as possible. :meth:`realistic` is what the app benchmark
    uses: a first token after 400 ms, then about 40 tokens per second.
    """

    first_token_delay: float = 0.0
    tokens_per_second: float = 0.0

    @classmethod
    def realistic(cls) -> Pacing:
        return cls(first_token_delay=0.4, tokens_per_second=40.0)

    @property
    def gap(self) -> float:
        return 1.0 / self.tokens_per_second if self.tokens_per_second > 0 else 0.0


FaultKind = Literal["status", "error_mid_stream", "drop", "stall", "empty"]


@attrs.frozen
class Fault:
    """One injected failure for one request. ``after_tokens`` counts the tokens sent before a mid-stream fault."""

    kind: FaultKind
    status: int = 503
    after_tokens: int = 1
    message: str = ""


@attrs.frozen
class Call:
    """One function call a scripted reply makes: the function's ``name``, its ``args``, and an ``id`` (made up by
    the fake when None and the provider gives ids)."""

    name: str
    args: dict[str, Any] = attrs.field(factory=dict)
    id: str | None = None


@attrs.frozen(init=False)
class CallTools:
    """A scripted reply in which the model calls functions — several at once for parallel calls — after saying
    ``text`` (``CallTools(Call("get_time"), Call("get_weather", {"city": "Oslo"}), text="Let me check.")``)."""

    calls: tuple[Call, ...]
    text: str = ""

    def __init__(self, *calls: Call, text: str = "") -> None:
        if not calls:
            raise ValueError("CallTools needs at least one Call")
        self.__attrs_init__(calls, text)


Reply = str | CallTools


@attrs.frozen
class SeenResult:
    """A function result the client sent back: the call ``id`` (None where the provider uses none), the function
    ``name`` (None where the wire format does not carry it), and the ``response`` as sent."""

    id: str | None
    name: str | None
    response: Any


@attrs.frozen
class ChatRequest:
    """A provider request reduced to what a reply function needs: model, system prompt and turns."""

    model: str
    system: str
    turns: tuple[tuple[str, str], ...]
    """``(role, text)`` with role ``"user"``, ``"assistant"`` (Gemini's ``model`` role is mapped) or ``"tool"``
    (function results; the text is their JSON)."""
    body: Any = attrs.field(eq=False, repr=False)
    tool_results: tuple[SeenResult, ...] = ()
    """The function results the request ends with (what the model is asked to go on from), else ()."""
    tools: tuple[str, ...] = ()
    """The names of the functions the request declares."""

    @property
    def last_user_text(self) -> str:
        for role, text in reversed(self.turns):
            if role == "user":
                return text
        return ""


Replies = Reply | Sequence[Reply] | Callable[[ChatRequest], Reply]


def split_tokens(text: str) -> list[str]:
    """Word-sized tokens that keep their leading whitespace, so joining them gives the text back."""
    return re.findall(r"\s*\S+\s*$|\s*\S+", text)
