"""What an OpenAI-compatible ``POST /v1/chat/completions`` refuses (pure checks).

Sources:

* [chat-api] OpenAI API reference, "Create chat completion" (platform.openai.com/docs/api-reference/chat/create):
  ``model`` and ``messages`` are required; a message is ``{"role", "content"}`` with role ``developer``,
  ``system``, ``user``, ``assistant``, ``tool`` (or the deprecated ``function``); content is a string or an
  array of content parts; ``temperature`` is 0-2; ``max_tokens`` is deprecated in favour of
  ``max_completion_tokens`` and "not compatible with o-series models".
* [reasoning] OpenAI "Reasoning models" guide: reasoning models (o1, o3, o4-mini, gpt-5) take
  ``max_completion_tokens``, and only the default temperature.
* [fc] OpenAI "Function calling" guide (platform.openai.com/docs/guides/function-calling) and the chat API
  reference: a tool is ``{"type": "function", "function": {"name", "description", "parameters"}}``; the model's
  ``tool_calls`` (``id``, ``type: "function"``, ``function: {name, arguments}`` with the arguments as a JSON
  string) go back in an assistant message, followed by one ``{"role": "tool", "tool_call_id", "content"}``
  message per call; a tool message needs ``tool_call_id``. The assistant message's ``content`` is "required
  unless ``tool_calls`` or ``function_call`` is specified".
* [observed] OpenAI's 400 bodies, as reported publicly: ``{"message": "Unsupported parameter: 'max_tokens' is not
  supported with this model. Use 'max_completion_tokens' instead.", "type": "invalid_request_error", "param":
  "max_tokens", "code": "unsupported_parameter"}`` (openai/openai-python#2046, teilomillet/gollm#33) and
  "Unsupported parameter: 'temperature' is not supported with this model." (sigoden/aichat#1144); "Invalid
  parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'." with
  ``param`` ``messages.[N].role`` (miurla/morphic#136, smarter-sh/smarter#264); "An assistant message with
  'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids
  did not have response messages: ..." (QwenLM/qwen-code#606, agno-agi/agno#3105); a tool name outside
  ``^[a-zA-Z0-9_-]+$``: "Invalid 'tools[0].function.name': string does not match pattern." (wording as OpenAI's
  pattern errors).

The fake stands in for many servers (OpenAI, Ollama, llama.cpp, vLLM) whose model catalogues differ, so it takes
any model name (a relaxation), and applies the reasoning-model rules to OpenAI's reasoning model names only.
It is stricter than OpenAI on one point: the last message must be a user message or a tool result (voxline's
rule for every request, so a break of it fails a test).
"""

from __future__ import annotations

import re
from typing import Any

from voxline.testing.fakes.rules import Refusal

__all__ = ["REASONING_MODEL", "ROLES", "check_chat_request"]

ROLES = frozenset({"developer", "system", "user", "assistant", "tool", "function"})
"""[chat-api] the message roles."""

REASONING_MODEL = re.compile(r"^(o1|o3|o4|gpt-5)([-.].*)?$")
"""[reasoning] OpenAI's reasoning model names: they refuse ``max_tokens`` and a non-default temperature."""


