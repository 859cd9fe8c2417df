"""What an OpenAI-compatible ``POST /v1/chat/completions`` refuses (pure checks).

Sources:

* [chat-api] OpenAI API reference, "Create chat completion" (platform.openai.com/docs/api-reference/chat/create):
  ``model`` and ``messages`` are required; a message is ``{"role", "content"}`` with role ``developer``,
  ``system``, ``user``, ``assistant``, ``tool`` (or the deprecated ``function``); content is a string or an
  array of content parts; ``temperature`` is 0-2; ``max_tokens`` is deprecated in favour of
  ``max_completion_tokens`` and "not compatible with o-series models".
* [reasoning] OpenAI "Reasoning models" guide: reasoning models (o1, o3, o4-mini, gpt-5) take
  ``max_completion_tokens``, and only the default temperature.
* [observed] OpenAI's 400 bodies, as reported publicly: ``{"message": "Unsupported parameter: 'max_tokens' is not
  supported with this model. Use 'max_completion_tokens' instead.", "type": "invalid_request_error", "param":
  "max_tokens", "code": "unsupported_parameter"}`` (openai/openai-python#2046, teilomillet/gollm#33) and
  "Unsupported parameter: 'temperature' is not supported with this model." (sigoden/aichat#1144).

The fake stands in for many servers (OpenAI, Ollama, llama.cpp, vLLM) whose model catalogues differ, so it takes
any model name (a relaxation), and applies the reasoning-model rules to OpenAI's reasoning model names only.
It is stricter than OpenAI on one point: the last message must be a user message (voxline's rule for every
request, so a break of it fails a test).
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
        if content is not None and not _valid_content(content):
            raise Refusal(
                400,
                f"Invalid type for 'messages[{i}].content': expected one of a string or array of objects.",
                code="invalid_type",
                param=f"messages[{i}].content",
            )
    if messages[-1].get("role") != "user":
        # voxline's rule (see the module docstring): stricter than OpenAI.
        raise Refusal(400, "The last message must be a user message (voxline's rule; see the fake's docs).")


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
