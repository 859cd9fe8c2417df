"""Which engine runs each stage: the cloud provider when its key is set, the local one otherwise.

``STT_PROVIDER``, ``LLM_PROVIDER`` and ``TTS_PROVIDER`` may name an engine or say ``auto`` (the default):

* STT: ``deepgram`` if ``DEEPGRAM_API_KEY`` is set, else ``local`` (VAD + pocketsphinx).
* LLM: ``gemini`` if ``GEMINI_API_KEY`` is set, else ``openai`` if ``OPENAI_API_KEY`` or ``OPENAI_BASE_URL``
  is set (any OpenAI-compatible server), else ``echo`` (repeats what it heard: the offline demo).
* TTS: ``deepgram`` if ``DEEPGRAM_API_KEY`` is set, else ``local`` (espeak-ng).

The plan is pure: it reads settings and nothing else, so the choice is testable without any engine installed.
Whether an engine can actually be *built* (its key present, its package installed) is found out when a
session builds its pipeline; a stage that was explicitly requested without its key is a ``problem`` the
client hears about.
"""

from __future__ import annotations

import attrs
from voxline.apps.voice_agent.config import Settings

__all__ = ["CLOUD", "EnginePlan", "plan_engines"]

CLOUD = {"stt": ("deepgram",), "llm": ("gemini", "openai"), "tts": ("deepgram",)}


@attrs.frozen(kw_only=True)
class EnginePlan:
    stt: str
    llm: str
    tts: str
    missing: tuple[str, ...] = ()
    """Environment variables to set for the full (cloud) agent."""
    problems: tuple[str, ...] = ()
    """Requested engines that cannot be built as configured (each names what is missing)."""

    @property
    def engines(self) -> dict[str, str]:
        return {"stt": self.stt, "llm": self.llm, "tts": self.tts}

    @property
    def offline_demo(self) -> bool:
        """True when any stage is not a cloud provider."""
        return any(engine not in CLOUD[stage] for stage, engine in self.engines.items())


def plan_engines(settings: Settings) -> EnginePlan:
    has_deepgram = settings.deepgram_api_key is not None
    has_gemini = settings.gemini_api_key is not None
    has_openai = settings.openai_api_key is not None or settings.openai_base_url is not None
    problems: list[str] = []

    stt = settings.stt_provider
    if stt == "auto":
        stt = "deepgram" if has_deepgram else "local"
    elif stt == "deepgram" and not has_deepgram:
        problems.append("STT_PROVIDER=deepgram needs DEEPGRAM_API_KEY")

    llm = settings.llm_provider
    if llm == "auto":
        llm = "gemini" if has_gemini else "openai" if has_openai else "echo"
    elif llm == "gemini" and not has_gemini:
        problems.append("LLM_PROVIDER=gemini needs GEMINI_API_KEY")
    elif llm == "openai" and not has_openai:
        problems.append("LLM_PROVIDER=openai needs OPENAI_API_KEY (or OPENAI_BASE_URL for a keyless local server)")

    tts = settings.tts_provider
    if tts == "auto":
        tts = "deepgram" if has_deepgram else "local"
    elif tts == "deepgram" and not has_deepgram:
        problems.append("TTS_PROVIDER=deepgram needs DEEPGRAM_API_KEY")

    missing: list[str] = []
    if not has_deepgram:
        missing.append("DEEPGRAM_API_KEY")
    if not has_gemini and llm != "openai":
        missing.append("GEMINI_API_KEY")
    return EnginePlan(stt=stt, llm=llm, tts=tts, missing=tuple(missing), problems=tuple(problems))
