"""Function calling on the Gemini wire: declarations, the model's call steps kept as received, and results.

What the Gemini API requires (docs "Function calling" and "Thought signatures", google-genai 3.6 types; the
strict fake, ``voxline.testing.fakes.rules.gemini_tools``, refuses every breach):

* Declarations: ``tools: [{"functionDeclarations": [{"name", "description", "parametersJsonSchema"}]}]`` — the
  tool's JSON schema as it is (``parametersJsonSchema``, not the OpenAPI-subset ``parameters``).
* The model's step goes back as the ``model`` content it was: its parts *as received* — text, ``functionCall``
  parts with their ``id`` if the API gave one, and the ``thoughtSignature`` Gemini 3 put on the first call part
  (a missing one is a 400 for the current turn; a changed one is "Corrupted thought signature"). The parts are
  kept in the context as :class:`~voxline.context.ProviderContent` (``"gemini"``), in the SDK's dict form,
  signatures as the bytes the SDK decoded. Empty text parts are dropped (only call signatures are required).
* The results go back as one ``user`` content with one ``functionResponse`` part per call, in the calls' order:
  ``{"name", "response": {"output": ...} | {"error": ...}}`` (``FunctionResponse.response``: "Use 'output' key
  to specify function output and 'error' key to specify error details"), with the call's ``id`` when it had one.
* A step another provider made (a fallback mid-conversation) has no Gemini parts: it is rebuilt from the
  neutral turn, and for models that check signatures its first call carries the documented dummy signature
  ``skip_thought_signature_validator`` (docs "Thought signatures": for calls Gemini did not produce).

:func:`wire_content` turns a content of the SDK's dict form into the REST wire form (camelCase, signatures as
URL-safe base64, exactly as google-genai's own serialiser writes them), so history with tool steps still rides
in ``extra_body`` instead of going through the SDK's per-request conversion.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Iterator
from typing import Any

from google.genai import types
from voxline.context import Context, ProviderContent, ToolCall, ToolResult, Turn
from voxline.processors.gemini.models import rule_for
from voxline.tools import Toolbox

__all__ = [
    "DUMMY_SIGNATURE",
    "call_parts",
    "declarations",
    "result_content",
    "signs_calls",
    "step_content",
    "wire_content",
]

DUMMY_SIGNATURE = base64.urlsafe_b64decode("skip_thought_signature_validator")
"""The documented stand-in signature, as bytes whose URL-safe base64 is the documented string."""

_local_ids = itertools.count(1)


def signs_calls(model: str) -> bool:
    """Whether ``model`` checks call signatures (Gemini 3 and later; a model the table does not know is assumed
    to, as every current model does). A 2.5 model gets no stand-in signature."""
    rule = rule_for(model)
    return rule is None or rule.control == "level"


def declarations(toolbox: Toolbox) -> list[types.ToolUnion]:
    """The ``tools`` of the request config: one Tool with a declaration per tool."""
    functions = [
        types.FunctionDeclaration(name=d["name"], description=d["description"], parameters_json_schema=d["parameters"])
        for d in toolbox.declarations()
    ]
    return [types.Tool(function_declarations=functions)]


def call_parts(parts: list[types.Part]) -> Iterator[tuple[types.Part, ToolCall | None]]:
    """Each streamed part worth keeping, with the ToolCall it carries (if any). Empty text parts are skipped."""
    for part in parts:
        if part.text == "" and part.function_call is None:
            continue
        call = part.function_call
        if call is None or not call.name:
            yield part, None
            continue
        ident = call.id or f"gemini-call-{next(_local_ids)}"  # the API gave no id: one for our bookkeeping only
        yield part, ToolCall(ident, call.name, dict(call.args or {}))


def step_content(turn: Turn, *, current: bool, model: str) -> types.ContentDict:
    """The ``model`` content of an assistant step with calls: its Gemini parts as received, or rebuilt."""
    raw = turn.raw
    if raw is not None and raw.provider == "gemini":
        return {"role": "model", "parts": list(raw.value)}
    parts: list[types.PartDict] = [{"text": turn.text}] if turn.text else []
    for i, call in enumerate(turn.tool_calls):
        part: types.PartDict = {"function_call": {"name": call.name, "args": dict(call.arguments)}}
        if i == 0 and current and signs_calls(model):
            part["thought_signature"] = DUMMY_SIGNATURE
        parts.append(part)
    return {"role": "model", "parts": parts}


def result_content(turn: Turn, step: Turn | None) -> types.ContentDict:
    """The ``user`` content answering ``step``'s calls: one ``functionResponse`` part per result."""
    with_ids = _api_ids(step)
    parts: list[types.PartDict] = []
    for result in turn.tool_results:
        response: types.FunctionResponseDict = {"name": result.name, "response": _response(result)}
        if result.call_id in with_ids:
            response = {"id": result.call_id, **response}
        parts.append({"function_response": response})
    return {"role": "user", "parts": parts}


def _response(result: ToolResult) -> dict[str, Any]:
    return {"error": result.error} if result.error is not None else {"output": result.output}


def _api_ids(step: Turn | None) -> set[str]:
    """The call ids the API itself gave in ``step`` (they must come back in the responses)."""
    raw = step.raw if step is not None else None
    if raw is None or raw.provider != "gemini":
        return set()
    return {p["function_call"]["id"] for p in raw.value if "id" in p.get("function_call", {})}


def current_turn_start(context: Context) -> int:
    """Index of the first turn after the latest user turn: the current turn, whose call steps are validated."""
    turns = context.turns
    return max((i + 1 for i, t in enumerate(turns) if t.role == "user"), default=0)


def kept(parts: list[types.Part]) -> ProviderContent:
    """A step's parts as received, in the SDK's dict form (made only for a step with calls: not per token)."""
    return ProviderContent("gemini", tuple(part.model_dump(exclude_none=True) for part in parts))


# --- the REST wire form -------------------------------------------------------------------------------------

_FUNCTION_CALL = ("id", "name", "args")
_FUNCTION_RESPONSE = ("id", "name", "response")


def wire_content(content: types.ContentDict) -> dict[str, Any] | None:
    """``content`` (SDK dict form) as the REST body holds it, or None if it has parts this does not know."""
    parts = content.get("parts")
    if not isinstance(parts, list) or not (content.keys() <= {"role", "parts"}):
        return None
    out: list[dict[str, Any]] = []
    for part in parts:
        wire = _wire_part(dict(part)) if isinstance(part, dict) else None
        if wire is None:
            return None
        out.append(wire)
    return {"role": content.get("role"), "parts": out} if "role" in content else {"parts": out}


def _wire_part(part: dict[str, Any]) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    for key, value in part.items():
        if (key == "text" and isinstance(value, str)) or (key == "thought" and isinstance(value, bool)):
            out[key] = value
        elif key == "thought_signature" and isinstance(value, bytes):
            out["thoughtSignature"] = base64.urlsafe_b64encode(value).decode("ascii")
        elif key == "function_call" and isinstance(value, dict) and value.keys() <= set(_FUNCTION_CALL):
            out["functionCall"] = {k: value[k] for k in _FUNCTION_CALL if k in value}
        elif key == "function_response" and isinstance(value, dict) and value.keys() <= set(_FUNCTION_RESPONSE):
            out["functionResponse"] = {k: value[k] for k in _FUNCTION_RESPONSE if k in value}
        else:
            return None
    return out
