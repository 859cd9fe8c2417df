"""OpenAI-compatible chat-completions processors (the official ``openai`` SDK): :class:`OpenAILLM`."""

from voxline.processors.openai_compat.llm import NO_KEY, OpenAILLM

__all__ = ["NO_KEY", "OpenAILLM"]
