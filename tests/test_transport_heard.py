"""The output's half of "what did the user hear": on an interrupt that cuts a reply being spoken, it reports
upstream how many seconds of that reply's audio its playback clock says had played."""

from __future__ import annotations

from transport_helpers import MemorySocket
from voxline.frames import (
    BotHeardTextFrame,
    Frame,
    LLMResponseEndFrame,
    LLMResponseStartFrame,
    TTSAudioFrame,
    TTSStartedFrame,
)
from voxline.testing import Interrupt, Sleep, run_processor
from voxline.transports import WebSocketTransport

ONE_SECOND = b"\x01\x00" * 24000


async def heard(steps: list[Frame | Sleep | Interrupt]) -> list[BotHeardTextFrame]:
    transport = WebSocketTransport(MemorySocket())
    transport.writer.start()
    try:
        result = await run_processor(transport.output(), steps)
    finally:
        await transport.aclose()
    return result.upstream_of(BotHeardTextFrame)


async def test_an_interrupt_mid_playback_reports_the_seconds_played() -> None:
    steps: list[Frame | Sleep | Interrupt] = [
        LLMResponseStartFrame(epoch=0),
        TTSStartedFrame(epoch=0),
        TTSAudioFrame(pcm=ONE_SECOND, epoch=0),
        TTSAudioFrame(pcm=ONE_SECOND, epoch=0),  # sent at once: 2 s queued for playback at the client
        Sleep(0.3),
        Interrupt(),
    ]
    (report,) = await heard(steps)
    assert report.epoch == 0 and report.text is None
    assert 0.25 <= report.played_seconds < 1.5, report  # about the 0.3 s since the audio left, not all 2 s


async def test_an_interrupt_before_any_audio_reports_nothing_played() -> None:
    steps: list[Frame | Sleep | Interrupt] = [LLMResponseStartFrame(epoch=0), TTSStartedFrame(epoch=0), Sleep(0.05)]
    (report,) = await heard([*steps, Interrupt()])
    assert report.epoch == 0 and report.played_seconds == 0.0


async def test_no_report_when_no_reply_is_being_spoken() -> None:
    # Text only (no TTS in the pipeline): nothing to say about what was heard.
    assert await heard([LLMResponseStartFrame(epoch=0), Sleep(0.02), Interrupt()]) == []
    # A reply that ended and has played out: the user heard all of it; its record stands.
    short = TTSAudioFrame(pcm=b"\x01\x00" * 240, epoch=0)  # 10 ms
    steps: list[Frame | Sleep | Interrupt] = [LLMResponseStartFrame(epoch=0), TTSStartedFrame(epoch=0), short]
    assert await heard([*steps, LLMResponseEndFrame(epoch=0), Sleep(0.1), Interrupt()]) == []
