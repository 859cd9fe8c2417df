"""What the Gemini API refuses in a ``generateContent`` / ``streamGenerateContent`` request (pure checks).

Sources, cited per rule below by these tags:

* [thinking] Gemini API "Gemini thinking" (ai.google.dev/gemini-api/docs/thinking, #thinking-levels, #set-budget)
  and Google Cloud "Thinking" (docs.cloud.google.com/gemini-enterprise-agent-platform/models/thinking): which
  ``thinking_level`` values each model supports; 2.5 budgets: Flash 1-24576 (0 turns thinking off), Flash-Lite
  512-24576 (0 off), Pro 128-32768 (thinking cannot be turned off); -1 is dynamic; ``thinking_level`` on a model
  earlier than Gemini 3 "returns an error"; the two fields are mutually exclusive.
* [gemini-3] "Gemini 3 developer guide": 3 Pro supports low/high, 3 Flash minimal/low/medium/high; a budget is
  still accepted on Gemini 3 "for backwards compatibility".
* [whats-new] "What's new in Gemini 3.5/3.6/3.7/3.8 Flash" pages; [firebase] Firebase AI Logic "Thinking" level
  table (3.1 Pro low-high; 3.1 Flash-Lite minimal-high; minimal "not supported by gemini-3.7-flash").
* [gemini-4] "Gemini 4 Argon" guide (ai.google.dev latest-model: low, medium, high); Google Cloud "Developer
  guide for Gemini 4 Hydrogen" (LOW, MEDIUM, HIGH, XHIGH).
* [deprecations] ai.google.dev/gemini-api/docs/deprecations (the models served); [models] the SDK's model list.
* [observed] the live API's 400 messages, as reported publicly: vercel/ai#18986 and modelflow-ai/.github#163
  (3.7/3.8 Flash refuse MINIMAL), RooCodeInc/Roo-Code#10700 ("Thinking level is not supported for this model"
  from 2.5 Flash), vercel/ai#8027 (2.5 Pro: budget 0), vercel/ai#3775 and egoist/chatwise-releases#250 (empty
  contents / parts), genkit-ai/genkit#3816 and songquanpeng/one-api#2243 (a part without data), Wei-Shaw/sub2api#1045
  (a field sent twice, camelCase and snake_case).
"""

from __future__ import annotations

from typing import Any

import attrs
from voxline.testing.fakes.rules import Refusal

__all__ = ["MODELS", "ModelThinking", "check_generate_content", "check_model", "normalise"]


@attrs.frozen
class ModelThinking:
    """What a model accepts in ``thinkingConfig``: a set of levels and/or a budget range (None: not accepted)."""

    levels: frozenset[str] = frozenset()
    budget: tuple[int, int] | None = None
    """Inclusive range of positive budgets; -1 (dynamic) is accepted wherever a budget is."""
    budget_off: bool = False
    """Whether ``thinkingBudget: 0`` (no thinking) is accepted."""
    rules_known: bool = True
    """False for an alias whose target changes: only the one-field rule is checked."""


_ALL = frozenset({"MINIMAL", "LOW", "MEDIUM", "HIGH"})
_NO_MINIMAL = frozenset({"LOW", "MEDIUM", "HIGH"})
# [gemini-3]: Gemini 3 models still take a budget "for backwards compatibility"; its range is not documented, so
# the fake accepts any (a relaxation: voxline never sends a budget to a Gemini 3 model).
_LEGACY_BUDGET = (1, 1 << 20)

