"""FakeDeepgram is faithful to the wire protocol as deepgram-sdk 7.17 sees it (raw SDK calls, no processors)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import numpy as np
import pytest
from deepgram import AsyncDeepgramClient, DeepgramClient, DeepgramClientEnvironment
from deepgram.core.api_error import ApiError
from deepgram.speak.v1 import SpeakV1Text
from voxline.testing.fakes.deepgram import FakeDeepgram
from websockets.exceptions import ConnectionClosedError

pytestmark = pytest.mark.filterwarnings("ignore:websockets.exceptions.InvalidStatusCode is deprecated")


def env(fake: FakeDeepgram) -> DeepgramClientEnvironment:
    return DeepgramClientEnvironment(
        base=fake.base_url, production=fake.ws_url, agent=fake.ws_url, agent_rest=fake.base_url
    )


def client(fake: FakeDeepgram, key: str = "test-key") -> AsyncDeepgramClient:
    return AsyncDeepgramClient(api_key=key, environment=env(fake))


def voiced(seconds: float, rate: int = 16000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * 220 * t) * 5000).astype("<i2").tobytes()


async def test_listen_results_finalize_close_stream_metadata_and_close_1000() -> None:
    async with FakeDeepgram(transcripts=["Testing. 123."]) as fake:
        got: list[Any] = []
        async with client(fake).listen.v1.connect(
            model="nova-3", encoding="linear16", sample_rate=16000, interim_results="true", vad_events="true"
        ) as conn:
            await conn.send_media(voiced(1.2))
            await conn.send_keep_alive()
            await conn.send_finalize()
            await conn.send_close_stream()
            async for message in conn:
                got.append(message)
        record = fake.listen_connections[0]
        await record.closed.wait()
    types = [m.type for m in got]
    assert types[0] == "SpeechStarted" and types[-1] == "Metadata"
    final = got[-2]
    assert final.type == "Results" and final.is_final and final.from_finalize
    assert final.channel.alternatives[0].transcript == "Testing. 123."
    assert [w.punctuated_word for w in final.channel.alternatives[0].words] == ["Testing.", "123."]
    assert any(m.type == "Results" and not m.is_final for m in got)
    assert record.message_types() == ["KeepAlive", "Finalize", "CloseStream"]
    assert len(record.audio) == len(voiced(1.2)) and record.close_code == 1000
    assert all("type" in m for m in record.sent)


async def test_listen_idle_socket_is_closed_1011_net_0001() -> None:
    async with FakeDeepgram(idle_timeout=0.2) as fake, client(fake).listen.v1.connect(model="nova-3") as conn:
        with pytest.raises(ConnectionClosedError) as info:
            async for _ in conn:
                pass
    assert info.value.rcvd is not None
    assert (info.value.rcvd.code, info.value.rcvd.reason) == (1011, "NET-0001")


async def test_bad_key_is_401_on_every_endpoint() -> None:
    async with FakeDeepgram(api_key="right") as fake:
        bad = client(fake, "wrong")
        with pytest.raises(ApiError) as listen:
            async with bad.listen.v1.connect(model="nova-3"):
                pass
        with pytest.raises(ApiError) as speak:
            async with bad.speak.v1.connect(model="aura-asteria-en"):
                pass
        with pytest.raises(ApiError) as rest:
            async for _ in bad.speak.v1.audio.generate(text="hi"):
                pass
    assert listen.value.status_code == speak.value.status_code == rest.value.status_code == 401
    assert isinstance(rest.value.body, dict) and rest.value.body["err_code"] == "INVALID_AUTH"
    assert fake.attempts == [("/v1/listen", 401), ("/v1/speak", 401)]


async def test_speak_metadata_flushed_cleared_warning_and_close() -> None:
    async with FakeDeepgram(tts_seconds_per_char=0.01) as fake:
        async with client(fake).speak.v1.connect(
            model="aura-2-thalia-en", encoding="linear16", sample_rate=24000
        ) as tts:
            audio = 0
            events: list[Any] = []
            for _ in range(21):  # one Flush over the documented 20 per 60 s
                await tts.send_text(SpeakV1Text(text="Hi."))
                await tts.send_flush()
            await tts.send_clear()
            async for message in tts:
                if isinstance(message, bytes):
                    audio += len(message)
                    continue
                events.append(message)
                if message.type == "Cleared":
                    break
            await tts.send_close()
        await fake.speak_connections[0].closed.wait()
    types = [m.type for m in events]
    assert types[0] == "Metadata" and events[0].model_name == "aura-2-thalia-en"
    (warning,) = [m for m in events if m.type == "Warning"]  # the 21st Flush: refused, not processed
    assert "60-second window" in warning.description
    assert types[-1] == "Cleared" and type(events[-1]).__name__ == "SpeakV1Flushed"  # the SDK quirk
    flushed = [m.sequence_id for m in events if m.type == "Flushed"]  # the Clear drops those still queued
    assert flushed == list(range(len(flushed)))
    assert audio == len(flushed) * fake.tts_audio_bytes("Hi.")
    assert fake.speak_connections[0].refused_flushes == 1
    assert fake.speak_connections[0].close_code == 1000


async def test_a_refused_flush_keeps_its_text_for_the_first_flush_after_the_window() -> None:
    """Deepgram "Flush", Limits: 20 Flushes per 60 s; after that a warning, and no Flush is processed until the
    window has passed. The refused Flush's text is not lost: the next processed Flush speaks it."""
    now = [1000.0]
    fake = FakeDeepgram(tts_seconds_per_char=0.002, clock=lambda: now[0])
    async with fake, client(fake).speak.v1.connect(model="aura-2-thalia-en", encoding="linear16") as tts:

        async def say(text: str, at: float) -> None:
            """Speak and Flush ``text``; the fake reads its clock when the Flush arrives: wait for that."""
            now[0] = at
            await tts.send_text(SpeakV1Text(text=text))
            await tts.send_flush()
            conn = fake.speak_connections[0]
            while conn.message_types().count("Flush") < flushes + 1:  # noqa: ASYNC110
                await asyncio.sleep(0.005)

        flushes = 0
        for i in range(20):
            await say(f"Line {i:02}.", 1001.0 + i)
            flushes += 1
        await say("Late one.", 1030.0)  # the 21st within 60 s: refused
        flushes += 1
        await say(" And more.", 1061.5)  # 60.5 s after the first Flush: it has left the window
        audio, seen = 0, []
        async for message in tts:
            if isinstance(message, bytes):
                audio += len(message)
                continue
            seen.append(message.type)
            if seen.count("Flushed") == 21 or seen.count("Warning") > 1:
                break
        await tts.send_close()
    assert seen.count("Warning") == 1 and seen.count("Flushed") == 21
    spoken = [fake.tts_audio_bytes(f"Line {i:02}.") for i in range(20)]
    assert audio == sum(spoken) + fake.tts_audio_bytes("Late one. And more.")
    assert fake.speak_connections[0].refused_flushes == 1


