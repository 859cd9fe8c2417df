"""DeepgramTTS (speak WebSocket) and DeepgramRESTTTS: the real deepgram-sdk against FakeDeepgram over loopback."""

from __future__ import annotations

import asyncio
import logging

import pytest
from voxline.frames import (
    Frame,
    InterruptFrame,
    LLMResponseEndFrame,
    LLMResponseStartFrame,
    SettingsFrame,
    SpeakTextFrame,
    TextFrame,
    TTSAudioFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from voxline.processors.deepgram import DeepgramRESTTTS, DeepgramTTS
from voxline.providers.backoff import Backoff
from voxline.providers.clients import aclose_shared
from voxline.testing import (
    RunResult,
    Sleep,
    Until,
    audio_out,
    barge_in_on_first_audio,
    drive,
    run_processor,
    started,
    until,
)
from voxline.testing.fakes.deepgram import FakeDeepgram

pytestmark = pytest.mark.filterwarnings("ignore:websockets.exceptions.InvalidStatusCode is deprecated")

KEY = "test-key"
FAST = Backoff(initial=0.02, maximum=0.1)
LONG = "This is a rather long sentence that the fake will take a good while to stream back to us."


def ws_tts(fake: FakeDeepgram, **kwargs: object) -> DeepgramTTS:
    kwargs.setdefault("api_key", KEY)
    kwargs.setdefault("backoff", FAST)
    return DeepgramTTS(base_url=fake.base_url, **kwargs)  # type: ignore[arg-type]


def rest_tts(fake: FakeDeepgram, **kwargs: object) -> DeepgramRESTTTS:
    kwargs.setdefault("api_key", KEY)
    return DeepgramRESTTTS(base_url=fake.base_url, **kwargs)  # type: ignore[arg-type]


def audio_bytes(result: RunResult, epoch: int | None = None) -> int:
    return sum(len(f.pcm) for f in result.downstream_of(TTSAudioFrame) if epoch is None or f.epoch == epoch)


def kinds(result: RunResult) -> list[str]:
    names = [type(f).__name__ for f in result.downstream]
    names = [n for n in names if n not in ("StartFrame", "EndFrame", "MetricsFrame")]
    return [n for i, n in enumerate(names) if i == 0 or n != names[i - 1]]


def after_interrupt(result: RunResult) -> list[Frame]:
    cut = next(i for i, f in enumerate(result.downstream) if isinstance(f, InterruptFrame))
    return result.downstream[cut:]


async def test_websocket_happy_path_streams_each_sentence_on_one_socket() -> None:
    async with FakeDeepgram(tts_seconds_per_char=0.01, tts_first_byte_delay=0.05) as fake:
        tts = ws_tts(fake)
        first, second = "Hello there.", " How are you today?"
        frames = [
            LLMResponseStartFrame(),
            SpeakTextFrame(text=first),
            TextFrame(text="shown"),
            SpeakTextFrame(text=second),
        ]
        result = await run_processor(tts, [*frames, LLMResponseEndFrame()])
        await fake.speak_connections[0].closed.wait()

    assert audio_bytes(result) == fake.tts_audio_bytes(first) + fake.tts_audio_bytes(second)
    assert all(f.sample_rate == 24000 and len(f.pcm) % 2 == 0 for f in result.downstream_of(TTSAudioFrame))
    order = kinds(result)
    assert order[:2] == ["LLMResponseStartFrame", "TextFrame"]  # text is not held behind synthesis
    assert order[2:] == ["TTSStartedFrame", "TTSAudioFrame", "TTSStoppedFrame", "LLMResponseEndFrame"]
    ttfb = [m for m in result.metrics if m.name == "tts.ttfb"]
    assert len(ttfb) == 2 and all(0.04 <= m.value < 1.0 for m in ttfb)  # from send, or the previous Flushed
    conn = fake.speak_connections[0]
    assert len(fake.speak_connections) == 1
    assert conn.query == {"model": "aura-asteria-en", "encoding": "linear16", "sample_rate": "24000"}
    assert conn.messages == [
        {"type": "Speak", "text": first},
        {"type": "Flush"},
        {"type": "Speak", "text": second},
        {"type": "Flush"},
        {"type": "Close"},
    ]
    assert conn.close_code == 1000
    assert result.errors == []


def replies(n: int, start: int = 0) -> list[Frame]:
    """``n`` two-sentence replies: each costs an early Flush and the Flush that ends it, budget permitting."""
    frames: list[Frame] = []
    for i in range(start, start + n):
        first, second = f"Reply {i}.", " More."
        frames += [LLMResponseStartFrame(), SpeakTextFrame(text=first), SpeakTextFrame(text=second)]
        frames.append(LLMResponseEndFrame())
    return frames


def spoken_bytes(fake: FakeDeepgram, n: int, start: int = 0) -> int:
    return sum(fake.tts_audio_bytes(f"Reply {i}.") + fake.tts_audio_bytes(" More.") for i in range(start, start + n))


class ShiftedClock:
    """``time.monotonic()`` plus an offset a test moves forward (to let most of a 60 s window go by)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        import time

        return time.monotonic() + self.offset


async def test_a_busy_flush_window_keeps_its_budget_for_reply_ends() -> None:
    """Deepgram processes 20 Flushes per 60 s per socket ("Flush": Limits). With half of them spent, a reply's
    early Flush is not sent: its sentences go with the one Flush that ends the reply, and it is all spoken."""
    from voxline.processors.deepgram import tts as tts_module

    early_budget = int(tts_module.FLUSH_LIMIT * tts_module.EARLY_FLUSH_SHARE)
    async with FakeDeepgram(tts_seconds_per_char=0.002) as fake:
        tts = ws_tts(fake)
        result = await run_processor(tts, replies(early_budget // 2 + 1))
        await fake.speak_connections[0].closed.wait()
        assert tts.flushes_in_window == early_budget + 1

    assert audio_bytes(result) == spoken_bytes(fake, early_budget // 2 + 1)
    types = fake.speak_connections[0].message_types()
    assert types.count("Flush") == early_budget + 1
    assert types[-4:] == ["Speak", "Speak", "Flush", "Close"]  # the last reply: no early Flush
    assert result.errors == []


async def test_a_flush_the_window_has_no_room_for_waits_instead_of_being_refused() -> None:
    """Past 20 Flushes in 60 s Deepgram answers a Warning and speaks nothing (the fake does too): the stage holds
    the Flush until the window has room, then the reply is spoken whole."""
    from voxline.processors.deepgram import tts as tts_module

    clock = ShiftedClock()
    async with FakeDeepgram(tts_seconds_per_char=0.002, clock=clock) as fake:
        tts = ws_tts(fake, clock=clock)
        early = int(tts_module.FLUSH_LIMIT * tts_module.EARLY_FLUSH_SHARE) // 2  # replies with an early Flush
        full = early + tts_module.FLUSH_LIMIT - 2 * early  # and then replies with one Flush each: 20 in all

        async with asyncio.timeout(20), started(tts) as run:
            await run.step(*replies(full))
            await until(lambda: tts.flushes_in_window == tts_module.FLUSH_LIMIT)
            clock.offset += tts_module.FLUSH_WINDOW - 0.2  # the first Flush leaves the window 0.2 s from now
            await run.step(*replies(1, start=full))  # no early Flush; its ending Flush is held, then sent
            result = await run.end(timeout=20)
        await fake.speak_connections[0].closed.wait()

    assert audio_bytes(result) == spoken_bytes(fake, full + 1)
    assert fake.speak_connections[0].refused_flushes == 0
    assert fake.speak_connections[0].message_types().count("Flush") == tts_module.FLUSH_LIMIT + 1
    assert result.errors == []


async def test_first_audio_does_not_wait_for_the_rest_of_the_reply() -> None:
    async with FakeDeepgram(tts_seconds_per_char=0.01) as fake:
        steps = [SpeakTextFrame(text="First sentence."), audio_out(), SpeakTextFrame(text="Second one.")]
        result = await drive(ws_tts(fake), [*steps, LLMResponseEndFrame()])
    texts = [m.get("text") for m in fake.speak_connections[0].messages if m["type"] == "Speak"]
    assert texts == ["First sentence.", "Second one."]
    total = sum(len(f.pcm) for f in result.downstream_of(TTSAudioFrame))
    assert total == fake.tts_audio_bytes("First sentence.") + fake.tts_audio_bytes("Second one.")


async def test_voice_and_speed_are_settable_and_a_settings_frame_switches_voice() -> None:
    async with FakeDeepgram(tts_seconds_per_char=0.005) as fake:
        tts = ws_tts(fake, voice="aura-2-thalia-en", speed=1.2)
        result = await run_processor(
            tts,
            [
                SpeakTextFrame(text="One."),
                LLMResponseEndFrame(),
                SettingsFrame(settings={"voice": "aura-2-orion-en"}),
                SpeakTextFrame(text="Two."),
                LLMResponseEndFrame(),
            ],
        )
    models = [c.query["model"] for c in fake.speak_connections]
    assert models == ["aura-2-thalia-en", "aura-2-orion-en"]
    assert fake.speak_connections[0].query["speed"] == "1.2"
    assert audio_bytes(result) == fake.tts_audio_bytes("One.") + fake.tts_audio_bytes("Two.")
    assert result.errors == []


async def test_interrupt_clears_and_no_old_epoch_audio_leaks() -> None:
    async with FakeDeepgram(tts_seconds_per_char=0.05, tts_chunk_bytes=960, tts_chunk_interval=0.005) as fake:
        fake.faults.tts_audio_after_clear = 0.25  # the server keeps talking for a while after Clear
        tts = ws_tts(fake)
        result = await barge_in_on_first_audio(
            tts,
            [
                LLMResponseStartFrame(),
                SpeakTextFrame(text=LONG),
                SpeakTextFrame(text="Never spoken at all."),
                LLMResponseEndFrame(),
            ],
            [LLMResponseStartFrame(), SpeakTextFrame(text="New."), LLMResponseEndFrame()],
        )
    conn = fake.speak_connections[0]
    # The second sentence waits for the first one's audio before it is flushed: the Clear comes first.
    assert conn.message_types() == ["Speak", "Flush", "Speak", "Clear", "Speak", "Flush", "Close"]
    assert [m["type"] for m in conn.sent].count("Cleared") == 1
    later = after_interrupt(result)
    new_audio = [f for f in later if isinstance(f, TTSAudioFrame)]
    assert all(f.epoch == 1 for f in new_audio)
    assert sum(len(f.pcm) for f in new_audio) == fake.tts_audio_bytes("New.")  # exactly the new sentence
    old_pushed = audio_bytes(result, epoch=0)
    assert 0 < old_pushed < fake.tts_audio_bytes(LONG)
    assert tts.dropped_audio_bytes > 0  # the fake did send old audio after the Clear ...
    assert conn.audio_bytes_sent == old_pushed + tts.dropped_audio_bytes + fake.tts_audio_bytes(
        "New."
    )  # ... all dropped
    assert [f.epoch for f in result.downstream_of(TTSStartedFrame)] == [0, 1]
    assert [f.epoch for f in result.downstream_of(TTSStoppedFrame)] == [0, 1]
    ends = result.downstream_of(LLMResponseEndFrame)
    assert len(ends) == 2


async def test_ttfb_metric_follows_the_providers_first_byte_delay() -> None:
    async with FakeDeepgram(tts_seconds_per_char=0.005, tts_first_byte_delay=0.25) as fake:
        result = await run_processor(ws_tts(fake), [SpeakTextFrame(text="Timing."), LLMResponseEndFrame()])
    (ttfb,) = [m for m in result.metrics if m.name == "tts.ttfb"]
    assert 0.25 <= ttfb.value < 0.75 and ttfb.unit == "s" and ttfb.epoch == 0


async def test_websocket_auth_failure_is_reported_once_without_the_key(caplog: pytest.LogCaptureFixture) -> None:
    wrong = "wrong-tts-secret-987654"
    caplog.set_level(logging.DEBUG)
    async with FakeDeepgram() as fake:
        tts = ws_tts(fake, api_key=wrong)
        result = await run_processor(tts, [Sleep(0.2), SpeakTextFrame(text="Hi."), LLMResponseEndFrame(), Sleep(0.1)])
    assert fake.attempts == [("/v1/speak", 401)]
    assert [e.message for e in result.errors] == [
        "Deepgram TTS: Deepgram rejected the API key (HTTP 401); check DEEPGRAM_API_KEY; retrying every 30-60 s"
    ]
    assert wrong not in caplog.text + repr(result.upstream) + repr(result.downstream)
    assert result.downstream_of(TTSAudioFrame) == []


async def test_a_refused_key_is_retried_slowly_and_speech_comes_back_when_it_works() -> None:
    async with FakeDeepgram(tts_seconds_per_char=0.005) as fake:
        fake.faults.refuse_speak, fake.faults.refuse_status = 1, 403
        tts = ws_tts(fake)
        tts.socket.auth_backoff = Backoff(initial=0.3, maximum=0.3, jitter=0)  # 30-60 s in a real session
        # Waits for the reconnect itself, not 0.5 s: on a loaded machine the refusal and the backoff took longer,
        # and "Heard." went out while the socket was still down.
        reconnected = Until(lambda out: tts.socket.ready)
        frames = [SpeakTextFrame(text="Skipped."), LLMResponseEndFrame(), reconnected]
        result = await drive(tts, [Sleep(0.1), *frames, SpeakTextFrame(text="Heard."), LLMResponseEndFrame()])
    assert fake.attempts == [("/v1/speak", 403), ("/v1/speak", 101)]
    assert len(result.errors) == 1 and "rejected the API key (HTTP 403)" in result.errors[0].message
    assert audio_bytes(result) == fake.tts_audio_bytes("Heard.")  # not mute for the rest of the session


@pytest.mark.parametrize(("fault", "close_code"), [("tts_drop_after_bytes", 1006), ("tts_error_after_bytes", 1011)])
async def test_a_lost_socket_is_reopened_and_the_next_sentence_is_spoken(fault: str, close_code: int) -> None:
    async with FakeDeepgram(tts_seconds_per_char=0.02, tts_chunk_bytes=960) as fake:
        setattr(fake.faults, fault, 4800)
        tts = ws_tts(fake)
        result = await run_processor(
            tts,
            [
                SpeakTextFrame(text=LONG),
                LLMResponseEndFrame(),
                Sleep(0.3),
                SpeakTextFrame(text="Back."),
                LLMResponseEndFrame(),
            ],
        )
    assert len(fake.speak_connections) == 2
    assert fake.speak_connections[0].close_code == close_code
    assert len(result.errors) == 1 and "cut off" in result.errors[0].message
    assert audio_bytes(result) == 4800 + fake.tts_audio_bytes("Back.")


async def test_text_of_an_interrupted_reply_is_not_resent_on_the_new_socket() -> None:
    async with FakeDeepgram(tts_seconds_per_char=0.01, tts_first_byte_delay=0.3) as fake:
        tts = ws_tts(fake, backoff=Backoff(initial=0.6, maximum=0.6))  # reconnects 0.3-0.6 s after the drop
        async with started(tts) as run:
            await run.queue(SpeakTextFrame(text="Old reply."))
            await until(lambda: fake.speak_connections and len(fake.speak_connections[0].messages) == 2, timeout=3)
            fake.drop("speak")  # the text is on the wire, no audio yet (first byte after 300 ms): the socket dies
            await asyncio.sleep(0.1)
            await run.interrupt("barge-in while reconnecting")
            await run.queue(SpeakTextFrame(text="New."), LLMResponseEndFrame())
            result = await run.end(timeout=5)
    first, second = fake.speak_connections
    assert first.message_types() == ["Speak", "Flush"] and first.close_code == 1006
    assert second.messages[:2] == [{"type": "Speak", "text": "New."}, {"type": "Flush"}]
    assert sum(len(f.pcm) for f in result.downstream_of(TTSAudioFrame)) == fake.tts_audio_bytes("New.")
    assert result.errors == []


async def test_during_an_outage_sentences_are_skipped_not_queued() -> None:
    async with FakeDeepgram() as fake:
        fake.faults.refuse_speak = 1000
        tts = ws_tts(fake, max_retries=2)
        speak = [SpeakTextFrame(text=f"Sentence {i}.") for i in range(5)]
        result = await run_processor(tts, [Sleep(0.3), *speak, LLMResponseEndFrame()], timeout=5)
    assert [e.message for e in result.errors] == [
        "Deepgram TTS unavailable after 2 attempts: Deepgram answered HTTP 503; still retrying"
    ]
    assert result.downstream_of(TTSAudioFrame) == []
    assert len(result.downstream_of(LLMResponseEndFrame)) == 1


async def test_cancel_closes_the_socket_from_the_client_side() -> None:
    async with FakeDeepgram() as fake:
        tts = ws_tts(fake)
        async with started(tts) as run:
            await until(lambda: tts.connections, timeout=2)
            await run.cancel()
        conn = fake.speak_connections[0]
        await asyncio.wait_for(conn.closed.wait(), 2)
    assert conn.closed_by_client and conn.close_code == 1000
    assert len(fake.speak_connections) == 1


# --- REST fallback -----------------------------------------------------------------------------------------


async def test_rest_fallback_streams_audio_and_carries_odd_chunks() -> None:
    async with FakeDeepgram(tts_seconds_per_char=0.01, tts_chunk_bytes=4801, tts_first_byte_delay=0.05) as fake:
        tts = rest_tts(fake, voice="aura-2-thalia-en")
        texts = ["Hello over REST.", " Second sentence."]
        result = await run_processor(tts, [*(SpeakTextFrame(text=t) for t in texts), LLMResponseEndFrame()])
        # The keep-alive connection belongs to the process's shared client: the next session reuses it, and
        # only the process's shutdown (aclose_shared) closes it.
        assert fake.open_http_connections == 1
        await run_processor(rest_tts(fake), [SpeakTextFrame(text="Again.")])
        assert len(fake.rest_requests) == 3 and fake.open_http_connections == 1
        assert await aclose_shared() >= 1
        await until(lambda: not fake.open_http_connections, timeout=2)
    assert audio_bytes(result) == sum(fake.tts_audio_bytes(t) for t in texts)
    assert all(len(f.pcm) % 2 == 0 for f in result.downstream_of(TTSAudioFrame))
    request = fake.rest_requests[0]
    assert request.query == {
        "model": "aura-2-thalia-en",
        "encoding": "linear16",
        "sample_rate": "24000",
        "container": "none",
    }
    assert [r.body for r in fake.rest_requests[:2]] == [b'{"text":"Hello over REST."}', b'{"text":" Second sentence."}']
    ttfb = [m for m in result.metrics if m.name == "tts.ttfb"]
    assert len(ttfb) == 2 and all(m.value >= 0.05 for m in ttfb)
    assert kinds(result) == ["TTSStartedFrame", "TTSAudioFrame", "TTSStoppedFrame", "LLMResponseEndFrame"]


async def test_rest_errors_are_clear_and_the_next_sentence_still_plays() -> None:
    async with FakeDeepgram(tts_seconds_per_char=0.01) as fake:
        fake.faults.rest_status = 500
        tts = rest_tts(fake)

        async def recover() -> None:
            await until(lambda: fake.rest_requests, timeout=2)
            fake.faults.rest_status = None

        helper = asyncio.create_task(recover())
        result = await run_processor(tts, [SpeakTextFrame(text="Fails."), Sleep(0.1), SpeakTextFrame(text="Works.")])
        await helper
    assert len(result.errors) == 1 and "Deepgram answered HTTP 500" in result.errors[0].message
    assert audio_bytes(result) == fake.tts_audio_bytes("Works.")


async def test_rest_auth_failure_names_the_problem_not_the_key() -> None:
    wrong = "wrong-rest-secret-123"
    async with FakeDeepgram() as fake:
        result = await run_processor(rest_tts(fake, api_key=wrong), [SpeakTextFrame(text="Hi.")])
    assert len(result.errors) == 1
    assert "rejected the API key (HTTP 401)" in result.errors[0].message
    assert wrong not in result.errors[0].message + repr(result.errors[0].exception)


async def test_rest_interrupt_cancels_the_request_and_drops_its_audio() -> None:
    async with FakeDeepgram(tts_seconds_per_char=0.05, tts_chunk_bytes=960, tts_chunk_interval=0.005) as fake:
        tts = rest_tts(fake)
        result = await barge_in_on_first_audio(
            tts, [SpeakTextFrame(text=LONG)], [SpeakTextFrame(text="New."), LLMResponseEndFrame()]
        )
    new_audio = [f for f in after_interrupt(result) if isinstance(f, TTSAudioFrame)]
    assert sum(len(f.pcm) for f in new_audio) == fake.tts_audio_bytes("New.")
    assert all(f.epoch == 1 for f in new_audio)
    assert 0 < audio_bytes(result, epoch=0) < fake.tts_audio_bytes(LONG)
