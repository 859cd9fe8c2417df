"""The TTS base: epochs, held response ends, odd bytes, TTFB — with tiny in-test subclasses of both styles."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

from hypothesis import given, settings
from hypothesis import strategies as st
from voxline.frames import (
    LLMResponseEndFrame,
    LLMResponseStartFrame,
    SettingsFrame,
    SpeakTextFrame,
    TextFrame,
    TTSAudioFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from voxline.testing import Interrupt, Sleep, barge_in_on_first_audio, run_processor, until
from voxline.tts import TTSProcessor


class ChunkyTTS(TTSProcessor):
    """Style (a): yields the text's bytes as 'audio' in odd-sized chunks, with a delay per chunk."""

    def __init__(self, delay: float = 0.0, fail_on: str | None = None) -> None:
        super().__init__()
        self.delay = delay
        self.fail_on = fail_on

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        if text == self.fail_on:
            raise RuntimeError("engine exploded")
        data = text.encode() * 3
        for i in range(0, len(data), 5):
            await asyncio.sleep(self.delay)
            yield data[i : i + 5]


class SocketTTS(TTSProcessor):
    """Style (b): speak() only records the text; the test plays the provider and pushes audio by hand."""

    def __init__(self) -> None:
        super().__init__(drain_timeout=5.0)
        self.sent: list[tuple[str, int]] = []
        self.clears: list[int] = []
        self.spoken = asyncio.Event()

    async def speak(self, frame: SpeakTextFrame, epoch: int) -> None:
        self.sent.append((frame.text, epoch))

    async def wait_until_spoken(self) -> None:
        await self.spoken.wait()

    async def on_interrupt(self, epoch: int) -> None:
        self.clears.append(epoch)


def _kinds(frames: list[object]) -> list[str]:
    return [type(f).__name__ for f in frames if not type(f).__name__.startswith(("Start", "End"))]


async def test_request_response_style_streams_audio_in_order_with_even_frames() -> None:
    result = await run_processor(
        ChunkyTTS(),
        [LLMResponseStartFrame(), SpeakTextFrame(text="Hello."), SpeakTextFrame(text=" Bye!"), LLMResponseEndFrame()],
    )
    audio = result.downstream_of(TTSAudioFrame)
    assert audio and all(len(f.pcm) % 2 == 0 for f in audio)
    assert all(f.sample_rate == 24000 for f in audio)
    joined = b"".join(f.pcm for f in audio)
    first, second = b"Hello." * 3, b" Bye!" * 3  # 18 and 15 bytes: the second's dangling byte is dropped
    assert joined == first + second[:-1]
    kinds = [k for k in _kinds(result.downstream) if k != "MetricsFrame"]
    assert kinds[0] == "LLMResponseStartFrame" and kinds[1] == "TTSStartedFrame"
    assert kinds[-2:] == ["TTSStoppedFrame", "LLMResponseEndFrame"]
    assert kinds.count("TTSStartedFrame") == 1
    ttfb = [m for m in result.metrics if m.name == "tts.ttfb"]
    assert len(ttfb) == 2 and all(m.value >= 0 and m.unit == "s" for m in ttfb)


async def test_text_is_not_held_behind_synthesis() -> None:
    result = await run_processor(
        ChunkyTTS(delay=0.02),
        [SpeakTextFrame(text="A long sentence to say."), TextFrame(text="visible at once"), LLMResponseEndFrame()],
    )
    kinds = _kinds(result.downstream)
    assert kinds.index("TextFrame") < kinds.index("TTSAudioFrame")


async def test_interrupt_cancels_synthesis_and_no_old_audio_follows() -> None:
    tts = ChunkyTTS(delay=0.02)
    result = await barge_in_on_first_audio(
        tts,
        [
            SpeakTextFrame(text="This is a fairly long sentence."),
            SpeakTextFrame(text="Never spoken."),
            LLMResponseEndFrame(),
        ],
        [SpeakTextFrame(text="New."), LLMResponseEndFrame()],
    )
    frames = result.downstream
    cut = next(i for i, f in enumerate(frames) if type(f).__name__ == "InterruptFrame")
    before = [f for f in frames[:cut] if isinstance(f, TTSAudioFrame)]
    after = [f for f in frames[cut:] if isinstance(f, TTSAudioFrame)]
    assert before and all(f.epoch == 0 for f in before)
    assert len(b"".join(f.pcm for f in before)) < len(b"This is a fairly long sentence." * 3)
    assert after and all(f.epoch == 1 for f in after)
    assert b"".join(f.pcm for f in after) == (b"New." * 3)
    started = result.downstream_of(TTSStartedFrame)
    stopped = result.downstream_of(TTSStoppedFrame)
    assert [f.epoch for f in started] == [0, 1] and [f.epoch for f in stopped] == [0, 1]