async def test_stall_holds_every_message_until_released() -> None:
    async with FakeDeepgram(tts_seconds_per_char=0.01) as fake:
        fake.faults.stall = True
        async with client(fake).speak.v1.connect(model="aura-asteria-en") as tts:
            await tts.send_text(SpeakV1Text(text="Held."))
            await tts.send_flush()
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(tts.recv(), 0.2)  # not even Metadata
            fake.faults.stall = False
            first = await asyncio.wait_for(tts.recv(), 1)
            assert first.type == "Metadata"


def test_runs_in_a_background_thread_for_sync_code() -> None:
    fake = FakeDeepgram(tts_seconds_per_char=0.01).start_in_thread()
    try:
        sync = DeepgramClient(api_key="test-key", environment=env(fake))
        audio = b"".join(sync.speak.v1.audio.generate(text="From a thread.", container="none"))
        assert len(audio) == fake.tts_audio_bytes("From a thread.")
        assert fake.rest_requests[0].headers["authorization"] == "Token test-key"
        with sync.speak.v1.connect(model="aura-asteria-en") as tts:
            assert tts.recv().type == "Metadata"
            assert fake.drop("speak") == 1  # handed to the server's loop, not run on this thread
            with pytest.raises(ConnectionClosedError):
                tts.recv()
    finally:
        fake.stop_thread()
    with pytest.raises(httpx.ConnectError):  # the port is closed once the thread has stopped
        DeepgramClient(api_key="test-key", environment=env(fake)).speak.v1.audio.generate(text="x").__next__()
