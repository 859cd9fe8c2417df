"""pocketsphinx behind the Silero VAD, on real (flite) speech: interims, finals, turns, interrupts, grammar."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from audio.speech import ENGINE_TIMEOUT, Speech, frames, kinds, local, paced, silence, speech
from voxline.frames import (
    EndFrame,
    MetricsFrame,
    TranscriptFrame,
    UserStoppedSpeakingFrame,
    UserTextFrame,
)
from voxline.processors.local.stt import PocketsphinxSTT, decoder_pool, local_stt
from voxline.task import PipelineTask
from voxline.testing import Interrupt, Sleep, run_processor

pytestmark = local
__all__ = ["speech"]


@pytest.mark.parametrize("second_pass", [True, False])
async def test_streams_interims_then_a_final_and_the_user_turn(speech: Speech, second_pass: bool) -> None:
    pcm = speech.pcm("What is the capital of France?")
    stt = PocketsphinxSTT(second_pass=second_pass)
    result = await run_processor(local_stt(stt=stt), paced(frames(pcm)), timeout=ENGINE_TIMEOUT)
    assert result.errors == []
    seq = kinds(result.downstream)
    # Interims come between the start and the final; the VAD's end of speech may overtake interims of audio
    # still being decoded (on a busy machine), but never the final.
    assert seq.startswith("SI") and seq.endswith("FU") and seq.index("E") < seq.index("F"), seq
    assert seq.count("I") >= 2  # the hypothesis grew while the user spoke
    final = result.downstream_of(TranscriptFrame)[-1]
    assert final.is_final and final.speech_final
    assert "capital" in final.text and "france" in final.text
    assert [u.text for u in result.downstream_of(UserTextFrame)] == [final.text]
    # Word timings on the input's audio clock: inside the speech, in order, one per word of the text.
    assert [w.text for w in final.words] == final.text.split()
    stop = result.downstream_of(UserStoppedSpeakingFrame)[0].audio_time
    assert stop is not None and 0.8 < final.words[0].start < final.words[-1].end < stop + 0.3
    assert all(a.end <= b.start + 1e-9 for a, b in itertools.pairwise(final.words))
    assert all(w.confidence is not None and 0 <= w.confidence <= 1 for w in final.words)
    (latency,) = [m.value for m in result.metrics if m.name == "stt.latency"]
    (finalize,) = [m.value for m in result.metrics if m.name == "stt.finalize"]
    assert 0 <= finalize < latency  # no speed bound here: speed lives in tests/bench/bench_local.py
    # stt.latency counts from when the end of speech arrived, so it also covers the VAD's 0.5 s of silence
    # (fed here at 4x real time: 0.125 s of wall time).
    assert latency - finalize > 0.08
    # The input audio is consumed, not forwarded.
    assert not [f for f in result.downstream if type(f).__name__ == "AudioFrame"]


async def test_each_turn_gets_its_own_final(speech: Speech) -> None:
    first = speech.pcm("Turn on the kitchen lights.")
    second = speech.pcm("What time is it?", before=0.5)
    result = await run_processor(local_stt(), paced(frames(first + second), speed=8), timeout=ENGINE_TIMEOUT)
    turns = [u.text for u in result.downstream_of(UserTextFrame)]
    assert len(turns) == 2, turns
    assert "kitchen" in turns[0] and "lights" in turns[0]
    assert "time" in turns[1]
    assert "kitchen" not in turns[1]  # the decoder starts each utterance afresh


async def test_end_of_stream_mid_utterance_still_gives_the_final(speech: Speech) -> None:
    pcm = speech.pcm("What is the capital of France?", after=0.0)
    result = await run_processor(local_stt(), frames(pcm), timeout=ENGINE_TIMEOUT)
    assert kinds(result.downstream).endswith("FU")
    assert "capital" in result.downstream_of(UserTextFrame)[0].text
    # ... and before the end frame, so nothing is lost when the pipeline stops.
    assert isinstance(result.downstream[-1], EndFrame)


async def test_an_interrupt_does_not_break_the_utterance_in_progress(speech: Speech) -> None:
    sent = frames(speech.pcm("What is the capital of France?"))
    middle = len(sent) // 2
    items = [*paced(sent[:middle], speed=8), Interrupt("barge-in"), Sleep(0.05), *paced(sent[middle:], speed=8)]
    result = await run_processor(local_stt(), items, timeout=ENGINE_TIMEOUT)
    assert result.task.epoch == 1
    (turn,) = result.downstream_of(UserTextFrame)
    assert "capital" in turn.text and "france" in turn.text
    assert turn.epoch == 1  # the user's words belong to the new turn, so they reach its LLM


async def test_a_grammar_limits_recognition_to_its_phrases(speech: Speech) -> None:
    grammar = "#JSGF V1.0; grammar cmd; public <cmd> = (turn on | turn off) the (kitchen | bedroom) lights;"
    pcm = speech.pcm("Turn off the bedroom lights.")
    stt = PocketsphinxSTT(grammar=grammar, interim_results=False)
    result = await run_processor(local_stt(stt=stt), frames(pcm), timeout=ENGINE_TIMEOUT)
    assert [u.text for u in result.downstream_of(UserTextFrame)] == ["turn off the bedroom lights"]
    assert [t.is_final for t in result.downstream_of(TranscriptFrame)] == [True]


async def test_silence_gives_no_turn_and_decoders_are_reused(speech: Speech) -> None:
    await run_processor(local_stt(), frames(silence(0.5)), timeout=ENGINE_TIMEOUT)
    idle = decoder_pool().idle
    assert idle >= 1  # the finished session's decoder went back to the pool
    result = await run_processor(local_stt(), frames(silence(1.0)), timeout=ENGINE_TIMEOUT)
    assert kinds(result.downstream) == ""
    assert not [m for m in result.downstream_of(MetricsFrame) if m.name.startswith("stt.")]
    assert decoder_pool().idle == idle


async def test_preload_parks_warm_models_for_the_first_session() -> None:
    from voxline.processor import EpochClock
    from voxline.processors.local import preload
    from voxline.processors.vad import SILERO_MODELS

    await preload()
    assert decoder_pool().idle >= 1 and SILERO_MODELS.idle >= 1
    before = decoder_pool().idle
    stt = PocketsphinxSTT()
    await stt._start(EpochClock(), ())  # on_start takes the parked decoder instead of loading one
    assert decoder_pool().idle == before - 1
    await stt._stop()  # cancels its decoding pump, then on_stop returns the decoder
    assert decoder_pool().idle == before


async def test_decoder_options_reach_pocketsphinx(speech: Speech) -> None:
    stt = PocketsphinxSTT(decoder_options={"maxhmmpf": 3000})
    result = await run_processor(
        local_stt(stt=stt), frames(speech.pcm("Turn on the kitchen lights.")), timeout=ENGINE_TIMEOUT
    )
    (turn,) = result.downstream_of(UserTextFrame)
    assert "kitchen" in turn.text
    assert decoder_pool(None, (("maxhmmpf", 3000),)).idle >= 1  # a pool of its own: it is a different decoder

    task = PipelineTask(PocketsphinxSTT(decoder_options={"no_such_option": 1}))
    await asyncio.wait_for(task.run(), ENGINE_TIMEOUT)
    assert len(task.errors) == 1 and task.errors[0].fatal
    assert "no decoder option 'no_such_option'" in task.errors[0].message


async def test_8khz_input_is_resampled_for_the_decoder(speech: Speech) -> None:
    """flite's kal voice speaks at 8 kHz, as a telephone line would. The resampler to 16 kHz holds back its first
    samples (an empty chunk), which pocketsphinx used to refuse with an IndexError on every batch."""
    pcm = speech.pcm("Turn on the kitchen lights.", voice="kal", rate=8000)
    result = await run_processor(local_stt(), frames(pcm, rate=8000), timeout=ENGINE_TIMEOUT)
    assert result.errors == []
    assert len(result.downstream_of(UserTextFrame)) == 1
