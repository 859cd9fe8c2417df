"""AudioResampler as a pipeline stage."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from voxline.audio import AudioResampler, StreamResampler, float32_to_pcm, pcm_to_int16, resample
from voxline.frames import AudioFrame, EndFrame, Frame, TextFrame, TTSAudioFrame, TTSStoppedFrame
from voxline.testing import Interrupt, Sleep, run_processor


def tone(n: int, rate: int, freq: float = 440.0) -> bytes:
    return float32_to_pcm(0.5 * np.sin(2 * np.pi * freq * np.arange(n) / rate))


def chunks(pcm: bytes, size: int) -> list[bytes]:
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


async def test_resamples_a_stream_like_one_piece_and_keeps_frame_types() -> None:
    pcm = tone(16000, 16000)
    frames = [AudioFrame(pcm=c, sample_rate=16000) for c in chunks(pcm, 640)]
    result = await run_processor(AudioResampler(24000), frames)
    out = result.downstream_of(AudioFrame)
    assert all(type(f) is AudioFrame and f.sample_rate == 24000 for f in out)
    joined = b"".join(f.pcm for f in out)  # includes the tail flushed at EndFrame
    assert len(joined) // 2 == 24000
    whole = pcm_to_int16(resample(pcm, 16000, 24000)).astype(np.int32)
    assert np.abs(pcm_to_int16(joined).astype(np.int32) - whole).max() <= 1
    assert result.errors == []


async def test_tts_audio_stays_tts_audio_and_is_flushed_before_tts_stopped() -> None:
    pcm = tone(2205, 22050)
    frames = [
        *(TTSAudioFrame(pcm=c, sample_rate=22050) for c in chunks(pcm, 882)),
        TTSStoppedFrame(),
        TextFrame(text="x"),
    ]
    result = await run_processor(AudioResampler(24000), frames)
    stopped_at = next(i for i, f in enumerate(result.downstream) if isinstance(f, TTSStoppedFrame))
    audio = [(i, f) for i, f in enumerate(result.downstream) if isinstance(f, AudioFrame)]
    assert all(type(f) is TTSAudioFrame for _, f in audio)
    assert all(i < stopped_at for i, _ in audio)
    assert sum(f.num_samples for _, f in audio) == 2400
    assert result.downstream_of(TextFrame)[0].text == "x"


async def test_interrupt_resets_speech_so_no_old_audio_leaks() -> None:
    old = tone(4410, 22050, 300)
    new = tone(2205, 22050, 700)
    frames = [
        *(TTSAudioFrame(pcm=c, sample_rate=22050) for c in chunks(old, 882)),
        Sleep(0.02),
        Interrupt(),
        *(TTSAudioFrame(pcm=c, sample_rate=22050) for c in chunks(new, 882)),
        TTSStoppedFrame(),
    ]
    result = await run_processor(AudioResampler(24000), frames)
    after = [f for f in result.downstream_of(TTSAudioFrame) if f.epoch == 1]
    fresh = StreamResampler(22050, 24000)
    expected = b"".join(fresh.process(c) for c in chunks(new, 882)) + fresh.flush()
    assert b"".join(f.pcm for f in after) == expected  # exactly a fresh stream: no tail of the old reply
    assert all(f.epoch in (0, 1) for f in result.downstream_of(TTSAudioFrame))


async def test_matching_rate_and_other_kinds_pass_unchanged() -> None:
    same = AudioFrame(pcm=b"\x01\x00" * 10, sample_rate=24000)
    user = AudioFrame(pcm=b"\x01\x00" * 10, sample_rate=16000)
    result = await run_processor(AudioResampler(24000, only=TTSAudioFrame), [same, user])
    assert result.downstream_of(AudioFrame) == [same, user]
    assert [f.id for f in result.downstream_of(AudioFrame)] == [same.id, user.id]
    assert any(isinstance(f, EndFrame) for f in result.downstream)


async def test_stereo_input_keeps_its_channels() -> None:
    stereo = np.repeat(pcm_to_int16(tone(1600, 16000)), 2).astype("<i2").tobytes()
    result = await run_processor(AudioResampler(48000), [AudioFrame(pcm=stereo, sample_rate=16000, channels=2)])
    out = result.downstream_of(AudioFrame)
    assert {f.channels for f in out} == {2}
    assert sum(f.num_samples for f in out) == 4800


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="positive"):
        AudioResampler(0)
    with pytest.raises(ValueError, match="quality"):
        AudioResampler(16000, quality="great")


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.lists(st.integers(1, 900), min_size=1, max_size=8), min_size=1, max_size=3),
    st.sampled_from([16000, 22050, 44100]),
)
def test_each_utterance_comes_out_whole_however_it_is_chunked(utterances: list[list[int]], rate: int) -> None:
    """Per utterance (ended by TTSStoppedFrame): the bytes a fresh stream gives, and the ideal length."""
    frames: list[Frame] = []
    expected: list[bytes] = []
    for sizes in utterances:
        pcm = tone(sum(sizes), rate, 500)
        fresh = StreamResampler(rate, 24000)
        offset, out = 0, b""
        for size in sizes:
            frames.append(TTSAudioFrame(pcm=pcm[2 * offset : 2 * (offset + size)], sample_rate=rate))
            out += fresh.process(pcm[2 * offset : 2 * (offset + size)])
            offset += size
        frames.append(TTSStoppedFrame())
        expected.append(out + fresh.flush())
        assert abs(len(expected[-1]) // 2 - sum(sizes) * 24000 / rate) <= 1
    result = asyncio.run(run_processor(AudioResampler(24000), frames))
    got: list[bytes] = [b""]
    for frame in result.downstream:
        if isinstance(frame, TTSAudioFrame):
            got[-1] += frame.pcm
        elif isinstance(frame, TTSStoppedFrame):
            got.append(b"")
    assert got[:-1] == expected
    assert got[-1] == b""
