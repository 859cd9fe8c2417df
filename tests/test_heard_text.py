"""What the user heard of a reply they cut off: the output's playback estimate → the TTS stage's text timeline →
the LLM stage's context. Each hop on its own here; the whole chain through the app in test_app_providers.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from test_llm_base import Script, ScriptedLLM
from voxline.context import Turn
from voxline.frames import (
    BotHeardTextFrame,
    BotStartedSpeakingFrame,
    Frame,
    InterruptFrame,
    SpeakTextFrame,
    TextFrame,
    TTSAudioFrame,
    UserTextFrame,
)
from voxline.pipeline import Pipeline
from voxline.processor import UPSTREAM, Direction, Processor
from voxline.task import PipelineTask
from voxline.testing import drive, replies_ended, texts_out
from voxline.tts import TTSProcessor
from voxline.tts_heard import Timeline


class HeardReporter(Processor):
    """Stands in for the output: the bot "speaks" from the first text on; on an interrupt it reports ``heard``
    for the epoch the interrupt ended (text already filled in, as the TTS stage would pass it on)."""

    def __init__(self, heard: str) -> None:
        super().__init__()
        self.heard = heard

    async def process(self, frame: Frame, direction: Direction) -> None:
        await self.push(frame, direction)
        if isinstance(frame, TextFrame):
            await self.push(BotStartedSpeakingFrame(), UPSTREAM)
        elif isinstance(frame, InterruptFrame) and frame.epoch:
            await self.push(BotHeardTextFrame(epoch=frame.epoch - 1, played_seconds=1.0, text=self.heard), UPSTREAM)


async def test_a_reply_cut_while_generating_keeps_only_what_was_heard() -> None:
    llm = ScriptedLLM([Script(["One two.", " Three four.", " Five"], hang=True), Script(["Next."])])
    steps = [UserTextFrame(text="Hi"), texts_out(3), InterruptFrame(), UserTextFrame(text="Wait"), replies_ended(2)]
    await drive(Pipeline([llm, HeardReporter("One two. ")]), steps)
    assert llm.context.turns[1] == Turn("assistant", "One two.", interrupted=True)
    assert llm.requests[1][-2:] == [{"role": "assistant", "content": "One two."}, {"role": "user", "content": "Wait"}]


async def test_a_generated_reply_cut_while_playing_keeps_only_what_was_heard() -> None:
    llm = ScriptedLLM([Script(["All", " of", " it."]), Script(["Next."])])
    steps = [UserTextFrame(text="Hi"), replies_ended(1), InterruptFrame(), UserTextFrame(text="Wait"), replies_ended(2)]
    await drive(Pipeline([llm, HeardReporter("All of")]), steps)
    assert llm.context.turns[1] == Turn("assistant", "All of", interrupted=True)
    assert llm.turn_text(llm.context.turns[1]) == "All of [interrupted]"


async def test_a_reply_of_which_nothing_was_heard_leaves_the_context() -> None:
    llm = ScriptedLLM([Script(["All of it."]), Script(["Next."])])
    steps = [UserTextFrame(text="Hi"), replies_ended(1), InterruptFrame(), UserTextFrame(text="Wait"), replies_ended(2)]
    await drive(Pipeline([llm, HeardReporter("")]), steps)
    assert llm.context.turns == (Turn("user", "Hi Wait"), Turn("assistant", "Next."))


async def test_a_report_for_another_reply_changes_nothing() -> None:
    llm = ScriptedLLM([Script(["All of it."])])
    steps = [UserTextFrame(text="Hi"), replies_ended(1)]
    await drive(llm, steps)
    await llm.process(BotHeardTextFrame(epoch=7, played_seconds=0.0, text=""), UPSTREAM)  # not its epoch
    await llm.process(BotHeardTextFrame(epoch=0, played_seconds=0.0), UPSTREAM)  # no text: nothing known
    assert llm.context.turns[1] == Turn("assistant", "All of it.")


# --- the TTS stage: which text had played ---------------------------------------------------------------------


class TenMsPerChar(TTSProcessor):
    """Style (a): 10 ms of audio per character, in two chunks (so a piece's audio is more than one frame)."""

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        samples = len(text) * 240
        yield b"\x01\x00" * (samples // 2)
        yield b"\x01\x00" * (samples - samples // 2)


class PlayedReporter(Processor):
    """Stands in for the output: on an interrupt, reports ``played`` seconds of the epoch it ended."""

    def __init__(self, played: float) -> None:
        super().__init__()
        self.played = played

    async def process(self, frame: Frame, direction: Direction) -> None:
        await self.push(frame, direction)
        if isinstance(frame, InterruptFrame) and frame.epoch:
            await self.push(BotHeardTextFrame(epoch=frame.epoch - 1, played_seconds=self.played), UPSTREAM)


async def heard_after(played: float) -> list[BotHeardTextFrame]:
    tts = TenMsPerChar()
    task = PipelineTask(Pipeline([tts, PlayedReporter(played)]), name="test")
    upstream: list[Frame] = []
    samples = [0]
    all_out = asyncio.Event()

    def on_downstream(frame: Frame) -> None:
        if isinstance(frame, TTSAudioFrame):
            samples[0] += frame.num_samples
            if samples[0] >= 31 * 240:
                all_out.set()

    task.on_upstream(upstream.append)
    task.on_downstream(on_downstream)
    runner = asyncio.create_task(task.run())
    await task.wait_until_running()
    for text in ("Hello there. ", "How are you? ", "Fine."):  # 0.13 s, 0.13 s, 0.05 s of audio
        await task.queue_frame(SpeakTextFrame(text=text))
    await asyncio.wait_for(all_out.wait(), 5)
    await task.interrupt("test")
    await task.cancel()
    await runner
    return [f for f in upstream if isinstance(f, BotHeardTextFrame)]


async def test_the_tts_stage_names_the_text_heard_to_the_word() -> None:
    # 10 ms a character: "Hello" is in the air 0-50 ms, its middle at 25 ms.
    assert [f.text for f in await heard_after(0.02)] == [""]
    assert [f.text for f in await heard_after(0.05)] == ["Hello"]
    assert [f.text for f in await heard_after(0.13)] == ["Hello there. "]
    assert [f.text for f in await heard_after(0.18)] == ["Hello there. How"]
    assert [f.text for f in await heard_after(0.27)] == ["Hello there. How are you? "]
    (full,) = await heard_after(0.31)
    assert full.text == "Hello there. How are you? Fine." and full.played_seconds == 0.31 and full.epoch == 0


def test_the_providers_word_timings_place_the_words_when_it_gives_them() -> None:
    timeline = Timeline()
    timeline.pending.append("Well I think so. ")
    timeline.audio(2.0)
    # A long pause after "Well": by characters "I" would be half way through; by the timings it starts at 1.2 s.
    timeline.end("Well I think so. ", words=[(0.0, 0, 4), (1.2, 5, 6), (1.4, 7, 12), (1.8, 13, 16)])
    assert timeline.heard(0.9) == "Well"
    assert timeline.heard(1.31) == "Well I"
    assert timeline.heard(2.0) == "Well I think so. "
    by_chars = Timeline()
    by_chars.pending.append("Well I think so. ")
    by_chars.audio(2.0)
    by_chars.end(None)
    assert by_chars.heard(0.9) == "Well I"


def test_a_piece_whose_audio_is_still_arriving_is_cut_by_a_guess_of_its_length() -> None:
    timeline = Timeline()
    timeline.pending.extend(["One two. ", "Three four five six seven eight. "])
    timeline.audio(0.6)
    timeline.end("One two. ")
    timeline.audio(0.3)  # the second piece's audio so far; its end not known yet
    # 33 characters at the default 65 ms: ~2.1 s long; 0.75 s into it (1.35 s played) is about a third.
    assert timeline.heard(1.35) == "One two. Three four"
    assert timeline.heard(0.6) == "One two. "


def test_a_provider_flush_of_several_pieces_ends_them_together_and_skips_unspoken_ones() -> None:
    timeline = Timeline()
    timeline.pending.extend(["Lost. ", "One. ", "Two. ", "Three."])
    timeline.pushed = 1.0
    timeline.end("One. Two. ")  # "Lost. " never got audio (its request failed)
    timeline.pushed = 1.5
    timeline.end(None)  # no text given: the oldest piece
    assert timeline.ends == [(1.0, "One. Two. "), (1.5, "Three.")]
    assert timeline.heard(1.2) == "One. Two. " and timeline.heard(1.5) == "One. Two. Three."
    assert list(timeline.pending) == []
