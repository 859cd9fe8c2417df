"""The :class:`AudioResampler` stage: bring audio frames to one sample rate on their way through a pipeline.

A transport may receive 48 kHz from a browser while STT wants 16 kHz; a TTS service may produce 22.05 kHz
while the client plays 24 kHz. The stage keeps one :class:`StreamResampler` per (input rate, channels, kind of
audio) so each continuous stream is resampled without clicks, and it keeps the frame's type:
a ``TTSAudioFrame`` comes out as a ``TTSAudioFrame``.

It runs inline: resampling a 20 ms chunk costs microseconds, less than a queue hop would.

Bot speech (``TTSAudioFrame``) comes in utterances. Its held-back tail is flushed on ``TTSStoppedFrame``
(before that frame is forwarded, so the end of the speech is not cut off), and on an interruption its
streams are reset: nothing of the old epoch's audio can leak into the next reply. User audio
(``AudioFrame``) is one continuous stream; it is flushed only at the end of the pipeline.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
from voxline.audio.resample import StreamResampler
from voxline.frames import AudioFrame, EndFrame, Frame, InterruptFrame, TTSAudioFrame, TTSStoppedFrame
from voxline.processor import DOWNSTREAM, Direction, Processor

__all__ = ["AudioResampler"]

_Key = tuple[type[AudioFrame], int, int]
_Selector = Callable[[_Key], bool]


class AudioResampler(Processor):
    """Resamples every ``AudioFrame`` travelling downstream to ``sample_rate``; forwards everything else.

    ``only`` limits it to one kind of audio (e.g. ``TTSAudioFrame``); frames of other kinds pass unchanged.
    """

    def __init__(
        self,
        sample_rate: int,
        *,
        quality: str = "HQ",
        only: type[AudioFrame] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        if sample_rate <= 0:
            raise ValueError(f"AudioResampler.sample_rate must be positive, got {sample_rate}")
        StreamResampler(sample_rate, sample_rate, quality=quality)  # validates quality early
        self.sample_rate = sample_rate
        self.quality = quality
        self.only = only
        self._streams: dict[_Key, StreamResampler] = {}
        self._last: dict[_Key, AudioFrame] = {}  # the newest frame of each stream: template for its tail

    async def process(self, frame: Frame, direction: Direction) -> None:
        if direction is DOWNSTREAM:
            if isinstance(frame, AudioFrame):
                await self._resample(frame)
                return
            if isinstance(frame, TTSStoppedFrame):
                await self._flush(lambda key: issubclass(key[0], TTSAudioFrame))
            elif isinstance(frame, EndFrame):
                await self._flush(lambda key: True)
            elif isinstance(frame, InterruptFrame):
                self._reset_speech()
        await self.push(frame, direction)

    async def _resample(self, frame: AudioFrame) -> None:
        if frame.sample_rate == self.sample_rate or (self.only is not None and not isinstance(frame, self.only)):
            await self.push(frame)
            return
        key: _Key = (type(frame), frame.sample_rate, frame.channels)
        stream = self._streams.get(key)
        if stream is None:
            stream = StreamResampler(frame.sample_rate, self.sample_rate, channels=frame.channels, quality=self.quality)
            self._streams[key] = stream
        self._last[key] = frame
        pcm = stream.process(frame.pcm)
        if pcm:
            await self.push(attrs.evolve(frame, pcm=pcm, sample_rate=self.sample_rate))

    async def _flush(self, which: _Selector) -> None:
        for key, stream in list(self._streams.items()):  # a copy: pushing may let new streams appear
            if not which(key) or key not in self._last:
                continue
            last = self._last.pop(key)
            tail = stream.flush()
            if tail and (last.epoch is None or last.epoch >= self.epoch):
                await self.push(attrs.evolve(last, pcm=tail, sample_rate=self.sample_rate))

    def _reset_speech(self) -> None:
        for key, stream in self._streams.items():
            if issubclass(key[0], TTSAudioFrame):
                stream.reset()
                self._last.pop(key, None)
