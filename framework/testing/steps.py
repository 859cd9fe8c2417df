"""The steps a test feeds a pipeline: frames, and between them pauses, interrupts and waits for output.

A test about "the user interrupts *during* the reply" must interrupt at that moment, not after a guessed delay:
on a loaded 2-core machine a reply may not have started 100 ms after its request. :class:`Until` waits for the
output to reach a state (two ``TextFrame``\\ s out, the first audio out), so each step happens when the test
means it to; :class:`Sleep` remains for letting time pass on purpose (a processor working in the background).
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
from voxline.frames import Frame, LLMResponseEndFrame, TextFrame, TTSAudioFrame

__all__ = ["Interrupt", "Sleep", "Step", "Until", "audio_out", "frames_out", "replies_ended", "texts_out"]


@attrs.frozen
class Sleep:
    """Wait this many seconds before the next step."""

    seconds: float


@attrs.frozen
class Interrupt:
    """Start a new epoch here, from the head of the pipeline, as a barge-in would."""

    reason: str = "test"


@attrs.frozen
class Until:
    """Wait until the frames that left the end of the pipeline satisfy ``predicate``.

    Checked on every frame that comes out and every 10 ms, so the predicate may also look at state outside the
    pipeline (a fake server's counters).
    """

    predicate: Callable[[list[Frame]], bool]


Step = Frame | Sleep | Interrupt | Until
"""One entry of the list a test feeds to :func:`~voxline.testing.drive` or ``RunningPipeline.step``."""


def frames_out(kind: type[Frame], n: int = 1) -> Until:
    """Wait until ``n`` frames of ``kind`` have come out."""
    return Until(lambda out: sum(isinstance(f, kind) for f in out) >= n)


def texts_out(n: int) -> Until:
    """Wait until ``n`` TextFrames have come out (an LLM reply is under way)."""
    return frames_out(TextFrame, n)


def replies_ended(n: int) -> Until:
    """Wait until ``n`` replies have ended (``LLMResponseEndFrame``)."""
    return frames_out(LLMResponseEndFrame, n)


def audio_out(n: int = 1) -> Until:
    """Wait until ``n`` chunks of synthesised audio have come out: barge in on the first with ``audio_out()``."""
    return frames_out(TTSAudioFrame, n)
