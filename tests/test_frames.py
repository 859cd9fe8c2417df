"""Frames: immutable slotted values with ids and creation times; bad input fails where the frame is built."""

from __future__ import annotations

import inspect

import attrs
import pytest
import voxline.frames as frames_module
from voxline.frames import (
    AudioFrame,
    ControlFrame,
    DataFrame,
    EndFrame,
    ErrorFrame,
    Frame,
    InterruptFrame,
    SystemFrame,
    TextFrame,
    TranscriptFrame,
    TTSAudioFrame,
    Word,
)

KINDS = (SystemFrame, DataFrame, ControlFrame)
CONCRETE = [
    cls
    for name, cls in vars(frames_module).items()
    if name in frames_module.__all__ and inspect.isclass(cls) and issubclass(cls, Frame) and cls not in (Frame, *KINDS)
]
REQUIRED = {  # the smallest valid keyword arguments of each frame that has required fields
    ErrorFrame: {"message": "boom"},
    frames_module.MetricsFrame: {"name": "ttfb", "value": 0.1},
    AudioFrame: {"pcm": b"\0\0"},
    TTSAudioFrame: {"pcm": b"\0\0"},
    TranscriptFrame: {"text": "hi"},
    TextFrame: {"text": "hi"},
    frames_module.UserTextFrame: {"text": "hi"},
    frames_module.SpeakTextFrame: {"text": "hi"},
    frames_module.UserTurnEndedFrame: {"text": "hi"},
    frames_module.BackchannelFrame: {"text": "yeah"},
    frames_module.BotPlaybackFrame: {"action": "pause"},
}


def _fields(cls: type) -> list[attrs.Attribute[object]]:
    return [f for f in attrs.fields(cls) if f.init]


def test_every_frame_has_exactly_one_kind() -> None:
    assert len(CONCRETE) >= 20
    for cls in CONCRETE:
        kinds = [k for k in KINDS if issubclass(cls, k)]
        assert len(kinds) == 1, cls
        assert cls.kind == kinds[0].kind


@pytest.mark.parametrize("cls", CONCRETE, ids=lambda c: c.__name__)
def test_every_field_is_validated_and_named_in_the_error(cls: type) -> None:
    valid = REQUIRED.get(cls, {})
    cls(**valid)  # the minimal frame is fine
    for field in _fields(cls):
        with pytest.raises((TypeError, ValueError)) as excinfo:
            cls(**{**valid, field.name: object()})
        assert f"{cls.__name__}.{field.name}" in str(excinfo.value) or f".{field.name}" in str(excinfo.value), (
            f"{cls.__name__}.{field.name}: {excinfo.value}"
        )


@pytest.mark.parametrize(
    ("build", "error", "names"),
    [
        (lambda: AudioFrame(pcm=b"\0"), ValueError, "AudioFrame.pcm"),
        (lambda: AudioFrame(pcm=b"\0\0", channels=2), ValueError, "AudioFrame.pcm"),
        (lambda: AudioFrame(pcm=b"", sample_rate=0), ValueError, "AudioFrame.sample_rate"),
        (lambda: AudioFrame(pcm=b"", sample_rate=True), TypeError, "AudioFrame.sample_rate"),
        (lambda: TextFrame(text="x", epoch=-1), ValueError, "TextFrame.epoch"),
        (lambda: InterruptFrame(epoch=1.5), TypeError, "InterruptFrame.epoch"),
        (lambda: TranscriptFrame(text="x", confidence=1.5), ValueError, "TranscriptFrame.confidence"),
        (lambda: TranscriptFrame(text="x", words=["hi"]), TypeError, "TranscriptFrame.words[0]"),
        (lambda: TranscriptFrame(text="x", is_final=1), TypeError, "TranscriptFrame.is_final"),
        (lambda: Word(text="a", start=1.0, end=0.5), ValueError, "Word.end"),
        (lambda: Word(text="a", start=-1.0, end=0.5), ValueError, "Word.start"),
        (lambda: frames_module.UserStoppedSpeakingFrame(audio_time=float("nan")), ValueError, "audio_time"),
        (lambda: frames_module.MetricsFrame(name="x", value="1"), TypeError, "MetricsFrame.value"),
        (lambda: frames_module.StartFrame(audio_out_sample_rate=-1), ValueError, "audio_out_sample_rate"),
    ],
)
def test_bad_values_fail_with_a_clear_error(build: object, error: type[Exception], names: str) -> None:
    with pytest.raises(error, match=names.replace("[", r"\[").replace("]", r"\]")):
        build()  # type: ignore[operator]


def test_frames_are_immutable_and_slotted() -> None:
    frame = TextFrame(text="hi")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        frame.text = "other"  # type: ignore[misc]
    assert not hasattr(frame, "__dict__")


def test_ids_are_unique_and_creation_times_monotonic() -> None:
    built = [TextFrame(text=str(i)) for i in range(100)] + [EndFrame() for _ in range(10)]
    assert len({f.id for f in built}) == len(built)
    times = [f.created_ns for f in built]
    assert times == sorted(times)
    assert built[0].name == f"TextFrame#{built[0].id}"


def test_with_epoch_is_a_copy_with_the_same_identity() -> None:
    frame = TranscriptFrame(text="hi", is_final=True, words=[Word(text="hi", start=0.0, end=0.2)])
    stamped = frame.with_epoch(3)
    assert stamped is not frame and frame.epoch is None and stamped.epoch == 3
    assert (stamped.id, stamped.created_ns, stamped.text, stamped.words) == (
        frame.id,
        frame.created_ns,
        frame.text,
        frame.words,
    )
    assert isinstance(stamped, TranscriptFrame)


def test_audio_helpers() -> None:
    frame = AudioFrame(pcm=b"\0\0" * 320, sample_rate=16000)
    assert frame.num_samples == 320
    assert frame.duration == pytest.approx(0.02)
    assert isinstance(TTSAudioFrame(pcm=b""), AudioFrame)
