"""espeak-ng TTS from the wheel: 24 kHz streamed audio, settings, errors, interrupts, and a round trip to STT.

The round trip uses a JSGF grammar on the recogniser: open-vocabulary pocketsphinx gets most words of espeak's
robotic speech wrong (66-82 % WER, docs/local-engines.md), so asserting on free text would test pocketsphinx,
not our TTS. With a grammar of similar phrases, the recogniser must still pick the one that was spoken, which
fails if the audio is garbled, cut, silent or resampled to the wrong rate.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
import soxr
from audio.speech import ENGINE_TIMEOUT, frames, local, pcm_of, reply, silence
from voxline.frames import (
    InterruptFrame,
    LLMResponseStartFrame,
    SettingsFrame,
    SpeakTextFrame,
    TTSAudioFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    UserTextFrame,
)
from voxline.processors.local.stt import PocketsphinxSTT, local_stt
from voxline.processors.local.tts import EspeakTTS
from voxline.task import PipelineTask
from voxline.testing import barge_in_on_first_audio, run_processor

pytestmark = local

PHRASES = [
    "open the front door",
    "close the back window",
    "turn on the kitchen lights",
    "turn off the bedroom radio",
    "play some music",
    "what time is it",
]
GRAMMAR = "#JSGF V1.0; grammar phrases; public <phrase> = " + " | ".join(f"( {p} )" for p in PHRASES) + ";"


async def test_speaks_a_reply_as_streamed_24khz_audio() -> None:
    began = time.monotonic()
    result = await run_processor(
        EspeakTTS(), reply("Hello there.", "The weather is nice today."), timeout=ENGINE_TIMEOUT
    )
    took = time.monotonic() - began
    assert result.errors == []
    audio = result.downstream_of(TTSAudioFrame)
    assert len(audio) > 10  # streamed in blocks, not one lump per sentence
    assert {(f.sample_rate, f.channels) for f in audio} == {(24000, 1)}
    seconds = len(pcm_of(audio)) / 48000
    assert 1.5 < seconds < 5.0
    samples = np.frombuffer(pcm_of(audio), dtype=np.int16)
    assert np.abs(samples).max() > 3000  # speech, not silence
    names = [type(f).__name__ for f in result.downstream if not isinstance(f, TTSAudioFrame)]
    assert names.index("TTSStartedFrame") < names.index("TTSStoppedFrame") < names.index("LLMResponseEndFrame")
    ttfb = [m for m in result.metrics if m.name == "tts.ttfb"]
    assert len(ttfb) == 2 and all(0 < m.value < took for m in ttfb)  # seconds, inside the run (speed: tests/bench)


@pytest.mark.parametrize("phrase", ["turn on the kitchen lights", "close the back window"])
async def test_round_trip_through_stt_recognises_the_phrase(phrase: str) -> None:
    tts = await run_processor(EspeakTTS(rate=150), reply(phrase), timeout=ENGINE_TIMEOUT)
    pcm24 = np.frombuffer(pcm_of(tts.downstream_of(TTSAudioFrame)), dtype=np.int16)
    pcm16 = soxr.resample(pcm24, 24000, 16000).astype(np.int16).tobytes()
    stt = PocketsphinxSTT(grammar=GRAMMAR, interim_results=False)
    heard = await run_processor(local_stt(stt=stt), frames(silence(0.5) + pcm16 + silence(1.0)), timeout=ENGINE_TIMEOUT)
    assert [u.text for u in heard.downstream_of(UserTextFrame)] == [phrase]


async def test_settings_change_the_voice_in_order() -> None:
    text = "This sentence is spoken twice at two speeds."
    result = await run_processor(
        EspeakTTS(rate=120), [*reply(text), SettingsFrame(settings={"rate": 300}), *reply(text)], timeout=ENGINE_TIMEOUT
    )
    audio = result.downstream_of(TTSAudioFrame)
    starts = [i for i, f in enumerate(result.downstream) if isinstance(f, TTSStartedFrame)]
    assert len(starts) == 2
    split = sum(1 for f in result.downstream[: starts[1]] if isinstance(f, TTSAudioFrame))
    slow, fast = len(pcm_of(audio[:split])), len(pcm_of(audio[split:]))
    assert fast < slow * 0.7


async def test_an_unknown_voice_fails_at_start_with_a_clear_error() -> None:
    task = PipelineTask(EspeakTTS(voice="no-such-voice"))
    await asyncio.wait_for(task.run(), ENGINE_TIMEOUT)
    assert len(task.errors) == 1 and task.errors[0].fatal
    assert "no voice named 'no-such-voice'" in task.errors[0].message


async def test_a_bad_voice_setting_is_reported_and_the_old_voice_kept() -> None:
    result = await run_processor(
        EspeakTTS(), [SettingsFrame(settings={"voice": "klingon-xx"}), *reply("Still talking.")], timeout=ENGINE_TIMEOUT
    )
    assert [e.message for e in result.errors] == ["espeak-ng has no voice named 'klingon-xx'"]
    assert not result.errors[0].fatal
    assert result.downstream_of(TTSAudioFrame)


async def test_no_old_epoch_audio_after_an_interrupt() -> None:
    long = " ".join(["This is a long sentence that keeps the synthesiser busy for a while."] * 6)
    result = await barge_in_on_first_audio(
        EspeakTTS(), [LLMResponseStartFrame(), SpeakTextFrame(text=long)], [], timeout=ENGINE_TIMEOUT
    )
    seen = result.downstream
    cut = next(i for i, f in enumerate(seen) if isinstance(f, InterruptFrame))
    assert any(isinstance(f, TTSAudioFrame) for f in seen[:cut])
    assert [f for f in seen[cut:] if isinstance(f, TTSAudioFrame)] == []
    assert any(isinstance(f, TTSStoppedFrame) for f in seen[cut:])
    # The synthesis was cut short: far less than the ~22 s of the whole text went out.
    assert len(pcm_of([f for f in seen if isinstance(f, TTSAudioFrame)])) / 48000 < 10


async def test_concurrent_sessions_share_espeak_without_mixing_audio() -> None:
    """espeak-ng has one global callback: sessions take turns on its thread, and each gets its own audio."""
    texts = ["The first session says this sentence.", "And the second one says something else entirely."]
    solo = [
        pcm_of((await run_processor(EspeakTTS(), reply(t), timeout=ENGINE_TIMEOUT)).downstream_of(TTSAudioFrame))
        for t in texts
    ]
    together = await asyncio.gather(*(run_processor(EspeakTTS(), reply(t, t), timeout=ENGINE_TIMEOUT) for t in texts))
    for alone, result in zip(solo, together, strict=True):
        # espeak-ng varies a few samples between calls, so compare lengths: mixed-up blocks would be way off.
        both = len(pcm_of(result.downstream_of(TTSAudioFrame)))
        assert abs(both - 2 * len(alone)) < 0.01 * len(alone)
    assert abs(len(solo[0]) - len(solo[1])) > 0.1 * len(solo[0])  # the two texts really differ in length


async def test_espeak_reports_where_each_word_starts() -> None:
    from voxline.processors.local import EspeakTTS

    tts = EspeakTTS()
    await tts.on_start()
    text = "It will be sunny all day, with a light breeze."
    audio = b"".join([chunk async for chunk in tts.synthesize(text)])
    words = tts._words
    assert words is not None
    expected = ["It", "will", "be", "sunny", "all", "day", "with", "a", "light", "breeze"]
    assert [text[a:b] for _, a, b in words] == expected
    starts = [t for t, _, _ in words]
    assert starts == sorted(starts) and starts[0] == 0.0
    assert starts[-1] < len(audio) / 2 / 24000 < starts[-1] + 1.0  # the last word starts before the audio ends
