"""The Deepgram providers' declarations: ``STT_PROVIDER=deepgram`` (Nova-3 live) and ``TTS_PROVIDER=deepgram``
(Aura, over a WebSocket or REST). Nothing is imported from the SDK until a stage is built or checked."""

from __future__ import annotations

from typing import TYPE_CHECKING

from voxline.registry import Probe, Provider, Values
from voxline.registry.provider import shows
from voxline.registry.settings import Setting, choice, secret, text, url

if TYPE_CHECKING:
    from voxline.processor import Processor

__all__ = [
    "API_KEY",
    "BASE_URL",
    "DEEPGRAM_STT",
    "DEEPGRAM_TTS",
    "STT_LANGUAGE",
    "STT_MODEL",
    "TTS_TRANSPORT",
    "TTS_VOICE",
]

API_KEY = Setting(
    "DEEPGRAM_API_KEY",
    secret(),
    None,
    "Deepgram key: live STT (Nova-3) and Aura TTS.",
    role="key",
    mentions=("credentials", "api key"),
)
BASE_URL = Setting(
    "DEEPGRAM_BASE_URL",
    url(),
    None,
    "Base URL for Deepgram (a proxy, a regional endpoint, or the test fake).",
    default_doc="the real service",
    role="endpoint",
)
STT_MODEL = Setting(
    "DEEPGRAM_STT_MODEL", text(), "nova-3", "Deepgram live STT model.", role="model", mentions=("model",)
)
STT_LANGUAGE = Setting("STT_LANGUAGE", text(), "en", "Language sent to Deepgram STT.", mentions=("language",))
TTS_VOICE = Setting(
    "DEEPGRAM_TTS_VOICE",
    text(),
    "aura-asteria-en",
    "Deepgram Aura voice: any Aura-1 (`aura-*-en`) or Aura-2 (`aura-2-*-en`) model name.",
    role="model",
    mentions=("model", "voice"),
)
TTS_TRANSPORT = Setting(
    "DEEPGRAM_TTS_TRANSPORT",
    choice("websocket", "rest"),
    "websocket",
    "How Aura TTS is reached: `websocket` (one streaming socket per session, the fastest first audio) or `rest` "
    "(one streaming `POST /v1/speak` per sentence, for networks that will not keep a WebSocket open).",
)


def _key(values: Values) -> str:
    key = values[API_KEY]
    return str(key) if key is not None else ""


def build_stt(values: Values) -> list[Processor]:
    from voxline.processors.deepgram.stt import DeepgramSTT

    # Without a local VAD in front of Deepgram its results drive the user's speaking events (and the
    # end-of-speech time the voice-to-voice metric starts from); the voice agent's turn engine puts Silero in
    # front and turns these off (voxline.apps.voice_agent.turn_wiring).
    return [
        DeepgramSTT(
            api_key=_key(values),
            base_url=values[BASE_URL],
            model=values[STT_MODEL],
            language=values[STT_LANGUAGE],
            vad_events=True,
            speaking_frames=True,
        )
    ]


def build_tts(values: Values) -> list[Processor]:
    # The streaming WebSocket is the default (one socket per session, lowest time to first audio); REST (one
    # request per sentence) is the fallback for networks that will not keep a WebSocket open.
    if values[TTS_TRANSPORT] == "rest":
        from voxline.processors.deepgram.rest import DeepgramRESTTTS

        return [DeepgramRESTTTS(api_key=_key(values), base_url=values[BASE_URL], voice=values[TTS_VOICE])]
    from voxline.processors.deepgram.tts import DeepgramTTS

    return [DeepgramTTS(api_key=_key(values), base_url=values[BASE_URL], voice=values[TTS_VOICE])]


async def _check_stt(values: Values) -> Probe:
    from voxline.processors.deepgram.check import listen_round_trip

    return await listen_round_trip(values)


async def _check_tts(values: Values) -> Probe:
    from voxline.processors.deepgram.check import speak_round_trip

    return await speak_round_trip(values)


DEEPGRAM_STT = Provider(
    stage="stt",
    name="deepgram",
    title="Deepgram Nova-3 live STT",
    build=build_stt,
    settings=(API_KEY, BASE_URL, STT_MODEL, STT_LANGUAGE),
    cloud=True,
    needs=(API_KEY,),
    describe=shows(model=STT_MODEL, language=STT_LANGUAGE),
    check=_check_stt,
)

DEEPGRAM_TTS = Provider(
    stage="tts",
    name="deepgram",
    title="Deepgram Aura",
    build=build_tts,
    settings=(API_KEY, BASE_URL, TTS_VOICE, TTS_TRANSPORT),
    cloud=True,
    needs=(API_KEY,),
    describe=shows(model=TTS_VOICE, transport=TTS_TRANSPORT),
    check=_check_tts,
)
