"""The voice agent's tools and provider fallbacks: the two extras a session's pipeline may get.

* ``AGENT_TOOLS=mypkg.tools`` names a module on the normal import path; every ``@tool`` function in it
  (:func:`voxline.tools.tools_in`) is offered to the LLM (:func:`load_agent_tools`).
* ``LLM_FALLBACK`` / ``TTS_FALLBACK`` name a second provider; the stage becomes a
  :class:`~voxline.fallback.FallbackLLM` / :class:`~voxline.fallback.FallbackTTS` over the chosen provider's
  processor and the fallback's (:func:`with_fallback`). A fallback that cannot be built (no key, not installed)
  is logged and left out: the session runs on its primary.

Kept in one module, apart from the settings and the factory, so the wiring is easy to move.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from voxline.processor import Processor
from voxline.tools import Tool, Toolbox, tools_in

__all__ = ["AgentToolsError", "attach_tools", "load_agent_tools", "with_fallback"]

logger = logging.getLogger("voxline.apps.voice_agent.tools")


class AgentToolsError(RuntimeError):
    """``AGENT_TOOLS`` names a module that cannot be imported or declares no tools (the message says which)."""


def load_agent_tools(name: str | None) -> list[Tool]:
    """Every ``@tool`` of the module ``name`` (None or empty: no tools)."""
    if not name:
        return []
    try:
        return tools_in(name)
    except ImportError as exc:
        raise AgentToolsError(f"AGENT_TOOLS={name!r}: the module cannot be imported ({exc})") from exc
    except (LookupError, ValueError, TypeError) as exc:
        raise AgentToolsError(f"AGENT_TOOLS={name!r}: {exc}") from exc


def attach_tools(stages: Sequence[Processor], tools: Sequence[Tool]) -> None:
    """Offer ``tools`` to the LLM stage(s) among ``stages`` (a stage without tool support is left alone)."""
    if not tools:
        return
    from voxline.llm import LLMProcessor

    for stage in stages:
        if isinstance(stage, LLMProcessor):
            stage.toolbox = Toolbox(tools)


def with_fallback(stage: str, primary: list[Processor], build: Callable[[], list[Processor]]) -> list[Processor]:
    """``primary`` (one processor) wrapped in a fallback over it and what ``build()`` makes (one processor);
    ``primary`` unchanged when the fallback cannot be built or either side is more than one stage."""
    try:
        secondary = build()
    except Exception as exc:  # ProviderUnavailable, a missing key, a missing package
        logger.warning("the %s fallback is left out: %s", stage, exc)
        return primary
    if len(primary) != 1 or len(secondary) != 1:
        logger.warning("the %s fallback is left out: both providers must be a single processor", stage)
        return primary
    first, second = primary[0], secondary[0]
    if type(first) is type(second):
        second.name = f"{second.name}-fallback"
    if stage == "llm":
        from voxline.fallback import FallbackLLM
        from voxline.llm import LLMProcessor

        if isinstance(first, LLMProcessor) and isinstance(second, LLMProcessor):
            return [FallbackLLM([first, second])]
    elif stage == "tts":
        from voxline.fallback import FallbackTTS
        from voxline.tts import TTSProcessor

        if isinstance(first, TTSProcessor) and isinstance(second, TTSProcessor):
            return [FallbackTTS([first, second])]
    logger.warning("the %s fallback is left out: %s and %s cannot back each other up", stage, first.name, second.name)
    return primary
