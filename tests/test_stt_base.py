"""STTProcessor: the base every speech-to-text stage shares (turns, speaking frames, stt.latency, finalize)."""

from __future__ import annotations

import asyncio

import pytest
from voxline.frames import (
    AudioFrame,
    EndFrame,
    Frame,
    StartFrame,
    TextFrame,
    TranscriptFrame,
    TTSAudioFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    UserTextFrame,
    Word,
)
from voxline.stt import STTProcessor
from voxline.testing import Sleep, run_processor, started, until

Action = tuple[str, ...]


class ScriptedSTT(STTProcessor):
    """An engine that "recognises" a script: each entry runs once the stage has received that much audio."""

    def __init__(self, script: list[tuple[float, Action]], last_words: str = "", **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.script = list(script)
        self.last_words = last_words
        self.audio: list[AudioFrame] = []
        self.ended_stream = False

    async def on_audio(self, frame: AudioFrame) -> None:
        self.audio.append(frame)
        while self.script and self.script[0][0] <= self.clock.seconds + 1e-9:
            _, action = self.script.pop(0)
            await self.run(action)

    async def run(self, action: Action) -> None:
        kind, *args = action
        if kind == "interim":
            await self.push_transcript(args[0], is_final=False)
        elif kind == "final":
            text, start, end = args[0], float(args[1]), float(args[2])
            await self.push_transcript(text, is_final=True, words=[Word(text, start, end)], end=end)
        elif kind == "speech":
            await self.user_started_speaking()
        elif kind == "end":
            await self.end_turn()

    async def on_finalize(self) -> bool:
        await self.run(("final", "finalised", "0", str(self.clock.seconds)))
        await self.end_turn()
        return True

    async def on_end_of_stream(self) -> None:
        await asyncio.sleep(0.05)  # the engine's last results take a moment
        self.ended_stream = True
        if self.last_words:
            await self.run(("final", self.last_words, "0.9", "1.0"))
            await self.end_turn()


def audio(seconds: float, *, rate: int = 16000) -> list[Frame | Sleep]:
    step = int(0.02 * rate)
    return [AudioFrame(pcm=b"\x01\x00" * step, sample_rate=rate) for _ in range(round(seconds / 0.02))]


async def test_final_pieces_become_one_turn_after_its_transcripts() -> None:
    script: list[tuple[float, Action]] = [
        (0.1, ("interim", "so")),
        (0.3, ("final", "So first,", "0.1", "0.3")),
        (0.5, ("interim", "then")),
        (0.7, ("final", "then this.", "0.5", "0.68")),
        (0.8, ("end",)),
    ]
    stt = ScriptedSTT(script)
    result = await run_processor(stt, audio(1.0))
    kinds = [type(f).__name__ for f in result.downstream if not isinstance(f, (StartFrame, EndFrame))]
    assert kinds == ["TranscriptFrame"] * 4 + ["MetricsFrame", "UserTextFrame"]
    assert [f.text for f in result.downstream_of(UserTextFrame)] == ["So first, then this."]
    finals = [t for t in result.downstream_of(TranscriptFrame) if t.is_final]
    assert [f.text for f in finals] == ["So first,", "then this."]
    assert [m.name for m in result.metrics] == ["stt.latency"]
    assert len(stt.audio) == 50 and stt.clock.seconds == pytest.approx(1.0)
    assert not [f for f in result.downstream if type(f) is AudioFrame]  # consumed, not forwarded


async def test_stt_latency_counts_from_when_the_end_of_speech_arrived() -> None:
    # The end of speech (0.4 s of audio) arrives, then 0.3 s pass before the engine's final comes.
    script: list[tuple[float, Action]] = [(0.6, ("final", "Wait for it.", "0.1", "0.4")), (0.6, ("end",))]
    stt = ScriptedSTT(script)
    result = await run_processor(stt, [*audio(0.4), Sleep(0.3), *audio(0.2)])
    (latency,) = [m.value for m in result.metrics if m.name == "stt.latency"]
    assert 0.29 <= latency < 5  # from the arrival of the audio at 0.4 s, not from the final's audio time


async def test_speaking_frames_and_a_noise_that_ends_without_words() -> None:
    script: list[tuple[float, Action]] = [
        (0.1, ("speech",)),
        (0.3, ("end",)),  # a noise: speech started, no words
        (0.5, ("final", "Hello.", "0.4", "0.5")),  # words start a turn by themselves
        (0.6, ("end",)),
    ]
    result = await run_processor(ScriptedSTT(script, speaking_frames=True), audio(0.8))
    events = [
        type(f).__name__
        for f in result.downstream
        if isinstance(f, (UserStartedSpeakingFrame, UserStoppedSpeakingFrame, UserTextFrame))
    ]
    assert events == ["UserStartedSpeakingFrame", "UserStoppedSpeakingFrame"] * 2 + ["UserTextFrame"]
    stops = result.downstream_of(UserStoppedSpeakingFrame)
    assert stops[1].audio_time == pytest.approx(0.5)  # the end of the last final word
    # Off by default: a VAD in front of the stage owns the speaking frames.
    quiet = await run_processor(ScriptedSTT(script), audio(0.8))
    assert not quiet.downstream_of(UserStartedSpeakingFrame) and len(quiet.downstream_of(UserTextFrame)) == 1


async def test_finalize_ends_the_utterance_now_and_the_default_cannot() -> None:
    stt = ScriptedSTT([])

    async def turn_detector() -> None:
        await until(lambda: stt.clock.seconds >= 0.3)
        assert await stt.finalize() is True

    helper = asyncio.create_task(turn_detector())
    result = await run_processor(stt, [*audio(0.3), Sleep(0.1)])
    await helper
    assert [f.text for f in result.downstream_of(UserTextFrame)][:1] == ["finalised"]

    class Silent(STTProcessor):
        async def on_audio(self, frame: AudioFrame) -> None:
            pass

    assert await Silent().finalize() is False


async def test_end_of_stream_waits_for_the_engines_last_words() -> None:
    stt = ScriptedSTT([], last_words="last words")
    result = await run_processor(stt, audio(1.0))
    assert stt.ended_stream
    assert [f.text for f in result.downstream_of(UserTextFrame)] == ["last words"]
    assert isinstance(result.downstream[-1], EndFrame)  # after the turn, not before


async def test_other_audio_and_empty_frames() -> None:
    stt = ScriptedSTT([])
    bot = TTSAudioFrame(pcm=b"\x00\x00" * 240, sample_rate=24000)
    result = await run_processor(
        stt, [AudioFrame(pcm=b"", sample_rate=16000), bot, TextFrame(text="passes"), *audio(0.04)]
    )
    assert len(stt.audio) == 2  # the empty frame never reaches the engine
    assert bot in result.downstream and result.text().startswith("passes")


async def test_the_clock_runs_at_the_pipelines_input_rate() -> None:
    stt = ScriptedSTT([])
    async with started(stt, start_frame=StartFrame(audio_in_sample_rate=8000)) as run:
        await run.step(*audio(0.2, rate=8000))
        await run.end(timeout=5)
    assert stt.sample_rate == 8000 and stt.clock.sample_rate == 8000
    assert stt.clock.seconds == pytest.approx(0.2)
    # Frames at another rate are counted in seconds.
    other = ScriptedSTT([])
    await run_processor(other, audio(0.2, rate=48000))
    assert other.clock.seconds == pytest.approx(0.2)
