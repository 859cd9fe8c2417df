"""PCM conversions, levels, framing and WAV files."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from voxline.audio import (
    PcmChunker,
    apply_gain,
    below_dbfs,
    chunk_pcm,
    float32_to_int16,
    float32_to_pcm,
    frame_bytes,
    int16_to_pcm,
    pcm_to_float32,
    pcm_to_int16,
    peak_dbfs,
    read_wav,
    rms,
    rms_dbfs,
    to_mono,
    write_wav,
)

int16_pcm = st.lists(st.integers(-32768, 32767), max_size=400).map(lambda s: np.array(s, "<i2").tobytes())


@given(int16_pcm)
def test_bytes_int16_float_round_trip(pcm: bytes) -> None:
    assert int16_to_pcm(pcm_to_int16(pcm)) == pcm
    assert float32_to_pcm(pcm_to_float32(pcm)) == pcm
    assert np.all(np.abs(pcm_to_float32(pcm)) <= 1.0)


def test_pcm_is_little_endian_and_float_conversion_clips() -> None:
    assert pcm_to_int16(b"\x01\x00\xff\x7f\x00\x80").tolist() == [1, 32767, -32768]
    assert float32_to_int16(np.array([2.0, -2.0, 0.5, -1.0])).tolist() == [32767, -32768, 16384, -32768]
    assert int16_to_pcm(np.array([40000, -40000])) == b"\xff\x7f\x00\x80"
    with pytest.raises(ValueError, match="whole number"):
        pcm_to_int16(b"\x00")


def test_to_mono_mixes_interleaved_channels() -> None:
    stereo = np.array([100, 300, -32768, -32768, 32767, 32767, 1, 2], "<i2").tobytes()
    assert pcm_to_int16(to_mono(stereo, 2)).tolist() == [200, -32768, 32767, 2]
    assert to_mono(b"\x01\x00", 1) == b"\x01\x00"
    with pytest.raises(ValueError, match="2-channel"):
        to_mono(b"\x00\x00", 2)


def test_gain_scales_and_clips_instead_of_wrapping() -> None:
    pcm = np.array([1000, -1000, 20000, -20000], "<i2").tobytes()
    assert pcm_to_int16(apply_gain(pcm, 20 * math.log10(2))).tolist() == [2000, -2000, 32767, -32768]
    assert pcm_to_int16(apply_gain(pcm, -6.0206)).tolist() == [500, -500, 10000, -10000]
    assert apply_gain(pcm, 0) == pcm
    assert apply_gain(pcm, -math.inf) == bytes(len(pcm))
    with pytest.raises(ValueError, match="gain_db"):
        apply_gain(pcm, math.nan)


@pytest.mark.parametrize("amplitude", [1.0, 0.5, 0.1])
def test_rms_of_a_sine_is_amplitude_over_root_two(amplitude: float) -> None:
    t = np.arange(16000) / 16000
    pcm = float32_to_pcm(amplitude * 32767 / 32768 * np.sin(2 * np.pi * 1000 * t))
    assert rms(pcm) == pytest.approx(amplitude / math.sqrt(2), rel=1e-3)
    assert rms_dbfs(pcm) == pytest.approx(20 * math.log10(amplitude) - 3.0103, abs=0.01)
    assert peak_dbfs(pcm) == pytest.approx(20 * math.log10(amplitude), abs=0.01)


def test_silence_is_minus_infinity_not_an_error() -> None:
    assert rms_dbfs(bytes(640)) == -math.inf
    assert rms(b"") == 0.0
    assert peak_dbfs(b"") == -math.inf


def test_frame_bytes() -> None:
    assert frame_bytes(16000, 20) == 640
    assert frame_bytes(48000, 10, 2) == 1920
    assert frame_bytes(44100, 20) == 1764
    with pytest.raises(ValueError, match="whole number"):
        frame_bytes(22050, 10)
    with pytest.raises(ValueError, match="positive"):
        frame_bytes(16000, 0)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000), st.lists(st.integers(0, 3000), max_size=10), st.sampled_from([10, 20, 30]))
def test_chunker_frames_are_exact_and_concatenate_to_the_input(data: bytes, cuts: list[int], ms: int) -> None:
    chunker = PcmChunker(16000, ms)
    edges = [0, *sorted(min(c, len(data)) for c in cuts), len(data)]
    frames: list[bytes] = []
    for a, b in itertools.pairwise(edges):
        frames += chunker.push(data[a:b])
        assert chunker.pending < chunker.frame_size
    assert all(len(f) == ms * 32 for f in frames)
    rest = chunker.flush()
    assert b"".join(frames) + rest == data
    assert frames + ([rest] if rest else []) == chunk_pcm(data, 16000, ms)


def test_chunk_pcm_can_pad_the_last_frame() -> None:
    frames = chunk_pcm(b"\x01" * 1000, 16000, 20, pad=True)
    assert [len(f) for f in frames] == [640, 640]
    assert frames[1] == b"\x01" * 360 + bytes(280)
    assert chunk_pcm(b"", 16000, 20, pad=True) == []


def test_wav_round_trip_and_mixdown(tmp_path: Path) -> None:
    pcm = np.array([1, -2, 3, 32767], "<i2").tobytes()
    write_wav(tmp_path / "a.wav", pcm, 24000)
    wav = read_wav(tmp_path / "a.wav")
    assert (wav.pcm, wav.sample_rate, wav.channels) == (pcm, 24000, 1)
    assert wav.duration == pytest.approx(4 / 24000)
    write_wav(tmp_path / "s.wav", pcm, 8000, channels=2)
    mono = read_wav(tmp_path / "s.wav", mono=True)
    assert (pcm_to_int16(mono.pcm).tolist(), mono.channels) == ([0, 16385], 1)


def test_wav_errors_are_clear(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav at all")
    with pytest.raises(ValueError, match="not a PCM WAV"):
        read_wav(bad)
    import wave

    with wave.open(str(tmp_path / "8bit.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(b"\x80\x80")
    with pytest.raises(ValueError, match="16-bit"):
        read_wav(tmp_path / "8bit.wav")
    with pytest.raises(ValueError, match="whole number"):
        write_wav(tmp_path / "odd.wav", b"\x00", 16000)


def test_below_dbfs_agrees_with_rms_dbfs() -> None:
    rng = np.random.default_rng(7)
    for amplitude in (0, 3, 20, 60, 200, 3000):
        pcm = (rng.standard_normal(320) * amplitude).astype("<i2").tobytes()
        level = rms_dbfs(pcm)
        for floor in (-70.0, -55.0, -40.0):
            assert below_dbfs(pcm, floor) == (level < floor), (amplitude, floor, level)
    assert not below_dbfs(b"", -55.0)  # no audio is no verdict of quiet
