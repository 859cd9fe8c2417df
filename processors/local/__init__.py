"""Local (offline) engines: speech in and out with no API key and no network, from pip alone.

* :class:`PocketsphinxSTTProcessor` — streaming speech-to-text with pocketsphinx (its wheel bundles an
  English model). Put a :class:`voxline.processors.vad.VADProcessor` in front of it: the VAD decides where a
  turn ends.
* :class:`EspeakTTSProcessor` — text-to-speech with espeak-ng through the ``espeakng-loader`` wheel
  (espeak-ng is GPL-3.0; see docs/local-engines.md).
* :class:`EchoLLMProcessor` — a clearly labelled offline stand-in for an LLM: it repeats what it heard.

Install with ``pip install 'voxline[local]'``. The names are imported lazily, so importing this package does
not load any engine.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

__all__ = ["EchoLLMProcessor", "EspeakTTSProcessor", "PocketsphinxSTTProcessor", "preload", "require"]

_EXPORTS = {
    "EchoLLMProcessor": "voxline.processors.local.echo",
    "EspeakTTSProcessor": "voxline.processors.local.tts",
    "PocketsphinxSTTProcessor": "voxline.processors.local.stt",
}

if TYPE_CHECKING:
    from voxline.processors.local.echo import EchoLLMProcessor
    from voxline.processors.local.stt import PocketsphinxSTTProcessor
    from voxline.processors.local.tts import EspeakTTSProcessor


def require(module: str) -> ModuleType:
    """Import one of the local engines, or fail with an error that says how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"the local speech engines need the package providing {module!r}: pip install 'voxline[local]'"
        ) from exc


async def preload(*, stt: bool = True, vad: bool = True, tts: bool = True) -> None:
    """Load the local engines now (e.g. when a server starts), so the first session does not wait for them.

    Each model is loaded in a worker thread and parked in its pool, where the first session picks it up:
    pocketsphinx takes about 0.5 s to load, Silero 0.1-0.2 s, espeak-ng a few milliseconds.
    """
    if stt:
        from voxline.processors.local.stt import _pool

        pool = _pool()
        if not pool.idle:
            pool.release(await pool.acquire())
    if vad:
        from voxline.processors.vad import _MODELS

        if not _MODELS.idle:
            _MODELS.release(await _MODELS.acquire())
    if tts:
        from voxline.processors.local.espeak import ENGINE

        await ENGINE.run(ENGINE.set_voice, "en-us", 175, 50)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'voxline.processors.local' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
