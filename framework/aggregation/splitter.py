"""A pure, streaming sentence/clause splitter: LLM text deltas in, speakable chunks out.

Why it exists: a TTS service speaks a sentence better than a token, but waiting for a whole reply costs the
user seconds. So the splitter releases the *first* chunk of a reply early (at the first clause boundary once
it has two words, or before a conjunction or preposition once it has a few words, so synthesis can start
while the model is still writing), and afterwards releases whole sentences, which keeps the prosody of the
rest. What the early first chunk buys and costs is measured in tests/bench/bench_app.py (docs/performance.md).

The rules, precisely
--------------------
A *boundary candidate* is a run of punctuation, then any closing quotes/brackets, then whitespace, and it is
only decided when the first character after all of that has arrived (the *lookahead*: not whitespace, and
when no whitespace is required, not a closer or another stop either):

* sentence end: ``.`` ``!`` ``?`` ``…`` (and runs of them, e.g. ``?!`` or ``...``) + closers + whitespace;
  the full-width CJK stops (ideographic full stop, exclamation and question marks) need no whitespace;
* clause end: ``,`` ``;`` ``:``, em or en dash + closers + whitespace;
* line break: whitespace containing ``\\n``;
* natural break (first chunk only): the whitespace before a conjunction or preposition ("and", "but", "with",
  "because", ... ``BREAK_WORDS``) that is itself complete (whitespace after it): "It will be sunny all day |
  with a light breeze". The chunk ends before the break word.

A decided candidate becomes a *boundary* — the chunk ends right before the lookahead, so the chunk keeps its
trailing punctuation, closers and whitespace — when:

* the chunk would contain at least one letter or digit (never a chunk of bare punctuation), and
* it is a line break or a CJK terminator — always; or
* it is a run with ``!`` or ``?``, or an ellipsis (``..``, ``...``, ``…``), and the lookahead is not a
  lowercase letter ("Well... maybe" and 'He asked "why?" and left' go on); or
* it is a single ``.`` whose word is not an abbreviation: titles and Latin short forms (``Dr.`` ``Mr.``
  ``e.g.`` ``i.e.`` ``vs.`` …), single-letter initials (``J.``) and upper-case dotted acronyms (``U.S.``)
  never end a sentence; ``etc.`` ``Inc.`` ``a.m.`` ``p.m.`` … end one only before an upper-case letter; a
  number at the start of a chunk or line (``1.`` of a list) never does; or
* it is a clause end and either no chunk has been released yet and the chunk has ``min_first_words`` words
  (the early first chunk), or the chunk already has ``long_clause_words`` words (a very long sentence is
  split at a comma rather than spoken late); or
* it is a natural break, no chunk has been released yet and the chunk has ``first_break_words`` words (a first
  sentence without an early comma is not spoken whole before the voice starts).

Decimals (``3.14``), thousands (``1,000``), times (``3:30``) and URLs are safe because a boundary needs
whitespace after the punctuation. Each decision depends only on the text up to its lookahead, so:

* the output never depends on how the text was split into deltas;
* text is never held past a boundary once its lookahead has arrived;
* ``"".join(chunks) + flush()`` is exactly the input.
"""

from __future__ import annotations

import re

__all__ = ["SentenceSplitter", "split_text"]

# Closing quotes and brackets that may follow the punctuation: " ' ) ] } and their typographic/CJK forms, and
# Markdown emphasis (``**Sure!** Here``).
_CLOSERS = "\"')\\]}*_\u201d\u2019\u00bb\u300d\u300f\uff09"
_CJK_STOPS = "\u3002\uff01\uff1f"
_DASHES = "\u2014\u2013"
BREAK_WORDS = (
    "and but or so because since while whereas although though unless until if when where which who whose "
    "with without for from about after before during like"
)
"""Words before which a first chunk may end (a phrase boundary in English speech)."""
_BREAK = "|".join(BREAK_WORDS.split())
_CANDIDATE = re.compile(
    rf"(?P<term>[.!?…]+)[{_CLOSERS}]*(?P<ws>\s+)(?=\S)"
    rf"|(?P<cjk>[{_CJK_STOPS}]+)[{_CLOSERS}]*(?P<cws>\s*)(?=[^\s{_CLOSERS}{_CJK_STOPS}])"
    rf"|(?P<clause>[,;:{_DASHES}])[{_CLOSERS}]*(?P<kws>\s+)(?=\S)"
    r"|(?P<nl>\s*\n\s*)(?=\S)"
    rf"|(?P<brk>[ \t]+)(?=(?i:{_BREAK})\s)"
)
_CANDIDATE_CHARS = frozenset(".!?\u2026,;:" + _CJK_STOPS + _DASHES + _CLOSERS)
_OPENERS = "\"'([{*_\u201c\u2018\u00ab"
_ALNUM = re.compile(r"\w")
_ACRONYM = re.compile(r"(?:[A-Z]\.)+[A-Z]")
_INITIAL = re.compile(r"[A-Za-z]")

