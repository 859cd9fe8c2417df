"""The client's playback as the server follows it: the playback clock, the ``played`` reports that correct it,
``playback`` pause/resume/start, and what the echo detector is told."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from transport_helpers import MemorySocket
from voxline.frames import (
    BotHeardTextFrame,
    BotPlaybackFrame,
    Frame,
    LLMResponseEndFrame,
    LLMResponseStartFrame,
    TTSAudioFrame,
    TTSStartedFrame,
    UserTurnEndedFrame,
)
from voxline.testing import Interrupt, Sleep, run_processor
from voxline.transports import WebSocketTransport
from voxline.transports.playback import PlaybackClock
from voxline.transports.protocol import PlayedIn, ProtocolError, ProtocolParser, playback_message

RATE = 24000


def pcm(seconds: float) -> bytes:
    return b"\x01\x00" * int(seconds * RATE)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Listener:
    """Records what an echo detector would be told."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def played(self, pcm: bytes, sample_rate: int, at: float) -> None:
        self.calls.append(("played", len(pcm) / 2 / sample_rate, at))

    def stopped(self, at: float) -> None:
        self.calls.append(("stopped", at))

    def pause(self, at: float) -> None:
        self.calls.append(("pause", at))

    def resume(self, at: float) -> None:
        self.calls.append(("resume", at))

    def realign(self, at: float, lag: float, since: float | None = None) -> None:
        self.calls.append(("realign", at, round(lag, 3)) if since is None else ("realign", at, round(lag, 3), since))


def clocked() -> tuple[Clock, Listener, PlaybackClock]:
    """A playback clock on a hand-moved clock, telling a recording listener."""
    clock, listener = Clock(), Listener()
    playback = PlaybackClock(clock=clock)
    playback.listener = listener
    return clock, listener, playback


def test_chunks_play_back_to_back_and_the_position_follows_the_clock() -> None:
    clock, listener, playback = clocked()
    assert playback.audio(3, pcm(1.0), RATE) == 100.0
    assert playback.audio(3, pcm(1.0), RATE) == 101.0  # queued behind the first
    clock.now = 100.4
    assert playback.position() == pytest.approx(0.4)
    assert playback.ahead() == pytest.approx(1.6)
    clock.now = 105.0  # the queue ran dry: the next chunk starts now
    assert playback.position() == pytest.approx(2.0)
    assert playback.audio(3, pcm(0.5), RATE) == 105.0
    assert [c[0] for c in listener.calls] == ["played"] * 3


def test_a_pause_holds_the_position_and_audio_sent_meanwhile_waits_behind_it() -> None:
    clock, listener, playback = clocked()
    playback.audio(1, pcm(2.0), RATE)
    clock.now = 100.5
    playback.pause()
    playback.audio(1, pcm(1.0), RATE)
    clock.now = 102.0
    assert playback.paused and playback.position() == pytest.approx(0.5)
    playback.resume()
    clock.now = 102.5
    assert playback.position() == pytest.approx(1.0)
    assert playback.ahead() == pytest.approx(2.0)
    assert listener.calls[1:] == [("pause", 100.5), ("played", 1.0, 100.5), ("resume", 102.0)]


def test_reports_reanchor_the_clock_and_realign_the_echo_reference() -> None:
    clock, listener, playback = clocked()
    playback.audio(2, pcm(3.0), RATE)
    clock.now = 101.0
    # The client started 150 ms late (its jitter buffer and output latency): 0.85 s played, not 1.0.
    assert playback.report(2, 0.85)
    assert playback.position() == pytest.approx(0.85)
    assert playback.ahead() == pytest.approx(2.15)
    # No report had checked this run: the client was late from its start, so all of it moves (since 100.0).
    assert listener.calls[-1] == ("realign", 101.0, 0.15, 100.0)
    # A correction below the tolerance (the client 10 ms ahead) moves the position but not the reference.
    clock.now = 101.5
    assert playback.report(2, 1.36)
    assert playback.position() == pytest.approx(1.36)
    assert listener.calls[-1][0] == "realign" and len(listener.calls) == 2
    # A report of another epoch (an old one, arriving late) is ignored.
    assert not playback.report(1, 0.1)
    assert playback.position() == pytest.approx(1.36)
    # More than was sent is clipped to what was sent: all of it has played.
    assert playback.report(2, 9.0) and playback.position() == pytest.approx(3.0)


