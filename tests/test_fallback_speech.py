"""FallbackTTS and FallbackSTT over two Deepgram fakes (real deepgram-sdk, loopback): faults injected
mid-conversation, every sentence and every utterance still comes out — from the next provider."""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import pytest
from voxline.fallback import FallbackSTT, FallbackTTS
from voxline.frames import (
    AudioFrame,
    Frame,
    LLMResponseEndFrame,
    LLMResponseStartFrame,
    MetricsFrame,
    SpeakTextFrame,
    TTSAudioFrame,
    UserTextFrame,
)
from voxline.processors.deepgram import DeepgramSTT, DeepgramTTS
from voxline.providers.backoff import Backoff
from voxline.testing import RunningPipeline, Sleep, Until, frames_out, replies_ended, started, until
from voxline.testing.fakes.deepgram import FakeDeepgram

pytestmark = pytest.mark.filterwarnings("ignore:websockets.exceptions.InvalidStatusCode is deprecated")

KEY = "test-key"
FAST = Backoff(initial=0.02, maximum=0.1)
RATE = 16000


def tts(fake: FakeDeepgram, name: str) -> DeepgramTTS:
    return DeepgramTTS(api_key=KEY, base_url=fake.base_url, backoff=FAST, max_retries=2, name=name)


def audio(frames: list[Frame], epoch: int | None = None) -> int:
    return sum(len(f.pcm) for f in frames if isinstance(f, TTSAudioFrame) and (epoch is None or f.epoch == epoch))


def switches(frames: list[Frame], kind: str) -> list[float]:
    return [f.value for f in frames if isinstance(f, MetricsFrame) and f.name == f"{kind}.fallback"]


async def reply(run: RunningPipeline, *sentences: str) -> None:
    """One reply's frames; returns once its end came out."""
    ends = len(run.downstream_of(LLMResponseEndFrame))
    speak = [SpeakTextFrame(text=sentence) for sentence in sentences]
    await run.step(LLMResponseStartFrame(), *speak, LLMResponseEndFrame(), replies_ended(ends + 1))


