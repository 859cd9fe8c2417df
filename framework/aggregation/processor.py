"""The :class:`SentenceAggregator` stage: turns a streamed LLM reply into speakable chunks for TTS.

It sits between the LLM and the TTS stage. The client still sees every ``TextFrame`` as it streams (they are
forwarded unchanged); the TTS stage gets ``SpeakTextFrame``s cut by :class:`SentenceSplitter`, the first one
early so synthesis starts while the LLM is still writing. It runs inline (no queue, no task): splitting a
delta costs microseconds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from voxline.aggregation.splitter import SentenceSplitter
from voxline.frames import (
    EndFrame,
    Frame,
    InterruptFrame,
    LLMResponseEndFrame,
    LLMResponseStartFrame,
    SpeakTextFrame,
    TextFrame,
)
from voxline.processor import DOWNSTREAM, Direction, Processor

__all__ = ["SentenceAggregator"]

logger = logging.getLogger("voxline.aggregation")


class SentenceAggregator(Processor):
    """Forwards ``TextFrame``s and emits a ``SpeakTextFrame`` per sentence (first clause early).

    * ``TextFrame`` (downstream): forwarded unchanged, then the chunks it completes are pushed as
      ``SpeakTextFrame``s carrying the text's epoch.
    * ``LLMResponseEndFrame``: the rest is flushed before the end frame is forwarded, so TTS sees the whole
      reply before its end (an end frame marked ``interrupted`` discards the rest instead: nothing of a cut
      reply is spoken). ``LLMResponseStartFrame`` and ``EndFrame`` flush leftovers too, so no text is lost.
    * ``InterruptFrame``: the pending text belongs to the old epoch and is discarded.

    ``speech_filter`` rewrites each chunk before it goes to TTS (e.g.
    :func:`~voxline.aggregation.clean_for_speech` strips Markdown); the ``TextFrame``s stay as they were.
    Chunks with no letters or digits (bare whitespace or punctuation) are not sent to TTS: there is nothing
    to say. Everything else is forwarded untouched.
    """

    def __init__(
        self,
        *,
        min_first_words: int = 2,
        first_break_words: int = 4,
        long_clause_words: int = 24,
        speech_filter: Callable[[str], str] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.speech_filter = speech_filter
        self._splitter = SentenceSplitter(
            min_first_words=min_first_words, first_break_words=first_break_words, long_clause_words=long_clause_words
        )
        self._text_epoch: int | None = None

    @property
    def pending(self) -> str:
        """Text received but not yet sent on as a ``SpeakTextFrame``."""
        return self._splitter.pending

    async def process(self, frame: Frame, direction: Direction) -> None:
        if direction is not DOWNSTREAM:
            await self.push(frame, direction)
            return
        if isinstance(frame, TextFrame):
            await self.push(frame, direction)
            await self._on_text(frame)
        elif isinstance(frame, LLMResponseEndFrame):
            if self._belongs_to_newer_reply(frame.epoch):
                pass  # the end of an older reply must not cut the pending text of a newer one
            elif frame.interrupted:
                self._discard()
            else:
                await self._flush()
            await self.push(frame, direction)
        elif isinstance(frame, (LLMResponseStartFrame, EndFrame)):
            await self._flush()
            await self.push(frame, direction)
        elif isinstance(frame, InterruptFrame):
            self._discard()
            await self.push(frame, direction)
        else:
            await self.push(frame, direction)

    def _belongs_to_newer_reply(self, epoch: int | None) -> bool:
        return epoch is not None and self._text_epoch is not None and self._text_epoch > epoch

    async def _on_text(self, frame: TextFrame) -> None:
        epoch = frame.epoch if frame.epoch is not None else self.epoch
        if self._text_epoch is not None and self._text_epoch != epoch:
            # Text of another epoch is pending (its interrupt did not reach us): never mix two turns.
            if self._splitter.pending:
                self._warn_dropped(epoch)
            self._discard()
        self._text_epoch = epoch
        for chunk in self._splitter.push(frame.text):
            await self._speak(chunk, epoch)

    def _warn_dropped(self, epoch: int) -> None:
        logger.warning(
            "%s: dropping %d pending chars of epoch %s: text of epoch %s arrived without an interrupt",
            self.name,
            len(self._splitter.pending),
            self._text_epoch,
            epoch,
        )

    async def _flush(self) -> None:
        epoch = self._text_epoch
        rest = self._splitter.flush()
        self._text_epoch = None
        if epoch is not None and epoch >= self.epoch:
            await self._speak(rest, epoch)

    def _discard(self) -> None:
        self._splitter.reset()
        self._text_epoch = None

    async def _speak(self, chunk: str, epoch: int) -> None:
        if self.speech_filter is not None:
            chunk = self.speech_filter(chunk)
        if any(c.isalnum() for c in chunk):
            await self.push(SpeakTextFrame(text=chunk, epoch=epoch))
