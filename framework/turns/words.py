"""What the words of a turn say about it: backchannels, fillers, and whether the text reads as finished.

These are plain functions over text so that every strategy (and a test) can use them. Word lists are per
language (``"en"`` ships; others fall back to no list, i.e. no word counts as a backchannel, which errs
towards treating speech as a real turn). Speech-to-text engines spell backchannels in different ways
("uh-huh", "uh huh", "uhhuh"; pocketsphinx hears "mm-hmm" as "hm" or "um"), so the lists hold the variants.

Text completeness is a heuristic, on purpose: a turn whose last word is a conjunction, a preposition, an
article, a filler or an auxiliary ("a table for", "I need to", "and um") is not finished; a turn that ends
with sentence punctuation (cloud STTs punctuate) or with a content word is. It is right where an audio
end-of-turn model is weakest (synthetic voices, flat prosody), and it costs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = [
    "BACKCHANNELS",
    "FILLERS",
    "INCOMPLETE_ENDINGS",
    "NOT_CONTENT",
    "URGENT",
    "Completeness",
    "backchannels_for",
    "content_words",
    "is_backchannel",
    "text_completeness",
    "tokens",
    "urgent_for",
]

# fmt: off
BACKCHANNELS: Mapping[str, frozenset[str]] = {
    "en": frozenset(
        {
            "uh-huh", "uh", "huh", "uhhuh", "mhm", "mhmm", "mm-hmm", "mmhmm", "mm", "hmm", "hm", "mmm", "um-hum",
            "yeah", "yea", "yep", "yup", "yes", "ya", "right", "okay", "ok", "kay", "alright", "sure", "i", "see",
            "got", "it", "cool", "nice", "great", "wow", "oh", "ah", "aha", "exactly", "true", "totally", "indeed",
            "good", "fine", "gotcha", "really", "a", "ha",
        }
    ),
}
# fmt: on
"""Words that, alone or together ("oh I see", "yeah right", "got it"), make a backchannel, per language."""

URGENT: Mapping[str, frozenset[str]] = {
    "en": frozenset(
        {"stop", "wait", "no", "hold", "hang", "sorry", "excuse", "actually", "hey", "pause", "cancel", "enough"}
    ),
}
"""Words that plainly claim the floor: an interim that has one interrupts without waiting for it to stand."""

FILLERS: Mapping[str, frozenset[str]] = {
    "en": frozenset({"um", "uh", "erm", "er", "uhm", "umm", "hmm", "mm"}),
}

# fmt: off
INCOMPLETE_ENDINGS: Mapping[str, frozenset[str]] = {
    "en": frozenset(
        {
            # conjunctions and relatives
            "and", "but", "or", "nor", "because", "cause", "if", "which", "whose", "while", "than", "although",
            "though", "unless", "until", "whether",
            # prepositions that cannot end a clause ("turn it on", "come in", "what is it like" can)
            "to", "for", "of", "at", "by", "with", "from", "into", "onto", "about", "near", "between", "through",
            "via", "per", "towards",
            # articles and possessives
            "a", "an", "the", "my", "your", "our", "their", "his", "its", "every", "each", "another",
            # a subject or an auxiliary with nothing after it
            "i", "i'd", "i'm", "we", "we're", "let's", "is", "are", "was", "were", "am",
            # fillers, and the lone letters STTs spell a drawn-out one with ("a taxi to the M." — whisper)
            "um", "uh", "erm", "er", "uhm", "umm", "hmm", "hm", "mm", "mmm", "m", "h", "n",
        }
    ),
}
# fmt: on
"""Last words after which an English turn is not finished ("a table for", "I'd like to", "and um")."""

_WORD = re.compile(r"[a-z0-9]+(?:['\-][a-z0-9]+)*")


def tokens(text: str) -> list[str]:
    """Lower-case words of ``text``, punctuation dropped; "uh-huh" and "it's" stay one word each."""
    return _WORD.findall(text.lower())


def backchannels_for(language: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The backchannel words of ``language`` ("en-US" → "en"), plus ``extra``."""
    base = BACKCHANNELS.get(language.lower().split("-")[0], frozenset())
    return base | frozenset(w.lower() for w in extra)


