"""Fixed-duration framing of Int16 PCM.

VADs, STT services and WebSocket senders want frames of an exact duration (10, 20, 30 ms), while audio
arrives in whatever sizes the network or the browser chose. :class:`PcmChunker` turns arbitrary byte chunks
into exact frames and keeps the remainder for the next call; :func:`chunk_pcm` does the same for a whole
buffer. Both keep every byte: the frames plus the remainder are exactly the input.
"""

from __future__ import annotations

__all__ = ["PcmChunker", "chunk_pcm", "frame_bytes"]


def frame_bytes(sample_rate: int, frame_ms: float, channels: int = 1) -> int:
    """Bytes in one Int16 frame of ``frame_ms`` milliseconds; the duration must be a whole number of samples."""
    if sample_rate <= 0 or channels <= 0 or frame_ms <= 0:
        raise ValueError(
            f"sample_rate, frame_ms and channels must be positive, got {sample_rate}, {frame_ms}, {channels}"
        )
    samples = sample_rate * frame_ms / 1000
    if abs(samples - round(samples)) > 1e-9:
        raise ValueError(f"{frame_ms} ms at {sample_rate} Hz is {samples:g} samples: not a whole number")
    return round(samples) * 2 * channels


class PcmChunker:
    """Cuts a stream of Int16 PCM byte chunks into frames of exactly ``frame_ms``.

    Input chunks may have any length, even an odd number of bytes (a sample split across two network
    messages): bytes wait here until a whole frame is complete.
    """

    __slots__ = ("_buf", "frame_size", "sample_rate")

    def __init__(self, sample_rate: int, frame_ms: float, *, channels: int = 1) -> None:
        self.sample_rate = sample_rate
        self.frame_size = frame_bytes(sample_rate, frame_ms, channels)
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes waiting for the next frame."""
        return len(self._buf)

    def push(self, pcm: bytes | bytearray | memoryview) -> list[bytes]:
        """Add ``pcm``; return the whole frames now complete, in order."""
        size = self.frame_size
        if not self._buf and len(pcm) % size == 0:
            data = bytes(pcm)  # fast path: the input is already whole frames
            return [data[i : i + size] for i in range(0, len(data), size)]
        self._buf += pcm
        count = len(self._buf) // size
        if count == 0:
            return []
        frames = [bytes(self._buf[i * size : (i + 1) * size]) for i in range(count)]
        del self._buf[: count * size]
        return frames

    def flush(self, *, pad: bool = False) -> bytes:
        """Return the remainder (zero-padded to a whole frame when ``pad``) and empty the buffer."""
        rest = bytes(self._buf)
        self._buf.clear()
        if pad and rest:
            rest += bytes(self.frame_size - len(rest))
        return rest

    def reset(self) -> None:
        """Drop the remainder."""
        self._buf.clear()


def chunk_pcm(
    pcm: bytes | bytearray | memoryview, sample_rate: int, frame_ms: float, *, channels: int = 1, pad: bool = False
) -> list[bytes]:
    """Cut a whole buffer into ``frame_ms`` frames; the last one is shorter (or zero-padded when ``pad``)."""
    chunker = PcmChunker(sample_rate, frame_ms, channels=channels)
    frames = chunker.push(pcm)
    rest = chunker.flush(pad=pad)
    if rest:
        frames.append(rest)
    return frames
