"""Google Gemini processors (google-genai): :class:`GeminiLLM`, the streaming LLM stage."""

from voxline.processors.gemini.llm import DEFAULT_MODEL, GeminiBlockedError, GeminiLLM, thinking_config_for

__all__ = ["DEFAULT_MODEL", "GeminiBlockedError", "GeminiLLM", "thinking_config_for"]
