"""Deepgram Aura text-to-speech over streaming REST (``POST /v1/speak``): the fallback to the WebSocket.

One request per ``SpeakTextFrame`` (a text over Deepgram's 2000-character limit takes several); the body
streams raw linear16 at 24 kHz (``container=none``) and every chunk is pushed as it arrives, so the first
audio of a reply waits only for its first sentence. An interrupt
cancels the request in flight (the base cancels the worker; cancelling the read closes the HTTP stream). The
SDK never retries a streaming request, and neither does this stage: a failed sentence is reported and the
next one is tried. Requests go through the process's shared Deepgram client (one keep-alive pool for every
session; 30 s per read and 5 s to connect unless ``timeout`` says otherwise), which the stage never closes.
Errors are worded from the status code, without the SDK's exception text (no key).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from voxline.frames import SettingsFrame
from voxline.processors.deepgram._common import (
    REST_READ_TIMEOUT,
    deepgram_client,
    describe_failure,
    resolve_config,
    speak_pieces,
)
from voxline.processors.deepgram.provider import TTS_VOICE
from voxline.tts import TTSProcessor

__all__ = ["DeepgramRESTTTS"]


class DeepgramRESTTTS(TTSProcessor):
    """Aura TTS, one streaming REST request per sentence. ``voice`` is any Aura-1/Aura-2 model name."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        voice: str = TTS_VOICE.default,
        sample_rate: int = 24000,
        speed: float | None = None,
        timeout: float = REST_READ_TIMEOUT,
        drain_timeout: float = 30.0,
        name: str | None = None,
    ) -> None:
        super().__init__(sample_rate=sample_rate, drain_timeout=drain_timeout, name=name)
        self._api_key, self.base_url = resolve_config(api_key, base_url)
        self.voice = voice
        self.speed = speed
        self.timeout = timeout

    def request_options(self, text: str) -> dict[str, Any]:
        """Keyword arguments of ``speak.v1.audio.generate`` for ``text``."""
        opts: dict[str, Any] = {
            "text": text,
            "model": self.voice,
            "encoding": "linear16",
            "sample_rate": self.sample_rate,
            "container": "none",
        }
        if self.speed is not None:
            opts["speed"] = self.speed
        return opts

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        client = deepgram_client(self._api_key, self.base_url)
        timeout = {} if self.timeout == REST_READ_TIMEOUT else {"request_options": {"timeout_in_seconds": self.timeout}}
        try:
            for piece in speak_pieces(text):  # Deepgram refuses more than 2000 characters per request (413)
                async for chunk in client.speak.v1.audio.generate(**self.request_options(piece), **timeout):
                    yield chunk
        except Exception as exc:
            raise ConnectionError(describe_failure("Deepgram TTS (REST)", exc)) from None

    async def on_settings(self, settings: SettingsFrame) -> None:
        voice = settings.settings.get("voice")
        if isinstance(voice, str):
            self.voice = voice
