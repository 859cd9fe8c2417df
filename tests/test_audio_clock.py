"""AudioClock: when the audio at a given time arrived, over its last ``horizon`` marks (a ring, written in place)."""

from __future__ import annotations

import random
from collections import deque

import pytest
from voxline.audio_clock import AudioClock


def reference_wall_ns(marks: deque[tuple[int, int]], audio_time: float, rate: int) -> int | None:
    """The rule, spelled out: the earliest kept mark whose samples reach ``audio_time``, among those after the
    last mark before it."""
    found = None
    for samples, ns in reversed(marks):
        if samples < audio_time * rate:
            break
        found = ns
    return found


@pytest.mark.parametrize("horizon", [1, 3, 64])
def test_wall_ns_follows_the_rule_as_the_ring_wraps(horizon: int) -> None:
    rng = random.Random(horizon)
    clock = AudioClock(16000, horizon=horizon)
    marks: deque[tuple[int, int]] = deque(maxlen=horizon)
    samples, ns = 0, 1_000_000
    for _ in range(5 * horizon + 7):
        count = rng.choice([160, 320, 640, 1])
        ns += rng.randrange(1, 40_000_000)
        clock.note(count, ns)
        samples += count
        marks.append((samples, ns))
        for _ in range(5):
            t = rng.uniform(0, samples / 16000 + 0.05)
            assert clock.wall_ns(t) == reference_wall_ns(marks, t, 16000)
        assert clock.wall_ns(samples / 16000) == ns  # the newest sample arrived with the newest mark
    assert clock.seconds == samples / 16000
    assert clock.wall_ns(samples / 16000 + 0.01) is None  # audio not received yet


def test_an_empty_clock_knows_nothing_and_a_horizon_must_hold_a_mark() -> None:
    assert AudioClock(16000).wall_ns(0.0) is None
    with pytest.raises(ValueError, match="horizon"):
        AudioClock(16000, horizon=0)


def test_note_seconds_counts_at_the_clocks_rate() -> None:
    clock = AudioClock(16000)
    clock.note_seconds(0.02, 5)
    clock.note_seconds(0.02, 9)
    assert clock.seconds == pytest.approx(0.04)
    assert clock.wall_ns(0.03) == 9
    assert clock.wall_ns(0.01) == 5
