"""Which thinking control each Gemini model accepts, from Google's documents — a table, not a guess from the name.

Gemini has two mutually exclusive thinking controls, and which one a model takes (and which values) is per
model: Gemini 2.5 takes a token budget (``thinking_budget``; 2.5 Pro cannot switch thinking off), Gemini 3 and
later take a level (``thinking_level``), and the levels differ within one generation (3.6 Flash accepts
``MINIMAL``, 3.7 and 3.8 Flash answer 400 to it). A request carrying a value the model refuses fails every
turn, so :func:`thinking_config_for` sends the *fastest* setting the table documents for the model, and for a
name the table does not know it sends no thinking field at all (the model's own default) rather than a guess.
If a model changes its rules anyway, the LLM base drops the refused field and carries on (see
``voxline.llm``).

Sources (the same rows, with links, are in docs/providers.md):

* [vertex-thinking] Google Cloud, "Thinking" (Gemini Enterprise Agent Platform / Vertex AI): the table of
  ``thinking_level`` values per model (3.8 Flash: LOW, MEDIUM, HIGH; 3.7 Flash: LOW, MEDIUM, HIGH; 3.6 Flash
  and 3.5 Flash-Lite: MINIMAL, LOW, MEDIUM, HIGH), and the ``thinking_budget`` ranges of the 2.5 models
  (2.5 Flash 1-24,576 or 0 to turn thinking off; 2.5 Flash-Lite 512-24,576 or 0; 2.5 Pro 128-32,768, thinking
  cannot be turned off; ``-1`` is dynamic), and "using ``thinking_level`` with a model earlier than Gemini 3
  returns an error".
* [gemini-thinking] Gemini API, "Gemini thinking" (ai.google.dev/gemini-api/docs/thinking#thinking-levels and
  #set-budget): the same level and budget rules for the Gemini API; only one of the two fields per request.
* [gemini-3] Gemini API, "Gemini 3 developer guide": Gemini 3 Pro accepts ``low`` and ``high``; Gemini 3 Flash
  ``minimal``, ``low``, ``medium``, ``high``.
* [whats-new] Gemini API "What's new in Gemini 3.5 / 3.6 / 3.7 / 3.8 Flash" pages: 3.5 Flash minimal-high
  (default medium); 3.7 Flash "tunable thinking levels (low, medium, high)", default medium.
* [firebase-levels] Firebase AI Logic, "Thinking": supported levels per model (3.1 Pro: low, medium, high;
  3.1 Flash-Lite: minimal-high; minimal "not supported by gemini-3.7-flash").
* [gemini-4] Gemini API "Gemini 4 Argon" guide (levels low, medium, high) and Google Cloud "Developer guide
  for Gemini 4 Hydrogen" (LOW, MEDIUM, HIGH, XHIGH).
* [observed] public 400 reports: ``'minimal' is not a supported thinking level for this model`` and "Thinking
  level MINIMAL is not supported for this model" from gemini-3.7-flash and gemini-3.8-flash (vercel/ai#18986,
  modelflow-ai/.github#163, dzivkovi/video-intel v2.7.1); "The model does not support setting thinking_budget
  to 0" from gemini-2.5-pro (earendil-works/pi#3460).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import attrs
from google.genai import types

__all__ = ["MODEL_RULES", "ThinkingRule", "rule_for", "thinking_config_for"]

FLASH_LEVELS = ("MINIMAL", "LOW", "MEDIUM", "HIGH")
"""Every level, fastest first (the order :func:`thinking_config_for` picks from)."""


@attrs.frozen
class ThinkingRule:
    """The thinking control one model family accepts. ``levels`` are fastest first; budgets are token counts."""

    control: Literal["level", "budget"]
    levels: tuple[str, ...] = ()
    budget_min: int = 0
    """The smallest positive budget the model accepts."""
    budget_max: int = 0
    budget_off: bool = False
    """Whether ``thinking_budget=0`` (thinking off) is accepted."""
    source: str = ""

    @property
    def fastest(self) -> types.ThinkingConfig:
        """The least thinking the model accepts, in the one field it understands."""
        if self.control == "budget":
            return types.ThinkingConfig(thinking_budget=0 if self.budget_off else self.budget_min)
        return types.ThinkingConfig(thinking_level=types.ThinkingLevel(self.levels[0]))

    def accepts(self, config: types.ThinkingConfig) -> bool:
        """Whether a request with ``config`` is within the documented rules (one field, an allowed value)."""
        budget, level = config.thinking_budget, config.thinking_level
        if budget is not None and level is not None:
            return False
        if level is not None:
            return self.control == "level" and level.value in self.levels
        if budget is not None:
            if self.control != "budget":
                return False
            return budget == -1 or (budget == 0 and self.budget_off) or self.budget_min <= budget <= self.budget_max
        return True


def _budget(low: int, high: int, *, off: bool, source: str) -> ThinkingRule:
    return ThinkingRule("budget", budget_min=low, budget_max=high, budget_off=off, source=source)


def _levels(*levels: str, source: str) -> ThinkingRule:
    return ThinkingRule("level", levels=levels, source=source)


_FLASH_25 = _budget(1, 24576, off=True, source="vertex-thinking, gemini-thinking#set-budget")
_FLASH_LITE_25 = _budget(512, 24576, off=True, source="vertex-thinking, gemini-thinking#set-budget")
_PRO_25 = _budget(128, 32768, off=False, source="vertex-thinking (cannot turn thinking off); observed 400 for 0")
_PRO_3 = _levels("LOW", "HIGH", source="gemini-3 (Gemini 3 Pro: low, high)")
_PRO_31 = _levels("LOW", "MEDIUM", "HIGH", source="firebase-levels (3.1 Pro: low, medium, high)")
_FLASH_MINIMAL = _levels(*FLASH_LEVELS, source="vertex-thinking, gemini-3, whats-new, firebase-levels")
_FLASH_NO_MINIMAL = _levels("LOW", "MEDIUM", "HIGH", source="vertex-thinking, whats-new-3.7; observed 400")
_GEMINI_4 = _levels("LOW", "MEDIUM", "HIGH", source="gemini-4 (Argon, Carbon: low, medium, high)")
_HYDROGEN = _levels("LOW", "MEDIUM", "HIGH", "XHIGH", source="gemini-4 (Hydrogen developer guide)")

MODEL_RULES: Mapping[str, ThinkingRule] = {
    "gemini-2.5-flash": _FLASH_25,
    "gemini-2.5-flash-lite": _FLASH_LITE_25,
    "gemini-2.5-pro": _PRO_25,
    "gemini-3-pro-preview": _PRO_3,
    "gemini-3.1-pro-preview": _PRO_31,
    "gemini-3-flash-preview": _FLASH_MINIMAL,
    "gemini-3.1-flash-lite": _FLASH_MINIMAL,
    "gemini-3.1-flash-lite-preview": _FLASH_MINIMAL,
    "gemini-3.5-flash": _FLASH_MINIMAL,
    "gemini-3.5-flash-lite": _FLASH_MINIMAL,
    "gemini-3.6-flash": _FLASH_MINIMAL,
    "gemini-3.7-flash": _FLASH_NO_MINIMAL,
    "gemini-3.8-flash": _FLASH_NO_MINIMAL,
    "gemini-4-argon": _GEMINI_4,
    "gemini-4-carbon": _GEMINI_4,
    "gemini-4-hydrogen": _HYDROGEN,
}
"""Model name → thinking rule. Exact names only: ``gemini-3.9-flash`` or ``gemini-flash-latest`` (an alias whose
target changes) are unknown, and an unknown model gets no thinking field."""


def rule_for(model: str) -> ThinkingRule | None:
    """The documented thinking rule of ``model`` (``models/`` prefix allowed), or None if the table lacks it."""
    return MODEL_RULES.get(model.removeprefix("models/").lower())


def thinking_config_for(model: str) -> types.ThinkingConfig | None:
    """The fastest thinking setting ``model`` accepts, or None (send no thinking field) for a model not in the table."""
    rule = rule_for(model)
    return rule.fastest if rule is not None else None