def check_chat_request(body: Any) -> None:
    """Raise :class:`Refusal` (400, OpenAI's wording and ``param``) for what the API refuses in ``body``."""
    if not isinstance(body, dict):
        raise Refusal(400, "We could not parse the JSON body of your request.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        # [chat-api] required; [observed] wording.
        raise Refusal(400, "you must provide a model parameter", param="model")
    _check_messages(body.get("messages"))
    _check_tools(body.get("tools"))
    _check_tool_turns(body["messages"])
    _check_sampling(model, body)


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        # [chat-api] required, at least one.
        raise Refusal(
            400,
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            code="empty_array",
            param="messages",
        )
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ROLES:
            raise Refusal(
                400,
                f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', "
                "and 'developer'.",
                code="invalid_value",
                param=f"messages[{i}].role",
            )
        assert isinstance(message, dict)
        content = message.get("content")
        if content is None and role in ("system", "developer", "user", "tool"):
            # [chat-api] content is required for these roles (an assistant message may carry tool calls instead).
            raise Refusal(400, f"Missing required parameter: 'messages[{i}].content'.", param=f"messages[{i}].content")
        if content is None and role == "assistant" and not message.get("tool_calls"):
            # [fc] content is "required unless tool_calls or function_call is specified".
            raise Refusal(400, f"Missing required parameter: 'messages[{i}].content'.", param=f"messages[{i}].content")
        if content is not None and not _valid_content(content):
            raise Refusal(
                400,
                f"Invalid type for 'messages[{i}].content': expected one of a string or array of objects.",
                code="invalid_type",
                param=f"messages[{i}].content",
            )
    if messages[-1].get("role") not in ("user", "tool"):
        # voxline's rule (see the module docstring): stricter than OpenAI.
        raise Refusal(400, "The last message must be a user message or a tool result (voxline's rule; see the fake).")


_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def _check_tools(tools: Any) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise Refusal(400, "Invalid type for 'tools': expected an array.", code="invalid_type", param="tools")
    for i, entry in enumerate(tools):
        function = entry.get("function") if isinstance(entry, dict) else None
        if not isinstance(entry, dict) or entry.get("type") != "function" or not isinstance(function, dict):
            # [fc] the tool envelope; wording approximated.
            raise Refusal(400, f"Invalid value for 'tools[{i}]': expected a function tool.", param=f"tools[{i}]")
        name = function.get("name")
        if not isinstance(name, str) or not _TOOL_NAME.match(name):
            raise Refusal(  # [observed] wording of OpenAI's pattern errors
                400,
                f"Invalid 'tools[{i}].function.name': string does not match pattern. Expected a string that matches "
                "the pattern '^[a-zA-Z0-9_-]+$'.",
                code="invalid_value",
                param=f"tools[{i}].function.name",
            )
        parameters = function.get("parameters")
        if parameters is not None and not (isinstance(parameters, dict) and parameters.get("type") == "object"):
            raise Refusal(  # [fc] parameters is a JSON Schema object; wording approximated
                400,
                f"Invalid schema for function '{name}': schema must be a JSON Schema of 'type: \"object\"'.",
                code="invalid_function_parameters",
                param=f"tools[{i}].function.parameters",
            )


def _check_tool_turns(messages: list[Any]) -> None:
    """[fc], [observed]: every assistant ``tool_calls`` answered by the ``tool`` messages right after it, and every
    ``tool`` message answering a call of the assistant message before that run of tool messages."""
    open_ids: list[str] | None = None  # ids still to answer, while in a run of tool messages after tool_calls
    asked_at = 0
    for i, message in enumerate(messages):
        role = message.get("role")
        if role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                # [fc] tool_call_id is required.
                raise Refusal(
                    400,
                    f"Missing required parameter: 'messages[{i}].tool_call_id'.",
                    param=f"messages[{i}].tool_call_id",
                )
            if open_ids is None or call_id not in open_ids:
                raise Refusal(  # [observed] morphic#136 (OpenAI's own spelling of "preceding")
                    400,
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with "
                    "'tool_calls'.",
                    param=f"messages.[{i}].role",
                )
            open_ids.remove(call_id)
            continue
        if open_ids:
            raise _unanswered(open_ids, asked_at)
        open_ids = None
        calls = message.get("tool_calls") if role == "assistant" else None
        if calls:
            open_ids, asked_at = [_check_call(call, i, j) for j, call in enumerate(calls)], i
    if open_ids:
        raise _unanswered(open_ids, asked_at)


def _check_call(call: Any, i: int, j: int) -> str:
    """[fc] the shape of one entry of an assistant message's ``tool_calls``; returns its id."""
    function = call.get("function") if isinstance(call, dict) else None
    where = f"messages[{i}].tool_calls[{j}]"
    if not isinstance(call, dict) or not isinstance(call.get("id"), str) or call.get("type") != "function":
        raise Refusal(400, f"Missing required parameter: '{where}.id'.", param=f"{where}.id")
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise Refusal(400, f"Missing required parameter: '{where}.function.name'.", param=f"{where}.function.name")
    if not isinstance(function.get("arguments"), str):
        raise Refusal(  # [fc] the arguments are a JSON string
            400,
            f"Invalid type for '{where}.function.arguments': expected a string.",
            code="invalid_type",
            param=f"{where}.function.arguments",
        )
    return str(call["id"])


def _unanswered(ids: list[str], index: int) -> Refusal:
    return Refusal(  # [observed] qwen-code#606, agno#3105
        400,
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. "
        f"The following tool_call_ids did not have response messages: {', '.join(ids)}",
        param=f"messages.[{index}].role",
    )


def _valid_content(content: Any) -> bool:
    if isinstance(content, str):
        return True
    return isinstance(content, list) and all(isinstance(part, dict) and "type" in part for part in content)


def _check_sampling(model: str, body: dict[str, Any]) -> None:
    temperature = body.get("temperature")
    if temperature is not None and not (isinstance(temperature, (int, float)) and 0 <= temperature <= 2):
        # [chat-api] "between 0 and 2".
        raise Refusal(
            400,
            f"Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got {temperature} "
            "instead.",
            code="decimal_above_max_value",
            param="temperature",
        )
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and not (isinstance(max_tokens, int) and max_tokens >= 1):
        raise Refusal(
            400,
            f"Invalid 'max_tokens': integer below minimum value. Expected a value >= 1, but got {max_tokens} instead.",
            code="integer_below_min_value",
            param="max_tokens",
        )
    if REASONING_MODEL.match(model):
        if max_tokens is not None:
            # [reasoning], [observed] openai-python#2046.
            raise Refusal(
                400,
                "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' "
                "instead.",
                code="unsupported_parameter",
                param="max_tokens",
            )
        if temperature is not None and temperature != 1:
            # [reasoning], [observed] aichat#1144.
            raise Refusal(
                400,
                "Unsupported parameter: 'temperature' is not supported with this model.",
                code="unsupported_parameter",
                param="temperature",
            )