def test_a_report_late_in_transit_moves_neither_the_position_nor_the_echo_reference() -> None:
    clock, listener = Clock(), Listener()
    playback = PlaybackClock(clock=clock)
    playback.listener = listener
    playback.audio(0, pcm(6.0), RATE)
    for k in range(1, 10):  # the client reports every 100 ms, on time and in step with the estimate
        clock.now = 100.0 + 0.1 * k
        assert playback.report(0, 0.1 * k)
    # The next report (1.0 s played at 101.0, when it was sent) is read 75 ms late, then the next on time: the
    # delay was the network's or the event loop's, not the client's playback.
    clock.now = 101.075
    assert playback.report(0, 1.0)
    assert playback.position() == pytest.approx(1.075)
    clock.now = 101.1
    assert playback.report(0, 1.1)
    assert playback.position() == pytest.approx(1.1)
    assert [c[0] for c in listener.calls] == ["played"]  # the reference was never moved
    # A lag that lasts (the client really fell 80 ms behind) is applied to the position once no earlier report
    # contradicts it, and to the echo reference once it has lasted ``realign_window`` (1.5 s).
    for k in range(1, 8):
        clock.now = 101.11 + 0.1 * k
        playback.report(0, clock.now - 100.0 - 0.08)
    assert playback.position() == pytest.approx(1.73)
    assert [c[0] for c in listener.calls] == ["played"]
    for k in range(8, 20):
        clock.now = 101.11 + 0.1 * k
        playback.report(0, clock.now - 100.0 - 0.08)
    assert [(c[0], c[2]) for c in listener.calls if c[0] == "realign"] == [("realign", 0.08)]
    assert listener.calls[-1][1] == pytest.approx(102.81)  # when the report of 101.21 left the window


def test_an_interrupt_stops_the_clock_and_a_new_epoch_counts_from_zero() -> None:
    clock, listener, playback = clocked()
    playback.audio(4, pcm(2.0), RATE)
    clock.now = 100.7
    playback.stop()
    assert playback.epoch is None and playback.ahead() == 0.0
    assert listener.calls[-1] == ("stopped", 100.7)
    assert playback.audio(5, pcm(1.0), RATE) == 100.7
    clock.now = 101.0
    assert playback.position() == pytest.approx(0.3)


def test_played_messages_parse_and_bad_ones_are_refused() -> None:
    parser = ProtocolParser()
    assert parser.parse_text('{"type":"played","data":{"epoch":3,"seconds":1.25}}') == PlayedIn(3, 1.25)
    assert parser.parse_text('{"type":"played","data":{"epoch":0,"seconds":0}}') == PlayedIn(0, 0.0)
    for bad in (
        '{"type":"played"}',
        '{"type":"played","data":[3, 1.0]}',
        '{"type":"played","data":{"epoch":-1,"seconds":1}}',
        '{"type":"played","data":{"epoch":true,"seconds":1}}',
        '{"type":"played","data":{"epoch":2.5,"seconds":1}}',
        '{"type":"played","data":{"epoch":2,"seconds":-0.1}}',
        '{"type":"played","data":{"epoch":2,"seconds":"1"}}',
    ):
        with pytest.raises(ProtocolError, match="played"):
            parser.parse_text(bad)
    assert playback_message("start", 7) == '{"type":"playback","data":{"action":"start","epoch":7}}'
    assert playback_message("pause") == '{"type":"playback","data":{"action":"pause"}}'


