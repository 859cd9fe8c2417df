"""An offline stand-in for an LLM that says so: it repeats what it heard and tells the user it is a demo.

With no API key and no network there is no model worth answering with (see docs/local-engines.md: the one
LLM that ships in a wheel needs a 5-9 minute compile and answers nonsense). So the offline demo does not
pretend. :class:`EchoLLM` answers every turn with "You said: …" and, on the first turn, how to get
real answers. It still streams word by word with a small delay, through the same
:class:`voxline.llm.LLMProcessor` base as the real providers, so the rest of the pipeline (sentence
aggregation, TTS, barge-in) is exercised exactly as with a model.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

from voxline.context import Context
from voxline.llm import LLMProcessor

__all__ = ["EchoLLM"]

FIRST_NOTE = "This is the voxline offline demo; set GEMINI_API_KEY for real answers."
LATER_NOTE = "(Offline demo.)"


class EchoLLM(LLMProcessor):
    """Replies "You said: <the user's turn>." plus a demo notice, streamed one word every ``word_delay`` s."""

    def __init__(self, *, word_delay: float = 0.01, name: str | None = None) -> None:
        super().__init__(name=name)
        if word_delay < 0:
            raise ValueError(f"EchoLLM.word_delay must be >= 0, got {word_delay}")
        self.word_delay = word_delay

    def reply_for(self, context: Context) -> str:
        """The whole reply to the last user turn of ``context``."""
        turns = context.turns
        heard = turns[-1].text.strip() if turns and turns[-1].role == "user" else ""
        heard = heard.rstrip(".!?") or "nothing I could make out"
        first = not any(turn.role == "assistant" for turn in turns)
        return f"You said: {heard}. {FIRST_NOTE if first else LATER_NOTE}"

    async def stream(self, context: Context) -> AsyncIterator[str]:
        for i, word in enumerate(re.findall(r"\S+\s*", self.reply_for(context))):
            if i and self.word_delay:
                await asyncio.sleep(self.word_delay)
            yield word
