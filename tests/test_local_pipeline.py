"""The offline agent end to end on real audio: VAD + pocketsphinx -> echo LLM -> sentence aggregator -> espeak.

Nothing here is faked: flite speech goes in as 20 ms AudioFrames, synthesised 24 kHz audio comes out.
"""

from __future__ import annotations

import asyncio

import pytest
from audio.speech import ENGINE_TIMEOUT, Speech, frames, local, paced, silence, speech
from voxline.aggregation import SentenceAggregator
from voxline.frames import (
    EndFrame,
    Frame,
    InterruptFrame,
    LLMResponseEndFrame,
    LLMResponseStartFrame,
    TextFrame,
    TranscriptFrame,
    TTSAudioFrame,
    UserTextFrame,
)
from voxline.pipeline import Pipeline
from voxline.processor import Processor
from voxline.processors.local import EchoLLM, EspeakTTS, PocketsphinxSTT
from voxline.processors.local.echo import FIRST_NOTE, LATER_NOTE
from voxline.processors.local.stt import local_stt
from voxline.processors.vad import SileroVAD
from voxline.task import PipelineTask
from voxline.testing import Sleep, run_processor

pytestmark = local
__all__ = ["speech"]


async def test_echo_streams_what_it_heard_and_says_it_is_a_demo() -> None:
    result = await run_processor(
        EchoLLM(word_delay=0.001),
        [UserTextFrame(text="hello world"), Sleep(0.3), UserTextFrame(text="what time is it?")],
        timeout=ENGINE_TIMEOUT,
    )
    assert result.errors == []
    texts = result.downstream_of(TextFrame)
    assert len(texts) > 5  # word by word, not one lump
    first = "".join(t.text for t in texts if t.epoch == 0).split("You said:")
    assert first == ["", f" hello world. {FIRST_NOTE}", f" what time is it. {LATER_NOTE}"]
    assert len(result.downstream_of(LLMResponseEndFrame)) == 2


async def test_spoken_question_gets_a_spoken_echo(speech: Speech) -> None:
    pipeline = Pipeline([local_stt(), EchoLLM(), SentenceAggregator(), EspeakTTS()])
    result = await run_processor(
        pipeline, paced(frames(speech.pcm("What is the capital of France?"))), timeout=ENGINE_TIMEOUT
    )
    assert result.errors == []
    (turn,) = [t for t in result.downstream_of(TranscriptFrame) if t.is_final]  # the LLM consumed the UserText
    assert "capital" in turn.text
    reply = "".join(t.text for t in result.downstream_of(TextFrame))
    assert reply.startswith(f"You said: {turn.text}.") and FIRST_NOTE in reply
    audio = result.downstream_of(TTSAudioFrame)
    assert sum(len(f.pcm) for f in audio) / 48000 > 2.0
    names = [type(f).__name__ for f in result.downstream]
    assert names.index("LLMResponseStartFrame") < names.index("TTSAudioFrame")
    assert names.index("TTSStoppedFrame") < names.index("LLMResponseEndFrame")  # the end waits for the audio


