"""Deepgram providers: Nova-3 live speech-to-text and Aura text-to-speech (WebSocket, or REST as a fallback).

* :class:`DeepgramSTT` — live STT over ``listen.v1.connect`` with keepalive, reconnect and replay.
* :class:`DeepgramTTS` — Aura over one speak WebSocket per session (Speak/Flush/Clear/Close).
* :class:`DeepgramRESTTTS` — Aura over streaming REST, one request per sentence: the fallback.

Configuration: ``api_key=`` / ``DEEPGRAM_API_KEY`` and ``base_url=`` / ``DEEPGRAM_BASE_URL`` (see
``docs/providers.md``). Offline tests run these against :class:`voxline.testing.fakes.deepgram.FakeDeepgram`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from voxline.lazy import lazy_exports

__all__ = ["DeepgramRESTTTS", "DeepgramSTT", "DeepgramTTS"]

_EXPORTS = {
    "DeepgramSTT": "voxline.processors.deepgram.stt",
    "DeepgramTTS": "voxline.processors.deepgram.tts",
    "DeepgramRESTTTS": "voxline.processors.deepgram.rest",
}

if TYPE_CHECKING:
    from voxline.processors.deepgram.rest import DeepgramRESTTTS
    from voxline.processors.deepgram.stt import DeepgramSTT
    from voxline.processors.deepgram.tts import DeepgramTTS


__getattr__ = lazy_exports(__name__, _EXPORTS)
