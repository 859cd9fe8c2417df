"""The turn benchmark's corpus dates the start of speech where P.56 counts speech as active, not at the clip's
first audible sample (tests/bench/turns_corpus.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "bench"))
from turns_corpus import RATE, Part, speech_onset, trim


def tone(seconds: float, dbfs: float, seed: int = 0) -> np.ndarray:
    """A voiced-like sound (harmonics of 120 Hz) at ``dbfs`` RMS."""
    t = np.arange(int(seconds * RATE)) / RATE
    wave = sum(np.sin(2 * np.pi * 120 * k * t + seed + k) / k for k in range(1, 8))
    return (wave / np.sqrt(np.mean(wave**2)) * 10 ** (dbfs / 20)).astype(np.float32)


def test_a_murmur_before_the_speech_is_kept_but_not_counted_as_speech() -> None:
    # flite kal16's opening: 230 ms at -46 dBFS, 150 ms near silence, then speech around -24 dBFS.
    murmur, gap, speech = tone(0.23, -46.0), tone(0.15, -60.0), tone(1.0, -24.0)
    clip = trim(np.concatenate((murmur, gap, speech)))
    assert len(clip) / RATE == pytest.approx(1.38, abs=0.01)  # within 40 dB of the peak: the trim keeps it
    assert speech_onset(clip) == pytest.approx(0.38, abs=0.011)
    assert Part(clip, "Wait, stop.").onset == speech_onset(clip)


def test_a_quiet_consonant_that_leads_into_the_speech_starts_it() -> None:
    # A fricative-like onset 12 dB under the vowel (inside P.56's 15.9 dB margin) is speech.
    onset, vowel = tone(0.08, -32.0, seed=3), tone(0.8, -20.0)
    clip = np.concatenate((onset, vowel))
    assert speech_onset(clip) == 0.0
    # The same onset 25 dB under the vowel is not (the speech is dated from the vowel).
    quiet = np.concatenate((tone(0.08, -45.0, seed=3), vowel))
    assert speech_onset(quiet) == pytest.approx(0.08, abs=0.011)
    assert Part().onset == 0.0  # noise parts have no clip
