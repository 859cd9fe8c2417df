"""Builds the processors of one session's pipeline, from the plan's providers.

``STT → LLM → SentenceAggregator → TTS`` (the transport's input and output go around them), assembled in one
place, :func:`build_processors`; each stage's processors come from its provider's declaration
(:func:`build_stage`). SDKs and engines are imported there, lazily, only when a session needs them: the app
starts, serves the page and answers /health whatever is installed, and a session whose provider cannot be built
tells its client exactly what is missing (:class:`ProviderUnavailable`) instead of dying with a traceback.
"""

from __future__ import annotations

import logging

from voxline.apps.voice_agent.config import Settings
from voxline.apps.voice_agent.tools import AgentToolsError, attach_tools, load_agent_tools, with_fallback
from voxline.apps.voice_agent.turn_wiring import TurnWiringError, with_turn_engine
from voxline.processor import Processor
from voxline.registry import STAGE_WORDS, Plan, Provider, Stage, Values

__all__ = ["ProviderUnavailable", "build_processors", "build_provider", "build_stage"]

logger = logging.getLogger("voxline.apps.voice_agent.factory")


class ProviderUnavailable(RuntimeError):
    """A provider cannot be built; the message says which and what to install or set. ``stage`` is the stage
    it was for (None when several are)."""

    def __init__(self, message: str, stage: Stage | None = None) -> None:
        super().__init__(message)
        self.stage = stage


def build_processors(settings: Settings, plan: Plan) -> list[Processor]:
    """The middle of the pipeline, in order. Raises :class:`ProviderUnavailable`."""
    if plan.problems:
        failing = [stage for stage, step in plan.stages.items() if step.problem is not None]
        raise ProviderUnavailable("; ".join(plan.problems), failing[0] if len(failing) == 1 else None)
    stt = build_stage(settings, plan, "stt")
    try:  # turn-taking (TURN_* settings): voxline.apps.voice_agent.turn_wiring
        stt = with_turn_engine(stt, settings)
    except TurnWiringError as exc:
        raise ProviderUnavailable(str(exc), "stt") from exc
    llm = build_stage(settings, plan, "llm")
    aggregator = _aggregator()
    tts = build_stage(settings, plan, "tts")
    # Tools and fallbacks (AGENT_TOOLS, LLM_FALLBACK, TTS_FALLBACK): voxline.apps.voice_agent.tools.
    try:
        attach_tools(llm, load_agent_tools(settings.agent_tools))
    except AgentToolsError as exc:
        raise ProviderUnavailable(str(exc), "llm") from exc
    llm = _with_fallback(settings, plan, "llm", llm)
    tts = _with_fallback(settings, plan, "tts", tts)
    return [*stt, *llm, aggregator, *tts]


def build_stage(settings: Settings, plan: Plan, stage: Stage) -> list[Processor]:
    """The processors of one stage, from the provider the plan chose for it."""
    return build_provider(plan.provider(stage), settings.values)


def build_provider(provider: Provider, values: Values) -> list[Processor]:
    """``provider.build(values)``, with a failure worded for the user (:class:`ProviderUnavailable`)."""
    what = f"the {provider.name} {STAGE_WORDS[provider.stage]} provider"
    try:
        return provider.build(values)
    except ImportError as exc:
        raise ProviderUnavailable(
            f"{what} is not installed ({exc}); {provider.install_hint()}", provider.stage
        ) from exc
    except ProviderUnavailable:
        raise
    except Exception as exc:
        logger.exception("building %s failed", what)
        raise ProviderUnavailable(f"{what} could not be built: {exc}", provider.stage) from exc


def _with_fallback(settings: Settings, plan: Plan, stage: Stage, primary: list[Processor]) -> list[Processor]:
    name = settings.fallback(stage)
    if not name or name == plan.stages[stage].choice:
        return primary
    entry = settings.registry.get(stage, name)
    provider = entry if isinstance(entry, Provider) else entry.resolve()
    if not provider.available(settings.values):
        logger.warning("the %s fallback is left out: %s needs %s", stage, name, provider.requirement())
        return primary
    return with_fallback(stage, primary, lambda: build_provider(provider, settings.values))


def _aggregator() -> Processor:
    from voxline.aggregation import SentenceAggregator, clean_for_speech

    # Models write Markdown even when asked not to: the voice must not read "asterisk asterisk" aloud. Only
    # what goes to TTS is cleaned; the client's text_chunk messages keep the raw text (the page renders it).
    return SentenceAggregator(speech_filter=clean_for_speech)