@pytest.mark.parametrize("engines", ["pocketsphinx+espeak", "whisper+piper"])
async def test_barge_in_by_voice_cuts_the_echo_reply(speech: Speech, engines: str) -> None:
    """The user speaks again while the bot answers: the VAD interrupts, no old audio follows, the new turn is
    answered."""
    stt, tts = _better_engines() if engines == "whisper+piper" else [PocketsphinxSTT(), EspeakTTS()]
    pipeline = Pipeline(
        [
            SileroVAD(barge_in="always"),
            stt,
            EchoLLM(word_delay=0.15),  # a slow reply, so it is still streaming when the user barges in
            SentenceAggregator(),
            tts,
        ]
    )
    task = PipelineTask(pipeline)
    seen: list[Frame] = []
    bot_talking = asyncio.Event()

    def on_frame(frame: Frame) -> None:
        seen.append(frame)
        if isinstance(frame, TTSAudioFrame):
            bot_talking.set()

    task.on_downstream(on_frame)

    async def user() -> None:
        await task.wait_until_running()
        for item in paced(frames(speech.pcm("What is the capital of France?", after=0.6)), speed=8):
            await (asyncio.sleep(item.seconds) if isinstance(item, Sleep) else task.queue_frame(item))
        await asyncio.wait_for(bot_talking.wait(), ENGINE_TIMEOUT)
        for item in paced(frames(speech.pcm("What time is it?", before=0.2, after=0.6)), speed=8):
            await (asyncio.sleep(item.seconds) if isinstance(item, Sleep) else task.queue_frame(item))
        while not [f for f in seen if isinstance(f, LLMResponseEndFrame) and not f.interrupted]:
            await task.queue_frame(frames(silence(0.1))[0])
            await asyncio.sleep(0.05)
        await task.queue_frame(EndFrame())

    await asyncio.wait_for(asyncio.gather(task.run(), user()), ENGINE_TIMEOUT)
    assert task.errors == []
    interrupts = [i for i, f in enumerate(seen) if isinstance(f, InterruptFrame)]
    assert len(interrupts) == 2  # one per utterance start
    cut = interrupts[1]
    barge_epoch = seen[cut].epoch  # type: ignore[attr-defined]
    old = [f for f in seen[cut:] if isinstance(f, (TTSAudioFrame, TextFrame)) and f.epoch < barge_epoch]
    assert old == []  # nothing of the interrupted reply after the interrupt
    ends = [f for f in seen if isinstance(f, LLMResponseEndFrame)]
    assert [e.interrupted for e in ends] == [True, False]
    first_reply = "".join(f.text for f in seen[:cut] if isinstance(f, TextFrame))
    assert first_reply.startswith("You said:") and FIRST_NOTE not in first_reply  # cut before the end
    starts = [f for f in seen if isinstance(f, LLMResponseStartFrame)]
    assert starts[-1].epoch == barge_epoch
    turns = [f.text for f in seen if isinstance(f, TranscriptFrame) and f.is_final]
    assert len(turns) == 2 and "time" in turns[1]
    second_reply = "".join(f.text for f in seen[cut:] if isinstance(f, TextFrame))
    assert second_reply.startswith(f"You said: {turns[1].rstrip('?.!')}.")
    assert any(isinstance(f, TTSAudioFrame) and f.epoch == barge_epoch for f in seen[cut:])


# --- the better engines: whisper and piper ----------------------------------------------------------------------


def _better_engines() -> list[Processor]:
    from voxline.processors.local import best_local_stt, best_local_tts
    from voxline.processors.local.choose import missing_packages

    missing = missing_packages("whisper") + missing_packages("piper")
    if missing:
        pytest.skip(f"whisper/piper not installed ({', '.join(missing)}): voxline[local]")
    return [best_local_stt(), best_local_tts()]


async def test_whisper_and_piper_answer_a_spoken_question(speech: Speech) -> None:
    stt, tts = _better_engines()
    pipeline = Pipeline([SileroVAD(), stt, EchoLLM(), SentenceAggregator(), tts])
    result = await run_processor(
        pipeline, paced(frames(speech.pcm("What is the capital of France?"))), timeout=ENGINE_TIMEOUT
    )
    assert result.errors == []
    (turn,) = [t for t in result.downstream_of(TranscriptFrame) if t.is_final]
    assert turn.text == "What is the capital of France?"  # whisper's final, case and punctuation included
    reply = "".join(t.text for t in result.downstream_of(TextFrame))
    assert reply.startswith("You said: What is the capital of France.") and FIRST_NOTE in reply
    audio = result.downstream_of(TTSAudioFrame)
    assert {f.sample_rate for f in audio} == {24000} and sum(len(f.pcm) for f in audio) / 48000 > 3.0
    names = [type(f).__name__ for f in result.downstream]
    assert names.index("TTSStoppedFrame") < names.index("LLMResponseEndFrame")  # the end waits for the audio
