"""piper TTS from the wheel: 24 kHz streamed audio, clause pieces, settings, barge-in, sharing, and a round trip.

The round trip is open-vocabulary: whisper gets 0.5-2 % of the words of piper's voice wrong (docs/local-engines.md),
so asking it for the keywords of what piper said checks that the audio is speech, whole, at the right rate.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from audio.speech import ENGINE_TIMEOUT, frames, local, needs_piper, needs_whisper, pcm_of, reply, silence
from voxline.audio.resample import resample
from voxline.frames import (
    InterruptFrame,
    LLMResponseStartFrame,
    SettingsFrame,
    SpeakTextFrame,
    TTSAudioFrame,
    TTSStoppedFrame,
    UserTextFrame,
)
from voxline.pipeline import Pipeline
from voxline.processors.local.piper import PiperEngine, PiperTTS, clauses
from voxline.processors.local.whisper import WhisperSTT
from voxline.processors.vad import SileroVAD
from voxline.testing import barge_in_on_first_audio, run_processor

pytestmark = [*local, needs_piper]


async def test_speaks_a_reply_as_streamed_non_silent_24khz_audio() -> None:
    began = time.monotonic()
    result = await run_processor(
        PiperTTS(), reply("Hello there.", "The weather is nice today."), timeout=ENGINE_TIMEOUT
    )
    took = time.monotonic() - began
    assert result.errors == []
    audio = result.downstream_of(TTSAudioFrame)
    assert len(audio) >= 4  # in blocks of at most 0.2 s, not one lump per sentence
    assert {(f.sample_rate, f.channels) for f in audio} == {(24000, 1)}
    assert max(len(f.pcm) for f in audio) <= 0.2 * 48000
    seconds = len(pcm_of(audio)) / 48000
    assert 1.5 < seconds < 5.0
    samples = np.frombuffer(pcm_of(audio), dtype=np.int16)
    assert np.abs(samples).max() > 8000  # speech, not silence (piper normalises its output)
    assert float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) > 500
    names = [type(f).__name__ for f in result.downstream if not isinstance(f, TTSAudioFrame)]
    assert names.index("TTSStartedFrame") < names.index("TTSStoppedFrame") < names.index("LLMResponseEndFrame")
    ttfb = [m for m in result.metrics if m.name == "tts.ttfb"]
    assert len(ttfb) == 2 and all(0 < m.value < took for m in ttfb)  # seconds, inside the run (speed: tests/bench)


@needs_whisper
async def test_round_trip_through_whisper_recognises_what_was_said() -> None:
    text = "Please turn off the lights in the kitchen, and close the back window."
    tts = await run_processor(PiperTTS(), reply(text), timeout=ENGINE_TIMEOUT)
    pcm16 = resample(pcm_of(tts.downstream_of(TTSAudioFrame)), 24000, 16000)
    stt = WhisperSTT(interims="none")
    heard = await run_processor(
        Pipeline([SileroVAD(), stt]), frames(silence(0.5) + pcm16 + silence(1.0)), timeout=ENGINE_TIMEOUT
    )
    (turn,) = heard.downstream_of(UserTextFrame)
    words = turn.text.lower()
    assert all(w in words for w in ("lights", "kitchen", "close", "back window")), turn.text


def test_clauses_cut_long_text_after_clause_marks() -> None:
    assert clauses("You said: what is the capital of France.") == ["You said:", "what is the capital of France."]
    assert clauses("Well, yes.") == ["Well, yes."]  # no one-word pieces
    assert clauses("It costs 1,000 dollars, roughly.") == ["It costs 1,000 dollars, roughly."]
    assert clauses("First part; second part - third.") == ["First part;", "second part - third."]
    assert clauses("") == []
    # A long first clause is cut after at most eight words, before a conjunction or preposition if one comes.
    assert clauses("I have turned on the lights in the kitchen for you.") == [
        "I have turned on the lights",
        "in the kitchen for you.",
    ]
    assert clauses("It is three hundred and eighty four thousand kilometres away.") == [
        "It is three hundred and eighty four thousand",
        "kilometres away.",
    ]
    assert clauses("I have turned on the lights in the kitchen.", first_max_words=None) == [
        "I have turned on the lights in the kitchen."
    ]


async def test_clause_pieces_make_the_same_speech_about_as_long() -> None:
    text = "You said: set a timer for ten minutes, then remind me to call my mother."
    whole = await run_processor(PiperTTS(split_clauses=False, steady_timing=True), reply(text), timeout=ENGINE_TIMEOUT)
    split = await run_processor(PiperTTS(steady_timing=True), reply(text), timeout=ENGINE_TIMEOUT)
    a, b = len(pcm_of(whole.downstream_of(TTSAudioFrame))), len(pcm_of(split.downstream_of(TTSAudioFrame)))
    assert 0.8 < b / a < 1.3  # the same words, with a little more pause where the pieces meet


async def test_length_scale_setting_changes_the_speed_in_order() -> None:
    text = "This sentence is spoken twice at two speeds."
    result = await run_processor(
        PiperTTS(steady_timing=True),
        [*reply(text), SettingsFrame(settings={"length_scale": 1.6}), *reply(text)],
        timeout=ENGINE_TIMEOUT,
    )
    audio = result.downstream
    cut = next(i for i, f in enumerate(audio) if isinstance(f, SettingsFrame))
    normal = pcm_of([f for f in audio[:cut] if isinstance(f, TTSAudioFrame)])
    slow = pcm_of([f for f in audio[cut:] if isinstance(f, TTSAudioFrame)])
    assert len(slow) > 1.3 * len(normal)


async def test_a_bad_setting_is_reported_and_the_old_speed_kept() -> None:
    tts = PiperTTS()
    result = await run_processor(
        tts, [SettingsFrame(settings={"length_scale": "fast"}), *reply("Still talking.")], timeout=ENGINE_TIMEOUT
    )
    assert [e.message for e in result.errors] == ["piper length_scale must be a number from 0.2 to 5, got 'fast'"]
    assert not result.errors[0].fatal and tts.length_scale is None
    assert result.downstream_of(TTSAudioFrame)
    with pytest.raises(ValueError, match="length_scale"):
        PiperTTS(length_scale=0)


async def test_barge_in_drops_the_old_audio() -> None:
    sentences = [f"This is sentence number {n} of a long answer that keeps the voice busy." for n in range(8)]
    before = [LLMResponseStartFrame(), *(SpeakTextFrame(text=s) for s in sentences)]
    result = await barge_in_on_first_audio(PiperTTS(), before, reply("And now something new."), timeout=ENGINE_TIMEOUT)
    seen = result.downstream
    cut = next(i for i, f in enumerate(seen) if isinstance(f, InterruptFrame))
    new_epoch = seen[cut].epoch  # type: ignore[attr-defined]
    assert any(isinstance(f, TTSAudioFrame) for f in seen[:cut])
    assert [f for f in seen[cut:] if isinstance(f, TTSAudioFrame) and f.epoch < new_epoch] == []
    assert any(isinstance(f, TTSStoppedFrame) for f in seen[cut:])
    assert [f for f in seen[cut:] if isinstance(f, TTSAudioFrame) and f.epoch == new_epoch]  # the new reply plays
    # Far less than the ~30 s of the eight old sentences went out.
    assert len(pcm_of([f for f in seen if isinstance(f, TTSAudioFrame)])) / 48000 < 10


async def test_two_sessions_share_one_voice_without_mixing_audio() -> None:
    engine = PiperEngine(workers=1)
    texts = ["The first session says this sentence.", "And the second one says something else entirely, at length."]
    results = await asyncio.gather(
        *(
            run_processor(PiperTTS(engine=engine, steady_timing=True), reply(t, t), timeout=ENGINE_TIMEOUT)
            for t in texts
        )
    )
    assert engine.loads == 1  # loaded once for both
    assert engine.pool.jobs_run == 4  # four sentences, one worker
    lengths = [len(pcm_of(r.downstream_of(TTSAudioFrame))) for r in results]
    solo = [
        len(
            pcm_of(
                (
                    await run_processor(PiperTTS(engine=engine, steady_timing=True), reply(t), timeout=ENGINE_TIMEOUT)
                ).downstream_of(TTSAudioFrame)
            )
        )
        for t in texts
    ]
    for both, alone in zip(lengths, solo, strict=True):
        assert both == 2 * alone  # steady timing: each sentence as long as alone; mixed audio would not be
    assert solo[1] > 1.3 * solo[0]
