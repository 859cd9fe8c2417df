"""The TTS contract, for every TTS provider: what :class:`~voxline.tts.TTSProcessor` promises, checked on each.

A new TTS provider gets these tests by adding one line to ``PROVIDERS`` (see CONTRIBUTING.md, "Add a provider").
The contract is the base class's: audio is mono Int16 at the stage's declared rate in whole samples, stamped with
its reply's epoch; ``TTSStartedFrame``/``TTSStoppedFrame`` bracket a reply's audio; the reply's end is held until
its audio is out, and so is the end of the stream; an interrupt drops the old reply's audio however late it comes
and the stage speaks the next reply; blank text is not spoken; a failure is a non-fatal ``ErrorFrame`` and the
next reply is spoken; nothing outlives the stage.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from audio.speech import ENGINE_TIMEOUT, needs_engines, needs_piper
from conformance import UnderTest, entry, plain
from voxline.frames import (
    EndFrame,
    Frame,
    InterruptFrame,
    LLMResponseEndFrame,
    LLMResponseStartFrame,
    SettingsFrame,
    SpeakTextFrame,
    TTSAudioFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from voxline.processors.deepgram import DeepgramRESTTTS, DeepgramTTS
from voxline.providers.backoff import Backoff
from voxline.testing import barge_in_on_first_audio, run_processor, until
from voxline.testing.fakes.deepgram import FakeDeepgram
from voxline.tts import TTSProcessor

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
from tone_provider import ToneTTS

KEY = "test-key-0123456789"


@contextlib.asynccontextmanager
async def aura_websocket() -> AsyncIterator[UnderTest]:
    async with FakeDeepgram(api_key=KEY, tts_seconds_per_char=0.02, tts_chunk_bytes=4801) as fake:

        def fault() -> list[Frame]:
            fake.faults.tts_error_after_bytes = 2000  # a Warning and a 1011 close mid-reply, once
            return []

        fast = Backoff(initial=0.01, maximum=0.05, jitter=0)
        yield UnderTest(lambda: DeepgramTTS(api_key=KEY, base_url=fake.base_url, backoff=fast), fault)


@contextlib.asynccontextmanager
async def aura_rest() -> AsyncIterator[UnderTest]:
    async with FakeDeepgram(api_key=KEY, tts_seconds_per_char=0.02, tts_chunk_bytes=4801) as fake:

        def fault() -> list[Frame]:
            fake.faults.rest_drop_after_bytes = 2000  # the response is cut off mid-body, once
            return []

        yield UnderTest(lambda: DeepgramRESTTTS(api_key=KEY, base_url=fake.base_url), fault)


def _espeak() -> TTSProcessor:
    from voxline.processors.local.tts import EspeakTTS

    return EspeakTTS()


def _piper() -> TTSProcessor:
    from voxline.processors.local.piper import PiperTTS

    return PiperTTS()


# One line a provider: its name, how to set it up (and break it), and what it needs installed.
PROVIDERS = [
    entry("deepgram-ws", aura_websocket),
    entry("deepgram-rest", aura_rest),
    entry("espeak", plain(_espeak, lambda: [SettingsFrame(settings={"voice": "klingon-xx"})]), needs_engines),
    entry("piper", plain(_piper, lambda: [SettingsFrame(settings={"length_scale": "fast"})]), needs_piper),
    entry("tone", plain(ToneTTS)),
]

FIRST = "Hello there, this is the first reply."
LONG = [f"This is sentence number {n} of a long answer that keeps the voice busy for a while." for n in range(6)]
NEXT = "And now something new."


@pytest.fixture(params=PROVIDERS)
async def provider(request: pytest.FixtureRequest) -> AsyncIterator[UnderTest]:
    async with request.param() as under_test:
        yield under_test


def reply(*texts: str) -> list[Frame]:
    return [LLMResponseStartFrame(), *(SpeakTextFrame(text=t) for t in texts), LLMResponseEndFrame()]


def audio(frames: list[Frame]) -> list[TTSAudioFrame]:
    return [f for f in frames if isinstance(f, TTSAudioFrame)]


def check_brackets(frames: list[Frame]) -> None:
    """Started and stopped alternate, one pair per reply, each pair around its epoch's audio."""
    marks = [f for f in frames if isinstance(f, TTSStartedFrame | TTSStoppedFrame | TTSAudioFrame)]
    speaking: int | None = None
    for frame in marks:
        if isinstance(frame, TTSStartedFrame):
            assert speaking is None, "TTSStartedFrame twice without a stop"
            speaking = frame.epoch
        elif isinstance(frame, TTSStoppedFrame):
            assert speaking is not None and frame.epoch == speaking, "TTSStoppedFrame without its start"
            speaking = None
        else:
            assert speaking == frame.epoch, f"audio of epoch {frame.epoch} outside its started/stopped pair"
    assert speaking is None, "a reply's TTSStoppedFrame never came"


