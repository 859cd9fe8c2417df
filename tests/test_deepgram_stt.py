"""DeepgramSTT: the real deepgram-sdk against FakeDeepgram over loopback (no mocks, no key needed)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import re

import numpy as np
import pytest
from voxline.frames import (
    AudioFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    TextFrame,
    TranscriptFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    UserTextFrame,
)
from voxline.pipeline import Pipeline
from voxline.processor import DOWNSTREAM, UPSTREAM, Direction, Processor
from voxline.processors.deepgram import DeepgramSTT, DeepgramTTS
from voxline.processors.deepgram._common import websocket_base
from voxline.providers.backoff import Backoff
from voxline.testing import RunResult, Sleep, run_processor, started, until
from voxline.testing.fakes.deepgram import FakeDeepgram

pytestmark = pytest.mark.filterwarnings("ignore:websockets.exceptions.InvalidStatusCode is deprecated")

RATE = 16000
KEY = "test-key"
FAST = Backoff(initial=0.02, maximum=0.1)


def voiced(seconds: float) -> bytes:
    t = np.arange(int(seconds * RATE)) / RATE
    return (np.sin(2 * np.pi * 220 * t) * 5000).astype("<i2").tobytes()


def quiet(seconds: float) -> bytes:
    return b"\x00\x00" * int(seconds * RATE)


def feed(pcm: bytes, *, chunk: float = 0.02, pace: float = 0.0) -> list[Frame | Sleep]:
    """AudioFrames of ``chunk`` seconds; with ``pace`` a Sleep between them (pace < chunk: faster than real time)."""
    step = int(chunk * RATE) * 2
    items: list[Frame | Sleep] = []
    for i in range(0, len(pcm), step):
        items.append(AudioFrame(pcm=pcm[i : i + step], sample_rate=RATE))
        if pace:
            items.append(Sleep(pace))
    return items


def stt_for(fake: FakeDeepgram, **kwargs: object) -> DeepgramSTT:
    kwargs.setdefault("api_key", KEY)
    kwargs.setdefault("backoff", FAST)
    return DeepgramSTT(base_url=fake.base_url, **kwargs)  # type: ignore[arg-type]


def turns(result: RunResult) -> list[str]:
    return [f.text for f in result.downstream_of(UserTextFrame)]


async def test_happy_path_interims_finals_words_and_one_turn() -> None:
    async with FakeDeepgram(transcripts=["Hello there."]) as fake:
        stt = stt_for(fake)
        result = await run_processor(stt, [*feed(quiet(0.3) + voiced(1.2) + quiet(0.6)), Sleep(0.3)])
        await fake.listen_connections[0].closed.wait()

    transcripts = result.downstream_of(TranscriptFrame)
    interims = [t for t in transcripts if not t.is_final]
    finals = [t for t in transcripts if t.is_final]
    assert interims and all(not t.speech_final for t in interims)
    assert [f.text for f in finals] == ["Hello there."]
    final = finals[0]
    assert final.speech_final and final.confidence == pytest.approx(0.99)
    assert [w.text for w in final.words] == ["Hello", "there."]
    assert final.words[0].start == pytest.approx(0.3, abs=0.02)
    assert final.words[-1].end == pytest.approx(1.5, abs=0.02)
    assert turns(result) == ["Hello there."]
    assert [m.name for m in result.metrics] == ["stt.latency"]
    assert result.downstream.index(final) < result.downstream.index(result.downstream_of(UserTextFrame)[0])
    assert not any(isinstance(f, AudioFrame) for f in result.downstream)
    assert result.errors == []

    conn = fake.listen_connections[0]
    assert conn.query == {
        "model": "nova-3",
        "encoding": "linear16",
        "sample_rate": "16000",
        "channels": "1",
        "interim_results": "true",
        "endpointing": "300",
        "utterance_end_ms": "1000",
        "smart_format": "true",
        "punctuate": "true",
        "language": "en",
    }
    assert conn.headers["authorization"] == f"Token {KEY}"
    assert conn.audio_seconds == pytest.approx(2.1, abs=0.01)
    assert conn.message_types() == ["CloseStream"]  # the stage closed the stream on EndFrame ...
    assert conn.close_code == 1000  # ... and the server closed normally after its Metadata
    assert conn.sent[-1]["type"] == "Metadata"


async def test_speaking_frames_come_from_deepgram_vad_events_when_asked() -> None:
    async with FakeDeepgram(transcripts=["One.", "Two."]) as fake:
        stt = stt_for(fake, vad_events=True, speaking_frames=True)
        audio = quiet(0.2) + voiced(0.5) + quiet(0.5) + voiced(0.5) + quiet(0.5)
        result = await run_processor(stt, [*feed(audio), Sleep(0.3)])
    assert fake.listen_connections[0].query["vad_events"] == "true"
    names = [type(f).__name__ for f in result.downstream]
    speaking = [n for n in names if n.startswith("User")]
    assert speaking == ["UserStartedSpeakingFrame", "UserStoppedSpeakingFrame", "UserTextFrame"] * 2
    stops = result.downstream_of(UserStoppedSpeakingFrame)
    assert [s.audio_time for s in stops] == [pytest.approx(0.7, abs=0.02), pytest.approx(1.7, abs=0.02)]
    # Without the flag (the default) the stage leaves speaking events to a local VAD.
    async with FakeDeepgram() as fake:
        result = await run_processor(stt_for(fake, vad_events=True), [*feed(voiced(0.4) + quiet(0.4)), Sleep(0.2)])
    assert not result.downstream_of(UserStartedSpeakingFrame) and len(turns(result)) == 1


async def test_every_option_is_settable_and_interims_can_be_off() -> None:
    async with FakeDeepgram(transcripts=["Hola."]) as fake:
        stt = stt_for(
            fake,
            model="nova-2",
            language="es",
            interim_results=False,
            endpointing=100,
            utterance_end_ms=None,
            smart_format=False,
            punctuate=False,
            options={"numerals": "true"},
        )
        result = await run_processor(stt, [*feed(voiced(0.8) + quiet(0.3)), Sleep(0.2)])
    query = fake.listen_connections[0].query
    assert query["model"] == "nova-2" and query["language"] == "es" and query["endpointing"] == "100"
    assert query["interim_results"] == "false" and "utterance_end_ms" not in query
    assert query["smart_format"] == "false" and query["punctuate"] == "false" and query["numerals"] == "true"
    assert all(t.is_final for t in result.downstream_of(TranscriptFrame))
    assert turns(result) == ["Hola."]


async def test_a_long_utterance_is_joined_into_one_turn() -> None:
    script = [["So first I went to the shop,", "then I bought some bread,", "and then I came home."]]
    async with FakeDeepgram(transcripts=script, segment_seconds=1.0) as fake:
        result = await run_processor(stt_for(fake), [*feed(voiced(3.4) + quiet(0.5)), Sleep(0.3)])
    finals = [t for t in result.downstream_of(TranscriptFrame) if t.is_final]
    assert [f.text for f in finals] == script[0]
    assert [f.speech_final for f in finals] == [False, False, True]
    assert turns(result) == [" ".join(script[0])]
    assert len(result.metrics) == 1


async def test_utterance_end_closes_the_turn_when_endpointing_is_off() -> None:
    async with FakeDeepgram(transcripts=["No endpointing here."]) as fake:
        stt = stt_for(fake, endpointing=False, utterance_end_ms=1000)
        result = await run_processor(stt, [*feed(voiced(0.8) + quiet(1.2)), Sleep(0.3)])
    assert fake.listen_connections[0].query["endpointing"] == "false"
    finals = [t for t in result.downstream_of(TranscriptFrame) if t.is_final]
    assert [f.speech_final for f in finals] == [False]
    assert turns(result) == ["No endpointing here."]
    assert [m["type"] for m in fake.listen_connections[0].sent].count("UtteranceEnd") == 1


async def test_finalize_ends_the_turn_on_local_end_of_speech() -> None:
    async with FakeDeepgram(transcripts=["Finalize me."]) as fake:
        stt = stt_for(fake)
        assert await stt.finalize() is False  # not connected yet: says so instead of raising

        async def end_of_speech() -> None:
            await until(lambda: stt.connected and bool(fake.listen_connections))
            await until(lambda: fake.listen_connections[0].audio_seconds > 0.9)
            assert await stt.finalize() is True

        helper = asyncio.create_task(end_of_speech())
        result = await run_processor(stt, [*feed(voiced(1.0)), Sleep(0.4)])
        await helper
    assert "Finalize" in fake.listen_connections[0].message_types()
    finals = [t for t in result.downstream_of(TranscriptFrame) if t.is_final]
    assert [f.text for f in finals] == ["Finalize me."] and not finals[0].speech_final
    assert turns(result) == ["Finalize me."]


async def test_reconnect_mid_utterance_replays_audio_and_loses_no_transcript() -> None:
    async with FakeDeepgram(transcripts=["First turn.", "Second turn survives."]) as fake:
        fake.faults.stt_drop_after_audio = 2.0  # in the middle of the second utterance (1.6 s .. 2.6 s)
        audio = quiet(0.2) + voiced(0.8) + quiet(0.6) + voiced(1.0) + quiet(0.6)
        result = await run_processor(stt_for(fake), [*feed(audio, pace=0.004), Sleep(0.5)])
        await fake.listen_connections[-1].closed.wait()

    assert turns(result) == ["First turn.", "Second turn survives."]
    first, second = fake.listen_connections
    assert first.close_code == 1006  # dropped without a close frame
    # The new connection got the unfinished utterance again (from the end of the first final) and the rest.
    assert second.audio_seconds == pytest.approx(3.2 - 1.0, abs=0.03)
    finals = [t for t in result.downstream_of(TranscriptFrame) if t.is_final]
    assert finals[1].words[0].start == pytest.approx(1.6, abs=0.03)  # session clock, not the new socket's
    assert result.errors == []


async def test_refused_connections_are_retried_and_audio_meanwhile_is_kept() -> None:
    async with FakeDeepgram(transcripts=["Kept while waiting."]) as fake:
        fake.faults.refuse_listen = 2
        result = await run_processor(stt_for(fake), [*feed(voiced(0.8) + quiet(0.5)), Sleep(0.5)])
    assert fake.attempts == [("/v1/listen", 503), ("/v1/listen", 503), ("/v1/listen", 101)]
    assert turns(result) == ["Kept while waiting."]
    assert result.errors == []


async def test_the_replay_buffer_is_bounded_and_what_it_drops_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    async with FakeDeepgram() as fake:
        fake.faults.refuse_listen = 2
        stt = stt_for(fake, max_buffer_seconds=0.5)
        await run_processor(stt, [*feed(quiet(1.5)), Sleep(0.4)])
    assert 0.45 <= fake.listen_connections[0].audio_seconds <= 0.5  # only the newest 0.5 s was kept
    assert re.search(r"1\.0\d s of audio could not be kept", caplog.text)


async def test_end_of_stream_while_still_connecting_still_transcribes_the_buffered_audio() -> None:
    async with FakeDeepgram(transcripts=["Just in time."]) as fake:
        fake.faults.refuse_listen = 1  # the EndFrame arrives while the stage is still getting a socket
        result = await run_processor(stt_for(fake), feed(voiced(0.6) + quiet(0.4)))
    assert turns(result) == ["Just in time."]
    assert fake.listen_connections[0].message_types() == ["CloseStream"]


async def test_after_n_failed_attempts_an_error_reaches_the_client_without_the_key() -> None:
    secret = "sk-very-secret-deepgram-key"
    async with FakeDeepgram(api_key=secret) as fake:
        fake.faults.refuse_listen = 1000
        stt = stt_for(fake, api_key=secret, max_retries=3)
        result = await run_processor(stt, [*feed(quiet(0.1)), Sleep(0.6)])  # audio opens the socket
    assert fake.attempts_on("/v1/listen") >= 3
    assert len(result.errors) == 1
    message = result.errors[0].message
    assert "unavailable after 3 attempts" in message and "503" in message and "still retrying" in message
    assert secret not in message


async def test_auth_failure_is_not_retried_and_the_key_never_shows(caplog: pytest.LogCaptureFixture) -> None:
    wrong = "wrong-secret-key-123456"
    caplog.set_level(logging.DEBUG)
    async with FakeDeepgram(api_key=KEY) as fake:
        stt = stt_for(fake, api_key=wrong)
        result = await run_processor(stt, [*feed(voiced(0.3)), Sleep(0.4)])
    assert fake.attempts == [("/v1/listen", 401)]
    assert len(result.errors) == 1
    error = result.errors[0]
    assert "rejected the API key (HTTP 401)" in error.message and not error.fatal
    assert "Token" in caplog.text  # the websockets handshake DEBUG lines were captured ...
    everything = caplog.text + repr(result.upstream) + repr(result.downstream) + str(error.exception)
    assert wrong not in everything  # ... and the key is not in them, nor in any frame


async def test_a_refused_key_is_reported_at_once_then_retried_slowly_until_it_works() -> None:
    async with FakeDeepgram(transcripts=["The key works again."]) as fake:
        fake.faults.refuse_listen, fake.faults.refuse_status = 2, 401  # e.g. a key re-enabled meanwhile
        stt = stt_for(fake)
        stt.socket.auth_backoff = Backoff(initial=0.3, maximum=0.3, jitter=0)  # 30-60 s in a real session
        seen: list[float] = []

        async def note_attempts() -> None:
            while True:
                if len(fake.attempts) > len(seen):
                    seen.append(asyncio.get_running_loop().time())
                await asyncio.sleep(0.002)

        watcher = asyncio.create_task(note_attempts())
        result = await run_processor(stt, [*feed(voiced(0.8) + quiet(0.5)), Sleep(1.0)])
        watcher.cancel()
    statuses = [status for _, status in fake.attempts]
    assert statuses == [401, 401, 101]  # never given up, and never faster than the slow pace
    assert all(b - a >= 0.28 for a, b in itertools.pairwise(seen))
    told = "Deepgram STT: Deepgram rejected the API key (HTTP 401); check DEEPGRAM_API_KEY; retrying every 0.3-0.3 s"
    assert [e.message for e in result.errors] == [told]  # at once, and once: not again at every slow retry
    assert turns(result) == ["The key works again."]  # the audio kept meanwhile was replayed


async def test_a_quiet_session_start_opens_no_socket_until_the_first_audio() -> None:
    """Deepgram closes a listen socket that has received no audio within ~10 s (1011 NET-0001), KeepAlives or
    not: the socket opens with the first audio, so a session whose user is quiet at first never trips it."""
    async with FakeDeepgram(transcripts=["Late start."], idle_timeout=0.3) as fake:
        stt = stt_for(fake, keepalive_interval=0.1)
        result = await run_processor(stt, [Sleep(0.6), *feed(voiced(0.6) + quiet(0.4)), Sleep(0.3)])
    assert len(fake.listen_connections) == 1
    conn = fake.listen_connections[0]
    assert conn.close_code == 1000 and conn.close_reason != "NET-0001"
    assert conn.audio_seconds == pytest.approx(1.0, abs=0.01)  # every frame, the first ones from the buffer
    assert turns(result) == ["Late start."]
    assert result.errors == []


async def test_keepalive_keeps_a_silent_socket_open() -> None:
    async with FakeDeepgram(idle_timeout=0.5) as fake:
        stt = stt_for(fake, keepalive_interval=0.15)
        await run_processor(stt, [*feed(quiet(0.1)), Sleep(1.2)])
    conn = fake.listen_connections[0]
    assert conn.message_types().count("KeepAlive") >= 5
    assert len(fake.listen_connections) == 1 and conn.close_code == 1000  # never closed for idleness
    assert stt.keepalives_sent == conn.message_types().count("KeepAlive")


async def test_without_keepalive_the_fake_times_out_and_the_stage_reconnects() -> None:
    async with FakeDeepgram(idle_timeout=0.3) as fake:
        stt = stt_for(fake, keepalive_interval=5.0)
        await run_processor(stt, [*feed(quiet(0.1)), Sleep(0.8)])
    first = fake.listen_connections[0]
    assert (first.close_code, first.close_reason) == (1011, "NET-0001")
    assert len(fake.listen_connections) >= 2


async def test_unknown_and_malformed_messages_do_not_crash() -> None:
    async with FakeDeepgram(transcripts=["Still fine."]) as fake:
        stt = stt_for(fake)

        async def inject() -> None:
            await until(lambda: stt.connected)
            for payload in ({"type": "SomethingNew", "x": 1}, {"no_type": True}, '{"type": "Results"}'):
                fake.inject(payload)

        helper = asyncio.create_task(inject())
        result = await run_processor(stt, [Sleep(0.2), *feed(voiced(0.6) + quiet(0.4)), Sleep(0.3)])
        await helper
    assert turns(result) == ["Still fine."]
    assert result.errors == []


async def test_a_deepgram_error_message_is_reported_and_the_stage_recovers() -> None:
    async with FakeDeepgram(transcripts=["After the error."]) as fake:
        fake.faults.stt_error_after_audio = 0.1
        result = await run_processor(stt_for(fake), [*feed(voiced(0.8) + quiet(0.5), pace=0.004), Sleep(0.5)])
    assert [e.message for e in result.errors] == ["Deepgram STT error: Injected."]
    assert fake.listen_connections[0].close_code == 1011
    assert turns(result) == ["After the error."]


async def test_wrong_audio_format_is_a_clear_error_and_the_session_goes_on() -> None:
    async with FakeDeepgram(transcripts=["Right rate."]) as fake:
        bad = AudioFrame(pcm=b"\x00\x00" * 480, sample_rate=48000)
        result = await run_processor(stt_for(fake), [bad, bad, *feed(voiced(0.6) + quiet(0.4)), Sleep(0.3)])
    assert len(result.errors) == 1 and "48000 Hz" in result.errors[0].message
    assert turns(result) == ["Right rate."]


async def test_cancel_closes_the_socket_from_the_client_side() -> None:
    async with FakeDeepgram() as fake:
        stt = stt_for(fake)
        async with started(stt) as run:
            await run.step(*feed(voiced(0.2)))
            await until(lambda: stt.connected)
            await run.cancel()
        conn = fake.listen_connections[0]
        await asyncio.wait_for(conn.closed.wait(), 2)
    assert conn.closed_by_client and conn.close_code == 1000
    assert len(fake.listen_connections) == 1  # and no reconnect after the stop


@pytest.fixture
def no_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    monkeypatch.delenv("DEEPGRAM_BASE_URL", raising=False)


def test_configuration_errors_are_clear(no_key_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="DEEPGRAM_API_KEY"):
        DeepgramSTT()
    with pytest.raises(ValueError, match="http:// or https://"):
        DeepgramSTT(api_key="k", base_url="ftp://example")
    with pytest.raises(ValueError, match="keepalive_interval"):
        DeepgramSTT(api_key="k", keepalive_interval=8)
    with pytest.raises(ValueError, match="endpointing"):
        DeepgramSTT(api_key="k", endpointing=True)
    with pytest.raises(ValueError, match="48 kHz"):
        DeepgramTTS(api_key="k", sample_rate=22050)
    monkeypatch.setenv("DEEPGRAM_API_KEY", "env-key")
    monkeypatch.setenv("DEEPGRAM_BASE_URL", "https://eu.example.com/")
    stt = DeepgramSTT()
    assert stt.base_url == "https://eu.example.com"
    assert websocket_base("https://eu.example.com/deepgram") == "wss://eu.example.com/deepgram"
    assert websocket_base("http://127.0.0.1:8080") == "ws://127.0.0.1:8080"


async def test_the_environment_alone_points_the_stages_at_the_fake(monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeDeepgram(api_key="env-key", transcripts=["From the environment."]) as fake:
        monkeypatch.setenv("DEEPGRAM_API_KEY", "env-key")
        monkeypatch.setenv("DEEPGRAM_BASE_URL", fake.base_url)
        result = await run_processor(DeepgramSTT(), [*feed(voiced(0.5) + quiet(0.4)), Sleep(0.3)])
    assert turns(result) == ["From the environment."]
    assert fake.listen_connections[0].headers["authorization"] == "Token env-key"


async def test_while_the_vad_says_quiet_a_quiet_room_goes_in_40_ms_messages_and_sound_at_once() -> None:
    """``quiet_message_seconds`` (the turn engine sets 0.04): between the VAD's stop and its start, audio below
    -55 dBFS goes two 20 ms frames per message; louder audio (speech the VAD has not confirmed yet) and every frame
    from the VAD's start go out as they come, with any frame held before them; held audio goes before
    ``Finalize``; nothing is lost or reordered."""
    frame = 640  # bytes of 20 ms
    room = np.random.default_rng(3).normal(0, 30, RATE).astype("<i2").tobytes()  # about -61 dBFS
    onset, speech = voiced(0.06), voiced(0.2)
    async with FakeDeepgram(transcripts=["Batched."]) as fake:
        stt = stt_for(fake, quiet_message_seconds=0.04)
        seen = 0

        async def step(*frames: Frame) -> None:  # (speaking frames are system frames, out of band: each waits
            nonlocal seen  # until the audio before it is through)
            await run.step(*frames)
            seen += sum(f.num_samples for f in frames if isinstance(f, AudioFrame))
            await until(lambda: stt.clock.seconds * RATE >= seen - 0.5)

        async with started(stt) as run:
            await step(*feed(room[:frame]))
            await until(lambda: stt.connected)  # the first frame went out with the handshake's replay
            await step(*feed(room[frame : 22 * frame]))  # 21 frames: 10 messages, one frame held
            await step(*feed(onset))  # loud, the VAD has not said start: at once (the held frame with the first)
            await step(UserStartedSpeakingFrame(), *feed(speech))  # 10 messages of their own
            await step(UserStoppedSpeakingFrame(audio_time=0.7), *feed(room[22 * frame : 27 * frame]))  # 2, 1 held
            assert await stt.finalize() is True
            await run.end()
        conn = fake.listen_connections[0]
    sent = room[: 22 * frame] + onset + speech + room[22 * frame : 27 * frame]
    assert bytes(conn.audio) == sent
    assert conn.audio_sizes == [frame] + [2 * frame] * 10 + [2 * frame, frame, frame] + [frame] * 10 + [
        2 * frame
    ] * 2 + [frame]
    finalize = conn.message_types().index("Finalize")
    assert conn.audio_before[finalize] == len(sent)  # the held frame went first


class _Output(Processor):
    """Sends the bot's speaking state upstream as the output transport does, when a test's ``TextFrame`` says so."""

    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, TextFrame) and direction is DOWNSTREAM:
            await self.push(
                BotStartedSpeakingFrame() if frame.text == "bot starts" else BotStoppedSpeakingFrame(), UPSTREAM
            )
            return
        await self.push(frame, direction)


async def test_speech_goes_in_60_ms_messages_while_the_bot_is_silent_and_frame_by_frame_while_it_speaks() -> None:
    """``speech_message_seconds`` (the turn engine sets 0.06, and 0.1 for the quiet room): from the VAD's start to
    its stop, while the bot is silent, three frames per message; the VAD's stop sends what was held at once, so
    ``Finalize`` follows all of it; while the bot speaks (from ``BotStartedSpeakingFrame``, upstream) speech goes
    frame by frame, what was held going with the first frame (barge-in is decided on these interims); after
    ``BotStoppedSpeakingFrame`` speech gathers again. Nothing is lost or reordered."""
    frame = 640  # bytes of 20 ms
    room = np.random.default_rng(5).normal(0, 30, RATE).astype("<i2").tobytes()  # about -61 dBFS
    speech = voiced(0.6)
    async with FakeDeepgram(transcripts=["One.", "Two.", "Three."]) as fake:
        stt = stt_for(fake, quiet_message_seconds=0.1, speech_message_seconds=0.06)
        seen = 0

        async def step(*frames: Frame) -> None:
            nonlocal seen
            await run.step(*frames)
            seen += sum(f.num_samples for f in frames if isinstance(f, AudioFrame))
            await until(lambda: stt.clock.seconds * RATE >= seen - 0.5)

        async def bot(text: str) -> None:
            await run.step(TextFrame(text=text))
            await until(lambda: stt._bot_speaking is (text == "bot starts"))

        async with started(Pipeline([stt, _Output()])) as run:
            await step(*feed(room[:frame]))
            await until(lambda: stt.connected)
            await step(*feed(room[frame : 13 * frame]))  # 12 quiet frames: 2 messages of 5, 2 held
            await step(UserStartedSpeakingFrame(), *feed(speech[: 10 * frame]))  # 12 frames: 4 messages of 3
            await step(*feed(speech[10 * frame : 12 * frame]))  # 2 held ...
            await step(UserStoppedSpeakingFrame(audio_time=0.5))  # ... and sent at the VAD's stop
            sent_by_finalize = 13 * frame + 12 * frame
            await until(lambda: len(fake.listen_connections[0].audio) == sent_by_finalize)  # before any Finalize
            assert await stt.finalize() is True
            await bot("bot starts")
            await step(*feed(room[13 * frame : 16 * frame]))  # quiet: held (3)
            await step(UserStartedSpeakingFrame(), *feed(speech[12 * frame : 16 * frame]))  # the held 3, then 1 by 1
            await bot("bot stops")
            await step(*feed(speech[16 * frame : 22 * frame]))  # 2 messages of 3
            await step(UserStoppedSpeakingFrame(audio_time=1.0))
            await run.end()
        conn = fake.listen_connections[0]
    sent = room[: 13 * frame] + speech[: 12 * frame] + room[13 * frame : 16 * frame] + speech[12 * frame : 22 * frame]
    assert bytes(conn.audio) == sent
    sizes = [n // frame for n in conn.audio_sizes]
    assert sizes == [1, 5, 5, 3, 3, 3, 3, 2, 3, 1, 1, 1, 1, 3, 3]
    assert stt.audio_messages == len(conn.audio_sizes)
    finalize = conn.message_types().index("Finalize")
    assert conn.audio_before[finalize] == sent_by_finalize  # the held speech went before Finalize


async def test_when_the_bot_starts_while_the_user_speaks_the_held_speech_goes_at_once() -> None:
    """A reply that starts playing while the user speaks: what was held goes at ``BotStartedSpeakingFrame``, and
    from then on frame by frame (speech over the bot's voice is what a barge-in is decided on)."""
    frame = 640
    speech = voiced(0.3)
    async with FakeDeepgram(transcripts=["Over it."]) as fake:
        stt = stt_for(fake, quiet_message_seconds=0.1, speech_message_seconds=0.06)
        async with started(Pipeline([stt, _Output()])) as run:
            await run.step(*feed(quiet(0.02)))
            await until(lambda: stt.connected)
            await run.step(UserStartedSpeakingFrame(), *feed(speech[: 5 * frame]))  # 3 sent, 2 held
            await until(lambda: stt.clock.seconds * RATE >= 6 * 320 - 0.5)
            conn = fake.listen_connections[0]
            assert len(conn.audio) == 4 * frame
            await run.step(TextFrame(text="bot starts"))
            await until(lambda: len(conn.audio) == 6 * frame)  # the held two, without waiting for a third
            await run.step(*feed(speech[5 * frame : 7 * frame]))
            await until(lambda: len(conn.audio) == 8 * frame)
            await run.end()
    assert [n // frame for n in conn.audio_sizes] == [1, 3, 2, 1, 1]


@pytest.mark.parametrize("held", [0, 1, 2, 3])
async def test_held_speech_never_delays_finalize_whatever_the_moment(held: int) -> None:
    """Whenever the engine asks for the final (right after a message went, or with one, two or three frames held
    while the user speaks), every frame the stage had went to Deepgram before ``Finalize``."""
    frame = 640
    speech = voiced(0.3)
    async with FakeDeepgram(transcripts=["Now."]) as fake:
        stt = stt_for(fake, quiet_message_seconds=0.1, speech_message_seconds=0.06)
        async with started(stt) as run:
            await run.step(*feed(quiet(0.02)))
            await until(lambda: stt.connected)
            await run.step(UserStartedSpeakingFrame(), *feed(speech[: (3 + held) * frame]))
            await until(lambda: stt.clock.seconds * RATE >= (4 + held) * 320 - 0.5)
            assert await stt.finalize() is True
            await run.end()
        conn = fake.listen_connections[0]
    finalize = conn.message_types().index("Finalize")
    assert conn.audio_before[finalize] == (4 + held) * frame
    assert [n // frame for n in conn.audio_sizes[:2]] == [1, 3]  # the first message of speech gathered three


async def test_a_message_never_exceeds_its_length_whatever_the_frames() -> None:
    """30 ms frames of a quiet room with ``quiet_message_seconds=0.1``: three per message (90 ms), never four
    (120 ms would pass Deepgram's 100 ms); a frame longer than the length goes alone."""
    room = np.random.default_rng(9).normal(0, 30, RATE).astype("<i2").tobytes()
    async with FakeDeepgram(transcripts=["Quiet."]) as fake:
        stt = stt_for(fake, quiet_message_seconds=0.1)
        async with started(stt) as run:
            await run.step(*feed(room[:960], chunk=0.03))
            await until(lambda: stt.connected)
            await run.step(*feed(room[960 : 960 * 10], chunk=0.03), *feed(room[960 * 10 : 960 * 10 + 3840], chunk=0.12))
            await until(lambda: stt.clock.seconds >= 0.42 - 1e-6)
            await run.end()
        conn = fake.listen_connections[0]
    assert conn.audio_sizes == [960, 2880, 2880, 2880, 3840]


def test_message_seconds_are_validated_against_deepgrams_100_ms() -> None:
    with pytest.raises(ValueError, match="quiet_message_seconds"):
        DeepgramSTT(api_key=KEY, quiet_message_seconds=-0.02)
    with pytest.raises(ValueError, match="speech_message_seconds"):
        DeepgramSTT(api_key=KEY, speech_message_seconds=0.12)


def test_the_replay_buffer_drops_exactly_the_finalised_chunks() -> None:
    """``finalized_until(t)`` (by bisection) keeps what the rule keeps: every chunk that ends after ``t``."""
    from voxline.processors.deepgram._replay import ReplayBuffer

    rng = np.random.default_rng(11)
    for _ in range(200):
        buffer = ReplayBuffer(15.0)
        for _ in range(int(rng.integers(0, 40))):
            buffer.append(b"\x00\x00" * 160, float(rng.choice([0.01, 0.02, 0.03])))
        t = float(rng.uniform(-0.1, buffer.audio_time + 0.1))
        kept = [c for c in buffer.unsent() if c.end > t + 1e-6]  # nothing sent: unsent() is every chunk
        buffer.finalized_until(t)
        assert buffer.unsent() == kept
        assert buffer.replay_start == (kept[0].start if kept else buffer.audio_time)
