"""Local (offline) engines: speech in and out with no API key and no network, from pip alone.

* :class:`PocketsphinxSTT` — streaming speech-to-text with pocketsphinx (its wheel bundles an
  English model). Put a :class:`voxline.processors.vad.SileroVAD` in front of it: the VAD decides where a
  turn ends.
* :class:`EspeakTTS` — text-to-speech with espeak-ng through the ``espeakng-loader`` wheel
  (espeak-ng is GPL-3.0; see docs/local-engines.md).
* :class:`WhisperSTT` — whisper tiny.en (faster-whisper; the model ships in a pinned wheel): far
  fewer wrong words than pocketsphinx, finals at the end of the turn, live interims from pocketsphinx.
* :class:`PiperTTS` — a natural neural voice with piper (GPL-3.0, like espeak-ng).
* :class:`EchoLLM` — a clearly labelled offline stand-in for an LLM: it repeats what it heard.
* :func:`best_local_stt` / :func:`best_local_tts` — whisper and piper when their packages are installed,
  pocketsphinx and espeak-ng otherwise (with a log line saying what is missing).

Install with ``pip install 'voxline[local]'``. The names are imported lazily, so importing this package does
not load any engine.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

from voxline.lazy import lazy_exports

__all__ = [
    "EchoLLM",
    "EspeakTTS",
    "PiperTTS",
    "PocketsphinxSTT",
    "WhisperSTT",
    "best_local_stt",
    "best_local_tts",
    "preload",
    "require",
]

_EXPORTS = {
    "EchoLLM": "voxline.processors.local.echo",
    "EspeakTTS": "voxline.processors.local.tts",
    "PiperTTS": "voxline.processors.local.piper",
    "PocketsphinxSTT": "voxline.processors.local.stt",
    "WhisperSTT": "voxline.processors.local.whisper",
    "best_local_stt": "voxline.processors.local.choose",
    "best_local_tts": "voxline.processors.local.choose",
}

if TYPE_CHECKING:
    from voxline.processors.local.choose import best_local_stt, best_local_tts
    from voxline.processors.local.echo import EchoLLM
    from voxline.processors.local.piper import PiperTTS
    from voxline.processors.local.stt import PocketsphinxSTT
    from voxline.processors.local.tts import EspeakTTS
    from voxline.processors.local.whisper import WhisperSTT


def require(module: str) -> ModuleType:
    """Import one of the local engines, or fail with an error that says how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"the local speech engines need the package providing {module!r}: pip install 'voxline[local]'"
        ) from exc


async def preload(*, stt: bool | str = True, vad: bool = True, tts: bool | str = True) -> None:
    """Load the local engines now (e.g. when a server starts), so the first session does not wait for them.

    ``stt``: ``"pocketsphinx"`` (or True), ``"whisper"`` or False; ``tts``: ``"espeak"`` (or True),
    ``"piper"`` or False. Each model is loaded in a worker thread and parked in its pool or engine, where the
    first session picks it up: pocketsphinx takes about 0.5 s to load, whisper 0.5-1 s (plus its pocketsphinx
    interim decoder and a second Silero), Silero 0.1-0.2 s, piper 0.5-1.5 s, espeak-ng a few milliseconds.
    """
    stt_engine = "pocketsphinx" if stt is True else stt or None
    tts_engine = "espeak" if tts is True else tts or None
    if stt_engine not in (None, "pocketsphinx", "whisper") or tts_engine not in (None, "espeak", "piper"):
        raise ValueError(f"preload: unknown engine stt={stt!r} / tts={tts!r}")
    if stt_engine == "whisper":
        from voxline.processors.local.interims import interim_decoders
        from voxline.processors.local.whisper_engine import WhisperEngine
        from voxline.processors.vad import SILERO_MODELS

        await WhisperEngine.shared().load()
        pools = [interim_decoders()]
        silero = [await SILERO_MODELS.acquire() for _ in range(2)]  # one for the VAD, one for the speculation
        for model in silero:
            SILERO_MODELS.release(model)
    elif stt_engine == "pocketsphinx":
        from voxline.processors.local.stt import decoder_pool

        pools = [decoder_pool()]
    else:
        pools = []
    for pool in pools:
        if not pool.idle:
            pool.release(await pool.acquire())
    if vad:
        from voxline.processors.vad import SILERO_MODELS

        if not SILERO_MODELS.idle:
            SILERO_MODELS.release(await SILERO_MODELS.acquire())
    if tts_engine == "piper":
        from voxline.processors.local.piper import PiperEngine

        await PiperEngine.shared().load()
    elif tts_engine == "espeak":
        from voxline.processors.local.espeak import ENGINE

        await ENGINE.run(ENGINE.set_voice, "en-us", 175, 50)


__getattr__ = lazy_exports(__name__, _EXPORTS)
