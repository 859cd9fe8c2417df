"""WAV files of 16-bit PCM, via the standard library's ``wave`` (no extra dependency for a simple format).

For examples, tests and debugging dumps. Reading refuses anything but 16-bit PCM with a clear error instead
of returning noise; multi-channel files can be mixed down to mono on the way in.
"""

from __future__ import annotations

import wave
from pathlib import Path

import attrs
from voxline.audio.pcm import to_mono

__all__ = ["WavAudio", "read_wav", "write_wav"]


@attrs.frozen
class WavAudio:
    """Int16 little-endian PCM read from a WAV file (interleaved when ``channels`` > 1)."""

    pcm: bytes
    sample_rate: int
    channels: int

    @property
    def duration(self) -> float:
        return len(self.pcm) / (2 * self.channels * self.sample_rate)


def read_wav(path: str | Path, *, mono: bool = False) -> WavAudio:
    """Read a 16-bit PCM WAV file; ``mono=True`` mixes it down to one channel."""
    try:
        with wave.open(str(path), "rb") as wav:
            width = wav.getsampwidth()
            if width != 2:
                raise ValueError(f"{path}: expected 16-bit PCM, got {8 * width}-bit samples")
            channels = wav.getnchannels()
            rate = wav.getframerate()
            pcm = wav.readframes(wav.getnframes())
    except wave.Error as exc:
        raise ValueError(f"{path}: not a PCM WAV file ({exc})") from exc
    if mono and channels > 1:
        pcm, channels = to_mono(pcm, channels), 1
    return WavAudio(pcm=pcm, sample_rate=rate, channels=channels)


def write_wav(path: str | Path, pcm: bytes, sample_rate: int, channels: int = 1) -> None:
    """Write Int16 little-endian ``pcm`` as a WAV file."""
    if sample_rate <= 0 or channels <= 0:
        raise ValueError(f"sample_rate and channels must be positive, got {sample_rate} and {channels}")
    if len(pcm) % (2 * channels):
        raise ValueError(f"PCM length {len(pcm)} is not a whole number of {channels}-channel Int16 frames")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
