"""Builds the processors of one session's pipeline for the engines the plan chose.

``STT → LLM → SentenceAggregator → TTS`` (the transport's input and output go around them). Every engine is
imported here, lazily, only when a session needs it: the app starts, serves the page and answers /health
whatever is installed, and a session whose engine cannot be built tells its client exactly what is missing
(:class:`EngineUnavailable`) instead of dying with a traceback.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

from voxline.apps.voice_agent.config import Settings
from voxline.apps.voice_agent.engines import EnginePlan
from voxline.apps.voice_agent.tools import AgentToolsError, attach_tools, load_agent_tools, with_fallback
from voxline.apps.voice_agent.turn_wiring import TurnWiringError, with_turn_engine
from voxline.processor import Processor

__all__ = ["EngineUnavailable", "build_processors"]

logger = logging.getLogger("voxline.apps.voice_agent.factory")


class EngineUnavailable(RuntimeError):
    """An engine cannot be built; the message says which and what to install or set."""


def build_processors(settings: Settings, plan: EnginePlan) -> list[Processor]:
    """The middle of the pipeline, in order. Raises :class:`EngineUnavailable`."""
    if plan.problems:
        raise EngineUnavailable("; ".join(plan.problems))
    stt = _build("speech-to-text", plan.stt, _STT, settings)
    try:  # turn-taking (TURN_* settings): voxline.apps.voice_agent.turn_wiring
        stt = with_turn_engine(stt, settings)
    except TurnWiringError as exc:
        raise EngineUnavailable(str(exc)) from exc
    llm = _build("language model", plan.llm, _LLM, settings)
    aggregator = _aggregator()
    tts = _build("text-to-speech", plan.tts, _TTS, settings)
    # Tools and fallbacks (AGENT_TOOLS, LLM_FALLBACK, TTS_FALLBACK): voxline.apps.voice_agent.tools.
    try:
        attach_tools(llm, load_agent_tools(settings.agent_tools))
    except AgentToolsError as exc:
        raise EngineUnavailable(str(exc)) from exc
    llm_fallback, tts_fallback = settings.llm_fallback, settings.tts_fallback
    if llm_fallback and llm_fallback != plan.llm:
        llm = with_fallback("llm", llm, lambda: _build("language model", llm_fallback, _LLM, settings))
    if tts_fallback and tts_fallback != plan.tts:
        tts = with_fallback("tts", tts, lambda: _build("text-to-speech", tts_fallback, _TTS, settings))
    return [*stt, *llm, aggregator, *tts]


Builder = Callable[[Settings], list[Processor]]


def _build(stage: str, engine: str, builders: dict[str, Builder], settings: Settings) -> list[Processor]:
    builder = builders.get(engine)
    if builder is None:
        raise EngineUnavailable(f"no {stage} engine called {engine!r}")
    try:
        return builder(settings)
    except ImportError as exc:
        hint = "pip install 'voxline[local]'" if engine in ("local", "echo") else "pip install voxline"
        if engine == "openai":
            hint = "pip install 'voxline[openai]'"
        raise EngineUnavailable(f"the {engine} {stage} engine is not installed ({exc}); {hint}") from exc
    except EngineUnavailable:
        raise
    except Exception as exc:
        logger.exception("building the %s %s engine failed", engine, stage)
        raise EngineUnavailable(f"the {engine} {stage} engine could not be built: {exc}") from exc


def _load(module: str, name: str) -> Any:
    """Import ``module.name`` now (engines are optional; an ImportError becomes EngineUnavailable)."""
    return getattr(importlib.import_module(module), name)


def _key(secret: Any) -> str:
    return str(secret) if secret is not None else ""


# --- speech to text ------------------------------------------------------------------------------------------


def _deepgram_stt(s: Settings) -> list[Processor]:
    DeepgramSTT = _load("voxline.processors.deepgram", "DeepgramSTT")

    # Without the turn engine (TURN_ENGINE=off) no local VAD runs in front of Deepgram, so its results drive the
    # user's speaking events (and the end-of-speech time the voice-to-voice metric starts from); with it,
    # turn_wiring puts Silero in front and turns these off.
    return [
        DeepgramSTT(
            api_key=_key(s.deepgram_api_key),
            base_url=s.deepgram_base_url,
            model=s.deepgram_stt_model,
            language=s.stt_language,
            vad_events=True,
            speaking_frames=True,
        )
    ]


def _local_stt(s: Settings) -> list[Processor]:
    PocketsphinxSTTProcessor = _load("voxline.processors.local", "PocketsphinxSTTProcessor")
    VADProcessor = _load("voxline.processors.vad", "VADProcessor")

    return [VADProcessor(), PocketsphinxSTTProcessor()]


# --- language model ------------------------------------------------------------------------------------------


def _gemini(s: Settings) -> list[Processor]:
    GeminiLLM = _load("voxline.processors.gemini", "GeminiLLM")

    return [
        GeminiLLM(
            api_key=_key(s.gemini_api_key),
            base_url=s.gemini_base_url,
            model=s.gemini_model,
            system_prompt=s.system_prompt,
        )
    ]


def _openai(s: Settings) -> list[Processor]:
    OpenAILLM = _load("voxline.processors.openai_compat", "OpenAILLM")

    return [
        OpenAILLM(
            api_key=_key(s.openai_api_key) or None,
            base_url=s.openai_base_url,
            model=s.openai_model,
            system_prompt=s.system_prompt,
        )
    ]


def _echo(s: Settings) -> list[Processor]:
    EchoLLMProcessor = _load("voxline.processors.local", "EchoLLMProcessor")

    return [EchoLLMProcessor()]


# --- text to speech ------------------------------------------------------------------------------------------


def _deepgram_tts(s: Settings) -> list[Processor]:
    # The streaming WebSocket is the default (one socket per session, lowest time to first audio); REST (one
    # request per sentence) is the fallback for networks that will not keep a WebSocket open.
    name = "DeepgramRESTTTS" if s.deepgram_tts_transport == "rest" else "DeepgramTTS"
    TTS = _load("voxline.processors.deepgram", name)

    return [TTS(api_key=_key(s.deepgram_api_key), base_url=s.deepgram_base_url, voice=s.deepgram_tts_voice)]


def _local_tts(s: Settings) -> list[Processor]:
    EspeakTTSProcessor = _load("voxline.processors.local", "EspeakTTSProcessor")

    return [EspeakTTSProcessor()]


def _aggregator() -> Processor:
    from voxline.aggregation import SentenceAggregator, clean_for_speech

    # Models write Markdown even when asked not to: the voice must not read "asterisk asterisk" aloud. Only
    # what goes to TTS is cleaned; the client's text_chunk messages keep the raw text (the page renders it).
    return SentenceAggregator(speech_filter=clean_for_speech)


_STT: dict[str, Builder] = {"deepgram": _deepgram_stt, "local": _local_stt}
_LLM: dict[str, Builder] = {"gemini": _gemini, "openai": _openai, "echo": _echo}
_TTS: dict[str, Builder] = {"deepgram": _deepgram_tts, "local": _local_tts}
