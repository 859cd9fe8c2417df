"""What the Gemini API refuses about function calling: declarations, and the shape of a follow-up request.

Sources, cited per rule below by these tags:

* [fc] Gemini API "Function calling" (ai.google.dev/gemini-api/docs/function-calling): declarations go in
  ``tools[].functionDeclarations``; the model answers with ``functionCall`` parts (several for parallel calls);
  the client sends the model's content back, then a ``user`` content with one ``functionResponse`` part per call.
* [sdk] google-genai 3.6 ``types.FunctionDeclaration``: ``name`` "Must start with a letter or an underscore. Must
  be a-z, A-Z, 0-9, or contain underscores, dots, colons and dashes, with a maximum length of 128";
  ``parameters_json_schema`` "is mutually exclusive with ``parameters``"; ``FunctionCall.id``: "If populated, the
  client [is] to execute the ``function_call`` and return the response with the matching ``id``"; and the SDK's
  own automatic function calling sends the results as ``Content(role="user", parts=[function responses])``.
* [sig] Gemini API "Thought signatures" (ai.google.dev/gemini-api/docs/thought-signatures): Gemini 3 models return a
  ``thoughtSignature`` on the first ``functionCall`` part of every response with calls (only the first, for
  parallel calls); the client must return it in that same part; validation covers the *current turn* only —
  everything after the latest ``user`` content with standard content (text, not a ``functionResponse``) — where
  the first ``functionCall`` part of each step must carry its signature, else 4xx. For calls Gemini did not
  produce (another model's history) the page documents the dummy value ``skip_thought_signature_validator``.
* [proto-json] Protocol Buffers "ProtoJSON format": a ``bytes`` field is base64, "either standard or URL-safe
  base64 encoding with/without paddings are accepted" (so a signature is compared as bytes, not as text).
* [observed] the live API's 400 messages, as reported publicly: "Please ensure that function call turn comes
  immediately after a user turn or after a function response turn." (google-gemini/gemini-cli#26486, #11814);
  "Please ensure that function response turn comes immediately after a function call turn." (langchain-ai/
  langchain#27799, GoogleCloudPlatform/generative-ai#368); "Please ensure that the number of function response
  parts is equal to the number of function call parts of the function call turn." (gemini-cli#4217, #16415,
  microsoft/vscode#299295); "Function call is missing a thought_signature in functionCall parts. ... Additional
  data, function call `default_api:NAME` , position N. ..." (lbjlaq/Antigravity-Manager#938, niki914/zafiro#100,
  nanbingxyz/5ire#405; N counts contents from 1); "Corrupted thought signature." (google-gemini/gemini-cli#13467,
  charmbracelet/crush#1698).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Collection
from typing import Any

from voxline.testing.fakes.rules import Refusal

__all__ = [
    "DUMMY_SIGNATURE",
    "check_function_turns",
    "check_tools",
    "part_field",
    "signature_bytes",
    "signatures_required",
]

DUMMY_SIGNATURE = "skip_thought_signature_validator"
"""[sig] what a client sends for a call Gemini did not produce."""

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$")  # [sdk]


def signatures_required(model: str, rules_known: bool = True) -> bool:
    """[sig] Gemini 3 and later refuse a call step without its signature (2.5 does not check). An alias whose
    target moves (``gemini-flash-latest``) is not checked: a relaxation, as for its thinking rules."""
    return rules_known and re.match(r"^gemini-([3-9]|\d\d)", model) is not None


def part_field(part: Any, camel: str) -> Any:
    """A part's field in either spelling (proto JSON accepts camelCase and snake_case)."""
    if not isinstance(part, dict):
        return None
    snake = re.sub(r"([A-Z])", lambda m: "_" + m[1].lower(), camel)
    return part.get(camel, part.get(snake))


def signature_bytes(value: Any) -> bytes | None:
    """A ``thoughtSignature`` as bytes, whichever base64 alphabet it came in [proto-json]; None if not base64."""
    if not isinstance(value, str):
        return None
    padded = value + "=" * (-len(value) % 4)
    try:
        return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return None


def check_tools(tools: Any) -> None:
    """Raise :class:`Refusal` for function declarations the API refuses."""
    if tools is None:
        return
    if not isinstance(tools, list):
        raise Refusal(400, "Invalid JSON payload received. 'tools' must be a list.")
    for i, entry in enumerate(tools):
        declarations = part_field(entry, "functionDeclarations") or []
        for j, declaration in enumerate(declarations):
            where = f"tools[{i}].function_declarations[{j}]"
            name = part_field(declaration, "name")
            if not isinstance(name, str) or not _NAME.match(name):
                # [sdk] the documented name rule; wording approximated.
                raise Refusal(
                    400,
                    f"* GenerateContentRequest.{where}.name: Invalid function name. Must start with a letter or an "
                    "underscore. Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), colons (:) or "
                    "dashes (-), with a maximum length of 128.",
                )
            if part_field(declaration, "parameters") is not None and (
                part_field(declaration, "parametersJsonSchema") is not None
            ):
                # [sdk] mutually exclusive; wording approximated.
                raise Refusal(
                    400, f"* GenerateContentRequest.{where}: parameters and parameters_json_schema cannot both be set."
                )