MODELS: dict[str, ModelThinking] = {
    # [thinking] 2.5: budgets only. [deprecations] lists shutdown dates in 2026 and reports say requests are
    # rerouted; the fake keeps serving them (a relaxation) because the docs disagree on whether they still answer.
    "gemini-2.5-flash": ModelThinking(budget=(1, 24576), budget_off=True),
    "gemini-2.5-flash-lite": ModelThinking(budget=(512, 24576), budget_off=True),
    "gemini-2.5-pro": ModelThinking(budget=(128, 32768), budget_off=False),
    # [gemini-3] 3 Pro: low and high only. (Shut down 2026-03-09 per [deprecations]; still served: a relaxation.)
    "gemini-3-pro-preview": ModelThinking(levels=frozenset({"LOW", "HIGH"}), budget=_LEGACY_BUDGET),
    # [firebase] 3.1 Pro: minimal not supported.
    "gemini-3.1-pro-preview": ModelThinking(levels=_NO_MINIMAL, budget=_LEGACY_BUDGET),
    # [gemini-3], [thinking]: 3 Flash and the 3.x Flash / Flash-Lite line up to 3.6 take all four levels.
    "gemini-3-flash-preview": ModelThinking(levels=_ALL, budget=_LEGACY_BUDGET),
    "gemini-3.1-flash-lite": ModelThinking(levels=_ALL, budget=_LEGACY_BUDGET),
    "gemini-3.1-flash-lite-preview": ModelThinking(levels=_ALL, budget=_LEGACY_BUDGET),
    "gemini-3.5-flash": ModelThinking(levels=_ALL, budget=_LEGACY_BUDGET),
    "gemini-3.5-flash-lite": ModelThinking(levels=_ALL, budget=_LEGACY_BUDGET),
    "gemini-3.6-flash": ModelThinking(levels=_ALL, budget=_LEGACY_BUDGET),
    # [thinking] table, [whats-new] 3.7, [observed]: 3.7 and 3.8 Flash refuse MINIMAL.
    "gemini-3.7-flash": ModelThinking(levels=_NO_MINIMAL, budget=_LEGACY_BUDGET),
    "gemini-3.8-flash": ModelThinking(levels=_NO_MINIMAL, budget=_LEGACY_BUDGET),
    # [gemini-4]: no MINIMAL; Hydrogen adds XHIGH. Whether a budget is accepted is not documented: accepted.
    "gemini-4-argon": ModelThinking(levels=_NO_MINIMAL, budget=_LEGACY_BUDGET),
    "gemini-4-carbon": ModelThinking(levels=_NO_MINIMAL, budget=_LEGACY_BUDGET),
    "gemini-4-hydrogen": ModelThinking(levels=_NO_MINIMAL | {"XHIGH"}, budget=_LEGACY_BUDGET),
    # [models] aliases: their target moves, so only the one-field rule applies (a relaxation).
    "gemini-flash-latest": ModelThinking(rules_known=False),
    "gemini-flash-lite-latest": ModelThinking(rules_known=False),
    "gemini-pro-latest": ModelThinking(rules_known=False),
}
"""The models the fake serves, each with its documented thinking rules."""


def check_model(model: str, api_version: str, models: dict[str, ModelThinking] | None) -> ModelThinking | None:
    """404 for a model the API does not serve (``models=None`` serves any name, with no thinking rules known)."""
    if models is None:
        return None
    rules = models.get(model)
    if rules is None:
        # [observed] the Gemini API's answer to an unknown model name (HTTP 404, NOT_FOUND).
        raise Refusal(
            404,
            f"models/{model} is not found for API version {api_version}, or is not supported for generateContent. "
            "Call ListModels to see the list of available models and their supported methods.",
        )
    return rules


def normalise(body: Any) -> dict[str, Any]:
    """``body`` with camelCase keys (proto JSON accepts both spellings); 400 if one field is sent both ways."""
    if not isinstance(body, dict):
        raise Refusal(400, "Invalid JSON payload received. Expected an object.")
    out: dict[str, Any] = {}
    for key, value in body.items():
        camel = _camel(key)
        if camel in out:
            # [observed] sub2api#1045: "oneof field '_system_instruction' is already set".
            raise Refusal(
                400, f"Invalid value at 'request' (oneof), oneof field '_{key}' is already set. Cannot set '{key}'"
            )
        out[camel] = normalise(value) if isinstance(value, dict) else value
    return out


def check_generate_content(body: dict[str, Any], rules: ModelThinking | None) -> None:
    """Raise :class:`Refusal` for what the API refuses in a (normalised) request body."""
    _check_contents(body.get("contents"))
    system = body.get("systemInstruction")
    if system is not None:
        _check_parts(system, "GenerateContentRequest.system_instruction")
    config = body.get("generationConfig")
    if isinstance(config, dict):
        _check_generation_config(config)
        thinking = config.get("thinkingConfig")
        if isinstance(thinking, dict):
            _check_thinking(thinking, rules)


