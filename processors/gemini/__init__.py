"""Google Gemini (google-genai): :class:`GeminiLLM`, the streaming LLM stage, and the per-model request rules.

Imported lazily: importing this package (the registry does) loads neither google-genai nor the stage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from voxline.lazy import lazy_exports

__all__ = [
    "DEFAULT_MODEL",
    "MODEL_RULES",
    "GeminiBlockedError",
    "GeminiLLM",
    "ThinkingRule",
    "rule_for",
    "thinking_config_for",
]

_EXPORTS = {
    "DEFAULT_MODEL": "voxline.processors.gemini.llm",
    "GeminiBlockedError": "voxline.processors.gemini.llm",
    "GeminiLLM": "voxline.processors.gemini.llm",
    "MODEL_RULES": "voxline.processors.gemini.models",
    "ThinkingRule": "voxline.processors.gemini.models",
    "rule_for": "voxline.processors.gemini.models",
    "thinking_config_for": "voxline.processors.gemini.models",
}

if TYPE_CHECKING:
    from voxline.processors.gemini.llm import DEFAULT_MODEL, GeminiBlockedError, GeminiLLM
    from voxline.processors.gemini.models import MODEL_RULES, ThinkingRule, rule_for, thinking_config_for

__getattr__ = lazy_exports(__name__, _EXPORTS)
