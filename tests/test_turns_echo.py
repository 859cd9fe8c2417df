"""The echo detector: the bot's own voice coming back through the microphone, told from the user's voice."""

from __future__ import annotations

import numpy as np
import pytest
from voxline.turns import AudioHistory, EchoDetector, VirtualClock

RATE = 16000


def voice(seconds: float, pitch: float, seed: int) -> np.ndarray:
    """A voice-like signal: harmonics of a wandering pitch, syllable envelope, a little breath noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = pitch * (1 + 0.15 * np.sin(2 * np.pi * (0.5 + seed % 3 * 0.2) * t + seed))
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    harmonics = sum(np.sin(k * phase + rng.uniform(0, 6)) / k for k in range(1, 10))
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * (3 + seed % 4) * t + seed)
    return (0.25 * harmonics * envelope + 0.005 * rng.standard_normal(len(t))).astype(np.float32)


def pcm(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def played_bot(detector: EchoDetector, bot: np.ndarray, start: float, chunk: float = 0.04) -> None:
    """The client plays ``bot`` from ``start``, reported chunk by chunk (at 24 kHz, as the output sends)."""
    from voxline.audio.resample import resample

    step = int(chunk * RATE)
    for i in range(0, len(bot), step):
        detector.played(resample(pcm(bot[i : i + step]), RATE, 24000), 24000, start + i / RATE)


def mic(bot: np.ndarray, *, gain_db: float | None, delay: float, user: np.ndarray | None = None) -> np.ndarray:
    out = np.zeros(len(bot), dtype=np.float32)
    if gain_db is not None:
        shift = int(delay * RATE)
        out[shift:] += bot[: len(bot) - shift] * 10 ** (gain_db / 20)
    if user is not None:
        out[: len(user)] += user[: len(out)]
    return out + 0.002 * np.random.default_rng(9).standard_normal(len(out)).astype(np.float32)


@pytest.mark.parametrize("gain_db", [-6.0, -12.0, -20.0])
@pytest.mark.parametrize("delay", [0.03, 0.08, 0.25])
def test_echo_alone_is_echo_at_any_level_and_delay(gain_db: float, delay: float) -> None:
    bot = voice(3.0, 110, seed=1)
    detector = EchoDetector()
    played_bot(detector, bot, start=10.0)
    heard = mic(bot, gain_db=gain_db, delay=delay)
    # The VAD reports speech 0.2 s in: the detector sees the last 0.3 s, ending 1.5 s after playback began.
    window = heard[int(1.2 * RATE) : int(1.5 * RATE)]
    assert detector.echo_share(window, end=11.5) > 0.8
    assert detector.is_echo(window, end=11.5)


@pytest.mark.parametrize("gain_db", [None, -6.0, -12.0])
def test_the_user_is_not_echo_even_over_the_bots_voice(gain_db: float | None) -> None:
    bot = voice(3.0, 110, seed=1)
    user = np.zeros(len(bot), dtype=np.float32)
    user[int(1.0 * RATE) :] = voice(2.0, 210, seed=5)
    detector = EchoDetector()
    played_bot(detector, bot, start=10.0)
    heard = mic(bot, gain_db=gain_db, delay=0.08, user=user)
    window = heard[int(1.2 * RATE) : int(1.5 * RATE)]
    assert detector.echo_share(window, end=11.5) < 0.5
    assert not detector.is_echo(window, end=11.5)


def test_without_playback_nothing_is_echo() -> None:
    detector = EchoDetector()
    assert detector.echo_share(voice(0.3, 120, seed=2), end=5.0) == 0.0
    bot = voice(1.0, 110, seed=1)
    played_bot(detector, bot, start=10.0)
    # Long after the bot stopped playing: the reference is silent at every delay searched.
    assert detector.echo_share(bot[:4800], end=20.0) == 0.0


def test_audio_that_was_sent_but_never_played_is_not_a_reference() -> None:
    bot = voice(3.0, 110, seed=1)
    detector = EchoDetector()
    played_bot(detector, bot, start=10.0)
    detector.stopped(at=11.0)  # interrupted: the rest was flushed at the client
    heard = mic(bot, gain_db=-6, delay=0.08)
    assert detector.echo_share(heard[int(1.2 * RATE) : int(1.5 * RATE)], end=11.5) < 0.05
    assert detector.echo_share(heard[int(0.5 * RATE) : int(0.8 * RATE)], end=10.8) > 0.8


def test_a_pause_moves_what_was_still_to_play_to_the_resume() -> None:
    bot = voice(3.0, 110, seed=1)
    detector = EchoDetector()
    played_bot(detector, bot, start=10.0)  # sent ahead: predicted to play 10.0-13.0
    detector.pause(at=11.0)
    detector.resume(at=12.0)  # the second from 11.0 on now plays from 12.0
    heard = np.zeros(int(4.0 * RATE), dtype=np.float32)
    heard[:RATE] = bot[:RATE] * 0.5
    heard[2 * RATE :] = bot[RATE:] * 0.5
    assert detector.echo_share(heard[int(2.2 * RATE) : int(2.5 * RATE)], end=12.5) > 0.9
    assert detector.echo_share(heard[int(1.2 * RATE) : int(1.5 * RATE)] + 0.01, end=11.5) < 0.05  # paused: silence


def test_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match="threshold"):
        EchoDetector(threshold=1.5)
    with pytest.raises(ValueError, match="max_delay"):
        EchoDetector(min_delay=0.3, max_delay=0.1)


def test_audio_history_reads_back_by_clock_time() -> None:
    clock = VirtualClock(50.0)
    history = AudioHistory(clock, seconds=1.0)
    ramp = np.arange(32000, dtype=np.float32) / 32000
    for i in range(0, 32000, 320):  # 2 s in 20 ms frames, in real time, into a 1 s ring
        clock.advance(0.02)
        history.append(ramp[i : i + 320])
    assert history.end_time == pytest.approx(52.0) and history.samples == 32000
    lsb = 1 / 32768  # kept as 16-bit samples, like the microphone's
    np.testing.assert_allclose(history.last(0.5), ramp[-8000:], rtol=0, atol=lsb / 2)
    np.testing.assert_allclose(history.between(51.5, 51.75), ramp[24000:28000], rtol=0, atol=lsb / 2)
    assert len(history.between(50.0, 52.0)) == 16000  # only 1 s is kept
    assert history.clock_time(1.0) == pytest.approx(51.0)
    assert len(history.between(53.0)) == 0


def test_audio_history_keeps_pcm_bytes_exactly_across_the_ring_edge() -> None:
    clock = VirtualClock(0.0)
    history = AudioHistory(clock, seconds=0.05)  # 800 samples: 20 ms frames wrap it
    frames = [np.arange(i * 320, (i + 1) * 320, dtype="<i2") for i in range(7)]
    for frame in frames:
        clock.advance(0.02)
        history.append(frame.tobytes())
    expected = np.concatenate(frames)[-800:].astype(np.float32) / 32768
    np.testing.assert_array_equal(history.last(0.05), expected)
    history.append(np.concatenate(frames).tobytes())  # longer than the ring: its end is kept
    np.testing.assert_array_equal(history.last(1.0), expected)


def test_audio_sent_during_a_pause_plays_after_the_held_audio_at_the_resume() -> None:
    bot = voice(2.0, 110, seed=1)
    detector = EchoDetector()
    played_bot(detector, bot[:16000], start=10.0)  # the first second
    detector.pause(10.5)
    played_bot(detector, bot[16000:], start=10.6)  # sent while paused: queued behind what was held
    assert detector.paused
    detector.resume(12.0)
    # From 12.0 the client plays bot[0.5 s:] (0.5 s held + the second second).
    heard = mic(bot[8000:], gain_db=-6.0, delay=0.08)
    window = heard[int(0.9 * RATE) : int(1.2 * RATE)]
    assert detector.is_echo(window, end=13.2)
    # During the pause nothing played: the same audio then is not echo.
    assert not detector.is_echo(window, end=11.5)


def test_realign_moves_what_had_not_played_to_the_clients_timing() -> None:
    bot = voice(3.0, 110, seed=1)
    detector = EchoDetector(min_delay=-0.02, max_delay=0.1)  # a narrow search: the timing must be right
    played_bot(detector, bot, start=10.0)
    # The client reports it is 0.3 s behind at 10.5: from then on it plays 0.3 s later than placed.
    detector.realign(10.5, 0.3)
    heard = mic(bot, gain_db=-6.0, delay=0.38)  # what the microphone hears: 0.3 s late plus the room's 80 ms
    window = heard[int(1.7 * RATE) : int(2.0 * RATE)]
    assert detector.is_echo(window, end=12.0)
    unaligned = EchoDetector(min_delay=-0.02, max_delay=0.1)
    played_bot(unaligned, bot, start=10.0)
    assert not unaligned.is_echo(window, end=12.0)


def test_realign_since_moves_the_whole_run_a_late_start_delayed() -> None:
    bot = voice(2.0, 110, seed=2)
    heard = mic(bot, gain_db=-6.0, delay=0.33)  # the client started 0.25 s late; the room adds 80 ms
    window = heard[int(0.33 * RATE) : int(0.63 * RATE)]  # the echo's first 0.3 s, as the VAD starts on it
    # The first report (0.05 s played at 10.3) says the client is 0.25 s behind, from the run's start at 10.0.
    whole = EchoDetector(min_delay=-0.02, max_delay=0.1)
    played_bot(whole, bot, start=10.0)
    whole.realign(10.3, 0.25, since=10.0)
    assert whole.echo_share(window, end=10.63) > 0.95
    # Moving only what had not played by then leaves the first 50 ms where the client never played them.
    rest = EchoDetector(min_delay=-0.02, max_delay=0.1)
    played_bot(rest, bot, start=10.0)
    rest.realign(10.3, 0.25)
    assert rest.echo_share(window, end=10.63) < 0.9


def test_back_to_back_chunks_of_odd_length_make_one_seamless_reference() -> None:
    """espeak-ng's chunks have odd lengths: resampled one by one (24 → 16 kHz) each one's length was rounded to
    whole samples and the reference had a one-sample seam at most chunk borders, against which a window of
    fricative-like (broadband) speech matched on one side only (share 0.84 at worst before, on this signal).
    The client plays the chunks as one stream: the reference must be that stream resampled at once."""
    from voxline.audio.resample import resample

    rng = np.random.default_rng(3)
    bot = voice(3.0, 110, seed=1) + (0.15 * np.random.default_rng(7).standard_normal(3 * RATE)).astype(np.float32)
    sent = np.frombuffer(resample(pcm(bot), RATE, 24000), dtype="<i2")
    plays = np.frombuffer(resample(sent.tobytes(), 24000, RATE), dtype="<i2").astype(np.float32) / 32768
    detector = EchoDetector()
    i = 0
    while i < len(sent):  # chunks of 13-100 ms, all of odd length, each placed right after the last
        n = int(rng.integers(301, 2401)) | 1
        detector.played(sent[i : i + n].tobytes(), 24000, 10.0 + i / 24000)
        i += n
    assert np.abs(detector._read(0, len(plays)) - plays).max() <= 2 / 32768  # rounding of the last bit only
    heard = np.zeros(len(plays), dtype=np.float32)
    heard[int(0.08 * RATE) :] = 0.5 * plays[: -int(0.08 * RATE)]
    shares = [
        detector.echo_share(heard[int(a * RATE) : int((a + 0.3) * RATE)], end=10.0 + a + 0.3)
        for a in np.arange(0.3, 2.6, 0.1)
    ]
    assert min(shares) > 0.99


def test_a_realign_moves_the_run_and_the_chunks_after_it_follow_seamlessly() -> None:
    """After a realign the run goes on where the client plays it: the next chunks join the moved audio without a
    seam, and the audio that stayed before the cut is not rewritten."""
    from voxline.audio.resample import resample

    bot = voice(2.0, 110, seed=1) + (0.15 * np.random.default_rng(7).standard_normal(2 * RATE)).astype(np.float32)
    sent = np.frombuffer(resample(pcm(bot), RATE, 24000), dtype="<i2")
    plays = np.frombuffer(resample(sent.tobytes(), 24000, RATE), dtype="<i2").astype(np.float32) / 32768
    detector = EchoDetector()
    step, lag = 1201, 0.05
    for i in range(0, len(sent), step):
        at = 10.0 + i / 24000 + (lag if i >= 10 * step else 0.0)
        if i == 10 * step:  # the client is 50 ms behind from 0.4 s on (an underrun), reported at 0.45 s
            detector.realign(10.45, lag)
        detector.played(sent[i : i + step].tobytes(), 24000, at)
    cut, moved = int(0.4 * RATE), int(0.4 * RATE) + int(lag * RATE)
    reference = detector._read(0, len(plays) + int(lag * RATE))
    assert np.abs(reference[:cut] - plays[:cut]).max() <= 2 / 32768
    assert not reference[cut:moved].any()  # the underrun: nothing played
    assert np.abs(reference[moved:] - plays[cut:]).max() <= 2 / 32768
