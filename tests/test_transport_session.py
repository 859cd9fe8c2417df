"""The WebSocket input/output pair in a real pipeline task, driven over an in-memory socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from transport_helpers import MemorySocket, ScriptedBot
from voxline.frames import Frame, TTSAudioFrame
from voxline.pipeline import Pipeline
from voxline.processor import Direction, Processor
from voxline.task import PipelineTask
from voxline.testing import started
from voxline.transports import TransportParams, WebSocketTransport

PCM = b"\x10\x00" * 1600  # 100 ms at 16 kHz: one turn for the scripted bot


class Session:
    def __init__(self, socket: MemorySocket, transport: WebSocketTransport, task: PipelineTask, bot: Any) -> None:
        self.socket = socket
        self.transport = transport
        self.task = task
        self.bot = bot


async def _session(bot: Processor, **params: Any) -> AsyncIterator[Session]:
    socket = MemorySocket()
    transport = WebSocketTransport(socket, TransportParams(**params))
    transport.send_status("connected")
    try:
        async with started(Pipeline([transport.input(), bot, transport.output()])) as run:
            try:
                yield Session(socket, transport, run.task, bot)
            finally:
                if not socket.closed:
                    socket.disconnect()
                await run.wait_finished(timeout=3)  # the client's going away ends the session by itself
    finally:
        await transport.aclose()


@pytest.fixture
async def session() -> AsyncIterator[Session]:
    async for s in _session(ScriptedBot()):
        yield s


async def test_full_turn_in_seed_order(session: Session) -> None:
    sock = session.socket
    sock.send_audio(PCM)
    await sock.wait_message("status", "complete")
    kinds = [(m["type"], m["data"] if m["type"] == "status" else None) for m in sock.sent]
    assert kinds[0] == ("status", "connected")
    assert sock.of_type("transcript") == [{"text": "turn 1", "is_final": True}]
    assert sock.of_type("text_chunk") == ["chunk 0 ", "chunk 1 ", "chunk 2 "]
    assert len(sock.of_type("audio")) == 3
    order = [k for k, _ in kinds]
    assert order.index("transcript") < kinds.index(("status", "generating")) < order.index("text_chunk")
    assert order.index("audio") < kinds.index(("status", "complete"))
    # metrics come once per turn, before complete, with the stages' figures in ms
    (metrics,) = sock.of_type("metrics")
    assert metrics["turn"] == 1
    assert metrics["stt_ms"] == 150.0
    assert metrics["llm_ttft_ms"] == 400.0
    assert metrics["tts_ttfb_ms"] is None
    assert metrics["voice_to_voice_ms"] is not None and metrics["voice_to_voice_ms"] >= 0
    assert order.index("metrics") < kinds.index(("status", "complete"))
    speaking = sock.of_type("speaking")
    assert {"who": "user", "state": "started"} in speaking
    assert {"who": "bot", "state": "started"} in speaking
    # the bot "stops speaking" when its audio (3 x 20 ms) has played, not when it was sent
    await sock.wait_message("speaking", {"who": "bot", "state": "stopped"}, timeout=1)
    first_audio = sock.times[next(i for i, m in enumerate(sock.sent) if m["type"] == "audio")]
    stopped = sock.times[sock.sent.index({"type": "speaking", "data": {"who": "bot", "state": "stopped"}})]
    assert stopped - first_audio >= 0.06 - 0.005


async def test_interrupt_mid_reply_sends_nothing_old_after_the_status() -> None:
    async for s in _session(ScriptedBot(chunks=200, chunk_delay=0.002)):
        sock = s.socket
        sock.send_audio(PCM)
        await sock.wait_for(lambda sent: sum(m["type"] == "audio" for m in sent) >= 5)
        sock.send({"type": "interrupt"})
        await sock.wait_message("status", "interrupted")
        await asyncio.sleep(0.05)  # the old reply would have produced ~25 more chunks by now
        statuses = [i for i, m in enumerate(sock.sent) if m == {"type": "status", "data": "interrupted"}]
        assert len(statuses) == 1
        after = sock.sent[statuses[0] + 1 :]
        assert [m for m in after if m["type"] in ("audio", "text_chunk", "transcript")] == []
        assert {"type": "status", "data": "complete"} not in sock.sent
        assert len(sock.of_type("audio")) < 200
        # the turn's metrics went out before the status; the bot stopped speaking at once
        idx_metrics = max(i for i, m in enumerate(sock.sent) if m["type"] == "metrics")
        assert idx_metrics < statuses[0]
        assert {"type": "speaking", "data": {"who": "bot", "state": "stopped"}} in sock.sent[: statuses[0]]
        # and the session goes on: the next turn is answered
        sock.send_audio(PCM)
        await sock.wait_message("transcript", {"text": "turn 2", "is_final": True})


class LateTalker(Processor):
    """A badly behaved stage: keeps pushing audio stamped with the epoch it started in, ignoring interrupts."""

    def __init__(self) -> None:
        super().__init__(name="LateTalker")
        self.pushed = 0
        self.finished = asyncio.Event()

    async def process(self, frame: Frame, direction: Direction) -> None:
        if type(frame).__name__ == "AudioFrame":
            self.create_task(self._talk(self.epoch), epoch_bound=False)
            return
        await self.push(frame, direction)

    async def _talk(self, epoch: int) -> None:
        for _ in range(100):
            await self.push(TTSAudioFrame(pcm=b"\x00\x00" * 240, epoch=epoch))
            self.pushed += 1
            await asyncio.sleep(0.001)
        self.finished.set()


async def test_stale_audio_from_a_stage_that_ignores_interrupts_never_reaches_the_client() -> None:
    async for s in _session(LateTalker()):
        sock = s.socket
        sock.send_audio(PCM)
        await sock.wait_for(lambda sent: any(m["type"] == "audio" for m in sent))
        sock.send({"type": "interrupt"})
        await sock.wait_message("status", "interrupted")
        # Its 100 pushes take at least 0.1 s (0.15 s of sleep was too little on a loaded machine): wait for the
        # last, then give the transport a moment to send (or drop) what is still on its way.
        await asyncio.wait_for(s.bot.finished.wait(), 10)
        await asyncio.sleep(0.05)
        assert s.bot.pushed == 100  # it really kept talking
        idx = next(i for i, m in enumerate(sock.sent) if m == {"type": "status", "data": "interrupted"})
        assert all(m["type"] != "audio" for m in sock.sent[idx:])


async def test_typed_turn_is_answered_and_barges_in() -> None:
    async for s in _session(ScriptedBot(chunks=100, chunk_delay=0.005)):
        sock = s.socket
        sock.send({"type": "text", "data": "first"})
        await sock.wait_message("status", "generating")
        assert sock.of_type("transcript") == []  # not echoed: the client shows what it typed
        await sock.wait_message("audio")
        sock.send({"type": "text", "data": "second"})
        await sock.wait_message("status", "interrupted")
        await sock.wait_for(lambda sent: [m.get("data") for m in sent].count("generating") == 2)
        assert s.bot.turns == ["first", "second"]
        # the cut turn's metrics start from when the typed text arrived
        first_turn = sock.of_type("metrics")[0]
        assert first_turn["turn"] == 1 and first_turn["voice_to_voice_ms"] >= 0


async def test_bad_input_gets_errors_and_the_session_lives_on() -> None:
    async for s in _session(ScriptedBot(), max_message_bytes=4096):
        sock = s.socket
        sock.send("{nope")
        sock.send({"type": "shout"})
        sock.send({"type": "audio", "data": "%%%"})
        sock.send({"type": "audio", "data": "AAAA" + "A"})  # base64 of the wrong length
        sock.send({"type": "audio", "data": "AA=="})  # one byte: odd-length PCM
        sock.send({"type": "audio", "data": "A" * 8000})
        sock.send_bytes(b"\x00\x00")
        await sock.wait_for(lambda sent: len([m for m in sent if m["type"] == "error"]) == 7)
        errors = sock.of_type("error")
        for needle in ("not valid JSON", "unknown message type", "base64", "base64", "odd number", "too large"):
            assert any(needle in e for e in errors), needle
        assert "binary frames are not enabled" in errors[-1]
        # still alive, and binary audio works after opting in
        sock.send({"type": "config", "data": {"binary_audio": True}})
        sock.send_bytes(PCM)
        await sock.wait_message("status", "complete")
        assert s.transport.input().rejected == 7


async def test_disconnect_ends_the_task_and_stops_every_stage(session: Session) -> None:
    sock = session.socket
    session.bot.chunks = 1000
    sock.send_audio(PCM)
    await sock.wait_message("status", "generating")
    sock.disconnect()
    await asyncio.wait_for(session.task._finished.wait(), 2)
    await asyncio.sleep(0.05)
    assert session.bot.stopped
    assert session.transport.disconnected.is_set()


async def test_a_client_that_stops_reading_back_pressures_the_reply_and_an_interrupt_frees_it() -> None:
    bot = ScriptedBot(chunks=1000, chunk_delay=0)
    async for s in _session(bot, max_pending=8):
        sock = s.socket
        sock.send_delay = 3600.0  # the client stops reading: every send now hangs
        sock.send({"type": "text", "data": "talk a lot"})
        await asyncio.sleep(0.1)
        writer = s.transport.writer
        assert writer.pending <= 8 + 3  # data is bounded; a few small control messages may sit on top
        assert writer.sent == 1  # only "connected" went out before the client stalled
        sock.send({"type": "interrupt"})
        await asyncio.sleep(0.05)
        assert writer.pending <= 4  # the old reply's queued messages were purged; metrics + status remain
        assert bot.turns == ["talk a lot"]
        sock.send_delay = 0.0
