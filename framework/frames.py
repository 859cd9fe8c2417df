"""Frames: the immutable values that travel through a pipeline.

Every frame is an attrs class with slots and ``frozen=True``; it gets a process-unique ``id`` and a monotonic
creation time (``created_ns``) when it is built. A frame has one of three *kinds*, and the kind alone decides
how the framework treats it:

* :class:`SystemFrame` — out of band. Never queued behind data; handled the moment it arrives (start, cancel,
  interrupt, errors, speaking events, metrics).
* :class:`DataFrame` — ordered, and dropped on interruption. Every data frame belongs to an *epoch* (a turn
  generation); see :mod:`voxline.processor` for the contract.
* :class:`ControlFrame` — ordered with data, and kept through interruptions (end of stream, response
  boundaries, settings).

Invalid construction raises ``ValueError``/``TypeError`` naming the field, so a bad frame fails where it is
built, not three stages later.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import attrs

__all__ = [
    "AudioFrame",
    "BackchannelFrame",
    "BotHeardTextFrame",
    "BotPlaybackFrame",
    "BotStartedSpeakingFrame",
    "BotStoppedSpeakingFrame",
    "CancelFrame",
    "ControlFrame",
    "DataFrame",
    "EndFrame",
    "ErrorFrame",
    "Frame",
    "InterruptFrame",
    "LLMResponseEndFrame",
    "LLMResponseStartFrame",
    "MetricsFrame",
    "SettingsFrame",
    "SpeakTextFrame",
    "StartFrame",
    "SystemFrame",
    "TTSAudioFrame",
    "TTSStartedFrame",
    "TTSStoppedFrame",
    "TextFrame",
    "TranscriptFrame",
    "UserStartedSpeakingFrame",
    "UserStoppedSpeakingFrame",
    "UserTextFrame",
    "UserTurnEndedFrame",
    "UserTurnStartedFrame",
    "Word",
]

_ids = itertools.count(1)


def _type_check(expected: type | tuple[type, ...]) -> Any:
    """An attrs validator that names the field in its TypeError (attrs' own message is terse)."""

    def check(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, expected) or (isinstance(value, bool) and bool not in _as_tuple(expected)):
            names = " or ".join(t.__name__ for t in _as_tuple(expected))
            raise TypeError(f"{type(inst).__name__}.{attribute.name} must be {names}, got {type(value).__name__}")

    return check


def _as_tuple(t: type | tuple[type, ...]) -> tuple[type, ...]:
    return t if isinstance(t, tuple) else (t,)


def _optional(expected: type | tuple[type, ...]) -> Any:
    """Like :func:`_type_check`, but ``None`` is allowed too."""
    check = _type_check(expected)

    def optional(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None:
            check(inst, attribute, value)

    return optional


def _check_epoch(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{type(inst).__name__}.{attribute.name} must be int or None, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{type(inst).__name__}.{attribute.name} must not be negative, got {value}")


def _check_seconds(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    _type_check((int, float))(inst, attribute, value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{type(inst).__name__}.{attribute.name} must be a finite number >= 0, got {value}")


def _check_unit_interval(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    _type_check((int, float))(inst, attribute, value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{type(inst).__name__}.{attribute.name} must be between 0 and 1, got {value}")


_STR = _type_check(str)
_BOOL = _type_check(bool)


@attrs.frozen(slots=True, kw_only=True)
class Frame:
    """Base of every frame. Use one of the three kinds, never this class directly."""

    kind: ClassVar[str] = "frame"

    id: int = attrs.field(init=False, factory=_ids.__next__, eq=False)
    created_ns: int = attrs.field(init=False, factory=time.monotonic_ns, eq=False, repr=False)

    @property
    def name(self) -> str:
        return f"{type(self).__name__}#{self.id}"


@attrs.frozen(slots=True, kw_only=True)
class SystemFrame(Frame):
    """Out-of-band frames: delivered at once, never queued behind data, never dropped by an interruption."""

    kind: ClassVar[str] = "system"


@attrs.frozen(slots=True, kw_only=True)
class DataFrame(Frame):
    """Ordered frames that belong to an epoch and are dropped when a newer epoch starts.

    ``epoch`` may be left as ``None`` when the frame is built; the first :meth:`Processor.push` stamps it with
    the pushing processor's current epoch. Work that started in an older epoch should pass its epoch
    explicitly so that its late output is recognised as stale.
    """

    kind: ClassVar[str] = "data"

    epoch: int | None = attrs.field(default=None, eq=False, validator=_check_epoch)

    def with_epoch(self, epoch: int) -> DataFrame:
        """A copy of this frame (same id and creation time) that belongs to ``epoch``.

        The copy is made before anyone else can see it, so frames stay immutable for every observer.
        """
        cloner = _CLONERS.get(type(self))
        if cloner is None:
            cloner = _CLONERS[type(self)] = _make_cloner(type(self))
        return cloner(self, epoch)  # type: ignore[no-any-return]


_CLONERS: dict[type, Any] = {}


def _make_cloner(cls: type) -> Any:
    """A copy function written out for ``cls`` (no loop, no getattr): stamping is on every frame's path."""
    names = [a.name for a in attrs.fields(cls) if a.name != "epoch"]
    body = "".join(f"    setter(clone, {name!r}, frame.{name})\n" for name in names)
    source = (
        f"def clone(frame, epoch):\n    clone = new(cls)\n{body}    setter(clone, 'epoch', epoch)\n    return clone\n"
    )
    namespace: dict[str, Any] = {"new": object.__new__, "setter": object.__setattr__, "cls": cls}
    exec(source, namespace)  # the same technique attrs uses for __init__
    return namespace["clone"]


@attrs.frozen(slots=True, kw_only=True)
class ControlFrame(Frame):
    """Ordered frames that survive interruptions (end of stream, response boundaries, settings)."""

    kind: ClassVar[str] = "control"


# --- system frames -------------------------------------------------------------------------------------------


@attrs.frozen(slots=True, kw_only=True)
class StartFrame(SystemFrame):
    """Sent first through a pipeline once every processor has started."""

    audio_in_sample_rate: int = attrs.field(default=16000, validator=lambda i, a, v: _check_positive(i, a, v))
    audio_out_sample_rate: int = attrs.field(default=24000, validator=lambda i, a, v: _check_positive(i, a, v))


@attrs.frozen(slots=True, kw_only=True)
class CancelFrame(SystemFrame):
    """Stop now: the task cancels all work without waiting for queued frames to drain."""

    reason: str = attrs.field(default="", validator=_STR)


@attrs.frozen(slots=True, kw_only=True)
class InterruptFrame(SystemFrame):
    """Starts a new epoch: in-flight work of older epochs is cancelled and their data frames dropped.

    ``epoch`` is stamped by the processor that first pushes it (its own epoch + 1) when left as ``None``.
    """

    epoch: int | None = attrs.field(default=None, validator=_check_epoch)
    reason: str = attrs.field(default="", validator=_STR)


@attrs.frozen(slots=True, kw_only=True)
class ErrorFrame(SystemFrame):
    """A processor failed. Travels upstream to the task (and the transport, which tells the client).

    ``fatal`` errors end the pipeline; others are reported and the session lives on.
    """

    message: str = attrs.field(validator=_STR)
    fatal: bool = attrs.field(default=False, validator=_BOOL)
    source: str = attrs.field(default="", validator=_STR)
    exception: BaseException | None = attrs.field(
        default=None, eq=False, repr=False, validator=_optional(BaseException)
    )


@attrs.frozen(slots=True, kw_only=True)
class UserStartedSpeakingFrame(SystemFrame):
    """Voice activity began (from a VAD or the STT service)."""


@attrs.frozen(slots=True, kw_only=True)
class UserStoppedSpeakingFrame(SystemFrame):
    """Voice activity ended. ``audio_time`` is the end of speech on the input's audio clock, in seconds."""

    audio_time: float | None = attrs.field(default=None, validator=_check_seconds)


@attrs.frozen(slots=True, kw_only=True)
class BotStartedSpeakingFrame(SystemFrame):
    """The output began sending the bot's audio for a reply."""


@attrs.frozen(slots=True, kw_only=True)
class BotStoppedSpeakingFrame(SystemFrame):
    """The output finished (or stopped) sending the bot's audio."""


@attrs.frozen(slots=True, kw_only=True)
class BotHeardTextFrame(SystemFrame):
    """How much of a reply cut by a barge-in the user heard; travels upstream so the context can tell the truth.

    The output sends it with ``played_seconds`` (its estimate of how much of epoch ``epoch``'s audio had played)
    and ``text=None``; the TTS stage, which knows which text each stretch of its audio speaks, passes on a copy
    with ``text``: the pieces whose audio had played in full. The LLM stage cuts that reply to ``text``.
    """

    epoch: int | None = attrs.field(default=None, validator=_check_epoch)
    played_seconds: float = attrs.field(default=0.0, validator=_check_seconds)
    text: str | None = attrs.field(default=None, validator=_optional(str))


def _check_playback_action(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value not in ("pause", "resume"):
        raise ValueError(f"{type(inst).__name__}.{attribute.name} must be 'pause' or 'resume', got {value!r}")


@attrs.frozen(slots=True, kw_only=True)
class UserTurnStartedFrame(SystemFrame):
    """The turn engine decided the user has the floor (speech that is neither echo nor a backchannel)."""


@attrs.frozen(slots=True, kw_only=True)
class UserTurnEndedFrame(SystemFrame):
    """The turn engine decided the user's turn is over; the turn's ``UserTextFrame`` follows it downstream.

    ``speech_end`` is the end of the user's speech on the engine's clock (seconds), ``reason`` what settled it
    (e.g. ``"complete"``, ``"timeout"``).
    """

    text: str = attrs.field(validator=_STR)
    reason: str = attrs.field(default="", validator=_STR)
    speech_end: float | None = attrs.field(default=None, validator=_check_seconds)


@attrs.frozen(slots=True, kw_only=True)
class BackchannelFrame(SystemFrame):
    """The user said only a backchannel ("uh-huh", "yeah") while the bot spoke: not a turn, not a barge-in."""

    text: str = attrs.field(validator=_STR)


@attrs.frozen(slots=True, kw_only=True)
class BotPlaybackFrame(SystemFrame):
    """Pause or resume the bot's playback at the client (``action`` = ``"pause"`` / ``"resume"``).

    Travels downstream to the output transport. The turn engine pauses while it cannot yet tell a barge-in
    from a backchannel or a noise, and resumes after a false interruption. A client that ignores it keeps
    playing, which is the behaviour without a turn engine.
    """

    action: str = attrs.field(validator=_check_playback_action)
    reason: str = attrs.field(default="", validator=_STR)


@attrs.frozen(slots=True, kw_only=True)
class MetricsFrame(SystemFrame):
    """A measurement: ``name`` (e.g. ``"ttfb"``), ``value`` in ``unit``, from ``source``."""

    name: str = attrs.field(validator=_STR)
    value: float = attrs.field(validator=_type_check((int, float)))
    unit: str = attrs.field(default="s", validator=_STR)
    source: str = attrs.field(default="", validator=_STR)
    epoch: int | None = attrs.field(default=None, validator=_check_epoch)


# --- data frames ---------------------------------------------------------------------------------------------


def _check_pcm(inst: AudioFrame, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"AudioFrame.pcm must be bytes, got {type(value).__name__}")
    if len(value) % 2:
        raise ValueError(f"AudioFrame.pcm must hold whole Int16 samples; got an odd length ({len(value)} bytes)")


def _check_positive(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{type(inst).__name__}.{attribute.name} must be int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{type(inst).__name__}.{attribute.name} must be positive, got {value}")


@attrs.frozen(slots=True, kw_only=True)
class AudioFrame(DataFrame):
    """Int16 little-endian PCM. ``pcm`` is interleaved when ``channels`` > 1."""

    pcm: bytes = attrs.field(validator=_check_pcm)
    sample_rate: int = attrs.field(default=16000, validator=_check_positive)
    channels: int = attrs.field(default=1, validator=_check_positive)

    def __attrs_post_init__(self) -> None:
        if len(self.pcm) % (2 * self.channels):
            raise ValueError(
                f"AudioFrame.pcm length {len(self.pcm)} is not a whole number of {self.channels}-channel frames"
            )

    @property
    def num_samples(self) -> int:
        """Samples per channel."""
        return len(self.pcm) // (2 * self.channels)

    @property
    def duration(self) -> float:
        """Seconds of audio."""
        return len(self.pcm) / (2 * self.channels * self.sample_rate)


@attrs.frozen(slots=True)
class Word:
    """One recognised word with its timing on the input audio clock (seconds)."""

    text: str = attrs.field(validator=_STR)
    start: float = attrs.field(validator=_check_seconds)
    end: float = attrs.field(validator=_check_seconds)
    confidence: float | None = attrs.field(default=None, validator=_check_unit_interval)

    def __attrs_post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"Word.end ({self.end}) must not be before Word.start ({self.start})")


def _check_words(inst: Any, attribute: attrs.Attribute[Any], value: tuple[Any, ...]) -> None:
    for i, word in enumerate(value):
        if not isinstance(word, Word):
            raise TypeError(f"TranscriptFrame.words[{i}] must be Word, got {type(word).__name__}")


def _to_words(words: Iterable[Word]) -> tuple[Word, ...]:
    """Typed converter: with a bare ``tuple`` converter mypy rejects every ``words=`` argument."""
    try:
        return tuple(words)
    except TypeError:
        raise TypeError(f"TranscriptFrame.words must be a sequence of Word, got {type(words).__name__}") from None


@attrs.frozen(slots=True, kw_only=True)
class TranscriptFrame(DataFrame):
    """Speech recognised from the user. Interim results have ``is_final=False`` and may be revised."""

    text: str = attrs.field(validator=_STR)
    is_final: bool = attrs.field(default=False, validator=_BOOL)
    confidence: float | None = attrs.field(default=None, validator=_check_unit_interval)
    words: tuple[Word, ...] = attrs.field(default=(), converter=_to_words, validator=_check_words)
    language: str | None = attrs.field(default=None, validator=_optional(str))
    speech_final: bool = attrs.field(default=False, validator=_BOOL)
    """The user's turn is complete (end of speech), not only this stretch of text."""


@attrs.frozen(slots=True, kw_only=True)
class TextFrame(DataFrame):
    """A chunk of the bot's text (from an LLM), in order."""

    text: str = attrs.field(validator=_type_check(str))


@attrs.frozen(slots=True, kw_only=True)
class UserTextFrame(DataFrame):
    """A complete user turn, as text: what an LLM stage answers.

    Speech-to-text stages emit it when the user's turn ends (all final pieces joined); a transport emits it
    for typed input.
    """

    text: str = attrs.field(validator=_type_check(str))


@attrs.frozen(slots=True, kw_only=True)
class SpeakTextFrame(DataFrame):
    """Text ready to be spoken (a sentence or clause from the aggregator): what a TTS stage consumes.

    LLM :class:`TextFrame`s still flow on unchanged, so the client sees the text as it streams.
    """

    text: str = attrs.field(validator=_type_check(str))


@attrs.frozen(slots=True, kw_only=True)
class TTSAudioFrame(AudioFrame):
    """Synthesised speech of the bot (as opposed to the user's input audio)."""


# --- control frames ------------------------------------------------------------------------------------------


@attrs.frozen(slots=True, kw_only=True)
class EndFrame(ControlFrame):
    """End of stream: once it has drained through every processor, the pipeline stops gracefully."""

    reason: str = attrs.field(default="", validator=_STR)


@attrs.frozen(slots=True, kw_only=True)
class LLMResponseStartFrame(ControlFrame):
    """A reply begins. ``epoch`` names the turn it answers."""

    epoch: int | None = attrs.field(default=None, validator=_check_epoch)


@attrs.frozen(slots=True, kw_only=True)
class LLMResponseEndFrame(ControlFrame):
    """A reply ended. ``interrupted`` is set when an interruption cut it short."""

    epoch: int | None = attrs.field(default=None, validator=_check_epoch)
    interrupted: bool = attrs.field(default=False, validator=_BOOL)


@attrs.frozen(slots=True, kw_only=True)
class TTSStartedFrame(ControlFrame):
    """Speech synthesis of a reply began."""

    epoch: int | None = attrs.field(default=None, validator=_check_epoch)


@attrs.frozen(slots=True, kw_only=True)
class TTSStoppedFrame(ControlFrame):
    """Speech synthesis of a reply finished."""

    epoch: int | None = attrs.field(default=None, validator=_check_epoch)


@attrs.frozen(slots=True, kw_only=True)
class SettingsFrame(ControlFrame):
    """Change settings of processors downstream, in order with the data (e.g. a new voice)."""

    settings: Mapping[str, Any] = attrs.field(factory=dict, validator=_type_check(Mapping))
