"""Google Gemini processors (google-genai): :class:`GeminiLLM`, the streaming LLM stage, and the per-model rules."""

from voxline.processors.gemini.llm import DEFAULT_MODEL, GeminiBlockedError, GeminiLLM
from voxline.processors.gemini.models import MODEL_RULES, ThinkingRule, rule_for, thinking_config_for

__all__ = [
    "DEFAULT_MODEL",
    "MODEL_RULES",
    "GeminiBlockedError",
    "GeminiLLM",
    "ThinkingRule",
    "rule_for",
    "thinking_config_for",
]
