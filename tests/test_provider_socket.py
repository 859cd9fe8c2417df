"""ProviderSocket: what every provider WebSocket gets from it, checked on the Deepgram stages against FakeDeepgram.

Reconnect, replay, keepalive and the slow retry after a refused key are covered per stage in
test_deepgram_stt.py / test_deepgram_tts.py; this file covers the socket's own rules: a session dropped while
messages are still arriving leaves nothing behind, and failures are worded without secrets.
"""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest
from voxline.frames import AudioFrame, Frame, SpeakTextFrame, TranscriptFrame, TTSAudioFrame
from voxline.pipeline import Pipeline
from voxline.processor import Direction, Processor
from voxline.processors.deepgram import DeepgramSTT, DeepgramTTS
from voxline.providers.clients import shared_clients
from voxline.providers.socket import close_reason, describe_failure, http_status
from voxline.testing import started, until
from voxline.testing.fakes.deepgram import FakeDeepgram
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.frames import Close
from websockets.http11 import Response

pytestmark = pytest.mark.filterwarnings("ignore:websockets.exceptions.InvalidStatusCode is deprecated")

KEY = "test-key"
LONG = "This sentence is long enough that the fake is still streaming its audio when the client goes away. " * 3


class StuckOutput(Processor):
    """The output of a session whose client has gone: pushing what ``blocks`` waits for ever (a writer on a dead
    socket), so the provider's messages pile up unread in the SDK's queue."""

    def __init__(self, blocks: type[Frame]) -> None:
        super().__init__()
        self.blocks = blocks
        self.stuck = asyncio.Event()

    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, self.blocks):
            self.stuck.set()
            await asyncio.Event().wait()
        await self.push(frame, direction)


def voiced(seconds: float) -> bytes:
    import numpy as np

    t = np.arange(int(seconds * 16000)) / 16000
    return (np.sin(2 * np.pi * 220 * t) * 5000).astype("<i2").tobytes()


async def drop_session(stage: Processor, blocks: type[Frame], frames: list[Frame]) -> None:
    """One session: ``frames`` make the provider stream, the output gets stuck on ``blocks`` (the client went away
    mid-stream), and the session is cancelled while the provider's messages pile up unread."""
    out = StuckOutput(blocks)
    async with started(Pipeline([stage, out])) as run:
        await run.queue(*frames)
        await asyncio.wait_for(out.stuck.wait(), 5)
        await asyncio.sleep(0.1)  # the fake keeps sending into the SDK's queue, which nobody reads
        await run.cancel("client gone")


async def drop_mid_reply(fake: FakeDeepgram) -> None:
    """A reply streams and the client goes away mid-reply."""
    await drop_session(DeepgramTTS(api_key=KEY, base_url=fake.base_url), TTSAudioFrame, [SpeakTextFrame(text=LONG)])


async def drop_mid_speech(fake: FakeDeepgram) -> None:
    """The user speaks and the client goes away while transcripts come back."""
    pcm = voiced(1.5)
    frames: list[Frame] = [AudioFrame(pcm=pcm[i : i + 640], sample_rate=16000) for i in range(0, len(pcm), 640)]
    await drop_session(DeepgramSTT(api_key=KEY, base_url=fake.base_url), TranscriptFrame, frames)


def alive(kind: str) -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o).__name__ == kind)


@pytest.mark.parametrize("session", [drop_mid_reply, drop_mid_speech])
async def test_sessions_dropped_mid_stream_leave_no_task_pipeline_or_client(
    session: object, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 9: the SDK's polite close waited (ignoring cancellation) behind unread messages; 100 dropped sessions
    left PipelineTasks, Deepgram clients and ~20 tasks alive. The socket now reads while the SDK closes."""
    assert callable(session)
    fast = {"tts_chunk_bytes": 960, "tts_chunk_interval": 0.002, "stt_interim_interval": 0.02}
    async with FakeDeepgram(tts_seconds_per_char=0.02, **fast) as fake:  # type: ignore[arg-type]
        await session(fake)  # the first session builds the process's shared client
        baseline = len(asyncio.all_tasks())
        for _ in range(8):
            await session(fake)
        await asyncio.sleep(0.2)
        assert len(asyncio.all_tasks()) == baseline
        assert alive("PipelineTask") == 0
        assert alive("AsyncDeepgramClient") == 1 == len(shared_clients())  # the shared one, not one per session
        assert all(c.closed.is_set() and c.closed_by_client for c in fake.connections)
    assert "ignored cancellation" not in caplog.text


def test_failures_are_worded_from_codes_never_from_the_exception_text() -> None:
    secret = "sk-secret-in-the-sdk-text"
    refused = InvalidStatus(Response(401, "Unauthorized", {}, f"Token {secret}".encode()))
    assert http_status(refused) == 401
    message = describe_failure("Deepgram STT", refused, provider="Deepgram", key_setting="DEEPGRAM_API_KEY")
    assert message == "Deepgram STT: Deepgram rejected the API key (HTTP 401); check DEEPGRAM_API_KEY"
    closed = ConnectionClosedError(Close(1011, "NET-0001"), None)
    assert close_reason(closed) == "1011 NET-0001"
    assert describe_failure("lost", closed) == "lost: connection closed (1011 NET-0001)"
    assert describe_failure("lost", ConnectionClosedError(None, None)) == "lost: connection lost (1006)"
    assert describe_failure("x", RuntimeError(secret)) == "x: RuntimeError"


async def test_the_stage_logs_why_each_connection_ended(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with FakeDeepgram(idle_timeout=0.2) as fake:
        stt = DeepgramSTT(api_key=KEY, base_url=fake.base_url, keepalive_interval=5.0)
        async with started(stt) as run:
            await run.queue(AudioFrame(pcm=b"\x00\x00" * 1600, sample_rate=16000))
            await until(lambda: stt.connections >= 2)
            await run.cancel()
    assert stt.socket.last_close is not None
    assert "connection closed (1011 NET-0001)" in caplog.text
