"""The transport under hostile or failing conditions: every failure ends in an error to the client and either a
working session or an ended one (``transport.ended``), never a half-dead session."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from transport_helpers import MemorySocket, ScriptedBot
from voxline.frames import Frame, TextFrame, UserTextFrame
from voxline.pipeline import Pipeline
from voxline.processor import Direction, Processor
from voxline.task import PipelineTask
from voxline.transports import TransportParams, WebSocketTransport

PCM = b"\x10\x00" * 1600  # 100 ms at 16 kHz: one turn for the scripted bot


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Echo(Processor):
    """Answers a typed turn with its own text, as the offline demo's echo LLM does."""

    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, UserTextFrame):
            await self.push(TextFrame(text=f"you said: {frame.text} \ud800"))  # and a lone surrogate of its own
            return
        await self.push(frame, direction)


class Running:
    def __init__(self, socket: MemorySocket, transport: WebSocketTransport, task: PipelineTask, runner: Any) -> None:
        self.socket, self.transport, self.task, self.runner = socket, transport, task, runner

    def errors(self) -> list[str]:
        return [str(e) for e in self.socket.of_type("error")]

    async def turn_works(self, count: int = 1) -> None:
        self.socket.send_audio(PCM)
        await self.socket.wait_for(lambda sent: sum(m == {"type": "status", "data": "complete"} for m in sent) >= count)


async def running(bot: Processor, *, start_early: bool = False, **params: Any) -> AsyncIterator[Running]:
    socket = MemorySocket()
    transport = WebSocketTransport(socket, TransportParams(**params))
    if start_early:
        transport.start()
    transport.send_status("connected")
    task = PipelineTask(Pipeline([transport.input(), bot, transport.output()]))
    result = Running(socket, transport, task, asyncio.create_task(task.run()))
    try:
        yield result
    finally:
        if not socket.closed:
            socket.disconnect()
        await asyncio.wait_for(result.runner, 3)
        await transport.aclose()


@pytest.fixture
async def session() -> AsyncIterator[Running]:
    async for s in running(ScriptedBot()):
        await s.task.wait_until_running()
        yield s


async def test_deep_nesting_gets_an_error_and_the_session_lives_on(session: Running) -> None:
    """The issue's one tiny message: ~5,000 '[' used to kill the reader with a RecursionError."""
    session.socket.send("[" * 5000)
    session.socket.send('{"type":"audio","data":' + "[" * 5000 + "]" * 5000 + "}")
    await session.socket.wait_for(lambda sent: len([m for m in sent if m["type"] == "error"]) == 2)
    assert all("too deeply" in e for e in session.errors())
    await session.turn_works()
    assert not session.transport.ended.is_set()


async def test_lone_surrogates_in_and_out_do_not_mute_the_session() -> None:
    async for s in running(Echo()):
        await s.task.wait_until_running()
        s.socket.send('{"type": "text", "data": "hi \\ud800"}')
        await s.socket.wait_message("text_chunk")
        assert s.socket.of_type("text_chunk") == ["you said: hi \ufffd \ufffd"]
        assert not s.transport.writer.failed.is_set()
        s.socket.send({"type": "text", "data": "again"})
        await s.socket.wait_for(lambda sent: len([m for m in sent if m["type"] == "text_chunk"]) == 2)


