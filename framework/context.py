"""Conversation context: the system prompt and the turns so far, as an LLM processor sends them.

The context is the one mutable object in a pipeline, and it has one owner: the LLM processor that appends the
user's turn and its own reply. An interrupted reply is cut to the text the user actually heard
(:meth:`Context.cut_last_assistant`) and marked as interrupted, so the next request tells the model the truth
about what was said.

A reply that uses tools takes several *steps*: an assistant turn carrying :class:`ToolCall`\\ s (and whatever the
model said before them), then a ``tool`` turn with one :class:`ToolResult` per call, then the model's next step.
The turns are provider-neutral, so a conversation can move from one provider to another (a fallback) and each
builds its own request from them; a provider that needs its own parts back exactly as it sent them (Gemini's
thought signatures) keeps them in :attr:`Turn.raw`, tagged with its name, and uses them when it builds the
request itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal

import attrs

__all__ = ["CANCELLED", "Context", "ProviderContent", "Role", "ToolCall", "ToolResult", "Turn"]

Role = Literal["user", "assistant", "tool"]

CANCELLED = "cancelled: the user interrupted before it finished"
"""The error recorded for a tool call a barge-in cut short (a request must answer every call it carries)."""


@attrs.frozen(slots=True)
class ToolCall:
    """One function call the model asked for: ``id`` (the provider's, or made up where it gives none), the tool's
    ``name`` and its ``arguments``. ``raw_arguments`` is the argument text exactly as the model streamed it (OpenAI
    sends JSON text; it goes back verbatim), None where the provider sends structured arguments (Gemini)."""

    id: str = attrs.field(validator=attrs.validators.instance_of(str))
    name: str = attrs.field(validator=attrs.validators.instance_of(str))
    arguments: Mapping[str, Any] = attrs.field(factory=dict, eq=False)
    raw_arguments: str | None = attrs.field(default=None, eq=False)


@attrs.frozen(slots=True)
class ToolResult:
    """What a tool call returned (``output``, any JSON value) or why it failed (``error``), for call ``call_id``."""

    call_id: str = attrs.field(validator=attrs.validators.instance_of(str))
    name: str = attrs.field(validator=attrs.validators.instance_of(str))
    output: Any = attrs.field(default=None, eq=False)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@attrs.frozen(slots=True)
class ProviderContent:
    """A provider's own form of one model turn (``provider`` names whose; ``value`` is opaque to everyone else)."""

    provider: str
    value: Any = attrs.field(eq=False, repr=False)


def _check_role(turn: Turn, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value not in ("user", "assistant", "tool"):
        raise ValueError(f"Turn.role must be 'user', 'assistant' or 'tool', got {value!r}")


@attrs.frozen(slots=True)
class Turn:
    """One message. ``interrupted`` marks an assistant turn the user cut short.

    An assistant turn may carry ``tool_calls`` (and ``raw``, the provider's own form of it); a ``tool`` turn
    carries the ``tool_results`` of the assistant turn before it, one per call.
    """

    role: Role = attrs.field(validator=_check_role)
    text: str = attrs.field(default="", validator=attrs.validators.instance_of(str))
    interrupted: bool = False
    tool_calls: tuple[ToolCall, ...] = ()
    tool_results: tuple[ToolResult, ...] = ()
    raw: ProviderContent | None = attrs.field(default=None, eq=False, repr=False)


class Context:
    """A system prompt plus user/assistant turns (and tool steps), bounded to the last ``max_turns`` turns."""

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

    def add_tool_calls(self, calls: Iterable[ToolCall], *, text: str = "", raw: ProviderContent | None = None) -> None:
        """Append the model's step that asked for ``calls`` (``text``: what it said before them)."""
        calls = tuple(calls)
        if not calls:
            raise ValueError("add_tool_calls needs at least one call")
        self._turns.append(Turn("assistant", text, tool_calls=calls, raw=raw))
        self._trim()

    def add_tool_results(self, results: Iterable[ToolResult]) -> None:
        """Answer the calls of the last assistant turn: one result per call, in the calls' order."""
        pending = self.pending_tool_calls()
        by_id = {result.call_id: result for result in results}
        if not pending or by_id.keys() != {call.id for call in pending}:
            raise ValueError("tool results must answer exactly the calls of the last assistant turn")
        self._turns.append(Turn("tool", tool_results=tuple(by_id[call.id] for call in pending)))
        self._trim()

    def pending_tool_calls(self) -> tuple[ToolCall, ...]:
        """The calls of the last turn if it is an assistant turn asking for tools (no results yet), else ()."""
        if self._turns and self._turns[-1].role == "assistant":
            return self._turns[-1].tool_calls
        return ()

    def cancel_pending_tool_calls(self, reason: str = CANCELLED) -> None:
        """Answer calls left without results (a barge-in cancelled them) with ``reason``: every request must
        answer every call it carries (OpenAI and Gemini both refuse a call without its response)."""
        pending = self.pending_tool_calls()
        if pending:
            self.add_tool_results(ToolResult(call.id, call.name, error=reason) for call in pending)

    def cut_last_assistant(self, heard: str) -> None:
        """Cut the last assistant turn to ``heard`` (what was played before a barge-in) and mark it interrupted.

        A reply of which nothing was heard is removed entirely. A step that asked for tools is left as it is.
        """
        if not self._turns or self._turns[-1].role != "assistant" or self._turns[-1].tool_calls:
            return
        if heard.strip():
            self._turns[-1] = Turn("assistant", heard, interrupted=True)
        else:
            self._turns.pop()

    def ends_with_user(self) -> bool:
        """The last turn is the user's (a plain request ends with one)."""
        return bool(self._turns) and self._turns[-1].role == "user"

    def awaits_reply(self) -> bool:
        """The model has something to answer: the user's turn, or the results of the tools it called."""
        return bool(self._turns) and self._turns[-1].role in ("user", "tool")

    def messages(self) -> list[dict[str, Any]]:
        """OpenAI-style messages: ``[{"role": "system"|"user"|"assistant"|"tool", "content": ...}]``; an assistant
        step that called tools carries ``tool_calls``, and each tool result is a ``tool`` message."""
        out: list[dict[str, Any]] = []
        if self.system_prompt:
            out.append({"role": "system", "content": self.system_prompt})
        for turn in self._turns:
            if turn.role == "tool":
                out.extend(
                    {"role": "tool", "tool_call_id": r.call_id, "content": r.error or r.output}
                    for r in turn.tool_results
                )
            elif turn.tool_calls:
                calls = [{"id": c.id, "name": c.name, "arguments": dict(c.arguments)} for c in turn.tool_calls]
                out.append({"role": "assistant", "content": turn.text, "tool_calls": calls})
            else:
                out.append({"role": turn.role, "content": turn.text})
        return out

    def _trim(self) -> None:
        excess = len(self._turns) - self.max_turns
        if excess > 0:
            # Never past the start of the current exchange (the last user turn): its tool steps belong together.
            last_user = max((i for i, t in enumerate(self._turns) if t.role == "user"), default=0)
            del self._turns[: min(excess, last_user)]
        # The history sent to a model must start with a user turn.
        while self._turns and self._turns[0].role != "user":
            del self._turns[0]