async def test_a_reply_is_spoken_in_whole_samples_at_the_declared_rate(provider: UnderTest) -> None:
    tts = provider.make()
    assert isinstance(tts, TTSProcessor)
    result = await run_processor(tts, reply(FIRST, " How are you?"), timeout=ENGINE_TIMEOUT)
    assert result.errors == []
    chunks = audio(result.downstream)
    assert chunks and all(len(c.pcm) > 0 and len(c.pcm) % 2 == 0 for c in chunks)
    assert {c.sample_rate for c in chunks} == {tts.sample_rate}
    assert {c.epoch for c in chunks} == {0}
    assert sum(len(c.pcm) for c in chunks) / 2 / tts.sample_rate > 0.5  # speech, not a click
    check_brackets(result.downstream)
    # The reply's end is held until its audio is out: nothing of it after the end.
    end = next(i for i, f in enumerate(result.downstream) if isinstance(f, LLMResponseEndFrame))
    assert not audio(result.downstream[end:]) and not result.downstream_of(LLMResponseEndFrame)[0].interrupted
    ttfb = [m for m in result.metrics if m.name == "tts.ttfb"]
    assert ttfb and all(m.value >= 0 and m.unit == "s" and m.epoch == 0 for m in ttfb)


async def test_the_end_of_the_stream_waits_for_the_audio(provider: UnderTest) -> None:
    result = await run_processor(
        provider.make(), [LLMResponseStartFrame(), SpeakTextFrame(text=FIRST)], timeout=ENGINE_TIMEOUT
    )
    out = result.downstream
    assert audio(out) and isinstance(out[-1], EndFrame)
    assert isinstance(next(f for f in reversed(out[:-1]) if not isinstance(f, LLMResponseEndFrame)), TTSStoppedFrame)
    check_brackets(out)


async def test_an_interrupt_drops_the_old_reply_and_the_next_reply_is_spoken(provider: UnderTest) -> None:
    result = await barge_in_on_first_audio(
        provider.make(),
        [LLMResponseStartFrame(), *(SpeakTextFrame(text=t) for t in LONG)],
        reply(NEXT),
        timeout=ENGINE_TIMEOUT,
    )
    out = result.downstream
    cut = next(i for i, f in enumerate(out) if isinstance(f, InterruptFrame))
    new_epoch = out[cut].epoch
    assert new_epoch == 1 and result.errors == []
    assert audio(out[:cut]), "the barge-in came before any audio"
    assert [f.epoch for f in audio(out[cut:]) if f.epoch < new_epoch] == []  # however late the old audio came
    assert [f.epoch for f in out[cut:] if isinstance(f, TTSStoppedFrame)][:1] == [0]  # the old reply stopped
    assert audio(out[cut:]), "the next reply was not spoken"
    check_brackets(out)


async def test_blank_text_is_not_spoken(provider: UnderTest) -> None:
    result = await run_processor(provider.make(), reply("   ", ""), timeout=ENGINE_TIMEOUT)
    assert result.errors == [] and audio(result.downstream) == []
    assert result.downstream_of(TTSStartedFrame) == [] and len(result.downstream_of(LLMResponseEndFrame)) == 1


async def test_a_failure_is_an_error_frame_and_the_next_reply_is_spoken(provider: UnderTest) -> None:
    if provider.fault is None:
        pytest.skip("this provider cannot be made to fail from outside")
    tts = provider.make()
    result = await run_processor(tts, [*provider.fault(), *reply(*LONG[:2]), *reply(NEXT)], timeout=ENGINE_TIMEOUT)
    assert result.errors and not any(e.fatal for e in result.errors)
    second = max(i for i, f in enumerate(result.downstream) if isinstance(f, LLMResponseStartFrame))
    assert audio(result.downstream[second:]), "the reply after the failure was not spoken"
    check_brackets(result.downstream)


async def test_nothing_outlives_the_stage(provider: UnderTest) -> None:
    await run_processor(provider.make(), reply(FIRST), timeout=ENGINE_TIMEOUT)  # shared clients and pools settle first
    before = len(asyncio.all_tasks())
    await run_processor(provider.make(), reply(FIRST), timeout=ENGINE_TIMEOUT)
    await until(lambda: len(asyncio.all_tasks()) <= before, timeout=ENGINE_TIMEOUT, what="the stage's tasks to end")