# Never the end of a sentence: a name or a phrase always follows.
_NEVER_END_WORDS = (
    "mr mrs ms mx dr prof st mt ft vs cf e.g i.e viz gen col capt cmdr lt sgt rev hon fig figs approx dept eq vol "
    "pp sen rep gov pres"
)
# Often the last word of a sentence: a sentence end only before an upper-case letter ("I said no. Then").
_ENDABLE_WORDS = "etc inc ltd co corp llc jr sr a.m p.m ph.d bros al no nos"
_NEVER_END = frozenset(_NEVER_END_WORDS.split())
_ENDABLE = frozenset(_ENDABLE_WORDS.split())


class SentenceSplitter:
    """Feed text deltas with :meth:`push`; get speakable chunks back; :meth:`flush` the rest at the end.

    ``min_first_words``: words the first chunk needs before a clause boundary releases it.
    ``first_break_words``: words the first chunk needs before a natural break (before "and", "with", ...)
    releases it.
    ``long_clause_words``: after the first chunk, a clause boundary splits only chunks at least this long.
    """

    __slots__ = ("_buf", "_released", "_scan", "first_break_words", "long_clause_words", "min_first_words")

    def __init__(self, *, min_first_words: int = 2, first_break_words: int = 4, long_clause_words: int = 24) -> None:
        if min_first_words < 1 or long_clause_words < 1 or first_break_words < 1:
            raise ValueError("SentenceSplitter word counts must be positive")
        self.min_first_words = min_first_words
        self.first_break_words = first_break_words
        self.long_clause_words = long_clause_words
        self._buf = ""
        self._scan = 0  # every candidate before this offset of _buf has been decided and rejected
        self._released = False  # a chunk of the current text has been released (the early one is spent)

    @property
    def pending(self) -> str:
        """Text received but not released yet."""
        return self._buf

    def push(self, delta: str) -> list[str]:
        """Add ``delta``; return the chunks it completes (often none), in order."""
        if not delta:
            return []
        self._buf += delta
        chunks: list[str] = []
        while True:
            cut = self._next_boundary()
            if cut is None:
                return chunks
            chunks.append(self._buf[:cut])
            self._buf = self._buf[cut:]
            self._scan = 0
            self._released = True

    def flush(self) -> str:
        """Release whatever is pending (the end of a reply) and start afresh for the next one."""
        rest = self._buf
        self.reset()
        return rest

    def reset(self) -> None:
        """Forget pending text (an interruption) and start afresh."""
        self._buf = ""
        self._scan = 0
        self._released = False

    def _next_boundary(self) -> int | None:
        buf = self._buf
        for m in _CANDIDATE.finditer(buf, self._scan):
            cut = m.end()
            if self._is_boundary(m, buf[cut]):
                return cut
            self._scan = cut
        # Nothing decided. A candidate still waiting for its lookahead can only lie in the trailing run of
        # punctuation, closers and whitespace, so the next scan starts there: a long text with no boundary
        # (a code block, a URL list) costs linear time, not quadratic. Before the first chunk, a natural break
        # also waits for the word after it: the scan goes back to the space before the last word.
        tail = _tail_start(buf)
        if not self._released:
            tail = min(tail, max(buf.rfind(" ", 0, tail), buf.rfind("\t", 0, tail), 0))
        self._scan = max(self._scan, tail)
        return None

    def _is_boundary(self, m: re.Match[str], lookahead: str) -> bool:
        head = self._buf[: m.start()]
        if not _ALNUM.search(head):
            return False
        ws = m.group("ws") or m.group("kws") or m.group("cws") or ""
        if m.group("nl") is not None or "\n" in ws or m.group("cjk"):
            return True
        if m.group("brk") is not None:
            return not self._released and len(head.split()) >= self.first_break_words
        term = m.group("term")
        if term is not None:
            if term != ".":
                return not lookahead.islower()
            return _ends_sentence(head, lookahead)
        words = len(head.split())
        if not self._released:
            return words >= self.min_first_words
        return words >= self.long_clause_words


def _tail_start(buf: str) -> int:
    """Where the trailing run of characters that may belong to a boundary candidate begins."""
    i = len(buf)
    while i > 0 and (buf[i - 1] in _CANDIDATE_CHARS or buf[i - 1].isspace()):
        i -= 1
    return i


def _ends_sentence(head: str, lookahead: str) -> bool:
    """Whether a single ``.`` after ``head`` ends a sentence, given the next non-space character."""
    line_start = max(head.rfind(" "), head.rfind("\t"), head.rfind("\n")) + 1
    word = head[line_start:].lstrip(_OPENERS)
    lower = word.lower()
    if lower in _NEVER_END or _INITIAL.fullmatch(word) or _ACRONYM.fullmatch(word):
        return False
    if lower in _ENDABLE:
        return lookahead.isupper()
    if word.isdigit():
        before = head[:line_start]
        # "1. First item": a list number at the start of a chunk or a line.
        return bool(before.strip(" \t")) and not before.rstrip(" \t").endswith("\n")
    return True


def split_text(text: str, **options: int) -> list[str]:
    """Split a whole text the way a stream of it would be split (the last chunk is the flushed rest)."""
    splitter = SentenceSplitter(**options)
    chunks = splitter.push(text)
    rest = splitter.flush()
    if rest:
        chunks.append(rest)
    return chunks
