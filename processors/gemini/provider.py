"""The Gemini provider's declaration: ``LLM_PROVIDER=gemini``. google-genai is imported only to build the stage."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from voxline.registry import Provider, Values
from voxline.registry.common import SYSTEM_PROMPT
from voxline.registry.provider import shows
from voxline.registry.settings import ConfigError, Setting, secret, text, url

if TYPE_CHECKING:
    from voxline.processor import Processor

__all__ = ["API_KEY", "BASE_URL", "GEMINI", "MODEL", "THINKING", "THINKING_LEVELS"]

THINKING_LEVELS = ("minimal", "low", "medium", "high", "xhigh")


def _thinking(name: str, raw: str) -> str:
    value = raw.lower()
    if value in (*THINKING_LEVELS, "none"):
        return value
    try:
        if int(value) >= -1:
            return str(int(value))
    except ValueError:
        pass
    raise ConfigError(
        f"{name}={raw!r} is not a thinking level ({', '.join(THINKING_LEVELS)}), a token budget (-1, 0, 1, ...) or none"
    )


API_KEY = Setting("GEMINI_API_KEY", secret(), None, "Google Gemini key (the LLM).", role="key", mentions=("api key",))
BASE_URL = Setting(
    "GEMINI_BASE_URL", url(), None, "Base URL for the Gemini API.", default_doc="the real service", role="endpoint"
)
MODEL = Setting("GEMINI_MODEL", text(), "gemini-3.8-flash", "Gemini model name.", role="model")
THINKING = Setting(
    "GEMINI_THINKING",
    _thinking,
    None,
    "Gemini's thinking setting: a level (`minimal`, `low`, `medium`, `high`, `xhigh`), a token budget (2.5 "
    "models: `-1`, `0`, ...) or `none` (no field: the model's own default). Unset: the fastest setting the "
    "model accepts, from the per-model table in docs/providers.md.",
    default_doc="the model's fastest",
    mentions=("thinking",),
)


OWN = (API_KEY, BASE_URL, MODEL, THINKING)
"""The settings of the Gemini stage itself (what :meth:`GeminiLLM.from_config` reads)."""


def arguments(values: Values) -> dict[str, Any]:
    """``GeminiLLM``'s keyword arguments from the provider's settings (``"none"`` thinking: see :func:`build`)."""
    from google.genai import types

    key, thinking = values[API_KEY], values[THINKING]
    config = None
    if thinking in THINKING_LEVELS:
        config = types.ThinkingConfig(thinking_level=types.ThinkingLevel(thinking.upper()))
    elif thinking is not None and thinking != "none":
        config = types.ThinkingConfig(thinking_budget=int(thinking))
    return {
        "api_key": str(key) if key is not None else "",
        "base_url": values[BASE_URL],
        "model": values[MODEL],
        "thinking": config,
    }


def build(values: Values) -> list[Processor]:
    from voxline.processors.gemini.llm import GeminiLLM

    llm = GeminiLLM(**arguments(values), system_prompt=values[SYSTEM_PROMPT])
    if values[THINKING] == "none":
        llm.thinking = None  # no thinking field at all: the model's own default
    return [llm]


GEMINI = Provider(
    stage="llm",
    name="gemini",
    title="Google Gemini",
    build=build,
    settings=(API_KEY, BASE_URL, MODEL, THINKING, SYSTEM_PROMPT),
    cloud=True,
    needs=(API_KEY,),
    describe=shows(model=MODEL),
)
