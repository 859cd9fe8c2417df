"""SentenceAggregator as a pipeline stage, run with voxline.testing.run_processor."""

from __future__ import annotations

import subprocess
import sys

import pytest
from voxline.aggregation import SentenceAggregator
from voxline.frames import (
    EndFrame,
    ErrorFrame,
    LLMResponseEndFrame,
    LLMResponseStartFrame,
    SettingsFrame,
    SpeakTextFrame,
    StartFrame,
    TextFrame,
    TranscriptFrame,
)
from voxline.processor import UPSTREAM, Direction, Processor
from voxline.testing import Interrupt, Sleep, run_processor


def texts(*parts: str) -> list[TextFrame]:
    return [TextFrame(text=p) for p in parts]


async def test_forwards_text_and_emits_sentences_in_order() -> None:
    frames = [
        LLMResponseStartFrame(),
        *texts("Sure thing, I can ", "help. Dr", ". Smith will", " call. Bye"),
        LLMResponseEndFrame(),
    ]
    result = await run_processor(SentenceAggregator(), frames)
    kinds = [type(f).__name__ for f in result.downstream if not isinstance(f, (StartFrame, EndFrame))]
    assert kinds == [
        "LLMResponseStartFrame",
        "TextFrame",
        "SpeakTextFrame",
        "TextFrame",
        "SpeakTextFrame",
        "TextFrame",
        "TextFrame",
        "SpeakTextFrame",
        "SpeakTextFrame",
        "LLMResponseEndFrame",
    ]
    assert [f.text for f in result.downstream_of(SpeakTextFrame)] == [
        "Sure thing, ",  # the early first chunk: a clause with two words
        "I can help. ",
        "Dr. Smith will call. ",
        "Bye",
    ]
    assert (
        "".join(f.text for f in result.downstream_of(TextFrame)) == "Sure thing, I can help. Dr. Smith will call. Bye"
    )
    assert result.errors == []


async def test_first_clause_goes_early() -> None:
    result = await run_processor(SentenceAggregator(), [*texts("Well, let me think, ", "about it")], send_end=True)
    speak = result.downstream_of(SpeakTextFrame)
    assert [f.text for f in speak] == ["Well, let me think, ", "about it"]  # the rest flushed by EndFrame


async def test_speak_frames_carry_the_epoch_of_their_text() -> None:
    frames = [*texts("One. Two. "), Sleep(0.02), Interrupt(), *texts("Three. Four"), LLMResponseEndFrame()]
    result = await run_processor(SentenceAggregator(), frames)
    speak = result.downstream_of(SpeakTextFrame)
    assert [(f.text, f.epoch) for f in speak] == [("One. ", 0), ("Three. ", 1), ("Four", 1)]


async def test_interrupt_discards_the_pending_text() -> None:
    frames = [
        *texts("This was never finished"),
        Sleep(0.02),
        Interrupt(),
        LLMResponseEndFrame(interrupted=True),
        *texts("New."),
    ]
    result = await run_processor(SentenceAggregator(), frames)
    assert [f.text for f in result.downstream_of(SpeakTextFrame)] == ["New."]


async def test_an_interrupted_end_discards_instead_of_flushing() -> None:
    result = await run_processor(SentenceAggregator(), [*texts("Half a"), LLMResponseEndFrame(interrupted=True)])
    assert result.downstream_of(SpeakTextFrame) == []


async def test_flush_happens_before_the_end_frame_and_a_new_reply_is_early_again() -> None:
    frames = [
        *texts("First reply here, then more"),
        LLMResponseEndFrame(),
        *texts("Second reply here, then"),
        LLMResponseEndFrame(),
    ]
    result = await run_processor(SentenceAggregator(), frames)
    order = [
        (type(f).__name__, getattr(f, "text", ""))
        for f in result.downstream
        if isinstance(f, (SpeakTextFrame, LLMResponseEndFrame))
    ]
    assert order == [
        ("SpeakTextFrame", "First reply here, "),
        ("SpeakTextFrame", "then more"),
        ("LLMResponseEndFrame", ""),
        ("SpeakTextFrame", "Second reply here, "),
        ("SpeakTextFrame", "then"),
        ("LLMResponseEndFrame", ""),
    ]


async def test_whitespace_only_rest_is_not_spoken() -> None:
    result = await run_processor(SentenceAggregator(), [*texts("Hi there. ", "  "), LLMResponseEndFrame()])
    assert [f.text for f in result.downstream_of(SpeakTextFrame)] == ["Hi there.   "]
    result = await run_processor(SentenceAggregator(), [*texts("  ", "\n"), LLMResponseEndFrame()])
    assert result.downstream_of(SpeakTextFrame) == []


async def test_other_frames_pass_through_both_ways() -> None:
    class AskUpstream(Processor):
        async def process(self, frame: object, direction: Direction) -> None:
            await self.push(frame, direction)  # type: ignore[arg-type]
            if isinstance(frame, SettingsFrame):
                await self.push(ErrorFrame(message="from below"), UPSTREAM)

    from voxline.pipeline import Pipeline

    transcript = TranscriptFrame(text="hello", is_final=True)
    settings = SettingsFrame(settings={"voice": "x"})
    result = await run_processor(Pipeline([SentenceAggregator(), AskUpstream()]), [transcript, settings])
    assert transcript in result.downstream
    assert settings in result.downstream
    assert [e.message for e in result.errors] == ["from below"]
    assert result.downstream_of(SpeakTextFrame) == []


async def test_text_of_a_newer_epoch_never_joins_older_pending_text(caplog: pytest.LogCaptureFixture) -> None:
    frames = [TextFrame(text="Old words here", epoch=0), TextFrame(text="New. Go", epoch=1), LLMResponseEndFrame()]
    result = await run_processor(SentenceAggregator(), frames)
    assert [(f.text, f.epoch) for f in result.downstream_of(SpeakTextFrame)] == [("New. ", 1), ("Go", 1)]
    assert "dropping 14 pending chars of epoch 0" in caplog.text


def test_importing_the_aggregator_does_not_import_numpy() -> None:
    code = "import sys, voxline.aggregation; print('numpy' in sys.modules, 'soxr' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


async def test_the_end_of_an_older_reply_leaves_a_newer_reply_alone() -> None:
    frames = [
        TextFrame(text="Fresh reply here", epoch=1),
        LLMResponseEndFrame(epoch=0, interrupted=True),
        TextFrame(text=" and more.", epoch=1),
        LLMResponseEndFrame(epoch=1),
    ]
    result = await run_processor(SentenceAggregator(), frames)
    assert [(f.text, f.epoch) for f in result.downstream_of(SpeakTextFrame)] == [("Fresh reply here and more.", 1)]
