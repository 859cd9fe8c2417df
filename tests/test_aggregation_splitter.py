"""The sentence splitter: the documented rules, and the streaming properties that make it safe for TTS."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from voxline.aggregation import SentenceSplitter, split_text


def stream(deltas: list[str], **options: int) -> list[str]:
    splitter = SentenceSplitter(**options)
    chunks = [c for d in deltas for c in splitter.push(d)]
    rest = splitter.flush()
    return [*chunks, rest] if rest else chunks


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello. World", ["Hello. ", "World"]),
        ("Dr. Smith is here. Yes.", ["Dr. Smith is here. ", "Yes."]),
        ("Mr. and Mrs. Jones came. Then", ["Mr. and Mrs. Jones came. ", "Then"]),
        ("Use tools, e.g. a hammer. Or i.e. this.", ["Use tools, ", "e.g. a hammer. ", "Or i.e. this."]),
        ("He lives in the U.S. now. Ok", ["He lives in the U.S. now. ", "Ok"]),
        ("Pi is 3.14 roughly. Yes", ["Pi is 3.14 roughly. ", "Yes"]),
        ("We sold 1,000 units today. Nice", ["We sold 1,000 units today. ", "Nice"]),
        ("Well... maybe not. Hm", ["Well... maybe not. ", "Hm"]),
        ("Wait... What? Now", ["Wait... ", "What? ", "Now"]),
        ("Wait… What", ["Wait… ", "What"]),
        ('He said "Stop." Then left.', ['He said "Stop." ', "Then left."]),
        ("(It works.) Next", ["(It works.) ", "Next"]),
        ("Really?! Yes", ["Really?! ", "Yes"]),
        ("**Sure!** Here it is. _Done._ Ok", ["**Sure!** ", "Here it is. ", "_Done._ ", "Ok"]),
        ("Ask *Dr. Smith* now. Ok", ["Ask *Dr. Smith* now. ", "Ok"]),
        ('He asked "why?" and left. Ok', ['He asked "why?" and left. ', "Ok"]),
        ("Wow! 42 is it. Ok", ["Wow! ", "42 is it. ", "Ok"]),
        ("I said no. Then", ["I said no. ", "Then"]),
        ("Room No. 5 is free. Ok", ["Room No. 5 is free. ", "Ok"]),
        ("J. K. Rowling wrote it. Then", ["J. K. Rowling wrote it. ", "Then"]),
        ("Apples etc. are fruit. Pears etc. Bananas", ["Apples etc. are fruit. ", "Pears etc. ", "Bananas"]),
        ("We met at 5 p.m. and ate. Ok", ["We met at 5 p.m. and ate. ", "Ok"]),
        ("1. First item\n2. Second item", ["1. First item\n", "2. Second item"]),
        ("In 2023. Then", ["In 2023. ", "Then"]),
        ("你好。世界", ["你好。", "世界"]),
        ("Options:\n- tea\n- coffee", ["Options:\n", "- tea\n", "- coffee"]),
        ("... Hi. There", ["... Hi. ", "There"]),
        ("Meet at 3:30 today, ok", ["Meet at 3:30 today, ", "ok"]),
        ("See https://x.org/a.b now. Ok", ["See https://x.org/a.b now. ", "Ok"]),
    ],
)
def test_rules(text: str, expected: list[str]) -> None:
    assert split_text(text) == expected


def test_first_chunk_is_released_early_at_a_clause_then_only_at_sentences() -> None:
    text = "Sure thing, let me check that, it takes a second. After that, we are done, really."
    assert split_text(text) == [
        "Sure thing, ",  # two words at a comma: an interjection speaks well alone, and ~100 ms sooner
        "let me check that, it takes a second. ",
        "After that, we are done, really.",
    ]
    assert split_text("Well, let me see.") == ["Well, let me see."]  # one word is too little


def test_a_first_sentence_without_an_early_comma_breaks_before_a_conjunction_or_preposition() -> None:
    assert split_text("It will be sunny all day with a light breeze. Then rain with wind.") == [
        "It will be sunny all day ",
        "with a light breeze. ",
        "Then rain with wind.",  # only the first chunk breaks there
    ]
    assert split_text("The sun and the moon are out.") == ["The sun and the moon are out."]  # "and" too early
    assert split_text("I looked at the android phone today.") == ["I looked at the android phone today."]
    # The break is decided once the break word is whole: streaming it letter by letter gives the same chunks.
    assert stream(list("Paris is sunny today and warm.")) == ["Paris is sunny today ", "and warm."]


def test_min_first_words_is_configurable() -> None:
    assert split_text("Sure, I can.", min_first_words=1) == ["Sure, ", "I can."]
    assert split_text("Sure, I can.", min_first_words=3) == ["Sure, I can."]
    assert split_text("It is sunny today and warm.", first_break_words=9) == ["It is sunny today and warm."]


def test_a_long_sentence_splits_at_a_clause() -> None:
    words = " ".join(f"w{i}" for i in range(30))
    text = f"Start here. {words}, tail words. Done"
    assert split_text(text, long_clause_words=24) == ["Start here. ", f"{words}, ", "tail words. ", "Done"]


def test_a_closing_quote_after_a_cjk_stop_is_not_taken_for_the_next_sentence() -> None:
    assert stream(["你好。", "\u300d", "世界"]) == ["你好。\u300d", "世界"]
    assert stream(["你好。\u300d", "世界"]) == split_text("你好。\u300d世界")
    assert stream(["好。。", "。", "世"]) == ["好。。。", "世"]


def test_a_sentence_end_split_across_deltas() -> None:
    splitter = SentenceSplitter()
    assert splitter.push("Hello") == []
    assert splitter.push(".") == []
    assert splitter.push(" ") == []
    assert splitter.pending == "Hello. "
    assert splitter.push("World") == ["Hello. "]
    assert splitter.flush() == "World"


def test_an_abbreviation_is_not_released_when_its_lookahead_arrives() -> None:
    splitter = SentenceSplitter()
    assert splitter.push("Ask Dr.") == []
    assert splitter.push(" Smith") == []
    assert splitter.push(" now. He") == ["Ask Dr. Smith now. "]


def test_flush_and_reset_start_a_new_reply_with_an_early_first_chunk() -> None:
    splitter = SentenceSplitter()
    assert splitter.push("One two three, four. Five six seven, eight") == ["One two three, ", "four. "]
    assert splitter.flush() == "Five six seven, eight"
    assert splitter.push("Nine ten eleven, x") == ["Nine ten eleven, "]
    splitter.reset()
    assert splitter.pending == ""
    assert splitter.flush() == ""


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="positive"):
        SentenceSplitter(min_first_words=0)


# --- properties ----------------------------------------------------------------------------------------------

_PIECES = [
    "\u00a0",
    "\u3000",
    "\u3002",
    "\u300d",
    "\u201d",
    "Hello",
    "world",
    "Dr.",
    "Mr.",
    "e.g.",
    "U.S.",
    "etc.",
    "3.14",
    "1,000",
    "...",
    "…",
    ".",
    "!",
    "?",
    ",",
    ";",
    ":",
    '"',
    "'",
    ")",
    "(",
    " ",
    "  ",
    "\n",
    "yes",
    "No",
    "J.",
    "1.",
    "p.m.",
    "?!",
    "—",
    "你好。",
    "\t",
    "A",
    "and",
    " with ",
    "And",
    "sand",
]
texts = st.lists(st.sampled_from(_PIECES), max_size=40).map("".join) | st.text(max_size=120)


def splits(text: str) -> st.SearchStrategy[list[str]]:
    cuts = st.lists(st.integers(0, len(text)), max_size=12).map(sorted)
    return cuts.map(lambda c: [text[a:b] for a, b in zip([0, *c], [*c, len(text)], strict=True)])


@settings(max_examples=300, deadline=None)
@given(st.data(), texts)
def test_output_is_the_input_and_independent_of_the_delta_split(data: st.DataObject, text: str) -> None:
    deltas = data.draw(splits(text))
    chunks = stream(deltas)
    assert "".join(chunks) == text
    assert chunks == split_text(text)
    assert all(chunks)


_WORDS = ["hello", "there", "world", "today", "every", "thing", "maybe", "Alice", "Paris", "green"]
sentence = st.tuples(
    st.lists(st.sampled_from(_WORDS), min_size=1, max_size=6).map(" ".join),
    st.sampled_from([".", "!", "?", "...", ",", "", '."', "?)"]),
    st.sampled_from([" ", "  ", "", " \n"]),
).map("".join)
# A word of 5+ letters (never an abbreviation) + a single . + closers + whitespace + any character, or + any run of
# . ! ? + closers + whitespace + a character that is not a lowercase letter.
_SENTENCE_END = re.compile(r"[A-Za-z]{5}(?:\.[\")]*\s+\S|[.!?]+[\")]*\s+[^\sa-z])")


@settings(max_examples=300, deadline=None)
@given(st.data(), st.lists(sentence, min_size=1, max_size=8).map("".join))
def test_never_holds_text_past_a_sentence_end(data: st.DataObject, text: str) -> None:
    splitter = SentenceSplitter()
    released = ""
    for delta in data.draw(splits(text)):
        released += "".join(splitter.push(delta))
        held = splitter.pending
        assert not _SENTENCE_END.search(held), (released, held)
    assert released + splitter.flush() == text
