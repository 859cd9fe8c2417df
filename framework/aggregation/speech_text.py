"""Text a TTS voice can say: strip the Markdown an LLM writes for screens.

Models answer in Markdown even when asked not to, and a TTS engine either reads the marks aloud ("asterisk
asterisk") or stumbles on them. :func:`clean_for_speech` removes the common ones from a chunk of text on its
way to TTS; the client still gets the original ``TextFrame``s and renders the Markdown. It works on single
chunks (a bold span may be split across two), so it removes marks rather than matching pairs.
"""

from __future__ import annotations

import re

__all__ = ["clean_for_speech"]

_FENCE = re.compile(r"```[^\n]*")  # a code fence and its language tag
_RULE = re.compile(r"(?m)^[ \t]*(?:-{3,}|\*{3,}|_{3,})[ \t]*$")  # a horizontal rule
_LINK = re.compile(r"!?\[([^\]\n]*)\]\([^)\s]*\)")  # [text](url) and ![alt](url) -> text / alt
_LINE_MARK = re.compile(r"(?m)^([ \t]*)(?:#{1,6}[ \t]+|>[ \t]?|[-*+\u2022][ \t]+)")  # heading, quote, bullet
_EMPHASIS = re.compile(r"\*+|(?<!\w)_+|_+(?!\w)|`+|~~")  # *, **, _x_, `code`, ~~strike~~ (not snake_case)
_BLANKS = re.compile(r"[ \t]{2,}")


def clean_for_speech(text: str) -> str:
    """``text`` without Markdown marks; words, digits and sentence punctuation are kept.

    >>> clean_for_speech("**Note:** see [the docs](https://x.org) or `run_me()`.")
    'Note: see the docs or run_me().'
    """
    if not any(c in text for c in "*_`#>[-+~\u2022"):
        return text  # the common case costs one scan
    text = _FENCE.sub("", text)
    text = _RULE.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _LINE_MARK.sub(r"\1", text)
    text = _EMPHASIS.sub("", text)
    return _BLANKS.sub(" ", text)
