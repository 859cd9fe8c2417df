"""Audio building blocks: Int16 PCM conversions, streaming resampling, fixed-size framing, levels, WAV files.

This package imports numpy (and soxr for resampling); ``import voxline`` does not import it, so pipelines
that never touch raw audio do not pay for numpy.

* :mod:`voxline.audio.pcm` — bytes ↔ int16/float32 arrays, mono mix-down, clipping-safe gain.
* :mod:`voxline.audio.resample` — :class:`StreamResampler` (soxr stream, no clicks at chunk borders) and
  :func:`resample` for whole buffers.
* :mod:`voxline.audio.chunking` — :class:`PcmChunker` (exact N-ms frames from arbitrary chunks), :func:`chunk_pcm`.
* :mod:`voxline.audio.level` — RMS/peak, linear and dBFS.
* :mod:`voxline.audio.wav` — 16-bit WAV read/write.
* :mod:`voxline.audio.processor` — :class:`AudioResampler`, the pipeline stage.
"""

from __future__ import annotations

from voxline.audio.chunking import PcmChunker, chunk_pcm, frame_bytes
from voxline.audio.level import SILENCE_DBFS, below_dbfs, peak, peak_dbfs, rms, rms_dbfs, to_dbfs
from voxline.audio.pcm import (
    apply_gain,
    float32_to_int16,
    float32_to_pcm,
    int16_to_float32,
    int16_to_pcm,
    pcm_to_float32,
    pcm_to_int16,
    to_mono,
)
from voxline.audio.processor import AudioResampler
from voxline.audio.resample import StreamResampler, resample
from voxline.audio.wav import WavAudio, read_wav, write_wav

__all__ = [
    "SILENCE_DBFS",
    "AudioResampler",
    "PcmChunker",
    "StreamResampler",
    "WavAudio",
    "apply_gain",
    "below_dbfs",
    "chunk_pcm",
    "float32_to_int16",
    "float32_to_pcm",
    "frame_bytes",
    "int16_to_float32",
    "int16_to_pcm",
    "pcm_to_float32",
    "pcm_to_int16",
    "peak",
    "peak_dbfs",
    "read_wav",
    "resample",
    "rms",
    "rms_dbfs",
    "to_dbfs",
    "to_mono",
    "write_wav",
]
