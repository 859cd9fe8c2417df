"""Frames as JSON values: what a recording keeps of a frame, and how a replay builds it again.

Only a frame's own fields are kept: not its ``id``, creation time or ``epoch`` (a replay's pipeline numbers its
own epochs), nor an exception object. Text goes through the process's secret redactor on the way out, so a key
that slipped into a transcript or an error message is never written down. Audio keeps only its length
(``samples``, ``sample_rate``): a replay needs how long the bot spoke, and the recording's WAV has the sound.
"""

from __future__ import annotations

from typing import Any

import attrs
from voxline import frames as frame_types
from voxline.frames import AudioFrame, Frame, Word
from voxline.providers.redaction import redact

__all__ = ["decode_frame", "encode_frame"]

_SKIPPED = frozenset({"id", "created_ns", "epoch", "exception", "pcm"})


def encode_frame(frame: Frame) -> dict[str, Any]:
    """``{"frame": <class name>, <field>: <value>, ...}`` with text redacted and audio reduced to its length."""
    out: dict[str, Any] = {"frame": type(frame).__name__}
    for field in attrs.fields(type(frame)):
        if field.name in _SKIPPED:
            continue
        value = getattr(frame, field.name)
        if isinstance(value, str):
            value = redact(value)
        elif field.name == "words":
            value = [[redact(w.text), w.start, w.end, w.confidence] for w in value]
        elif not isinstance(value, (int, float, bool, type(None))):
            continue  # mappings of settings and the like: not part of what a replay needs
        out[field.name] = value
    if isinstance(frame, AudioFrame):
        out["samples"] = frame.num_samples
    return out


def decode_frame(data: dict[str, Any]) -> Frame:
    """The frame :func:`encode_frame` described; audio comes back as silence of the recorded length."""
    name = data.get("frame")
    cls = getattr(frame_types, str(name), None)
    if not (isinstance(cls, type) and issubclass(cls, Frame) and cls.__name__ == name):
        raise ValueError(f"unknown frame type in a recording: {name!r}")
    kwargs = {k: v for k, v in data.items() if k not in ("frame", "samples")}
    if "words" in kwargs:
        kwargs["words"] = [Word(text, start, end, confidence) for text, start, end, confidence in kwargs["words"]]
    if issubclass(cls, AudioFrame):
        channels = int(kwargs.get("channels", 1))
        kwargs["pcm"] = bytes(2 * channels * int(data.get("samples", 0)))
    frame: Frame = cls(**kwargs)
    return frame
