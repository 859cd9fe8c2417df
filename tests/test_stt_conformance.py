"""The STT contract, for every STT provider: what :class:`~voxline.stt.STTProcessor` promises, checked on each.

A new STT provider gets these tests by adding one line to ``PROVIDERS`` (see CONTRIBUTING.md, "Add a provider").
Every provider hears the same flite speech. The contract is the base class's: a turn's final transcripts come
before one ``UserTextFrame`` holding them, with one ``stt.latency`` metric; speaking frames bracket the turn; the
input audio is consumed and the bot's audio passes through; silence makes no turn; the end of the stream still
delivers the words in progress; an interrupt does not touch the user's utterance (it belongs to the new epoch)
and the next turn works; a failure is a non-fatal ``ErrorFrame`` and the next turn works; nothing outlives the
stage. Local engines sit behind the Silero VAD, which owns their speaking frames.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from audio.speech import ENGINE_TIMEOUT, Speech, frames, local, needs_whisper, paced, silence, speech
from conformance import UnderTest, entry, plain
from voxline.fallback import FallbackSTT
from voxline.frames import (
    AudioFrame,
    EndFrame,
    Frame,
    TranscriptFrame,
    TTSAudioFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    UserTextFrame,
)
from voxline.pipeline import Pipeline
from voxline.processor import Processor
from voxline.processors.deepgram import DeepgramSTT
from voxline.providers.backoff import Backoff
from voxline.testing import Interrupt, Sleep, drive, frames_out, run_processor, until
from voxline.testing.fakes.deepgram import FakeDeepgram

__all__ = ["speech"]  # the fixture, imported for pytest

KEY = "test-key-0123456789"
FIRST, FIRST_WORD = "What is the capital of France?", "capital"
SECOND, SECOND_WORD = "Turn on the kitchen lights.", "kitchen"
FAST = Backoff(initial=0.01, maximum=0.05, jitter=0)


def _deepgram(fake: FakeDeepgram, name: str = "deepgram") -> DeepgramSTT:
    return DeepgramSTT(api_key=KEY, base_url=fake.base_url, backoff=FAST, speaking_frames=True, name=name)


@contextlib.asynccontextmanager
async def deepgram() -> AsyncIterator[UnderTest]:
    async with FakeDeepgram(api_key=KEY, transcripts=[FIRST, SECOND], stt_interim_interval=0.2) as fake:

        def fault() -> list[Frame]:
            fake.faults.stt_error_after_audio = 0.5  # an Error message and a 1011 close mid-utterance, once
            return []

        yield UnderTest(lambda: _deepgram(fake), fault)


@contextlib.asynccontextmanager
async def fallback() -> AsyncIterator[UnderTest]:
    script = [FIRST, SECOND]
    async with (
        FakeDeepgram(api_key=KEY, transcripts=script) as one,
        FakeDeepgram(api_key=KEY, transcripts=script) as two,
    ):

        def fault() -> list[Frame]:
            one.faults.refuse_listen = 1000  # the first provider goes away for good: the second takes the turn
            one.drop("listen")
            return []

        yield UnderTest(lambda: FallbackSTT([_deepgram(one, "primary"), _deepgram(two, "backup")]), fault)


def _pocketsphinx() -> Processor:
    from voxline.processors.local.stt import local_stt

    return local_stt()


def _whisper() -> Processor:
    from voxline.processors.local.whisper import WhisperSTT
    from voxline.processors.vad import SileroVAD

    return Pipeline([SileroVAD(), WhisperSTT()])


# One line a provider: its name, how to set it up (and break it), and what it needs installed.
PROVIDERS = [
    entry("deepgram", deepgram, local),
    entry("fallback", fallback, local),
    entry("pocketsphinx", plain(_pocketsphinx), local),
    entry("whisper", plain(_whisper), local, needs_whisper),
]


@pytest.fixture(params=PROVIDERS)
async def provider(request: pytest.FixtureRequest) -> AsyncIterator[UnderTest]:
    async with request.param() as under_test:
        yield under_test


def said(speech: Speech, text: str, **kwargs: float) -> list[AudioFrame]:
    return frames(speech.pcm(text, **kwargs))


def index(out: list[Frame], kind: type[Frame]) -> list[int]:
    return [i for i, f in enumerate(out) if isinstance(f, kind)]


async def test_a_turn_is_its_final_transcripts_then_one_user_text(provider: UnderTest, speech: Speech) -> None:
    result = await run_processor(provider.make(), [*paced(said(speech, FIRST)), Sleep(0.3)], timeout=ENGINE_TIMEOUT)
    out = result.downstream
    assert result.errors == []
    [turn] = result.downstream_of(UserTextFrame)
    assert FIRST_WORD in turn.text.lower()
    finals = [t for t in result.downstream_of(TranscriptFrame) if t.is_final]
    assert finals and turn.text == " ".join(t.text for t in finals)
    last_final = max(i for i in index(out, TranscriptFrame) if out[i].is_final)  # type: ignore[attr-defined]
    assert index(out, UserTextFrame) == [i for i in index(out, UserTextFrame) if i > last_final]
    [latency] = [m for m in result.metrics if m.name == "stt.latency"]
    assert latency.value >= 0 and latency.unit == "s"
    assert not [f for f in out if type(f) is AudioFrame]  # the input audio is consumed


async def test_speaking_frames_bracket_the_turn(provider: UnderTest, speech: Speech) -> None:
    result = await run_processor(provider.make(), [*paced(said(speech, FIRST)), Sleep(0.3)], timeout=ENGINE_TIMEOUT)
    out = result.downstream
    [start], [stop], [turn] = (
        index(out, UserStartedSpeakingFrame),
        index(out, UserStoppedSpeakingFrame),
        index(out, UserTextFrame),
    )
    assert start < min(index(out, TranscriptFrame)) and start < stop < turn


async def test_the_bots_audio_passes_through(provider: UnderTest) -> None:
    bot = TTSAudioFrame(pcm=b"\x01\x00" * 480, sample_rate=24000)
    result = await run_processor(provider.make(), [bot], timeout=ENGINE_TIMEOUT)
    assert result.downstream_of(TTSAudioFrame) == [bot]


async def test_silence_makes_no_turn(provider: UnderTest) -> None:
    result = await run_processor(provider.make(), paced(frames(silence(1.5))), timeout=ENGINE_TIMEOUT)
    assert result.errors == [] and result.downstream_of(UserTextFrame) == []
    assert [t for t in result.downstream_of(TranscriptFrame) if t.is_final] == []


async def test_the_end_of_the_stream_delivers_the_words_in_progress(provider: UnderTest, speech: Speech) -> None:
    result = await run_processor(provider.make(), said(speech, FIRST, after=0.0), timeout=ENGINE_TIMEOUT)
    [turn] = result.downstream_of(UserTextFrame)
    assert FIRST_WORD in turn.text.lower() and isinstance(result.downstream[-1], EndFrame)


async def test_an_interrupt_keeps_the_utterance_and_the_next_turn_works(provider: UnderTest, speech: Speech) -> None:
    first = said(speech, FIRST)
    middle = len(first) // 2
    steps = [*paced(first[:middle]), Interrupt("barge-in"), *paced(first[middle:]), frames_out(UserTextFrame)]
    result = await drive(provider.make(), [*steps, *paced(said(speech, SECOND)), Sleep(0.3)], timeout=ENGINE_TIMEOUT)
    turns = result.downstream_of(UserTextFrame)
    assert [FIRST_WORD in turns[0].text.lower(), SECOND_WORD in turns[-1].text.lower()] == [True, True]
    assert len(turns) == 2 and {t.epoch for t in turns} == {1}  # the user's words belong to the new epoch
    assert result.errors == []


async def test_a_failure_is_an_error_frame_and_the_next_turn_works(provider: UnderTest, speech: Speech) -> None:
    if provider.fault is None:
        pytest.skip("this provider cannot be made to fail from outside")
    stage = provider.make()
    steps = [*provider.fault(), *paced(said(speech, FIRST)), Sleep(0.5), *paced(said(speech, SECOND)), Sleep(0.3)]
    result = await run_processor(stage, steps, timeout=ENGINE_TIMEOUT)
    assert not any(e.fatal for e in result.errors)
    assert any(SECOND_WORD in t.text.lower() for t in result.downstream_of(UserTextFrame))


async def test_nothing_outlives_the_stage(provider: UnderTest, speech: Speech) -> None:
    await run_processor(
        provider.make(), paced(said(speech, FIRST)), timeout=ENGINE_TIMEOUT
    )  # shared clients, pools settle
    before = len(asyncio.all_tasks())
    await run_processor(provider.make(), paced(said(speech, SECOND)), timeout=ENGINE_TIMEOUT)
    await until(lambda: len(asyncio.all_tasks()) <= before, timeout=ENGINE_TIMEOUT, what="the stage's tasks to end")
