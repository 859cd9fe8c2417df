"""The OpenAI-compatible provider's declaration: ``LLM_PROVIDER=openai`` (OpenAI, Ollama, llama.cpp, vLLM ...)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from voxline.registry import Provider, Values
from voxline.registry.common import SYSTEM_PROMPT
from voxline.registry.provider import missing_modules, shows
from voxline.registry.settings import Setting, secret, text, url

if TYPE_CHECKING:
    from voxline.processor import Processor

__all__ = ["API_KEY", "BASE_URL", "MODEL", "OPENAI"]

API_KEY = Setting(
    "OPENAI_API_KEY",
    secret(),
    None,
    "Key for an OpenAI-compatible chat-completions server (optional for a keyless local server).",
    role="key",
    mentions=("api key",),
)
BASE_URL = Setting(
    "OPENAI_BASE_URL",
    url(),
    None,
    "Base URL of the OpenAI-compatible server, e.g. `http://127.0.0.1:11434/v1` for Ollama.",
    default_doc="the real service",
    role="endpoint",
)
MODEL = Setting(
    "OPENAI_MODEL",
    text(),
    "gpt-4o-mini",
    "Model name sent to the OpenAI-compatible server.",
    role="model",
    mentions=("model",),
)


OWN = (API_KEY, BASE_URL, MODEL)
"""The settings of the OpenAI-compatible stage itself (what :meth:`OpenAILLM.from_config` reads)."""


def arguments(values: Values) -> dict[str, Any]:
    """``OpenAILLM``'s keyword arguments from the provider's settings."""
    key = values[API_KEY]
    return {"api_key": str(key) if key is not None else None, "base_url": values[BASE_URL], "model": values[MODEL]}


def build(values: Values) -> list[Processor]:
    from voxline.processors.openai_compat.llm import OpenAILLM

    return [OpenAILLM(**arguments(values), system_prompt=values[SYSTEM_PROMPT])]


OPENAI = Provider(
    stage="llm",
    name="openai",
    title="any OpenAI-compatible server",
    build=build,
    settings=(API_KEY, BASE_URL, MODEL, SYSTEM_PROMPT),
    cloud=True,
    needs=(API_KEY, BASE_URL),
    needs_any=True,
    needs_note="OPENAI_API_KEY (or OPENAI_BASE_URL for a keyless local server)",
    extra="openai",
    requires=lambda: missing_modules(("openai", "openai")),
    describe=shows(model=MODEL),
)
