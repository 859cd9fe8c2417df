"""clean_for_speech: Markdown marks go, words stay."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from voxline.aggregation import SentenceAggregator, clean_for_speech
from voxline.frames import LLMResponseEndFrame, SpeakTextFrame, TextFrame
from voxline.testing import run_processor


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("**Note:** see [the docs](https://x.org) or `run_me()`.", "Note: see the docs or run_me()."),
        ("# Title\n", "Title\n"),
        ("- item one\n", "item one\n"),
        ("* item two", "item two"),
        ("\u2022 dot item", "dot item"),
        ("> quoted words", "quoted words"),
        ("snake_case stays, _emph_ and __bold__ go", "snake_case stays, emph and bold go"),
        ("a ~~b~~ c", "a b c"),
        ("```python\n", "\n"),
        ("![a cat](cat.png) sits", "a cat sits"),
        ("Cost is 5 - 3 = 2, and x > y.", "Cost is 5 - 3 = 2, and x > y."),
        ("1. First step", "1. First step"),
        ("---\n", "\n"),
        ("half a **bold", "half a bold"),
    ],
)
def test_cleaning(text: str, spoken: str) -> None:
    assert clean_for_speech(text) == spoken


plain = st.text(alphabet=st.characters(blacklist_characters="*_`#>[-+~\u2022"), max_size=80)


@given(plain)
def test_text_without_markdown_marks_is_untouched(text: str) -> None:
    assert clean_for_speech(text) is text


@given(st.text(max_size=80))
def test_cleaning_never_invents_words_and_is_idempotent(text: str) -> None:
    cleaned = clean_for_speech(text)
    letters = [c for c in cleaned if c.isalnum()]
    assert len(letters) <= sum(c.isalnum() for c in text)
    assert clean_for_speech(cleaned) == cleaned or "](" in text or "```" in text


async def test_the_aggregator_speaks_clean_text_but_forwards_the_markdown() -> None:
    frames = [TextFrame(text="**Sure!** Here:\n"), TextFrame(text="- one\n- two"), LLMResponseEndFrame()]
    result = await run_processor(SentenceAggregator(speech_filter=clean_for_speech), frames)
    assert [f.text for f in result.downstream_of(SpeakTextFrame)] == ["Sure! ", "Here:\n", "one\n", "two"]
    assert "".join(f.text for f in result.downstream_of(TextFrame)) == "**Sure!** Here:\n- one\n- two"


async def test_a_chunk_of_marks_only_is_not_spoken() -> None:
    frames = [TextFrame(text="Done.\n---\n"), TextFrame(text="```\nNext"), LLMResponseEndFrame()]
    result = await run_processor(SentenceAggregator(speech_filter=clean_for_speech), frames)
    assert [f.text for f in result.downstream_of(SpeakTextFrame)] == ["Done.\n", "\n\nNext"]
