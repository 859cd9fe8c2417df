"""Sample-rate conversion with soxr, one-shot and streaming.

Why a stream: audio arrives in 10 to 40 ms chunks. Resampling each chunk on its own restarts the filter at every
border and leaves a click there, and rounding each chunk's length drifts the clock. :class:`StreamResampler`
keeps soxr's filter state between chunks (``soxr.ResampleStream``), so a chunked stream comes out identical
to resampling it in one piece (measured: 0 Int16 steps of difference, however the chunks are cut), and its
total length is the ideal ``n * out_rate / in_rate`` (within one sample) once flushed.

The cost is latency, and it is quality-dependent (measured with 20 ms chunks): at ``HQ`` (the default) and
``MQ`` soxr holds back about 37 ms and releases output in 40 ms blocks; ``LQ`` holds about 20 ms but cuts
the top of the band (-13 dB at 7 kHz for 16 → 24 kHz); ``QQ`` (cubic) holds nothing but does not filter
aliases; ``VHQ`` holds about 75 ms. The held tail only comes out on :meth:`StreamResampler.flush`, so flush
at the end of an utterance. Pass ``quality=`` where those milliseconds matter more than the top octave.
"""

from __future__ import annotations

import numpy as np
import soxr
from voxline.audio.pcm import float32_to_pcm, int16_to_float32, pcm_to_int16

__all__ = ["QUALITIES", "StreamResampler", "resample"]

QUALITIES = ("QQ", "LQ", "MQ", "HQ", "VHQ")


def _check(in_rate: int, out_rate: int, channels: int, quality: str) -> None:
    if in_rate <= 0 or out_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {in_rate} → {out_rate}")
    if channels <= 0:
        raise ValueError(f"channels must be positive, got {channels}")
    if quality not in QUALITIES:
        raise ValueError(f"quality must be one of {', '.join(QUALITIES)}, got {quality!r}")


def _as_frames(pcm: bytes | bytearray | memoryview, channels: int) -> np.ndarray:
    """Int16 bytes → float32 samples (frames by channels when stereo).

    soxr runs in float32 and the result is rounded back to Int16 here: soxr's own Int16 output dithers with a
    seed that differs from stream to stream, so the same input would not give the same bytes twice.
    """
    if len(pcm) % (2 * channels):
        raise ValueError(f"PCM length {len(pcm)} is not a whole number of {channels}-channel Int16 frames")
    samples = int16_to_float32(pcm_to_int16(pcm))
    return samples if channels == 1 else samples.reshape(-1, channels)


def resample(
    pcm: bytes | bytearray | memoryview, in_rate: int, out_rate: int, *, channels: int = 1, quality: str = "HQ"
) -> bytes:
    """Resample a whole Int16 buffer at once (for files and tests; use :class:`StreamResampler` for streams)."""
    _check(in_rate, out_rate, channels, quality)
    if in_rate == out_rate:
        return bytes(pcm)
    frames = _as_frames(pcm, channels)
    if len(frames) == 0:
        return b""
    return float32_to_pcm(soxr.resample(frames, in_rate, out_rate, quality=quality))


class StreamResampler:
    """Resamples a continuous Int16 stream chunk by chunk, with no clicks at chunk borders.

    Feed chunks with :meth:`process`; call :meth:`flush` at the end of the stream (or utterance) to get the
    held-back tail. After ``flush`` or :meth:`reset` the resampler starts a fresh stream. Equal rates pass
    the bytes straight through.
    """

    __slots__ = ("_stream", "channels", "in_rate", "out_rate", "quality", "samples_in", "samples_out")

    def __init__(self, in_rate: int, out_rate: int, *, channels: int = 1, quality: str = "HQ") -> None:
        _check(in_rate, out_rate, channels, quality)
        self.in_rate = in_rate
        self.out_rate = out_rate
        self.channels = channels
        self.quality = quality
        self.samples_in = 0  # per channel, since the last flush/reset
        self.samples_out = 0
        self._stream: soxr.ResampleStream | None = None

    @property
    def passthrough(self) -> bool:
        return self.in_rate == self.out_rate

    def process(self, pcm: bytes | bytearray | memoryview) -> bytes:
        """Resample the next chunk; returns what soxr has ready (possibly nothing, never a partial sample)."""
        frames = _as_frames(pcm, self.channels)
        self.samples_in += len(frames)
        if self.passthrough:
            self.samples_out += len(frames)
            return bytes(pcm)
        if len(frames) == 0:
            return b""
        out = self._get_stream().resample_chunk(frames)
        self.samples_out += len(out)
        return float32_to_pcm(out)

    def flush(self) -> bytes:
        """End the stream: return the held-back tail and start afresh."""
        tail = b""
        if self._stream is not None and self.samples_in:
            empty = np.zeros((0, self.channels) if self.channels > 1 else 0, dtype=np.float32)
            out = self._stream.resample_chunk(empty, last=True)
            self.samples_out += len(out)
            tail = float32_to_pcm(out)
        self.reset()
        return tail

    def reset(self) -> None:
        """Drop held-back audio (e.g. after an interruption) and start a fresh stream."""
        # A new soxr stream is built lazily; that costs about what ``clear()`` does (~25 µs).
        self._stream = None
        self.samples_in = 0
        self.samples_out = 0

    def _get_stream(self) -> soxr.ResampleStream:
        if self._stream is None:
            self._stream = soxr.ResampleStream(
                self.in_rate, self.out_rate, self.channels, dtype="float32", quality=self.quality
            )
        return self._stream
