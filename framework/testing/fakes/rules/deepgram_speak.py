"""What Deepgram's Aura TTS refuses: the speak socket (``GET /v1/speak``) and REST (``POST /v1/speak``).

Sources (developers.deepgram.com; github.com/deepgram/deepgram-docs fern/docs/ holds the same pages):

* [voices] "TTS Models" and the API definition's ``SpeakV1Model`` (deepgram-sdk 7.17 ``types/speak_v1model.py``):
  the Aura-1 and Aura-2 voice names.
* [formats] "Media Output Settings", "Audio Format Combinations": streaming supports ``linear16``, ``mulaw`` and
  ``alaw`` only, with sample rates linear16 8000/16000/24000/32000/48000 and mulaw/alaw 8000/16000, and no
  container (container and bit rate are REST only); REST adds mp3 (22050 Hz, bit rate 32000/48000), opus (ogg,
  48000 Hz), flac (8000-48000) and aac (22050 Hz); containers: linear16/mulaw/alaw ``wav`` or ``none``, opus
  ``ogg``, the others none.
* [errors] "Errors", Text to Speech: unknown model → 400 "Bad Request: No such model/version combination
  found."; bad format → 400 ``INVALID_QUERY_PARAMETER`` "Unsupported audio format: ..."; empty text → 400
  "Input text contains no characters."; too long → 413 "Input text exceeds maximum character limit of 2000."
  (the API reference's example; the errors page says 2400 — the fake uses the stricter 2000, which is also the
  figure of the TTS latency guide).
* [ws-limits] "Streaming Text to Speech" getting started, Limits: "The input limit is currently 2000 characters
  for the text input of each Speak message".
* [flush] "Flush" (https://developers.deepgram.com/docs/tts-ws-flush), Limits: Flush can be sent at most 20 times
  every 60 seconds; after that the client receives a warning that no more Flush messages can be processed until
  the 60-second window has passed. So an excess Flush is refused, not an error: a ``Warning``, no audio and no
  ``Flushed`` for it; its text stays in the buffer and goes with the next Flush that is processed. The page
  gives neither the warning's wording nor its code (the fake's are its own), nor whether refused Flushes count
  towards the window (the fake counts the processed ones, over a sliding window).
* [tts-net-data] "TTS Troubleshooting WebSocket, NET, and DATA Errors": close 1003 ``MESSAGE-0000`` (a message
  type that is not text), 1008 ``DATA-0000`` (not a valid command), 1009 ``BIG-0001`` (input text has too many
  characters).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping
from typing import Any

from voxline.testing.fakes.rules import Close, Refusal

__all__ = [
    "FLUSH_LIMIT",
    "FLUSH_LIMIT_WARNING",
    "FLUSH_WINDOW",
    "MAX_TEXT",
    "VOICES",
    "check_message",
    "check_rest",
    "check_speak_query",
    "flush_refused",
]

_AURA_1 = "angus arcas asteria athena helios hera luna orion orpheus perseus stella zeus"
_AURA_2 = {
    "en": (
        "amalthea andromeda apollo arcas aries asteria athena atlas aurora callista cora cordelia delia draco "
        "electra harmonia helena hera hermes hyperion iris janus juno jupiter luna mars minerva neptune odysseus "
        "ophelia orion orpheus pandora phoebe pluto saturn selene thalia theia vesta zeus"
    ),
    "es": (
        "agustina alvaro antonia aquila carina celeste diana estrella gloria javier luciano nestor olivia selena "
        "silvia sirio valerio"
    ),
    "de": "aurelia elara fabian julius kara lara viktoria",
    "nl": "beatrix cornelia daphne hestia lars leda rhea roman sander",
    "fr": "agathe hector",
    "it": "cesare cinzia demetra dionisio elio flavio livia maia melia",
    "ja": "ama ebisu fujin izanami uzume",
}
VOICES = frozenset(
    {f"aura-{name}-en" for name in _AURA_1.split()}
    | {f"aura-2-{name}-{lang}" for lang, names in _AURA_2.items() for name in names.split()}
)
"""[voices] every Aura-1 and Aura-2 model name."""

_STREAM_RATES = {"linear16": {8000, 16000, 24000, 32000, 48000}, "mulaw": {8000, 16000}, "alaw": {8000, 16000}}
_REST_RATES: dict[str, set[int] | None] = {**_STREAM_RATES, "flac": {8000, 16000, 22050, 32000, 48000}}
_REST_RATES |= {"mp3": None, "opus": None, "aac": None}  # [formats] not configurable
_CONTAINERS = {"linear16": {"wav", "none"}, "mulaw": {"wav", "none"}, "alaw": {"wav", "none"}, "opus": {"ogg"}}

MAX_TEXT = 2000
"""[ws-limits], [errors] characters per Speak message / REST request."""
FLUSH_LIMIT, FLUSH_WINDOW = 20, 60.0
"""[flush] Flushes processed per window (seconds) on one socket; more are refused with a Warning."""
FLUSH_LIMIT_WARNING = {
    "type": "Warning",
    "description": "Flush limit reached: no more Flush messages are processed until the 60-second window has passed.",
    "code": "FLUSH_LIMIT_EXCEEDED",
}
"""[flush] what a refused Flush gets (the shape of the SDK's ``SpeakV1Warning``; wording and code are the fake's)."""


def flush_refused(processed: deque[float], now: float) -> bool:
    """[flush] Whether Deepgram refuses a Flush at ``now``: :data:`FLUSH_LIMIT` Flushes were processed on the
    socket in the last :data:`FLUSH_WINDOW` seconds. ``processed`` (their times, oldest first) is pruned."""
    while processed and now - processed[0] >= FLUSH_WINDOW:
        processed.popleft()
    return len(processed) >= FLUSH_LIMIT


def check_speak_query(query: Mapping[str, str]) -> None:
    """Raise :class:`Refusal` for a speak-socket handshake Deepgram refuses (HTTP 400, reason in ``dg-error``)."""
    _check_voice(query)
    encoding = query.get("encoding", "linear16")
    rates = _STREAM_RATES.get(encoding)
    if rates is None:
        raise Refusal(400, f"Unsupported audio format: encoding={encoding} is not supported for streaming")  # [formats]
    rate = query.get("sample_rate", "24000" if encoding == "linear16" else "8000")
    if not rate.isdigit() or int(rate) not in rates:
        raise Refusal(400, f"Unsupported audio format: sample_rate={rate} is invalid when encoding={encoding}")
    if "container" in query or "bit_rate" in query:
        # [formats] container and bit rate are REST-only settings.
        raise Refusal(400, "Unsupported audio format: container and bit_rate are not applicable to streaming")


def check_rest(query: Mapping[str, str], body: Any) -> str:
    """The text of a REST request Deepgram accepts; raise :class:`Refusal` otherwise (its status and wording)."""
    _check_voice(query)
    encoding = query.get("encoding", "linear16")  # [formats] REST default linear16 in a wav container
    if encoding not in _REST_RATES:
        raise Refusal(400, f"Unsupported audio format: encoding={encoding}", code="INVALID_QUERY_PARAMETER")
    container = query.get("container")
    allowed = _CONTAINERS.get(encoding)
    if container is not None:
        if allowed is None and container != "none":
            message = f"`container` is not applicable when `encoding={encoding}`"  # [errors] wording
            raise Refusal(400, f"Unsupported audio format: {message}", code="INVALID_QUERY_PARAMETER")
        if allowed is not None and container not in allowed:
            message = f"`container={container}` is invalid when `encoding={encoding}`"  # [errors] wording
            raise Refusal(400, f"Unsupported audio format: {message}", code="INVALID_QUERY_PARAMETER")
    rate, rates = query.get("sample_rate"), _REST_RATES[encoding]
    if rate is not None and (rates is None or not rate.isdigit() or int(rate) not in rates):
        message = f"`sample_rate={rate}` is invalid when `encoding={encoding}`"
        raise Refusal(400, f"Unsupported audio format: {message}", code="INVALID_QUERY_PARAMETER")
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(text, str):
        raise Refusal(400, "Failed to deserialize the JSON body into the target type: missing field `text`")
    if not text.strip():
        raise Refusal(400, "Input text contains no characters.", code="Bad Request")  # [errors]
    if len(text) > MAX_TEXT:
        raise Refusal(413, f"Input text exceeds maximum character limit of {MAX_TEXT}.", code="Payload Too Large")
    return text


def check_message(message: str | bytes) -> dict[str, Any]:
    """A client message on the speak socket, decoded; raise :class:`Close` for one Deepgram ends the session on."""
    if isinstance(message, bytes):
        raise Close(1003, "MESSAGE-0000", "binary messages are not supported")  # [tts-net-data]
    try:
        data = json.loads(message)
    except ValueError:
        raise Close(1008, "DATA-0000", "the message is not valid JSON") from None  # [tts-net-data]
    if not isinstance(data, dict) or data.get("type") not in ("Speak", "Flush", "Clear", "Close"):
        raise Close(1008, "DATA-0000", "not a valid command")  # [tts-net-data]
    if data["type"] == "Speak":
        text = data.get("text")
        if not isinstance(text, str):
            raise Close(1008, "DATA-0000", "Speak needs a text string")
        if len(text) > MAX_TEXT:
            raise Close(1009, "BIG-0001", f"input text has more than {MAX_TEXT} characters")  # [ws-limits]
    return data


def _check_voice(query: Mapping[str, str]) -> None:
    model = query.get("model", "aura-asteria-en")  # [voices] the default voice
    if model not in VOICES:
        raise Refusal(400, "Bad Request: No such model/version combination found.", code="Bad Request")  # [errors]
