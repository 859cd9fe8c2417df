"""Input audio as the local engines want it: 16 kHz mono Int16, whatever the frame's rate and channels.

Silero and pocketsphinx are both trained on 16 kHz mono. A transport that sends 16 kHz mono (the voxline
default) costs nothing here; other input goes through :func:`voxline.audio.to_mono` and one
:class:`voxline.audio.StreamResampler` per input rate, so chunk edges leave no clicks.
"""

from __future__ import annotations

from voxline.audio.pcm import to_mono
from voxline.audio.resample import StreamResampler

__all__ = ["TARGET_RATE", "To16kMono"]

TARGET_RATE = 16000


class To16kMono:
    """Converts consecutive chunks of one stream to 16 kHz mono Int16 bytes."""

    def __init__(self) -> None:
        self._resampler: StreamResampler | None = None

    def convert(self, pcm: bytes, sample_rate: int, channels: int) -> bytes:
        if channels > 1:
            pcm = to_mono(pcm, channels)
        if sample_rate == TARGET_RATE:
            return pcm
        if self._resampler is None or self._resampler.in_rate != sample_rate:
            self._resampler = StreamResampler(sample_rate, TARGET_RATE)
        return self._resampler.process(pcm)
