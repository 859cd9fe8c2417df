"""Offline text-to-speech with espeak-ng (GPL-3.0, loaded from the ``espeakng-loader`` wheel): robotic but
instant — first audio about 0.3 ms after the call, a whole sentence in a few milliseconds.

It implements the request/response style of :class:`voxline.tts.TTSProcessor`: :meth:`synthesize` streams
the blocks espeak produces for one sentence (and reports espeak's word timings, so what a user who barged in
heard is known to the word), resampled from 22.05 kHz to the stage's rate (24 kHz) with one
streaming soxr resampler per sentence. Synthesis runs on the process's single espeak thread
(:mod:`voxline.processors.local.espeak`); when an interrupt cancels a sentence, the synthesis in that thread
is aborted at its next block.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Mapping
from typing import Any

import numpy as np
from voxline.frames import SettingsFrame
from voxline.processors.local import require
from voxline.processors.local.espeak import ENGINE
from voxline.tts import TTSProcessor

__all__ = ["EspeakTTS"]


class EspeakTTS(TTSProcessor):
    """espeak-ng voice ``voice`` (e.g. ``"en-us"``, ``"en-gb"``) at ``rate`` words per minute and ``pitch``
    (0-100). A ``SettingsFrame`` with any of those keys changes them in order with the text."""

    def __init__(
        self,
        *,
        voice: str = "en-us",
        rate: int = 175,
        pitch: int = 50,
        sample_rate: int = 24000,
        name: str | None = None,
    ) -> None:
        super().__init__(sample_rate=sample_rate, name=name)
        self.voice = voice
        self.rate = rate
        self.pitch = pitch

    async def on_start(self) -> None:
        # Loads the library (once per process) and checks the voice, on the espeak thread, before any text.
        await ENGINE.run(ENGINE.set_voice, self.voice, self.rate, self.pitch)

    async def on_settings(self, settings: SettingsFrame) -> None:
        values: Mapping[str, Any] = settings.settings
        voice = str(values.get("voice", self.voice))
        rate = int(values.get("rate", self.rate))
        pitch = int(values.get("pitch", self.pitch))
        try:
            await ENGINE.run(ENGINE.set_voice, voice, rate, pitch)
        except ValueError as exc:
            await self.push_error(str(exc))
            return
        self.voice, self.rate, self.pitch = voice, rate, pitch

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        soxr = require("soxr")
        loop = asyncio.get_running_loop()
        blocks: asyncio.Queue[bytes | None] = asyncio.Queue()
        stop = threading.Event()
        voice, rate, pitch, out_rate = self.voice, self.rate, self.pitch, self.sample_rate

        def post(item: bytes | None) -> bool:
            try:
                loop.call_soon_threadsafe(blocks.put_nowait, item)
            except RuntimeError:  # the loop closed under us (process shutdown): stop synthesising
                return False
            return True

        words: list[tuple[float, int, int]] = []

        def on_word(sample: int, start: int, end: int) -> None:  # on the espeak thread
            words.append((sample / ENGINE.sample_rate, start, end))

        def job() -> None:  # on the espeak thread
            resampler = soxr.ResampleStream(ENGINE.sample_rate, out_rate, 1, dtype="int16")

            def sink(pcm: bytes) -> bool:
                if stop.is_set():
                    return False
                out = resampler.resample_chunk(np.frombuffer(pcm, dtype=np.int16))
                return post(out.tobytes()) if out.size else True

            try:
                ENGINE.synth(text, voice, rate, pitch, sink, on_word)
                if not stop.is_set():
                    tail = resampler.resample_chunk(np.zeros(0, dtype=np.int16), last=True)
                    if tail.size:
                        post(tail.tobytes())
            finally:
                post(None)

        done = asyncio.ensure_future(ENGINE.run(job))
        try:
            while (block := await blocks.get()) is not None:
                yield block
            await done  # raises what the synthesis raised
            self.report_words(words)
        finally:
            stop.set()  # an interrupt (or a consumer that stopped early) aborts the synthesis
            done.add_done_callback(_consume)


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved here so an aborted job's error is not logged as "never retrieved"
