"""The turn processor in a pipeline: the engine's decisions become frames, interrupts and STT/model calls.

Real time with short knobs (tens of milliseconds), so each test takes well under a second. A small stage after
the processor plays the bot: on a ``SettingsFrame({"bot": "start"/"stop"})`` it sends the speaking events
upstream, as the output transport does.
"""

from __future__ import annotations

import numpy as np
from voxline.frames import (
    AudioFrame,
    BackchannelFrame,
    BotPlaybackFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    InterruptFrame,
    MetricsFrame,
    SettingsFrame,
    TranscriptFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    UserTextFrame,
    UserTurnEndedFrame,
    UserTurnStartedFrame,
)
from voxline.pipeline import Pipeline
from voxline.processor import UPSTREAM, Direction, Processor
from voxline.testing import Sleep, run_processor
from voxline.turns import EchoDetector, TurnParams, TurnProcessor

FAST = TurnParams(
    vad_start_secs=0.0,
    vad_stop_secs=0.0,
    min_interruption_duration=0.1,
    interrupt_without_words_after=None,
    false_interruption_timeout=0.2,
    min_endpointing_delay=0.05,
    unsure_endpointing_delay=0.15,
    max_endpointing_delay=0.4,
    final_timeout=0.1,
)


class Bot(Processor):
    """Sends Bot{Started,Stopped}SpeakingFrame upstream when told to by a SettingsFrame."""

    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, SettingsFrame) and "bot" in frame.settings:
            start = frame.settings["bot"] == "start"
            await self.push(BotStartedSpeakingFrame() if start else BotStoppedSpeakingFrame(), UPSTREAM)
            return
        await self.push(frame, direction)


class STT(Processor):
    """Stands after the tap, as an STT does: a SettingsFrame({"stt": text}) becomes its UserTextFrame."""

    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, SettingsFrame) and "stt" in frame.settings:
            await self.push(UserTextFrame(text=frame.settings["stt"]), direction)
            return
        await self.push(frame, direction)


def bot(state: str) -> SettingsFrame:
    return SettingsFrame(settings={"bot": state})


def names(frames: list[Frame]) -> list[str]:
    keep = (
        UserTextFrame,
        UserTurnEndedFrame,
        UserTurnStartedFrame,
        InterruptFrame,
        BackchannelFrame,
        BotPlaybackFrame,
    )
    return [type(f).__name__ for f in frames if isinstance(f, keep)]


async def test_stretches_are_held_and_committed_as_one_turn() -> None:
    turns = TurnProcessor(params=FAST)
    result = await run_processor(
        turns,
        [
            UserStartedSpeakingFrame(),
            TranscriptFrame(text="i'd like a"),
            Sleep(0.05),
            UserStoppedSpeakingFrame(),
            TranscriptFrame(text="i'd like a table for", is_final=True),
            UserTextFrame(text="i'd like a table for"),
            Sleep(0.25),  # a pause after "for": shorter than the max delay
            UserStartedSpeakingFrame(),
            Sleep(0.05),
            UserStoppedSpeakingFrame(),
            UserTextFrame(text="four people"),
            Sleep(0.2),
        ],
    )
    assert result.errors == []
    texts = result.downstream_of(UserTextFrame)
    assert [t.text for t in texts] == ["i'd like a table for four people"]
    assert names(result.downstream) == ["UserTurnStartedFrame", "UserTurnEndedFrame", "UserTextFrame"]
    (ended,) = result.downstream_of(UserTurnEndedFrame)
    assert ended.reason == "complete"
    (delay,) = [m for m in result.metrics if m.name == "turn.endpointing_delay"]
    assert 0.04 <= delay.value < 0.15
    # The client sees the whole turn as final text: "four people" came without a final transcript of its own.
    finals = [f.text for f in result.downstream_of(TranscriptFrame) if f.is_final]
    assert finals == ["i'd like a table for", "four people"]