def _calls(content: Any) -> list[dict[str, Any]]:
    parts = content.get("parts") if isinstance(content, dict) else None
    return [p for p in parts or [] if isinstance(p, dict) and part_field(p, "functionCall") is not None]


def _responses(content: Any) -> list[dict[str, Any]]:
    parts = content.get("parts") if isinstance(content, dict) else None
    return [p for p in parts or [] if isinstance(p, dict) and part_field(p, "functionResponse") is not None]


def check_function_turns(
    contents: list[Any], *, signatures_required: bool, issued: Collection[bytes] | None = None
) -> None:
    """Raise :class:`Refusal` where the API refuses the function-calling shape of ``contents`` (already checked
    to be a list of ``user``/``model`` contents). ``signatures_required``: Gemini 3 and later [sig]. ``issued``:
    the signatures the server handed out (a returned one must be one of them, or the documented dummy)."""
    for i, content in enumerate(contents):
        calls, responses = _calls(content), _responses(content)
        previous = contents[i - 1] if i else None
        if calls:
            after_user = previous is not None and previous.get("role", "user") == "user"
            if not after_user:
                # [observed] gemini-cli#26486 and #11814 (a history that starts with a call).
                raise Refusal(
                    400,
                    "Please ensure that function call turn comes immediately after a user turn or after a function "
                    "response turn.",
                )
        if responses:
            asked = _calls(previous)
            if not asked:
                # [observed] langchain#27799, generative-ai#368.
                raise Refusal(
                    400, "Please ensure that function response turn comes immediately after a function call turn."
                )
            if len(responses) != len(asked):
                # [observed] gemini-cli#4217.
                raise Refusal(
                    400,
                    "Please ensure that the number of function response parts is equal to the number of function call "
                    "parts of the function call turn.",
                )
            _check_matching(asked, responses, i)
    if signatures_required:
        _check_signatures(contents, issued)


def _check_matching(asked: list[dict[str, Any]], responses: list[dict[str, Any]], index: int) -> None:
    """[fc] one response per call, by name; [sdk] with the call's ``id`` where the call had one."""
    pending = [part_field(c, "functionCall") for c in asked]
    for j, part in enumerate(responses):
        response = part_field(part, "functionResponse")
        name, ident = part_field(response, "name"), part_field(response, "id")
        match = next(
            (c for c in pending if part_field(c, "name") == name and (part_field(c, "id") in (None, ident))), None
        )
        if match is None or (part_field(match, "id") is not None and ident != part_field(match, "id")):
            # Wording approximated (the API's message for a mismatched response is not documented).
            raise Refusal(
                400,
                f"* GenerateContentRequest.contents[{index}].parts[{j}].function_response: the function response "
                f"(name {name!r}, id {ident!r}) does not match a function call of the previous turn.",
            )
        pending.remove(match)
        if not isinstance(part_field(response, "response"), dict):
            # [fc] "The function response in JSON object format" (google-genai FunctionResponse.response).
            raise Refusal(
                400,
                f"* GenerateContentRequest.contents[{index}].parts[{j}].function_response.response: must be a JSON "
                "object.",
            )


def _check_signatures(contents: list[Any], issued: Collection[bytes] | None) -> None:
    """[sig] the current turn's steps each start with a signed functionCall part, with a signature we issued."""
    start = 0
    for i, content in enumerate(contents):
        parts = content.get("parts") or [] if isinstance(content, dict) else []
        standard = any(isinstance(p, dict) and part_field(p, "functionResponse") is None for p in parts)
        if content.get("role", "user") == "user" and standard:
            start = i + 1  # the latest user content with standard content begins the current turn
    for i in range(start, len(contents)):
        calls = _calls(contents[i])
        if not calls:
            continue
        first = calls[0]
        signature = part_field(first, "thoughtSignature")
        if signature is None:
            name = part_field(part_field(first, "functionCall"), "name")
            raise Refusal(  # [observed] Antigravity-Manager#938 wording; position counts contents from 1
                400,
                "Function call is missing a thought_signature in functionCall parts. This is required for tools to "
                "work correctly, and missing thought_signature may lead to degraded model performance. Additional "
                f"data, function call `default_api:{name}` , position {i + 1}. Please refer to "
                "https://ai.google.dev/gemini-api/docs/thought-signatures for more details.",
            )
        decoded = signature_bytes(signature)
        known = issued is None or decoded in issued or signature == DUMMY_SIGNATURE
        if decoded is None or not known:
            raise Refusal(400, "Corrupted thought signature.")  # [observed] gemini-cli#13467