async def run_output(steps: list[Frame | Sleep | Interrupt], *, reports: list[tuple[float, int, float]] = ()) -> Any:
    """Run the output over ``steps``; ``reports`` are ``(after seconds, epoch, played)`` sent by the client."""
    socket = MemorySocket()
    transport = WebSocketTransport(socket)
    listener = Listener()
    transport.attach_echo(listener)
    transport.writer.start()

    async def client() -> None:
        start = asyncio.get_running_loop().time()
        for after, epoch, seconds in reports:
            await asyncio.sleep(max(0.0, start + after - asyncio.get_running_loop().time()))
            transport.playback.report(epoch, seconds)

    reporter = asyncio.create_task(client())
    try:
        result = await run_processor(transport.output(), steps)
        await asyncio.sleep(0.02)
    finally:
        reporter.cancel()
        await transport.aclose()
    return result, socket.sent, listener


async def test_the_output_announces_each_epoch_and_relays_pause_and_resume() -> None:
    steps: list[Frame | Sleep | Interrupt] = [
        LLMResponseStartFrame(epoch=0),
        TTSStartedFrame(epoch=0),
        TTSAudioFrame(pcm=pcm(1.0), epoch=0),
        TTSAudioFrame(pcm=pcm(1.0), epoch=0),
        Sleep(0.1),
        BotPlaybackFrame(action="pause"),
        BotPlaybackFrame(action="pause"),  # once is enough
        Sleep(0.2),
        BotPlaybackFrame(action="resume", reason="no words"),
        BotPlaybackFrame(action="resume"),  # nothing paused: nothing to say
        Sleep(0.05),
        Interrupt(),
    ]
    result, sent, listener = await run_output(steps)
    kinds = [(m["type"], m["data"]) for m in sent if m["type"] in ("playback", "audio", "status")]
    assert kinds.pop(0) == ("status", "generating")
    assert kinds[0] == ("playback", {"action": "start", "epoch": 0})
    assert [k for k, _ in kinds[1:3]] == ["audio", "audio"]
    assert kinds[3:] == [
        ("playback", {"action": "pause"}),
        ("playback", {"action": "resume"}),
        ("status", "interrupted"),
    ]
    (heard,) = result.upstream_of(BotHeardTextFrame)
    # 0.1 s before the pause and ~0.05 s after the resume: the 0.2 s paused did not count.
    assert 0.12 <= heard.played_seconds <= 0.3, heard
    assert [c[0] for c in listener.calls] == ["played", "played", "pause", "resume", "stopped"]


async def test_a_pause_when_nothing_plays_is_not_sent() -> None:
    steps: list[Frame | Sleep | Interrupt] = [BotPlaybackFrame(action="pause"), BotPlaybackFrame(action="resume")]
    _, sent, _ = await run_output(steps)
    assert [m for m in sent if m["type"] == "playback"] == []


async def test_heard_seconds_follow_the_clients_reports() -> None:
    steps: list[Frame | Sleep | Interrupt] = [
        LLMResponseStartFrame(epoch=0),
        TTSStartedFrame(epoch=0),
        TTSAudioFrame(pcm=pcm(2.0), epoch=0),
        Sleep(0.5),
        Interrupt(),
    ]
    # The client says it has played only 0.1 s by 0.3 s (it started late): it heard ~0.3 s at the interrupt.
    result, _, listener = await run_output(steps, reports=[(0.3, 0, 0.1)])
    (heard,) = result.upstream_of(BotHeardTextFrame)
    assert 0.22 <= heard.played_seconds <= 0.38, heard
    assert any(c[0] == "realign" for c in listener.calls)