async def test_a_turn_committed_before_its_final_is_shown_as_answered() -> None:
    """The STT's final is late (a slow local model): the turn is committed from its interim, the client is shown
    that text as final, and the late final is not shown (nor answered) a second time."""
    turns = TurnProcessor(params=FAST)
    result = await run_processor(
        turns,
        [
            UserStartedSpeakingFrame(),
            TranscriptFrame(text="what is the capital of france"),
            Sleep(0.05),
            UserStoppedSpeakingFrame(),
            Sleep(0.6),  # past final_timeout and the longest endpointing delay: committed from the interim
            TranscriptFrame(text="What is the capital of France?", is_final=True),
            UserTextFrame(text="What is the capital of France?"),
            Sleep(0.1),
        ],
    )
    assert result.errors == []
    assert [t.text for t in result.downstream_of(UserTextFrame)] == ["what is the capital of france"]
    finals = [f.text for f in result.downstream_of(TranscriptFrame) if f.is_final]
    assert finals == ["what is the capital of france"]


async def test_finals_already_shown_are_not_shown_again() -> None:
    turns = TurnProcessor(params=FAST)
    result = await run_processor(
        turns,
        [
            UserStartedSpeakingFrame(),
            Sleep(0.05),
            UserStoppedSpeakingFrame(),
            TranscriptFrame(text="Hello there.", is_final=True),
            UserTextFrame(text="Hello there."),
            Sleep(0.3),
        ],
    )
    assert [t.text for t in result.downstream_of(UserTextFrame)] == ["Hello there."]
    assert [f.text for f in result.downstream_of(TranscriptFrame) if f.is_final] == ["Hello there."]


async def test_typed_text_passes_untouched() -> None:
    result = await run_processor(TurnProcessor(params=FAST), [UserTextFrame(text="typed")])
    assert [t.text for t in result.downstream_of(UserTextFrame)] == ["typed"]
    assert result.downstream_of(UserTurnEndedFrame) == []


async def test_typed_text_is_told_from_speech_by_the_tap() -> None:
    turns = TurnProcessor(params=FAST)
    speech = [AudioFrame(pcm=b"\x10\x00" * 320) for _ in range(5)]
    result = await run_processor(
        Pipeline([turns.tap, turns]),
        [*speech, UserStartedSpeakingFrame(), UserTextFrame(text="typed while speaking"), Sleep(0.05)],
    )
    assert [t.text for t in result.downstream_of(UserTextFrame)] == ["typed while speaking"]


async def test_barge_in_interrupts_through_the_head_and_the_turn_follows() -> None:
    turns = TurnProcessor(params=FAST)
    result = await run_processor(
        Pipeline([turns, Bot()]),
        [
            bot("start"),
            Sleep(0.02),
            UserStartedSpeakingFrame(),
            TranscriptFrame(text="wait"),
            Sleep(0.15),  # past min_interruption_duration
            UserStoppedSpeakingFrame(),
            UserTextFrame(text="wait stop"),
            Sleep(0.2),
        ],
    )
    assert result.errors == []
    (interrupt,) = result.downstream_of(InterruptFrame)
    assert interrupt.reason == "barge-in"
    assert [t.text for t in result.downstream_of(UserTextFrame)] == ["wait stop"]
    assert result.downstream_of(UserTextFrame)[0].epoch == interrupt.epoch  # the turn belongs to the new epoch
    (latency,) = [m for m in result.metrics if m.name == "turn.barge_in_latency"]
    assert 0.09 <= latency.value < 0.3
    assert turns.counts["BargeIn"] == 1


async def test_a_backchannel_neither_interrupts_nor_becomes_a_turn() -> None:
    result = await run_processor(
        Pipeline([TurnProcessor(params=FAST), Bot()]),
        [
            bot("start"),
            Sleep(0.02),
            UserStartedSpeakingFrame(),
            TranscriptFrame(text="uh huh"),
            Sleep(0.15),
            UserStoppedSpeakingFrame(),
            UserTextFrame(text="uh huh"),
            Sleep(0.3),
        ],
    )
    assert result.downstream_of(InterruptFrame) == [] and result.downstream_of(UserTextFrame) == []
    assert [f.text for f in result.downstream_of(BackchannelFrame)] == ["uh huh"]


