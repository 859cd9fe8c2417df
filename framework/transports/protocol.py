"""The voice agent's WebSocket wire protocol: parsing what a client sends and building what it receives.

The protocol (``docs/protocol.md``): JSON text messages ``{"type": ..., "data": ...}``.
Inbound ``audio`` (base64 16 kHz mono Int16) and ``interrupt``; outbound ``status``, ``transcript``,
``text_chunk``, ``audio`` (base64 24 kHz mono Int16) and ``error``. voxline adds, without changing any of
those: inbound ``text`` (a typed user turn), ``config`` (opt in to raw binary audio frames), ``played`` (how
much of the bot's audio the client has played), and outbound ``session``, ``metrics``, ``speaking`` and
``playback``.

Parsing never raises anything but :class:`ProtocolError`, whose message is what the client is told; the
session carries on. It is bounded: a message's size, its nesting depth (a few thousand ``[`` would otherwise
exhaust the JSON decoder's recursion), the length of a typed turn; ``NaN``/``Infinity`` (not JSON) are refused,
and lone surrogates in a typed turn are replaced with U+FFFD (no provider could encode them). Outbound text goes
through :func:`encodable` before the socket, so a lone surrogate never turns a message into an encoding error.

Building outbound messages is plain string work: audio is the hot path (one message per
TTS chunk), so its JSON is assembled directly instead of going through ``json.dumps``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

import attrs

__all__ = [
    "MAX_MESSAGE_BYTES",
    "AudioIn",
    "ConfigIn",
    "Inbound",
    "InterruptIn",
    "PlayedIn",
    "ProtocolError",
    "ProtocolParser",
    "TextIn",
    "audio_message",
    "encodable",
    "error_message",
    "event_message",
    "playback_message",
    "status_message",
    "text_chunk_message",
    "transcript_message",
]

MAX_MESSAGE_BYTES = 1 << 20
"""Largest inbound message accepted (1 MiB, about 24 s of base64 16 kHz audio). Bigger ones get an error."""

MAX_TEXT_CHARS = 10_000
"""Longest typed turn accepted, in characters (a long paragraph). Longer ones get an error."""

MAX_DEPTH = 8
"""Deepest nesting of arrays/objects a client message may have (the protocol itself needs 2)."""

INBOUND_TYPES = ("audio", "interrupt", "text", "config", "played")
_AUDIO_PREFIX = '{"type":"audio","data":"'
_AUDIO_PREFIX_SPACED = '{"type": "audio", "data": "'


class ProtocolError(ValueError):
    """A client message that cannot be used. ``str(error)`` is sent to the client as an ``error`` message."""


@attrs.frozen(slots=True)
class AudioIn:
    """Microphone audio: 16 kHz mono Int16 little-endian PCM (an even number of bytes, maybe empty)."""

    pcm: bytes


@attrs.frozen(slots=True)
class InterruptIn:
    """The user barged in: stop the reply."""


@attrs.frozen(slots=True)
class TextIn:
    """A typed user turn."""

    text: str


@attrs.frozen(slots=True)
class ConfigIn:
    """Per-session options. ``binary_audio`` allows raw binary audio frames from then on."""

    binary_audio: bool | None = None


@attrs.frozen(slots=True)
class PlayedIn:
    """The client has played ``seconds`` of the bot's audio of ``epoch`` (from the ``playback`` ``start`` that
    announced it)."""

    epoch: int
    seconds: float


Inbound = AudioIn | InterruptIn | TextIn | ConfigIn | PlayedIn


class ProtocolParser:
    """Turns one client message into an :data:`Inbound` value, or raises :class:`ProtocolError`.

    One parser per connection: it remembers whether the client opted in to binary audio frames.
    """

    __slots__ = ("binary_audio", "max_message_bytes", "max_text_chars")

    def __init__(
        self,
        *,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        max_text_chars: int = MAX_TEXT_CHARS,
        binary_audio: bool = False,
    ) -> None:
        if max_message_bytes <= 0:
            raise ValueError(f"max_message_bytes must be positive, got {max_message_bytes}")
        if max_text_chars <= 0:
            raise ValueError(f"max_text_chars must be positive, got {max_text_chars}")
        self.max_message_bytes = max_message_bytes
        self.max_text_chars = max_text_chars
        self.binary_audio = binary_audio

    def parse_bytes(self, data: bytes) -> Inbound:
        """A binary WebSocket frame: raw audio, allowed only once the client sent ``config`` binary_audio."""
        if not self.binary_audio:
            raise ProtocolError(
                'binary frames are not enabled; send {"type":"config","data":{"binary_audio":true}} first '
                'or send audio as {"type":"audio","data":"<base64>"}'
            )
        self._check_size(len(data))
        return AudioIn(_check_pcm(bytes(data)))

    def parse_text(self, text: str) -> Inbound:
        """A text WebSocket frame: one JSON message."""
        # A str of n characters holds at most 4n UTF-8 bytes; only count exactly when it could be too big.
        if len(text) * 4 > self.max_message_bytes:
            self._check_size(len(text.encode("utf-8", "surrogatepass")))
        prefix = _AUDIO_PREFIX if text.startswith(_AUDIO_PREFIX) else _AUDIO_PREFIX_SPACED
        if text.endswith('"}') and text.startswith(prefix):
            # The hot path: 50 audio messages a second per session, as JSON.stringify (or Python's json.dumps)
            # writes them. Strict base64 decoding rejects every character outside the alphabet (quotes and
            # backslashes included), so a message that decodes here is exactly {"type":"audio","data":"..."}.
            data = text[len(prefix) : -2]
            try:
                pcm = _b64decode(data)
            except (binascii.Error, ValueError):
                pass  # not that simple shape: the full parser below gives the precise error
            else:
                return AudioIn(_check_pcm(pcm))
        message = _loads(text)
        if not isinstance(message, dict):
            raise ProtocolError(f"message must be a JSON object, got {type(message).__name__}")
        kind = message.get("type")
        if kind == "audio":
            return AudioIn(_decode_audio(message.get("data")))
        if kind == "interrupt":
            return InterruptIn()
        if kind == "text":
            return TextIn(_text(message.get("data"), self.max_text_chars))
        if kind == "played":
            return _played(message.get("data"))
        if kind == "config":
            config = _config(message.get("data"))
            if config.binary_audio is not None:
                self.binary_audio = config.binary_audio
            return config
        if not isinstance(kind, str):
            raise ProtocolError('message needs a "type" string (one of: ' + ", ".join(INBOUND_TYPES) + ")")
        raise ProtocolError(f"unknown message type {kind[:40]!r}; expected one of: " + ", ".join(INBOUND_TYPES))

    def _check_size(self, size: int) -> None:
        if size > self.max_message_bytes:
            raise ProtocolError(f"message too large: {size} bytes (the limit is {self.max_message_bytes} bytes)")


_STRUCTURE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
"""A JSON string (skipped whole, so brackets inside text do not count) or one bracket."""


def _reject_constant(name: str) -> Any:
    raise ProtocolError(f"message is not valid JSON: {name} is not a JSON value")


def _loads(text: str) -> Any:
    """``json.loads`` bounded in depth, with every failure a :class:`ProtocolError`."""
    if text.count("[") + text.count("{") > MAX_DEPTH and _depth(text) > MAX_DEPTH:
        raise ProtocolError(f"message nests arrays/objects too deeply (the limit is {MAX_DEPTH} levels)")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ProtocolError:
        raise
    except RecursionError:  # a backstop: the depth check above should have refused it
        raise ProtocolError(f"message nests arrays/objects too deeply (the limit is {MAX_DEPTH} levels)") from None
    except ValueError as exc:  # JSONDecodeError, and int() refusing a number of more than 4300 digits
        raise ProtocolError(f"message is not valid JSON: {exc.args[0] if exc.args else exc}") from None


def _depth(text: str) -> int:
    """The deepest bracket nesting in ``text``, strings skipped (exact for valid JSON, a bound otherwise)."""
    depth = deepest = 0
    for match in _STRUCTURE.finditer(text):
        token = match[0]
        if token in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    return deepest
        elif token in "]}":
            depth -= 1
    return deepest


def _decode_audio(data: Any) -> bytes:
    if not isinstance(data, str):
        raise ProtocolError('audio "data" must be a base64 string of 16 kHz mono Int16 PCM')
    try:
        pcm = _b64decode(data)
    except (binascii.Error, ValueError):
        raise ProtocolError('audio "data" is not valid base64') from None
    return _check_pcm(pcm)


def _b64decode(data: str) -> bytes:
    """Strict standard base64. ``strict_mode`` alone still takes padding after a whole quantum (``"AAAA="``);
    base64 text always comes in whole 4-character quanta."""
    if len(data) % 4:
        raise binascii.Error("base64 text must be a multiple of 4 characters long")
    return binascii.a2b_base64(data, strict_mode=True)


def _check_pcm(pcm: bytes) -> bytes:
    if len(pcm) % 2:
        raise ProtocolError(f"audio has an odd number of bytes ({len(pcm)}); Int16 PCM needs whole 2-byte samples")
    return pcm


def _text(data: Any, max_chars: int) -> str:
    if not isinstance(data, str) or not data.strip():
        raise ProtocolError('text "data" must be a non-empty string')
    text = data.strip()
    if len(text) > max_chars:
        raise ProtocolError(f"text too long: {len(text)} characters (the limit is {max_chars})")
    return encodable(text)


def _config(data: Any) -> ConfigIn:
    if not isinstance(data, dict):
        raise ProtocolError('config "data" must be an object, e.g. {"binary_audio": true}')
    binary = data.get("binary_audio")
    if binary is not None and not isinstance(binary, bool):
        raise ProtocolError('config "binary_audio" must be true or false')
    return ConfigIn(binary_audio=binary)


_MAX_SECONDS = 86400.0 * 7


def _played(data: Any) -> PlayedIn:
    if not isinstance(data, dict):
        raise ProtocolError('played "data" must be an object, e.g. {"epoch": 3, "seconds": 1.25}')
    epoch, seconds = data.get("epoch"), data.get("seconds")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or not 0 <= epoch < 1 << 53:
        raise ProtocolError('played "epoch" must be a whole number >= 0 (from the playback "start" message)')
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not 0 <= seconds <= _MAX_SECONDS:
        raise ProtocolError('played "seconds" must be a number of seconds >= 0')
    return PlayedIn(epoch, float(seconds))


# --- outbound --------------------------------------------------------------------------------------------


def encodable(text: str) -> str:
    """``text`` as it can be sent: every lone surrogate (which UTF-8 cannot encode) replaced with U+FFFD.

    JSON lets a client write ``"\\ud800"``, and model or engine output can carry one too; sent as it is, the
    socket's UTF-8 encoding would fail. Cheap for the common case: ASCII is known without a scan.
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Through UTF-16 with surrogatepass: a proper pair becomes its character, a lone one U+FFFD.
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def status_message(status: str) -> str:
    """``{"type":"status","data":"connected"|"generating"|"complete"|"interrupted"}``."""
    return '{"type":"status","data":' + _dumps(status) + "}"


def transcript_message(text: str, is_final: bool) -> str:
    return _dumps({"type": "transcript", "data": {"text": text, "is_final": is_final}})


def text_chunk_message(text: str) -> str:
    return '{"type":"text_chunk","data":' + _dumps(text) + "}"


def audio_message(pcm: bytes) -> str:
    """Bot audio, base64 24 kHz mono Int16. Base64 needs no JSON escaping, so no encoder runs."""
    return '{"type":"audio","data":"' + base64.b64encode(pcm).decode("ascii") + '"}'


def error_message(message: str) -> str:
    return '{"type":"error","data":' + _dumps(message) + "}"


def playback_message(action: str, epoch: int | None = None) -> str:
    """``{"type":"playback","data":{"action":"start","epoch":E}}`` before the first audio of epoch ``E`` (the
    client's ``played`` reports count from there); ``"pause"`` / ``"resume"`` hold and release the bot's audio."""
    data: dict[str, Any] = {"action": action}
    if epoch is not None:
        data["epoch"] = epoch
    return _dumps({"type": "playback", "data": data})


def event_message(kind: str, data: Any) -> str:
    """Any other message (``session``, ``metrics``, ``speaking``): ``{"type": kind, "data": data}``."""
    return _dumps({"type": kind, "data": data})