async def test_the_turn_engines_end_of_speech_anchors_voice_to_voice() -> None:
    import time

    steps: list[Frame | Sleep | Interrupt] = [
        UserTurnEndedFrame(text="hi", speech_end=time.monotonic() - 0.4),
        LLMResponseStartFrame(epoch=0),
        TTSStartedFrame(epoch=0),
        TTSAudioFrame(pcm=pcm(0.1), epoch=0),
        LLMResponseEndFrame(epoch=0),
    ]
    _, sent, _ = await run_output(steps)
    (metrics,) = [m["data"] for m in sent if m["type"] == "metrics"]
    assert 400 <= metrics["voice_to_voice_ms"] < 600


def speechlike(seconds: float, seed: int = 1) -> np.ndarray:
    """Harmonics of a wandering 110 Hz pitch under a syllable envelope (16 kHz): like a voice, the echo
    detector's correlation falls apart when a copy of it is shifted by a couple of milliseconds."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    phase = 2 * np.pi * np.cumsum(110 * (1 + 0.15 * np.sin(2 * np.pi * 0.7 * t))) / 16000
    harmonics = sum(np.sin(k * phase + rng.uniform(0, 6)) / k for k in range(1, 10))
    return (0.25 * harmonics * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))).astype(np.float32)


def send_piece(playback: PlaybackClock, samples: np.ndarray) -> None:
    """One TTS piece, sent at once in 0.1 s messages at 24 kHz (as the output sends them)."""
    from voxline.audio.resample import resample

    for i in range(0, len(samples), 1600):
        chunk = (np.clip(samples[i : i + 1600], -1, 1) * 32767).astype("<i2").tobytes()
        playback.audio(0, resample(chunk, 16000, RATE), RATE)


def test_the_echo_reference_stays_continuous_where_the_client_plays_on() -> None:
    """Issue 11: with the page's ``played`` reports, the bot's own echo at -6 dB was taken for the user where
    its first TTS piece ended. Corrections under the tolerance moved the clock's estimate but not the echo
    reference, and the next piece was placed after the corrected estimate: a seam of a few milliseconds in the
    reference where the client played on without a break, and a window across it correlated on one side only.
    Here: a client 80 ms late from the start (its jitter buffer), one report 2 ms ahead, then the second piece.
    """
    from voxline.turns import EchoDetector

    clock, detector = Clock(), EchoDetector()
    playback = PlaybackClock(clock=clock)
    playback.listener = detector
    bot, rate = speechlike(3.0), 16000
    start = 100.08  # the client plays the reply back to back from here

    send_piece(playback, bot[: int(1.25 * rate)])  # "It will be sunny all day," at 100.0
    for k, ahead in ((1, 0.0), (2, 0.0), (3, 0.002), (4, 0.0)):  # every 100 ms; the third 2 ms ahead
        clock.now = 100.0 + 0.1 * k
        assert playback.report(0, clock.now - start + ahead)
    clock.now = 100.45
    send_piece(playback, bot[int(1.25 * rate) :])  # the rest of the reply, queued behind the first piece
    for k in range(5, 30):
        clock.now = 100.0 + 0.1 * k
        playback.report(0, clock.now - start)

    # The microphone: the client's playback, 80 ms later at -6 dB, and a little noise.
    mic = np.zeros(int(3.5 * rate), dtype=np.float32)
    at = int((start + 0.08 - 100.0) * rate)
    mic[at : at + len(bot)] += 0.5 * bot
    mic += 0.002 * np.random.default_rng(9).standard_normal(len(mic)).astype(np.float32)
    shares = {}
    for k in range(51):  # every 50 ms from the VAD's start on the echo (100.45) to the end of the reply
        end = 100.45 + 0.05 * k
        stop = round((end - 100.0) * rate)
        shares[round(end, 2)] = detector.echo_share(mic[stop - int(0.3 * rate) : stop], end)
    assert min(shares.values()) > 0.8, {end: round(s, 2) for end, s in shares.items() if s <= 0.8}


def test_a_burst_of_reports_after_a_stall_of_the_servers_loop_moves_nothing() -> None:
    """Under load the server's event loop can stall for longer than the lag window: no report is read for 0.8 s,
    then the eight the client sent meanwhile are read at once, all stale but the last. Judged against the last
    report read in time, none of them moves the estimate or the echo reference."""
    clock, listener, playback = clocked()
    playback.audio(0, pcm(6.0), RATE)
    for k in range(1, 11):  # 100.1 … 101.0: on time
        clock.now = 100.0 + 0.1 * k
        assert playback.report(0, 0.1 * k)
    clock.now = 101.8 + 0.001  # the stall ends: the reports sent at 101.1 … 101.8 are read now
    for k in range(11, 19):
        assert playback.report(0, 0.1 * k)
    assert playback.position() == pytest.approx(1.801)
    assert [c[0] for c in listener.calls] == ["played"]
    for k in range(19, 30):  # on time again
        clock.now = 100.0 + 0.1 * k
        playback.report(0, 0.1 * k)
    assert playback.position() == pytest.approx(2.9)
    assert [c[0] for c in listener.calls] == ["played"]


def test_a_lag_the_client_makes_up_within_a_second_moves_the_position_but_not_the_echo_reference() -> None:
    """Under load a client stalls and catches up: its reports put it 0.3 s behind for 0.8 s, then on schedule
    again. The position (heard text) follows the lag; the echo reference, which the microphone hears where the
    catch-up put it back, must not: following the lag and undoing it were two seams in the reference, and the
    bot's echo at -6 dB fell to a share of 0.27 across them."""
    from voxline.turns import EchoDetector

    clock, detector = Clock(), EchoDetector()
    playback = PlaybackClock(clock=clock)
    playback.listener = detector
    bot, rate = speechlike(4.0), 16000
    start = 100.08  # the client plays the reply back to back from here (its jitter buffer)
    send_piece(playback, bot)
    positions = {}
    for k in range(1, 38):  # a report every 100 ms
        clock.now = 100.0 + 0.1 * k
        behind = 0.3 if 10 <= k < 18 else 0.0  # 101.0 - 101.7: the stall; 101.8 on: caught up
        playback.report(0, clock.now - start - behind)
        positions[k] = playback.position()
    assert positions[17] == pytest.approx(1.7 - 0.08 - 0.3)  # the heard position followed the lag
    assert positions[20] == pytest.approx(2.0 - 0.08)  # and its end

    mic = np.zeros(int(4.5 * rate), dtype=np.float32)  # the client's playback, 80 ms later at -6 dB
    at = int((start + 0.08 - 100.0) * rate)
    mic[at : at + len(bot)] += 0.5 * bot
    mic += 0.002 * np.random.default_rng(9).standard_normal(len(mic)).astype(np.float32)
    shares = {}
    for k in range(61):  # every 50 ms from 100.45 to the end of the reply
        end = 100.45 + 0.05 * k
        stop = round((end - 100.0) * rate)
        shares[round(end, 2)] = detector.echo_share(mic[stop - int(0.3 * rate) : stop], end)
    assert min(shares.values()) > 0.8, {end: round(s, 2) for end, s in shares.items() if s <= 0.8}


def test_a_lag_that_persists_realigns_the_echo_reference_once() -> None:
    """A lag that lasts (an underrun the client never makes up) moves the reference once it has held for the
    realign window, by the smallest lag reported in it, and only once."""
    clock, listener, playback = clocked()
    playback.audio(0, pcm(8.0), RATE)
    for k in range(1, 60):
        clock.now = 100.0 + 0.1 * k
        behind = 0.0 if k < 10 else 0.2 + 0.01 * (k % 3)  # 0.20-0.22 s behind from 101.0 on (its jitter)
        playback.report(0, clock.now - 100.0 - behind)
    realigns = [c for c in listener.calls if c[0] == "realign"]
    assert realigns == [("realign", pytest.approx(102.6), 0.2)]
