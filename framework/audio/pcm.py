"""Int16 PCM conversions: the one place where raw bytes become numpy arrays and back.

Audio travels through voxline as little-endian Int16 bytes (what browsers, Deepgram and most TTS services
speak). DSP wants arrays. These helpers convert without copying where numpy allows it, and convert float
back to Int16 with clipping, so a gain never wraps a loud sample around into a click.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = [
    "Float32Array",
    "Int16Array",
    "apply_gain",
    "float32_to_int16",
    "float32_to_pcm",
    "int16_to_float32",
    "int16_to_pcm",
    "pcm_to_float32",
    "pcm_to_int16",
    "to_mono",
]

Int16Array = npt.NDArray[np.int16]
Float32Array = npt.NDArray[np.float32]

_INT16_SCALE = 32768.0
_LE_INT16 = np.dtype("<i2")


def _check_pcm(pcm: bytes | bytearray | memoryview, channels: int = 1) -> None:
    if channels < 1:
        raise ValueError(f"channels must be positive, got {channels}")
    if len(pcm) % (2 * channels):
        raise ValueError(f"PCM length {len(pcm)} is not a whole number of {channels}-channel Int16 frames")


def pcm_to_int16(pcm: bytes | bytearray | memoryview) -> Int16Array:
    """Little-endian Int16 bytes → int16 array (a read-only view of ``pcm`` when it is ``bytes``)."""
    _check_pcm(pcm)
    return np.frombuffer(pcm, dtype=_LE_INT16).astype(np.int16, copy=False)


def int16_to_pcm(samples: npt.NDArray[np.integer]) -> bytes:
    """int16 array → little-endian Int16 bytes. Wider integer arrays are clipped to the Int16 range first."""
    if samples.dtype != np.int16:
        samples = np.clip(samples, -32768, 32767).astype(np.int16)
    return samples.astype(_LE_INT16, copy=False).tobytes()


def int16_to_float32(samples: Int16Array) -> Float32Array:
    """int16 → float32 in [-1.0, 1.0)."""
    return samples.astype(np.float32) / np.float32(_INT16_SCALE)


def float32_to_int16(samples: npt.NDArray[np.floating]) -> Int16Array:
    """float in [-1, 1] → int16, rounding to nearest and clipping anything outside the range (no wrap-around)."""
    scaled = np.rint(np.asarray(samples, dtype=np.float64) * _INT16_SCALE)
    return np.clip(scaled, -32768, 32767).astype(np.int16)


def pcm_to_float32(pcm: bytes | bytearray | memoryview) -> Float32Array:
    """Int16 bytes → float32 in [-1.0, 1.0)."""
    return int16_to_float32(pcm_to_int16(pcm))


def float32_to_pcm(samples: npt.NDArray[np.floating]) -> bytes:
    """float in [-1, 1] → Int16 bytes, clipped."""
    return int16_to_pcm(float32_to_int16(samples))


def to_mono(pcm: bytes | bytearray | memoryview, channels: int) -> bytes:
    """Mix interleaved Int16 ``pcm`` of ``channels`` channels down to mono (the mean, rounded; no clipping needed)."""
    _check_pcm(pcm, channels)
    if channels == 1:
        return bytes(pcm)
    frames = pcm_to_int16(pcm).reshape(-1, channels).astype(np.int32)
    mixed = np.floor_divide(frames.sum(axis=1) * 2 + channels, 2 * channels)  # round half up, integer only
    return int16_to_pcm(mixed.astype(np.int16))


def apply_gain(pcm: bytes | bytearray | memoryview, gain_db: float) -> bytes:
    """Scale Int16 ``pcm`` by ``gain_db`` decibels, clipping at full scale instead of wrapping around."""
    _check_pcm(pcm)
    if math.isnan(gain_db) or gain_db == math.inf:
        raise ValueError(f"gain_db must be a number below +inf, got {gain_db}")
    if gain_db == 0:
        return bytes(pcm)
    factor = 10.0 ** (gain_db / 20.0)
    scaled = np.rint(pcm_to_int16(pcm).astype(np.float64) * factor)
    return int16_to_pcm(np.clip(scaled, -32768, 32767).astype(np.int16))
