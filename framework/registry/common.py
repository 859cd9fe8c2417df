"""Settings that more than one provider reads: declared once, here, so every LLM provider means the same thing."""

from __future__ import annotations

from voxline.registry.settings import Setting, text

__all__ = ["DEFAULT_SYSTEM_PROMPT", "SYSTEM_PROMPT"]

DEFAULT_SYSTEM_PROMPT = (
    "You are a friendly voice assistant. Your replies are spoken aloud, so answer in one to three short "
    "conversational sentences, without lists, markdown or emoji."
)

SYSTEM_PROMPT = Setting(
    "SYSTEM_PROMPT",
    text(),
    DEFAULT_SYSTEM_PROMPT,
    "The LLM's system instruction.",
    default_doc='a short "friendly voice assistant, answer in 1–3 spoken sentences" prompt',  # noqa: RUF001
)
