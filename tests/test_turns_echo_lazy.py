"""The echo detector's lazy reference: a played chunk is resampled only when a check reads it, and everything the
detector says is what resampling every chunk at once said (the previous code, ``tests/echo_eager.py``)."""

from __future__ import annotations

import numpy as np
import pytest
import soxr
from echo_eager import EagerEchoDetector
from voxline.turns import EchoDetector
from voxline.turns.echo_chunks import resampled_length

RATE = 16000


def speechy(seconds: float, rate: int, seed: int) -> np.ndarray:
    """Int16 audio with a voice-like part and broadband noise (odd seams would show)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    tone = sum(np.sin(2 * np.pi * 110 * k * t + rng.uniform(0, 6)) / k for k in range(1, 8))
    x = 0.2 * tone * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) + 0.1 * rng.standard_normal(len(t))
    return (np.clip(x, -1, 1) * 32767).astype("<i2")


def same(lazy: EchoDetector, eager: EagerEchoDetector) -> None:
    assert lazy._until == eager._until
    assert lazy._t0 == eager._t0
    assert (lazy._held is None) == (eager._held is None)
    if lazy._held is not None and eager._held is not None:
        assert np.array_equal(lazy._held.settled(RATE), eager._held)


@pytest.mark.parametrize("seed", range(16))
@pytest.mark.parametrize("history", [1.5, 20.0])
def test_random_plays_pauses_realigns_stops_and_checks_say_what_the_eager_detector_said(
    seed: int, history: float
) -> None:
    rng = np.random.default_rng(seed)
    lazy, eager = EchoDetector(history=history), EagerEchoDetector(history=history)
    audio = speechy(30.0, 24000, seed)
    played: list[np.ndarray] = []  # 16 kHz versions of what played, for microphones that hold echo
    now, nxt, pos = 100.0, 100.0, 0
    for _ in range(220):
        op = rng.choice(["play"] * 12 + ["check", "read", "stop", "pause", "resume", "realign", "wait"])
        now += float(rng.uniform(0, 0.06))
        if op == "play":
            rate = int(rng.choice([24000] * 8 + [16000, 22050, 48000]))
            n = int(rng.choice([int(rng.integers(1, 40)), int(rng.integers(200, 2401))]))
            if rate == 24000:
                pcm = audio[pos % (len(audio) - n) :][:n].tobytes()
                pos += n
            else:
                pcm = speechy(n / rate + 0.01, rate, seed + pos)[:n].tobytes()
            kind = rng.choice(["next"] * 7 + ["gap", "overlap", "now", "far"])
            at = {
                "next": nxt,
                "gap": nxt + float(rng.uniform(0.001, 0.3)),
                "overlap": nxt - float(rng.uniform(0.0, 0.05)),
                "now": now,
                "far": nxt + history + float(rng.uniform(0, 2)),
            }[str(kind)]
            lazy.played(pcm, rate, at)
            eager.played(pcm, rate, at)
            nxt = at + n / rate
            if rate == 24000:
                played.append(np.frombuffer(pcm, dtype="<i2")[::3].astype(np.float32) / 32768)  # a crude 8 kHz echo
        elif op == "check":
            n = int(rng.choice([int(0.3 * RATE), int(0.5 * RATE), int(0.03 * RATE)]))
            mic = rng.standard_normal(n).astype(np.float32) * 0.01
            if played and rng.random() < 0.7:
                echo = np.repeat(played[-1], 2)[:n]
                mic[: len(echo)] += 0.5 * echo
            end = now + float(rng.uniform(-0.5, 0.5))
            assert lazy.echo_share(mic, end) == eager.echo_share(mic, end)
            assert lazy.last_share == eager.last_share
        elif op == "read" and lazy._t0 is not None:
            a = lazy._index(now + float(rng.uniform(-2.0, 0.5)))
            b = a + int(rng.integers(1, 2 * RATE))
            assert np.array_equal(lazy._read(a, b), eager._read(a, b))
        elif op == "stop":
            lazy.stopped(now)
            eager.stopped(now)
        elif op == "pause":
            lazy.pause(now)
            eager.pause(now)
        elif op == "resume":
            lazy.resume(now)
            eager.resume(now)
        elif op == "realign":
            lag = float(rng.choice([-1, 1]) * rng.uniform(0.005, 0.12))
            since = None if rng.random() < 0.5 else now - float(rng.uniform(0, 1.0))
            lazy.realign(now, lag, since)
            eager.realign(now, lag, since)
            if lazy._run is not None and eager._run is not None:
                assert (lazy._run.out0, lazy._run.floor) == (eager._run.out0, eager._run.floor)
        same(lazy, eager)
    if lazy._t0 is not None:
        start, stop = lazy._until - len(lazy._ring), lazy._until
        assert np.array_equal(lazy._read(start, stop), eager._read(start, stop))
    assert lazy.checks == eager.checks


def test_playing_resamples_nothing_and_a_check_resamples_only_what_it_searches() -> None:
    """3 s of reply in 100 ms chunks: none is resampled while it plays; a check of 0.3 s of microphone ending at
    1.5 s (delays -50 to 400 ms: reference from 0.8 to 1.55 s) resamples the 8-10 chunks that cover that
    stretch, and finds the same echo as the eager detector; a second check over the same stretch resamples
    nothing more; a check while nothing plays resamples nothing."""
    audio = speechy(3.0, 24000, 1)
    lazy, eager = EchoDetector(), EagerEchoDetector()
    for i in range(0, len(audio), 2400):
        for detector in (lazy, eager):
            detector.played(audio[i : i + 2400].tobytes(), 24000, 10.0 + i / 24000)
    assert lazy.resampled == 0
    heard = soxr.resample(audio.astype(np.float32) / 32768, 24000, RATE)
    mic = np.zeros(int(0.3 * RATE), dtype=np.float32)
    delay = int(0.08 * RATE)
    mic[:] = 0.5 * heard[int(1.2 * RATE) - delay : int(1.5 * RATE) - delay]
    share = lazy.echo_share(mic, 11.5)
    assert share == eager.echo_share(mic, 11.5) and share > 0.95
    assert 8 <= lazy.resampled <= 10
    lazy.echo_share(mic, 11.5)
    assert lazy.resampled <= 10
    before = lazy.resampled
    assert lazy.echo_share(mic, 30.0) == eager.echo_share(mic, 30.0) == 0.0  # long after the reply
    assert lazy.resampled == before


def test_an_interrupt_drops_what_never_played_without_resampling_it() -> None:
    audio = speechy(3.0, 24000, 2)
    lazy, eager = EchoDetector(), EagerEchoDetector()
    for i in range(0, len(audio), 2400):
        for detector in (lazy, eager):
            detector.played(audio[i : i + 2400].tobytes(), 24000, 10.0 + i / 24000)
    lazy.stopped(10.5)
    eager.stopped(10.5)
    assert lazy.resampled <= 1  # at most the chunk the cut falls inside
    assert all(chunk.hi <= lazy._index(10.5) for chunk in lazy._pending)
    assert np.array_equal(lazy._read(0, 3 * RATE), eager._read(0, 3 * RATE))


@pytest.mark.parametrize("rate", [8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000])
def test_the_resampled_length_is_soxrs(rate: int) -> None:
    """Where a chunk's outputs end is known before it is resampled: python-soxr's one-shot length."""
    for n in [*range(1, 200), *range(200, 6000, 37)]:
        assert resampled_length(n, rate, RATE) == len(soxr.resample(np.zeros(n, dtype=np.float32), rate, RATE))


def test_pauses_and_realigns_move_what_is_pending_without_resampling_it() -> None:
    """The page's reports realign each reply at its start (the jitter buffer), and the turn engine pauses the bot
    while it listens: neither resamples the reply (each used to, up to the end of what was sent); what is read
    later is what the eager detector holds, Int16 rounding at every move included."""
    audio = speechy(4.0, 24000, 5)
    lazy, eager = EchoDetector(), EagerEchoDetector()

    def both(method: str, *args: float | None) -> None:
        getattr(lazy, method)(*args)
        getattr(eager, method)(*args)

    for i in range(0, len(audio), 2401):
        at = 10.0 + i / 24000
        if i == 5 * 2401:
            both("realign", 10.55, 0.08, 10.0)  # the first report: the whole run was 80 ms late
            both("realign", 10.6, -0.04)  # the client caught up a little
        if i == 12 * 2401:
            both("pause", 11.0)
        if i == 14 * 2401:
            both("resume", 11.4)
            both("realign", 11.5, 0.05)
        lazy.played(audio[i : i + 2401].tobytes(), 24000, at + (0.12 if i >= 5 * 2401 else 0.0))
        eager.played(audio[i : i + 2401].tobytes(), 24000, at + (0.12 if i >= 5 * 2401 else 0.0))
    assert lazy.resampled <= 3  # at most the chunks a cut falls inside
    assert any(chunk.rounds >= 2 for chunk in lazy._pending)
    for end in np.arange(10.3, 14.5, 0.25):
        mic = np.zeros(int(0.3 * RATE), dtype=np.float32)
        mic += lazy._read(lazy._index(end) - len(mic) - 1300, lazy._index(end) - 1300) * 0.5
        assert lazy.echo_share(mic, end) == eager.echo_share(mic, end)
    assert np.array_equal(lazy._read(0, lazy._until), eager._read(0, eager._until))