async def test_an_exception_handling_one_message_is_reported_and_reading_goes_on(
    session: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    from voxline.transports.protocol import ProtocolParser

    real = ProtocolParser.parse_text
    calls = []

    def flaky(parser: ProtocolParser, text: str) -> Any:
        calls.append(text)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        return real(parser, text)

    monkeypatch.setattr(ProtocolParser, "parse_text", flaky)
    session.socket.send({"type": "interrupt"})
    await session.socket.wait_message("error")
    assert session.errors() == ["the server could not handle that message (RuntimeError)"]
    await session.turn_works()


async def test_a_reader_that_fails_ends_the_session_whole_and_says_so() -> None:
    bot = ScriptedBot()
    async for s in running(bot):
        await s.task.wait_until_running()
        s.socket.inbound.put_nowait(None)  # type: ignore[arg-type]  # not an ASGI message: breaks the loop itself
        await asyncio.wait_for(s.runner, 2)  # the input pushed a CancelFrame: the pipeline ended
        assert s.transport.ended.is_set() and not s.transport.disconnected.is_set()
        assert s.transport.end_reason is not None and s.transport.end_reason.startswith("the reader failed")
        assert bot.stopped
        await s.socket.wait_message("error")
        assert s.errors()[0].startswith("The session failed: AttributeError")
        s.socket.closed = True


async def test_a_send_failure_ends_the_transport() -> None:
    async for s in running(ScriptedBot()):
        await s.task.wait_until_running()
        s.socket.closed = True  # sends now raise, as Starlette's do once the client has gone
        s.transport.send_status("anything")
        await asyncio.wait_for(s.transport.ended.wait(), 1)
        assert s.transport.disconnected.is_set()
        assert s.transport.end_reason == "the client went away (RuntimeError)"
        s.socket.inbound.put_nowait({"type": "websocket.disconnect", "code": 1006})  # the reader sees it next


async def test_message_rate_limit_refuses_with_an_error_and_recovers() -> None:
    clock = FakeClock()
    async for s in running(ScriptedBot(), max_messages_per_second=10, clock=clock):
        await s.task.wait_until_running()
        for _ in range(15):
            s.socket.send({"type": "config", "data": {}})
        await s.socket.wait_for(lambda sent: len([m for m in sent if m["type"] == "error"]) == 5)
        assert all(e.startswith("too many messages: the limit is 10 per second") for e in s.errors())
        clock.now += 1.0  # a second later the bucket is full again
        await s.turn_works()
        assert len(s.errors()) == 5
        assert s.transport.limiter.refused_messages == 5


async def test_audio_faster_than_twice_real_time_is_refused_not_queued() -> None:
    clock = FakeClock()
    bot = ScriptedBot(bytes_per_turn=10**9)  # never answers: we only count what it heard
    async for s in running(bot, max_audio_speed=2.0, audio_burst_seconds=1.0, clock=clock):
        await s.task.wait_until_running()
        chunk = b"\x00\x00" * 1600  # 100 ms
        for _ in range(30):  # 3 s of audio in no time at all: 10 chunks fit the 1 s burst
            s.socket.send_audio(chunk)
        await s.socket.wait_for(lambda sent: len([m for m in sent if m["type"] == "error"]) == 20)
        assert bot.heard == 10 * len(chunk)
        assert "faster than 2x real time: 100 ms of audio dropped" in s.errors()[0]
        clock.now += 0.5  # half a second later: one second of audio may come again (2x)
        for _ in range(10):
            s.socket.send_audio(chunk)
        await asyncio.sleep(0.05)
        assert bot.heard == 20 * len(chunk) and len(s.errors()) == 20
        assert s.transport.last_activity == clock.now


async def test_errors_for_bad_input_are_not_queued_for_a_client_that_does_not_read() -> None:
    async for s in running(ScriptedBot(), max_pending=4):
        await s.task.wait_until_running()
        s.socket.send_delay = 3600.0  # the client stops reading
        for _ in range(50):
            s.socket.send("{nope")
        await asyncio.sleep(0.05)
        assert s.transport.input().rejected == 50
        assert s.transport.writer.pending <= 4 and s.transport.errors_suppressed >= 45
        s.socket.send_delay = 0.0
        s.socket.disconnect()


async def test_a_transport_started_early_holds_messages_until_the_pipeline_runs() -> None:
    class SlowStart(ScriptedBot):
        async def on_start(self) -> None:
            await asyncio.sleep(0.2)  # a model loading, a provider connecting

    async for s in running(SlowStart(), start_early=True):
        s.socket.send({"type": "text", "data": "early bird"})
        s.socket.send_audio(PCM)
        await s.task.wait_until_running()
        await s.socket.wait_for(lambda sent: sum(m == {"type": "status", "data": "generating"} for m in sent) == 2)
        assert s.task.processors[1].turns == ["early bird", "turn 2"]  # type: ignore[attr-defined]  # in order


async def test_a_client_that_leaves_during_the_start_ends_the_transport_at_once() -> None:
    started = asyncio.Event()

    class NeverStarts(Processor):
        async def on_start(self) -> None:
            started.set()
            await asyncio.sleep(3600)

    async for s in running(NeverStarts(), start_early=True):
        await started.wait()
        s.socket.disconnect()
        await asyncio.wait_for(s.transport.ended.wait(), 1)
        assert s.transport.end_reason == "client disconnected"
        s.runner.cancel()  # what the session does: the start is abandoned, nothing waits for it
        with pytest.raises(asyncio.CancelledError):
            await s.runner
        s.runner = asyncio.create_task(asyncio.sleep(0))


def test_one_audio_chunk_longer_than_the_burst_passes_then_the_rest_waits() -> None:
    """A chunk bigger than the burst passes when nothing came before it (the bucket goes into debt)."""
    from voxline.transports.limits import InputLimiter

    clock = FakeClock()
    limiter = InputLimiter(messages_per_second=None, audio_speed=2.0, audio_burst_seconds=2.0, clock=clock)
    assert limiter.audio(5.0) is None  # a full bucket pays for one long chunk
    assert limiter.audio(0.1) is not None
    clock.now += 1.5  # 3 s of credit earned: the debt (3 s) is paid
    assert limiter.audio(0.1) is not None
    clock.now += 0.1
    assert limiter.audio(0.1) is None
