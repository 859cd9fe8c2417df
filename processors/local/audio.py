"""Input audio as the local engines want it: 16 kHz mono Int16, whatever the frame's rate and channels.

Silero and pocketsphinx are both trained on 16 kHz mono. A transport that sends 16 kHz mono (the voxline
default) costs nothing here; any other rate goes through one streaming soxr resampler per stream, so chunk
edges leave no clicks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["TARGET_RATE", "To16kMono"]

TARGET_RATE = 16000


class To16kMono:
    """Converts consecutive chunks of one stream to 16 kHz mono Int16 bytes."""

    def __init__(self) -> None:
        self._rate: int | None = None
        self._resampler: Any = None

    def convert(self, pcm: bytes, sample_rate: int, channels: int) -> bytes:
        if channels == 1 and sample_rate == TARGET_RATE:
            return pcm
        samples = np.frombuffer(pcm, dtype=np.int16)
        if channels > 1:
            samples = samples.reshape(-1, channels).mean(axis=1).astype(np.int16)
        if sample_rate != TARGET_RATE:
            if self._rate != sample_rate:
                import soxr

                self._rate = sample_rate
                self._resampler = soxr.ResampleStream(sample_rate, TARGET_RATE, 1, dtype="int16")
            samples = self._resampler.resample_chunk(samples)
        return bytes(samples.tobytes())
