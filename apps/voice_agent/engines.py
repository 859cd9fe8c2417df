"""Which provider runs each stage: the registry's plan over the agent's settings.

``STT_PROVIDER``, ``LLM_PROVIDER`` and ``TTS_PROVIDER`` may name a provider or say ``auto`` (the default): the
first cloud provider of the stage whose key is set (Deepgram; Gemini, then an OpenAI-compatible server), else
the stage's local one (``local`` speech engines, the ``echo`` LLM). The rule and the choices come from the
provider declarations (:class:`voxline.registry.Registry`); this module only applies them to the settings.

The plan is pure: it reads settings (and, for ``local``, which packages are installed) and builds nothing.
Whether a provider can actually be *built* is found out when a session builds its pipeline; a provider asked for
explicitly without its key or its packages is a ``problem`` the client hears about.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from voxline.registry import Plan

if TYPE_CHECKING:
    from voxline.apps.voice_agent.config import Settings

__all__ = ["EnginePlan", "plan_engines"]

EnginePlan = Plan


def plan_engines(settings: Settings) -> EnginePlan:
    return settings.plan()
