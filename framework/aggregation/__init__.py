"""Text aggregation for TTS: cut a streamed LLM reply into speakable sentences and clauses.

:class:`SentenceSplitter` is the pure, synchronous splitter (documented rules, no I/O);
:class:`SentenceAggregator` is the pipeline stage that wraps it between an LLM and a TTS stage;
:func:`clean_for_speech` strips the Markdown a model writes for screens from what a voice will say.
"""

from __future__ import annotations

from voxline.aggregation.processor import SentenceAggregator
from voxline.aggregation.speech_text import clean_for_speech
from voxline.aggregation.splitter import SentenceSplitter, split_text

__all__ = ["SentenceAggregator", "SentenceSplitter", "clean_for_speech", "split_text"]