async def test_synthesis_error_is_reported_and_the_session_goes_on() -> None:
    result = await run_processor(
        ChunkyTTS(fail_on="boom"),
        [SpeakTextFrame(text="boom"), SpeakTextFrame(text="fine"), LLMResponseEndFrame()],
    )
    assert any("engine exploded" in e.message for e in result.errors)
    assert b"".join(f.pcm for f in result.downstream_of(TTSAudioFrame)) == b"fine" * 3


async def test_streaming_style_holds_the_response_end_until_spoken() -> None:
    tts = SocketTTS()

    async def provider() -> None:
        await asyncio.sleep(0.05)
        await tts.push_audio(b"\x01\x02\x03", 0)  # odd: the third byte waits for the next chunk
        await tts.push_audio(b"\x04", 0)
        tts.spoken.set()

    async def run() -> list[object]:
        task = asyncio.create_task(provider())
        result = await run_processor(tts, [SpeakTextFrame(text="Hi."), LLMResponseEndFrame()])
        await task
        return result.downstream

    downstream = await run()
    audio = [f for f in downstream if isinstance(f, TTSAudioFrame)]
    assert [f.pcm for f in audio] == [b"\x01\x02", b"\x03\x04"]
    kinds = _kinds(downstream)
    assert kinds.index("LLMResponseEndFrame") > max(i for i, k in enumerate(kinds) if k == "TTSAudioFrame")
    assert tts.sent == [("Hi.", 0)]


async def test_streaming_style_wait_ends_on_interrupt_and_late_audio_is_dropped() -> None:
    tts = SocketTTS()  # never sets `spoken`: only the interrupt can release the held response end

    async def late_audio() -> None:  # the provider's old audio, arriving after the interrupt
        await until(lambda: tts.epoch >= 1, timeout=3)
        await tts.push_audio(b"\x00" * 100, 0)

    late = asyncio.create_task(late_audio())
    result = await run_processor(
        tts, [SpeakTextFrame(text="Hi."), LLMResponseEndFrame(), Sleep(0.1), Interrupt(), Sleep(0.3)], timeout=3
    )
    await late
    assert result.downstream_of(TTSAudioFrame) == []
    assert tts.dropped_audio_bytes == 100
    assert tts.clears == [1]
    assert len(result.downstream_of(LLMResponseEndFrame)) == 1
    assert [f.epoch for f in result.downstream_of(TTSStoppedFrame)] == [0]


class SplitTTS(TTSProcessor):
    """Style (a) with a provider that cuts its byte stream at arbitrary places."""

    def __init__(self, data: bytes, cuts: list[int]) -> None:
        super().__init__()
        self.data, self.cuts = data, sorted(set(cuts))

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        edges = [0, *(c for c in self.cuts if 0 < c < len(self.data)), len(self.data)]
        for a, b in itertools.pairwise(edges):
            yield self.data[a:b]


@settings(max_examples=40, deadline=None)
@given(data=st.binary(min_size=0, max_size=64), cuts=st.lists(st.integers(min_value=0, max_value=64), max_size=12))
def test_any_chunking_gives_even_frames_and_loses_only_a_dangling_byte(data: bytes, cuts: list[int]) -> None:
    result = asyncio.run(run_processor(SplitTTS(data, cuts), [SpeakTextFrame(text="x"), LLMResponseEndFrame()]))
    audio = result.downstream_of(TTSAudioFrame)
    assert all(len(f.pcm) % 2 == 0 and f.pcm for f in audio)
    assert b"".join(f.pcm for f in audio) == data[: len(data) - len(data) % 2]


async def test_end_of_stream_closes_the_reply_and_settings_apply_in_order() -> None:
    applied: list[str] = []

    class VoiceTTS(ChunkyTTS):
        async def on_settings(self, settings: SettingsFrame) -> None:
            applied.append(str(settings.settings["voice"]))

    result = await run_processor(
        VoiceTTS(),
        [SpeakTextFrame(text="  "), SpeakTextFrame(text="ab"), SettingsFrame(settings={"voice": "v2"})],
    )
    kinds = [k for k in _kinds(result.downstream) if k != "MetricsFrame"]
    kinds = [k for i, k in enumerate(kinds) if i == 0 or k != kinds[i - 1]]
    assert kinds == ["TTSStartedFrame", "TTSAudioFrame", "SettingsFrame", "TTSStoppedFrame"]  # blank text: no audio
    assert applied == ["v2"]
    assert type(result.downstream[-1]).__name__ == "EndFrame"


async def test_a_reply_end_is_not_held_forever_when_the_provider_goes_quiet() -> None:
    tts = SocketTTS()
    tts.drain_timeout = 0.1
    result = await run_processor(tts, [SpeakTextFrame(text="Hi."), LLMResponseEndFrame()])
    assert len(result.downstream_of(LLMResponseEndFrame)) == 1
    assert [e.message for e in result.errors] == ["no audio end from the TTS provider within 0.1 s"]