async def test_tts_no_first_byte_switches_and_the_next_voice_speaks_the_whole_reply(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with FakeDeepgram(tts_seconds_per_char=0.002) as primary, FakeDeepgram(tts_seconds_per_char=0.003) as backup:
        primary.faults.stall = True  # the primary takes the text and sends nothing
        stage = FallbackTTS([tts(primary, "primary"), tts(backup, "backup")], first_byte_timeout=0.4)
        first, second = "Hello there.", " How are you today?"
        with caplog.at_level(logging.WARNING, logger="voxline.fallback"):
            async with started(stage) as run:
                await reply(run, first, second)
                primary.faults.stall = False  # too late: whatever the primary sends now is dropped
                await asyncio.sleep(0.3)
                out = list(run.downstream)
    assert audio(out) == backup.tts_audio_bytes(first) + backup.tts_audio_bytes(second)
    assert switches(out, "tts") == [1] and stage.active.name == "backup"
    [switch] = stage.switches
    assert switch.reason == "primary failed: no audio within 0.4 s"
    expected = "FallbackTTS: tts switched from primary to backup (primary failed: no audio within 0.4 s)"
    assert [r.getMessage() for r in caplog.records if "switched" in r.getMessage()] == [expected]
    end = next(i for i, f in enumerate(out) if isinstance(f, LLMResponseEndFrame))
    assert not any(isinstance(f, TTSAudioFrame) for f in out[end:])  # the reply ended after its audio


async def test_tts_a_refused_reconnect_mid_conversation_moves_the_next_reply_and_the_primary_comes_back() -> None:
    async with FakeDeepgram(tts_seconds_per_char=0.002) as primary, FakeDeepgram(tts_seconds_per_char=0.002) as backup:
        stage = FallbackTTS(
            [tts(primary, "primary"), tts(backup, "backup")], first_byte_timeout=3.0, cooldown=0.2, probe_interval=0.1
        )
        async with started(stage) as run:
            await reply(run, "First reply.")
            assert stage.active.name == "primary" and audio(run.downstream) == primary.tts_audio_bytes("First reply.")
            primary.faults.refuse_speak = 1000
            primary.drop("speak")  # the socket goes; every reconnect is refused (503)
            await until(lambda: stage.switches, timeout=10)
            assert "unavailable after 2 attempts" in stage.switches[0].reason
            before = audio(run.downstream)
            await reply(run, "Second reply.")
            assert audio(run.downstream) - before == backup.tts_audio_bytes("Second reply.")
            primary.faults.refuse_speak = 0  # the provider is back: its socket reconnects, the probe passes
            await until(lambda: stage.active.name == "primary", timeout=10)
            before = audio(run.downstream)
            await reply(run, "Third reply.")
            assert audio(run.downstream) - before == primary.tts_audio_bytes("Third reply.")
            assert switches(run.downstream, "tts") == [1, 0]
            assert backup.speak_connections[0].messages[0]["text"] == "Second reply."
            assert stage._handed == []  # every reply came out whole: nothing is kept


async def test_tts_when_every_voice_is_silent_it_says_so_once_instead_of_switching_back_and_forth() -> None:
    async with FakeDeepgram() as primary, FakeDeepgram() as backup:
        primary.faults.stall = backup.faults.stall = True
        stage = FallbackTTS([tts(primary, "primary"), tts(backup, "backup")], first_byte_timeout=0.2)
        async with started(stage) as run:
            await run.task.queue_frame(LLMResponseStartFrame())
            await run.task.queue_frame(SpeakTextFrame(text="Anyone there?"))
            await until(lambda: run.task.errors, timeout=10)
            await asyncio.sleep(0.5)
            errors = [e.message for e in run.task.errors]
        primary.faults.stall = backup.faults.stall = False  # a stalled fake holds its socket open when closing
    assert [s.target for s in stage.switches] == ["backup"]
    assert errors == ["backup: no audio within 0.2 s, and no other TTS provider is available"]


def voiced(seconds: float) -> bytes:
    t = np.arange(int(seconds * RATE)) / RATE
    return (np.sin(2 * np.pi * 220 * t) * 5000).astype("<i2").tobytes()


def quiet(seconds: float) -> bytes:
    return b"\x00\x00" * int(seconds * RATE)


def feed(pcm: bytes) -> list[Frame | Sleep]:
    step = int(0.02 * RATE) * 2
    items: list[Frame | Sleep] = []
    for i in range(0, len(pcm), step):
        items += [AudioFrame(pcm=pcm[i : i + step], sample_rate=RATE), Sleep(0.005)]
    return items


async def test_stt_a_connection_lost_mid_conversation_switches_and_the_next_utterance_is_not_lost() -> None:
    first, second = ["First one."], ["Second one."]
    async with FakeDeepgram(transcripts=first) as primary, FakeDeepgram(transcripts=second) as backup:
        members = [
            DeepgramSTT(api_key=KEY, base_url=url, backoff=FAST, max_retries=2, name=name)
            for url, name in ((primary.base_url, "primary"), (backup.base_url, "backup"))
        ]
        stage = FallbackSTT(members)
        async with started(stage) as run:

            def turns(n: int) -> Until:
                return frames_out(UserTextFrame, n)

            utterance = feed(quiet(0.2) + voiced(1.0) + quiet(0.8))
            await run.step(*utterance, turns(1))
            primary.faults.refuse_listen = 1000  # the provider goes away: every reconnect is refused (503)
            primary.drop("listen")
            await run.step(*utterance, turns(2))
            assert [f.text for f in run.downstream_of(UserTextFrame)] == ["First one.", "Second one."]
            out = list(run.downstream)
    assert switches(out, "stt") == [1] and run.task.errors == []
    assert stage.active.name == "backup" and "unavailable after 2 attempts" in stage.switches[0].reason
    [connection] = backup.listen_connections
    assert len(connection.audio) >= 2 * int(1.0 * RATE)  # the second utterance's speech, replayed to the backup
    assert len(connection.audio) < 2 * int(3.0 * RATE)  # ... not the first turn (only its last silence)


def test_a_fallback_needs_two_distinct_members() -> None:
    with pytest.raises(ValueError, match="at least two"):
        FallbackTTS([DeepgramTTS(api_key=KEY)])
    with pytest.raises(ValueError, match="distinct names"):
        FallbackTTS([DeepgramTTS(api_key=KEY), DeepgramTTS(api_key=KEY)])