# fmt: off
NOT_CONTENT: frozenset[str] = frozenset(
    {
        # articles, conjunctions, prepositions
        "the", "a", "an", "and", "but", "or", "so", "of", "to", "in", "on", "at", "for", "with", "by", "from",
        # pronouns and auxiliaries
        "i", "i'm", "im", "me", "you", "he", "him", "she", "her", "it", "its", "we", "they", "them", "that", "this",
        "is", "am", "are", "was", "be", "have", "has", "had", "do", "does",
        # fillers
        "um", "uh", "er", "erm", "uhm", "umm",
    }
)
# fmt: on
"""Function words: they say nothing on their own, and an STT's reading of a hum often comes out as them
("the huh", "them", "i'm i'm"). A barge-in needs a word that says something ("no", "wait", "stop", "what")."""


def _filler_like(word: str, backchannels: frozenset[str]) -> bool:
    # A single letter is an STT spelling out a hum ("mm-hmm" → "m m h m m").
    return word in backchannels or word in NOT_CONTENT or len(word) == 1


def urgent_for(language: str) -> frozenset[str]:
    """The urgent words of ``language`` ("en-US" → "en"); none for a language without a list."""
    return URGENT.get(language.lower().split("-")[0], frozenset())


def is_backchannel(text: str, words: frozenset[str]) -> bool:
    """True when ``text`` has words and every one is a backchannel word, a filler or a lone letter, with at most
    4 words that are not lone letters. Five words are a sentence even if each could be a backchannel."""
    found = tokens(text)
    return bool(found) and sum(len(w) > 1 for w in found) <= 4 and all(_filler_like(w, words) for w in found)


def content_words(text: str, backchannels: frozenset[str]) -> int:
    """How many words of ``text`` say something: not backchannels, fillers, articles or lone letters."""
    return sum(1 for w in tokens(text) if not _filler_like(w, backchannels))


class Completeness:
    """Votes of :func:`text_completeness` (log-odds that the turn is finished)."""

    PUNCTUATED = 2.5  # ends with . ? ! (a cloud STT punctuated it as a finished sentence)
    CONTENT_WORD = 1.5  # two or more words, the last a content word
    ONE_WORD = 0.8  # "yes", "stop", "thanks": usually a whole turn
    INCOMPLETE = -4.0  # ends with a conjunction, preposition, article, filler or auxiliary
    TRAILING_COMMA = -1.5  # "so," or "for example,": the STT heard a continuation


def text_completeness(text: str, language: str = "en", *, full_stop: bool = True) -> float | None:
    """Log-odds that ``text`` is a finished turn (see :class:`Completeness`), or None when there is no text
    or no word list for ``language``.

    ``full_stop=False``: a final "." is no evidence, the last word decides (for an STT that ends every
    transcript with one: whisper writes "I would like a table for." and, for "to the, um,", "to the time.");
    "?" and "!" still count.
    """
    words = tokens(text)
    if not words:
        return None
    lang = language.lower().split("-")[0]
    endings = INCOMPLETE_ENDINGS.get(lang)
    stripped = text.rstrip()
    punctuated = stripped[-1:] in ("?", "!") or (full_stop and stripped[-1:] == ".")
    if endings is None:
        return Completeness.PUNCTUATED if punctuated else None
    if words[-1] in endings:
        return Completeness.INCOMPLETE  # even when punctuated: STTs put a full stop before a pause
    if stripped.endswith((",", ";", ":", "-", "…", "...")):
        return Completeness.TRAILING_COMMA
    if punctuated:
        return Completeness.PUNCTUATED
    return Completeness.CONTENT_WORD if len(words) > 1 else Completeness.ONE_WORD
