"""A custom processor that rewrites transcripts: redact digits, or title-case, before the LLM sees them.

Writing a processor takes one method. ``TranscriptFilter.process`` looks at each frame; transcripts and user
turns get a rewritten copy (frames are immutable: ``attrs.evolve`` makes the copy), everything else is
forwarded untouched — above all system frames such as interrupts, which a processor must never swallow.

The pipeline here is ``TranscriptFilter → Recorder``; in a voice agent the filter would sit between the STT and
the LLM stage, so card numbers never reach the model or the logs.

Run it::

    python examples/transcript_filter.py                       # redacts digits in a built-in sample
    python examples/transcript_filter.py --mode title "my card is 4111 1111"
    python examples/transcript_filter.py --mode both "call 555 0100 tomorrow"
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Callable

import attrs
from voxline.frames import Frame, TranscriptFrame, UserTextFrame, Word
from voxline.processor import DOWNSTREAM, Direction, Processor
from voxline.testing import run_processor

SAMPLE = ["my card", "my card number is 4111", "my card number is 4111 1111 1111 1111"]
_DIGIT = re.compile(r"\d")

Rewrite = Callable[[str], str]


def redact_digits(text: str) -> str:
    """Every digit becomes ``#``: the shape of a number survives, its value does not."""
    return _DIGIT.sub("#", text)


def title_case(text: str) -> str:
    """Capitalise every word (words that are all digits stay as they are)."""
    return " ".join(word[:1].upper() + word[1:] for word in text.split(" "))


MODES: dict[str, list[Rewrite]] = {
    "redact": [redact_digits],
    "title": [title_case],
    "both": [redact_digits, title_case],
}


class TranscriptFilter(Processor):
    """Rewrites the text of ``TranscriptFrame``s (and their words) and ``UserTextFrame``s going downstream."""

    def __init__(self, *rewrites: Rewrite) -> None:
        super().__init__()
        self.rewrites = rewrites
        self.rewritten = 0

    def rewrite(self, text: str) -> str:
        for step in self.rewrites:
            text = step(text)
        return text

    async def process(self, frame: Frame, direction: Direction) -> None:
        if direction is DOWNSTREAM and isinstance(frame, TranscriptFrame):
            words = tuple(attrs.evolve(w, text=self.rewrite(w.text)) for w in frame.words)
            frame = attrs.evolve(frame, text=self.rewrite(frame.text), words=words)
            self.rewritten += 1
        elif direction is DOWNSTREAM and isinstance(frame, UserTextFrame):
            frame = attrs.evolve(frame, text=self.rewrite(frame.text))
            self.rewritten += 1
        await self.push(frame, direction)


def transcripts_for(phrases: list[str]) -> list[TranscriptFrame | UserTextFrame]:
    """What an STT stage would emit: an interim for every phrase but the last, then a final, then the turn."""
    frames: list[TranscriptFrame | UserTextFrame] = []
    for i, phrase in enumerate(phrases):
        last = i == len(phrases) - 1
        words = tuple(Word(text=w, start=0.3 * n, end=0.3 * n + 0.25) for n, w in enumerate(phrase.split()))
        frames.append(TranscriptFrame(text=phrase, is_final=last, words=words, speech_final=last))
    frames.append(UserTextFrame(text=phrases[-1]))
    return frames


async def run(phrases: list[str], mode: str) -> int:
    filt = TranscriptFilter(*MODES[mode])
    inputs = transcripts_for(phrases)
    result = await run_processor(filt, inputs)
    outputs = [f for f in result.downstream if isinstance(f, (TranscriptFrame, UserTextFrame))]
    for before, after in zip(inputs, outputs, strict=True):
        if isinstance(after, TranscriptFrame):
            label = "final  " if after.is_final else "interim"
            words = " ".join(w.text for w in after.words)
            print(f"{label}: {before.text!r:45} -> {after.text!r}   words: {words}")
        else:
            print(f"turn   : {before.text!r:45} -> {after.text!r}   (what the LLM gets)")
    print(f"-- {filt.rewritten} frame(s) rewritten with mode {mode!r}, {len(result.errors)} error(s)")
    return 0 if not result.errors else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("phrases", nargs="*", help="growing transcript of one turn (default: a built-in sample)")
    parser.add_argument("--mode", choices=sorted(MODES), default="redact")
    args = parser.parse_args(argv)
    return asyncio.run(run(args.phrases or SAMPLE, args.mode))


if __name__ == "__main__":
    sys.exit(main())