async def test_noise_pauses_the_bot_and_then_resumes_it() -> None:
    result = await run_processor(
        Pipeline([TurnProcessor(params=FAST), Bot()]),
        [bot("start"), Sleep(0.02), UserStartedSpeakingFrame(), Sleep(0.15), UserStoppedSpeakingFrame(), Sleep(0.3)],
    )
    playback = result.downstream_of(BotPlaybackFrame)
    assert [p.action for p in playback] == ["pause", "resume"]
    assert result.downstream_of(InterruptFrame) == []


async def test_a_client_interrupt_is_forwarded_and_the_engine_knows_the_bot_stopped() -> None:
    from voxline.testing import Interrupt

    turns = TurnProcessor(params=FAST)
    result = await run_processor(Pipeline([turns, Bot()]), [bot("start"), Sleep(0.02), Interrupt("client")])
    assert [i.reason for i in result.downstream_of(InterruptFrame)] == ["client"]
    assert not turns.engine.bot_speaking


class FakeFinalizer:
    def __init__(self) -> None:
        self.calls = 0

    async def finalize(self) -> bool:
        self.calls += 1
        return True


class FixedModel:
    sample_rate = 16000
    max_seconds = 8.0

    def __init__(self, probability: float) -> None:
        self.probability = probability
        self.lengths: list[int] = []

    async def analyze(self, audio: np.ndarray) -> float:
        self.lengths.append(len(audio))
        return self.probability


async def test_the_stt_is_asked_to_finalise_and_the_model_sees_the_turns_audio() -> None:
    stt, model = FakeFinalizer(), FixedModel(0.01)
    turns = TurnProcessor(params=FAST, stt=stt, model=model)
    speech = [AudioFrame(pcm=b"\x10\x00" * 320) for _ in range(25)]  # 0.5 s through the tap
    result = await run_processor(
        Pipeline([turns.tap, turns]),
        [*speech[:5], UserStartedSpeakingFrame(), *speech[5:], UserStoppedSpeakingFrame(), Sleep(0.5)],
    )
    assert result.errors == []
    assert stt.calls == 1
    assert model.lengths and 0 < model.lengths[0] <= 25 * 320
    (ended,) = result.downstream_of(UserTurnEndedFrame)
    assert ended.reason == "no words"  # the model said "incomplete", but nothing was recognised anyway
    assert any(m.name == "turn.model" for m in result.metrics)


async def test_echo_is_swallowed_whole() -> None:
    echo = EchoDetector()
    turns = TurnProcessor(params=FAST, echo=echo)
    rng = np.random.default_rng(3)
    bot_audio = (rng.standard_normal(16000) * 3000).astype("<i2")
    frames: list[Frame | Sleep] = [bot("start")]

    class Play(Processor):
        """Reports playback to the echo detector as the mic 'hears' it: one contiguous stream, no delay."""

        start: float | None = None
        played = 0.0

        async def process(self, frame: Frame, direction: Direction) -> None:
            if isinstance(frame, AudioFrame):
                if self.start is None:
                    self.start = turns.clock.now() - frame.duration
                echo.played(frame.pcm, 16000, self.start + self.played)
                self.played += frame.duration
            await self.push(frame, direction)

    for i in range(0, 9600, 320):  # 0.6 s in real time (the detector reads the clock)
        frames.append(AudioFrame(pcm=(bot_audio[i : i + 320] // 2).tobytes()))
        if i == 6400:
            frames.append(UserStartedSpeakingFrame())
        frames.append(Sleep(0.02))
    frames += [UserStoppedSpeakingFrame(), SettingsFrame(settings={"stt": "you said hello"}), Sleep(0.3)]
    result = await run_processor(Pipeline([Play(), turns.tap, STT(), turns, Bot()]), frames)
    assert result.errors == []
    kept = (UserStartedSpeakingFrame, UserStoppedSpeakingFrame, UserTextFrame, InterruptFrame, MetricsFrame)
    assert [type(f).__name__ for f in result.downstream if isinstance(f, kept)] == []
    assert echo.checks >= 1 and echo.last_share > 0.9
