"""The recorder's parts: the stereo mixer (placement, the cut at a barge-in), the writer (off the loop, the size
cap said out loud, no key), the frame codec, and the virtual clock a replay runs on."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from voxline.frames import ErrorFrame, InterruptFrame, TranscriptFrame, TTSAudioFrame, UserTextFrame, Word
from voxline.providers.redaction import hide_secret
from voxline.recording.codec import decode_frame, encode_frame
from voxline.recording.mixer import StereoMixer
from voxline.recording.virtual_time import VirtualClockLoop, run_virtual
from voxline.recording.writer import RecordingWriter

RATE = 16000


def _ones(seconds: float, value: int = 1000) -> bytes:
    return np.full(round(seconds * RATE), value, dtype="<i2").tobytes()


def _mix(events: list[tuple[str, float, bytes]]) -> np.ndarray:
    """Agent audio is sent at once at its time (it plays from then on, back to back)."""
    out: list[bytes] = []
    mixer = StereoMixer(out.append, rate=RATE, margin=0.5)
    for kind, t, pcm in events:
        if kind == "user":
            mixer.user(t, pcm, RATE)
        elif kind == "agent":
            mixer.agent(t, t, pcm, RATE)
        else:
            mixer.cut(t)
    mixer.close()
    return np.frombuffer(b"".join(out), dtype="<i2").reshape(-1, 2)


def test_user_audio_lands_where_it_arrived_and_agent_audio_where_it_played() -> None:
    frames = _mix([("user", 1.0, _ones(0.5, 100)), ("user", 1.5, _ones(0.5, 200)), ("agent", 2.0, _ones(1.0, 300))])
    left, right = frames[:, 0], frames[:, 1]
    assert (left[: RATE // 2] == 0).all()  # nothing arrived before 0.5 s
    assert (left[RATE // 2 : RATE] == 100).all() and (left[RATE : 3 * RATE // 2] == 200).all()
    assert (right[: 2 * RATE] == 0).all() and (right[2 * RATE : 3 * RATE] == 300).all()
    assert len(frames) == 3 * RATE


def test_a_barge_in_cuts_the_agent_audio_scheduled_after_it() -> None:
    # 4 s of reply sent at once at t=1 (it plays 1-5 s, past the mixer's margin); the user barges in at 1.5 s.
    frames = _mix([("agent", 1.0, _ones(4.0, 300)), ("cut", 1.5, b""), ("user", 2.0, _ones(0.5, 100))])
    right = frames[:, 1]
    assert (right[RATE : 3 * RATE // 2] == 300).all()  # heard: 1.0-1.5 s
    assert (right[3 * RATE // 2 :] == 0).all()  # cut: nothing after 1.5 s
    assert (frames[3 * RATE // 2 : 2 * RATE, 0] == 100).all()


def test_the_writer_writes_off_the_loop_and_says_where_the_cap_cut_it(tmp_path: Path) -> None:
    writer = RecordingWriter(tmp_path, "s1", max_bytes=40_000)
    assert writer._thread.is_alive() and writer._thread is not __import__("threading").current_thread()
    writer.put("turns", {"type": "session"})
    for i in range(40):  # 40 x 0.1 s of user audio = 256 kB of stereo frames at 16 kHz: over the cap
        writer.put("user", 0.1 * (i + 1), _ones(0.1), RATE)
    writer.put("turns", {"type": "turn", "turn": 1})
    writer.close()
    lines = [json.loads(line) for line in writer.paths["turns"].read_text().splitlines()]
    assert lines[0] == {"type": "session"}
    assert lines[-1]["type"] == "limit" and "RECORD_MAX_MB" in lines[-1]["message"]
    assert {"type": "turn", "turn": 1} not in lines  # nothing after the cap
    with wave.open(str(writer.paths["wav"])) as wav:
        assert wav.getnchannels() == 2 and wav.getframerate() == RATE
        assert 0 < wav.getnframes() * 4 <= 40_000
    assert writer.capped


def test_a_full_queue_drops_events_instead_of_blocking_and_counts_them(tmp_path: Path) -> None:
    writer = RecordingWriter(tmp_path, "s2", max_bytes=10**9, queue_size=1)
    started = time.perf_counter()
    for _ in range(500):
        writer.put("replay", {"type": "client", "t": 0.0})
    assert time.perf_counter() - started < 1.0
    writer.close()
    assert writer.dropped > 0
    last = json.loads(writer.paths["turns"].read_text().splitlines()[-1])
    assert last == {"type": "dropped", "events": writer.dropped, "message": "the writer fell behind"}
    with gzip.open(writer.paths["replay"], "rt") as handle:
        assert len(handle.readlines()) == 500 - writer.dropped


def test_frames_round_trip_without_ids_epochs_or_secrets() -> None:
    hide_secret("sk-recording-secret-123")
    transcript = TranscriptFrame(text="my key is sk-recording-secret-123", is_final=True, words=[Word("hi", 0.1, 0.4)])
    encoded = encode_frame(transcript.with_epoch(7))
    assert "sk-recording-secret-123" not in json.dumps(encoded) and "epoch" not in encoded and "id" not in encoded
    back = decode_frame(json.loads(json.dumps(encoded)))
    assert isinstance(back, TranscriptFrame) and back.is_final and back.words == (Word("hi", 0.1, 0.4),)
    audio = decode_frame(encode_frame(TTSAudioFrame(pcm=b"\1\0" * 480, sample_rate=24000)))
    assert isinstance(audio, TTSAudioFrame) and audio.num_samples == 480 and audio.sample_rate == 24000
    assert decode_frame(encode_frame(InterruptFrame(epoch=3, reason="barge-in"))) == InterruptFrame(reason="barge-in")
    assert decode_frame(encode_frame(ErrorFrame(message="boom", fatal=True))) == ErrorFrame(message="boom", fatal=True)
    assert decode_frame(encode_frame(UserTextFrame(text="hello"))) == UserTextFrame(text="hello")
    with pytest.raises(ValueError, match="unknown frame type"):
        decode_frame({"frame": "Word"})


def test_the_virtual_clock_jumps_over_sleeps_and_the_process_clocks_follow_it() -> None:
    async def an_hour() -> tuple[float, float, float]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualClockLoop)
        t0, m0 = loop.time(), time.monotonic()
        await asyncio.sleep(1800)
        async with asyncio.timeout(1801):
            await asyncio.gather(asyncio.sleep(1799.5), asyncio.sleep(1800))
        return loop.time() - t0, time.monotonic() - m0, time.perf_counter()

    real = time.perf_counter()
    (elapsed, monotonic, perf), virtual = run_virtual(an_hour())
    assert elapsed == monotonic == pytest.approx(3600.0) and virtual == pytest.approx(3600.0)
    assert time.perf_counter() - real < 5.0  # no real hour, nor anything like it
    assert abs(time.perf_counter() - perf) > 100  # the process clocks are real again afterwards


def test_timers_that_were_cancelled_do_not_move_the_virtual_clock() -> None:
    async def run() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        handle = loop.call_later(1000, lambda: None)
        handle.cancel()
        await asyncio.sleep(2)
        return loop.time() - start

    elapsed, _ = run_virtual(run())
    assert elapsed == pytest.approx(2.0)


def test_work_in_a_thread_takes_no_virtual_time() -> None:
    # A model's inference (smart-turn) runs in a thread: the clock must not jump to the next timer meanwhile,
    # or the verdict would land at a time that depends on the machine's speed.
    async def run() -> tuple[float, bool, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        timer = asyncio.ensure_future(asyncio.sleep(0.01))
        await asyncio.to_thread(time.sleep, 0.05)  # real time: the thread does not see the virtual clock
        after_thread, timer_done = loop.time() - start, timer.done()
        await timer
        return after_thread, timer_done, loop.time() - start

    (after_thread, timer_done, end), _ = run_virtual(run())
    assert after_thread == 0.0 and not timer_done
    assert end == pytest.approx(0.01)
