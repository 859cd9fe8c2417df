"""Function calling on the OpenAI chat-completions wire: tool declarations, streamed calls, steps and results.

Shapes from OpenAI's function-calling guide and the chat API reference (and the ``openai`` SDK's types, which
the strict fake, ``voxline.testing.fakes.rules.openai``, mirrors):

* ``tools: [{"type": "function", "function": {"name", "description", "parameters"}}]``.
* Streamed calls: ``choices[0].delta.tool_calls[]`` entries keyed by ``index``; the first for a call carries
  ``id``, ``type: "function"`` and ``function.name``, later ones pieces of ``function.arguments`` (JSON text);
  the stream ends with ``finish_reason: "tool_calls"``.
* The step goes back as ``{"role": "assistant", "content": <text or null>, "tool_calls": [{"id", "type":
  "function", "function": {"name", "arguments": <text as streamed>}}]}``, then one ``{"role": "tool",
  "tool_call_id", "content": <text>}`` per call, before anything else.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from voxline.context import ToolCall, ToolResult, Turn

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam
    from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall
    from voxline.tools import Toolbox

__all__ = ["CallAssembler", "result_text", "step_message", "tool_params"]


def tool_params(toolbox: Toolbox) -> list[ChatCompletionToolParam]:
    """The request's ``tools``."""
    return [
        {
            "type": "function",
            "function": {"name": d["name"], "description": d["description"], "parameters": d["parameters"]},
        }
        for d in toolbox.declarations()
    ]


def step_message(turn: Turn) -> ChatCompletionMessageParam:
    """An assistant step that called tools: its text (None if it said nothing) and the calls as streamed."""
    calls = [
        {
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": _arguments_text(call)},
        }
        for call in turn.tool_calls
    ]
    return {"role": "assistant", "content": turn.text or None, "tool_calls": calls}  # type: ignore[typeddict-item]


def _arguments_text(call: ToolCall) -> str:
    if call.raw_arguments is not None:
        return call.raw_arguments  # back exactly as the model wrote them
    return json.dumps(dict(call.arguments), ensure_ascii=False)


def result_text(result: ToolResult) -> str:
    """A tool message's content: a string result as it is, anything else as JSON; an error as ``{"error"}``."""
    if result.error is not None:
        return json.dumps({"error": result.error}, ensure_ascii=False)
    if isinstance(result.output, str):
        return result.output
    return json.dumps(result.output, ensure_ascii=False)


class CallAssembler:
    """Puts streamed ``tool_calls`` deltas together by ``index`` and hands out each call once it is complete."""

    def __init__(self) -> None:
        self._open: dict[int, list[str]] = {}  # index -> [id, name, argument pieces...]
        self._current: int | None = None

    def add(self, deltas: Any) -> list[ToolCall]:
        done: list[ToolCall] = []
        for delta in deltas:
            delta_call: ChoiceDeltaToolCall = delta
            index = delta_call.index
            if index != self._current and self._current is not None and self._current in self._open:
                done.append(self._close(self._current))  # a new call started: the one before is complete
            self._current = index
            entry = self._open.setdefault(index, ["", ""])
            if delta_call.id:
                entry[0] = delta_call.id
            function = delta_call.function
            if function is not None:
                if function.name:
                    entry[1] += function.name
                if function.arguments:
                    entry.append(function.arguments)
        return done

    def finish(self) -> list[ToolCall]:
        return [self._close(index) for index in sorted(self._open)]

    def _close(self, index: int) -> ToolCall:
        ident, name, *pieces = self._open.pop(index)
        text = "".join(pieces)
        try:
            arguments = json.loads(text) if text.strip() else {}
        except ValueError:
            arguments = None
        if not isinstance(arguments, dict):
            arguments = {}  # the toolbox answers "not a JSON object" (raw_arguments says what came)
        return ToolCall(ident or f"call_{index}", name, arguments, raw_arguments=text)