def _check_contents(contents: Any) -> None:
    if not isinstance(contents, list) or not contents:
        # [observed] vercel/ai#3775.
        raise Refusal(400, "* GenerateContentRequest.contents: contents is not specified")
    for i, content in enumerate(contents):
        role = content.get("role", "user") if isinstance(content, dict) else None
        if role not in ("user", "model"):
            # [observed] the API's answer to any other role (e.g. "assistant" or "system").
            raise Refusal(400, f"* GenerateContentRequest.contents[{i}].role: Please use a valid role: user, model.")
        _check_parts(content, f"GenerateContentRequest.contents[{i}]")
    if contents[-1].get("role", "user") != "user":
        # [thinking]-era model pages (3.5 Flash-Lite: "requests where the last object in contents has the model
        # role" return an error) and voxline's own rule that every request ends with a user turn: the fake
        # applies it to every model (stricter than most models, on purpose).
        raise Refusal(400, "Please ensure that multiturn requests end with a user role or a function response.")


def _check_parts(content: Any, where: str) -> None:
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list) or not parts:
        # [observed] chatwise-releases#250.
        raise Refusal(400, f"* {where}.parts: contents.parts must not be empty.")
    for j, part in enumerate(parts):
        data = (
            {k: v for k, v in part.items() if k not in ("thought", "thoughtSignature")}
            if isinstance(part, dict)
            else {}
        )
        if not data:
            # [observed] genkit#3816, one-api#2243 (also for the system instruction).
            raise Refusal(
                400, f"* {where}.parts[{j}].data: required oneof field 'data' must have one initialized field"
            )
        if "text" in data and not (isinstance(data["text"], str) and data["text"]):
            # [observed] Google's answer to an empty text part (Vertex AI wording). Stricter than the proto, which
            # would take "" as set; voxline never sends one.
            raise Refusal(400, "Unable to submit request because it has an empty text parameter.")


def _check_generation_config(config: dict[str, Any]) -> None:
    temperature = config.get("temperature")
    if temperature is not None and not (isinstance(temperature, (int, float)) and 0 <= temperature <= 2):
        # Model pages ("Parameter defaults: temperature 0.0-2.0"); wording approximated.
        raise Refusal(
            400, f"* GenerateContentRequest.generation_config.temperature: must be in [0, 2], got {temperature}"
        )
    limit = config.get("maxOutputTokens")
    if limit is not None and not (isinstance(limit, int) and limit >= 1):
        # Model pages (output token limit, at least 1); wording approximated.
        raise Refusal(
            400, f"* GenerateContentRequest.generation_config.max_output_tokens: must be positive, got {limit}"
        )


def _check_thinking(thinking: dict[str, Any], rules: ModelThinking | None) -> None:
    budget, level = thinking.get("thinkingBudget"), thinking.get("thinkingLevel")
    if budget is not None and level is not None:
        # [thinking] "mutually exclusive"; [observed] wording.
        raise Refusal(400, "You can only set only one of thinking budget and thinking level.")
    if rules is None or not rules.rules_known:
        return
    if level is not None:
        name = str(level).upper()
        if not rules.levels:
            # [thinking] a level on a model earlier than Gemini 3; [observed] Roo-Code#10700 wording.
            raise Refusal(400, "Thinking level is not supported for this model.")
        if name not in rules.levels:
            # [thinking] level tables; [observed] vercel/ai#18986 wording.
            raise Refusal(
                400, f"Thinking level {name} is not supported for this model. Please retry with other thinking level."
            )
    if budget is not None:
        if not isinstance(budget, int) or rules.budget is None:
            raise Refusal(400, "Thinking budget is not supported for this model.")  # wording approximated
        if budget == 0 and not rules.budget_off:
            # [thinking] 2.5 Pro cannot turn thinking off; [observed] vercel/ai#8027 wording.
            raise Refusal(400, "Budget 0 is invalid. This model only works in thinking mode.")
        low, high = rules.budget
        if budget not in (0, -1) and not low <= budget <= high:
            # [thinking] the per-model range; wording approximated.
            raise Refusal(
                400, f"The thinking budget {budget} is invalid. Please choose a value between {low} and {high}."
            )


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)
