"""StreamResampler: a chunked stream resamples like one piece (no clicks at borders, no clock drift)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from voxline.audio import StreamResampler, float32_to_pcm, pcm_to_int16, resample

RATES = [8000, 16000, 22050, 24000, 44100, 48000]


def tone(n: int, rate: int, freq: float = 440.0, amplitude: float = 0.5) -> bytes:
    t = np.arange(n) / rate
    return float32_to_pcm(amplitude * np.sin(2 * np.pi * freq * t))


def split(pcm: bytes, cuts: list[int]) -> list[bytes]:
    """Cut ``pcm`` at sample offsets ``cuts``."""
    edges = [0, *sorted(2 * min(c, len(pcm) // 2) for c in cuts), len(pcm)]
    return [pcm[a:b] for a, b in itertools.pairwise(edges)]


def stream_all(resampler: StreamResampler, chunks: list[bytes]) -> tuple[bytes, list[int]]:
    """Resample ``chunks``; returns the output and the output sample offset at each input chunk border."""
    out = bytearray()
    borders = []
    for chunk in chunks:
        out += resampler.process(chunk)
        borders.append(len(out) // 2)
    out += resampler.flush()
    return bytes(out), borders


rates = st.sampled_from(RATES)
signal = st.tuples(rates, rates, st.integers(0, 6000), st.floats(50, 3000), st.lists(st.integers(0, 6000), max_size=15))


@settings(max_examples=150, deadline=None)
@given(signal)
def test_stream_length_is_the_ideal_within_one_sample(case: tuple[int, int, int, float, list[int]]) -> None:
    in_rate, out_rate, n, freq, cuts = case
    pcm = tone(n, in_rate, min(freq, in_rate / 2.5))
    out, _ = stream_all(StreamResampler(in_rate, out_rate), split(pcm, cuts))
    assert abs(len(out) // 2 - n * out_rate / in_rate) <= 1


@settings(max_examples=150, deadline=None)
@given(signal)
def test_stream_equals_one_shot_so_borders_have_no_clicks(case: tuple[int, int, int, float, list[int]]) -> None:
    in_rate, out_rate, n, freq, cuts = case
    pcm = tone(n, in_rate, min(freq, in_rate / 2.5))
    streamed, borders = stream_all(StreamResampler(in_rate, out_rate), split(pcm, cuts))
    whole = resample(pcm, in_rate, out_rate)
    a, b = pcm_to_int16(streamed).astype(np.int32), pcm_to_int16(whole).astype(np.int32)
    assert len(a) == len(b)
    if len(a):
        diff = np.abs(a - b)
        assert diff.max() <= 1  # Int16 steps (measured: 0); a border click would be thousands
        near_borders = [diff[max(0, i - 3) : i + 3].max(initial=0) for i in borders]
        assert max(near_borders, default=0) <= 1


def test_naive_per_chunk_resampling_clicks_and_the_stream_does_not() -> None:
    """The reason StreamResampler exists: resampling chunks independently breaks the waveform at borders."""
    pcm = tone(16000, 16000, 440.0)
    chunks = split(pcm, list(range(320, 16000, 320)))
    naive = b"".join(resample(c, 16000, 24000) for c in chunks)
    streamed, _ = stream_all(StreamResampler(16000, 24000), chunks)
    whole = pcm_to_int16(resample(pcm, 16000, 24000)).astype(np.int32)
    naive_err = np.abs(pcm_to_int16(naive).astype(np.int32)[: len(whole)] - whole[: len(naive) // 2]).max()
    stream_err = np.abs(pcm_to_int16(streamed).astype(np.int32) - whole).max()
    assert naive_err > 1000
    assert stream_err <= 1


def test_flush_starts_a_fresh_stream_and_reset_drops_the_tail() -> None:
    resampler = StreamResampler(16000, 24000)
    pcm = tone(1600, 16000)
    first = resampler.process(pcm) + resampler.flush()
    second = resampler.process(pcm) + resampler.flush()
    assert first == second
    assert len(first) // 2 == 2400
    resampler.process(pcm)
    resampler.reset()
    assert resampler.samples_in == 0
    assert resampler.flush() == b""
    assert resampler.process(pcm) + resampler.flush() == first


def test_stereo_and_passthrough() -> None:
    left, right = pcm_to_int16(tone(800, 16000, 300)), pcm_to_int16(tone(800, 16000, 500))
    stereo = np.stack([left, right], axis=1).reshape(-1).astype("<i2").tobytes()
    resampler = StreamResampler(16000, 48000, channels=2)
    out = pcm_to_int16(resampler.process(stereo) + resampler.flush()).reshape(-1, 2)
    assert out.shape == (2400, 2)
    mono_left = pcm_to_int16(resample(left.astype("<i2").tobytes(), 16000, 48000))
    assert np.abs(out[:, 0].astype(np.int32) - mono_left).max() <= 1
    same = StreamResampler(24000, 24000)
    assert same.process(b"\x01\x00\x02\x00") == b"\x01\x00\x02\x00"
    assert same.flush() == b""


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"in_rate": 0, "out_rate": 16000}, "positive"),
        ({"in_rate": 16000, "out_rate": 24000, "quality": "best"}, "quality"),
        ({"in_rate": 16000, "out_rate": 24000, "channels": 0}, "channels"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StreamResampler(**kwargs)  # type: ignore[arg-type]


def test_odd_byte_chunk_is_an_error() -> None:
    with pytest.raises(ValueError, match="whole number"):
        StreamResampler(16000, 24000).process(b"\x00\x00\x01")
