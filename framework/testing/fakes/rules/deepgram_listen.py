"""What Deepgram's live STT socket (``GET /v1/listen``) refuses: at the handshake, in the audio, and when idle.

Sources (Deepgram docs, developers.deepgram.com; the docs repository github.com/deepgram/deepgram-docs holds the
same pages under fern/docs/):

* [models] "Models & Languages Overview" and the API definition's ``ListenV1Model`` (deepgram-sdk 7.17
  ``types/listen_v1model.py``): the model names.
* [encoding] "Encoding": the raw encodings; "If you are using the Encoding feature, the Sample Rate feature is
  also required". [sample-rate] "Sample Rate": required with ``encoding`` for raw audio; ``amr-nb`` must be 8000,
  ``amr-wb`` 16000.
* [utterance-end] "Utterance End": "When using ``utterance_end_ms``, setting ``interim_results=true`` is also
  required."
* [endpointing] "Endpointing": an integer number of milliseconds, or ``false`` to disable it.
* [errors] "Errors": a failed handshake is HTTP 400 ``Bad Request`` with the reason in ``dg-error`` and the body;
  an unknown model is "No such model/language/tier combination found".
* [stt-net-data] "Troubleshooting WebSocket, DATA and NET errors": close 1008 ``DATA-0000`` when "the payload
  cannot be decoded as audio" ("check the audio data is not empty"); close 1011 ``NET-0001`` when no frame
  arrived within the timeout window: "Ensure audio is sent within 10 seconds of opening the connection ...
  Using KeepAlive messages alone will not prevent closure; you must send at least one audio message".
* [keep-alive] "Audio Keep Alive": no audio for 10 s closes the socket with ``NET-0001``; a KeepAlive extends it
  by another 10 s.

The wording of handshake errors other than the unknown model is the fake's own (Deepgram documents only that a
reason is given); the statuses and close codes are Deepgram's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from voxline.testing.fakes.rules import Close, Refusal

__all__ = ["ENCODINGS", "IDLE_TIMEOUT", "MODELS", "check_audio", "check_listen_query", "idle_deadline"]

MODELS = frozenset(
    {
        # [models] ListenV1Model (deepgram-sdk 7.17) and the overview page.
        *("nova-3", "nova-3-general", "nova-3-medical"),
        *("nova-2", "nova-2-general", "nova-2-meeting", "nova-2-finance", "nova-2-conversationalai"),
        *("nova-2-voicemail", "nova-2-video", "nova-2-medical", "nova-2-drivethru", "nova-2-automotive"),
        *("nova-2-phonecall", "nova-2-atc"),
        *("nova", "nova-general", "nova-phonecall", "nova-medical"),
        *("enhanced", "enhanced-general", "enhanced-meeting", "enhanced-phonecall", "enhanced-finance"),
        *("base", "base-general", "base-meeting", "base-phonecall", "base-finance", "base-conversationalai"),
        *("base-voicemail", "base-video", "meeting", "phonecall", "finance", "conversationalai", "voicemail", "video"),
        *("whisper", "whisper-tiny", "whisper-base", "whisper-small", "whisper-medium", "whisper-large"),
    }
)
_CUSTOM_MODEL = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")  # a custom model's id

ENCODINGS = frozenset(
    {"linear16", "linear32", "flac", "alaw", "mulaw", "amr-nb", "amr-wb", "opus", "ogg-opus", "speex", "g729"}
)
"""[encoding] the raw encodings (``ListenV1Encoding``)."""

_FIXED_RATE = {"amr-nb": 8000, "amr-wb": 16000}  # [sample-rate]
_BOOLEANS = ("interim_results", "punctuate", "smart_format", "vad_events", "diarize", "numerals", "multichannel")
_CONTAINERS = (b"RIFF", b"OggS", b"fLaC", b"ID3", b"\x1a\x45\xdf\xa3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")

IDLE_TIMEOUT = 10.0
"""[stt-net-data], [keep-alive] seconds."""


def check_listen_query(query: Mapping[str, str]) -> None:
    """Raise :class:`Refusal` (HTTP 400, reason for ``dg-error``) for a handshake Deepgram refuses."""
    model = query.get("model", "base")
    if model not in MODELS and not _CUSTOM_MODEL.match(model):
        raise Refusal(400, "Bad Request: No such model/language/tier combination found.")  # [errors]
    encoding = query.get("encoding")
    if encoding is not None:
        if encoding not in ENCODINGS:
            raise Refusal(400, f"Bad Request: unsupported encoding {encoding!r}.")  # [encoding]
        rate = query.get("sample_rate")
        if rate is None:
            raise Refusal(400, "Bad Request: sample_rate is required when encoding is set.")  # [encoding]
        if not _positive_int(rate):
            raise Refusal(400, f"Bad Request: sample_rate must be a positive integer, got {rate!r}.")
        fixed = _FIXED_RATE.get(encoding)
        if fixed is not None and int(rate) != fixed:
            raise Refusal(400, f"Bad Request: encoding={encoding} requires sample_rate={fixed}.")  # [sample-rate]
    channels = query.get("channels")
    if channels is not None and not _positive_int(channels):
        raise Refusal(400, f"Bad Request: channels must be a positive integer, got {channels!r}.")
    for name in _BOOLEANS:
        if query.get(name, "false") not in ("true", "false"):
            raise Refusal(400, f"Bad Request: {name} must be true or false, got {query[name]!r}.")
    endpointing = query.get("endpointing")
    if endpointing is not None and endpointing not in ("true", "false") and not _non_negative_int(endpointing):
        # [endpointing] milliseconds, or false.
        raise Refusal(400, f"Bad Request: endpointing must be a number of milliseconds or false, got {endpointing!r}.")
    utterance_end = query.get("utterance_end_ms")
    if utterance_end is not None:
        if not _positive_int(utterance_end):
            raise Refusal(
                400, f"Bad Request: utterance_end_ms must be a number of milliseconds, got {utterance_end!r}."
            )
        if query.get("interim_results") != "true":
            # [utterance-end] "setting interim_results=true is also required".
            raise Refusal(400, "Bad Request: utterance_end_ms requires interim_results=true.")


def check_audio(data: bytes, query: Mapping[str, str], *, first: bool) -> None:
    """Raise :class:`Close` (1008 ``DATA-0000``) for an audio message Deepgram cannot decode."""
    if not data:
        # [stt-net-data] "check the audio data is not empty"; the Keep Alive page warns that an empty byte
        # causes unexpected closures.
        raise Close(1008, "DATA-0000", "empty audio message")
    if first and "encoding" not in query and not data.startswith(_CONTAINERS):
        # Without ``encoding`` Deepgram expects containerised audio and must recognise the container from its
        # header; raw PCM without ``encoding`` cannot be decoded. [encoding], [stt-net-data]
        raise Close(1008, "DATA-0000", "the payload cannot be decoded as audio")


def idle_deadline(opened_at: float, first_audio_at: float | None, last_frame_at: float, timeout: float) -> float:
    """When Deepgram closes the socket 1011 ``NET-0001``: ``timeout`` after opening if no audio ever came (a
    KeepAlive alone does not count), else ``timeout`` after the last frame of any kind. [stt-net-data]"""
    if first_audio_at is None:
        return opened_at + timeout
    return last_frame_at + timeout


def _positive_int(text: str) -> bool:
    return text.isdigit() and int(text) > 0


def _non_negative_int(text: str) -> bool:
    return text.isdigit()
