"""The session writer: one sending task, an epoch fence, a bounded queue, and no leaks when the client goes."""

from __future__ import annotations

import asyncio

import pytest
from voxline.transports.writer import SocketWriter


class SlowSink:
    def __init__(self, delay: float = 0.0, fail_after: int | None = None) -> None:
        self.delay = delay
        self.fail_after = fail_after
        self.got: list[str] = []
        self.concurrent = 0
        self.max_concurrent = 0

    async def send(self, message: str) -> None:
        self.concurrent += 1
        self.max_concurrent = max(self.max_concurrent, self.concurrent)
        try:
            if self.fail_after is not None and len(self.got) >= self.fail_after:
                raise ConnectionError("client went away")
            await asyncio.sleep(self.delay)
            self.got.append(message)
        finally:
            self.concurrent -= 1


async def test_messages_leave_in_order_from_one_task() -> None:
    sink = SlowSink(delay=0.001)
    writer = SocketWriter(sink.send)
    writer.start()
    for i in range(20):
        await writer.put(f"m{i}", epoch=0)
    writer.put_nowait("control")
    await writer.aclose(flush_timeout=2)
    assert sink.got == [f"m{i}" for i in range(20)] + ["control"]
    assert sink.max_concurrent == 1
    assert writer.sent == 21


async def test_fence_purges_old_epochs_and_refuses_late_ones() -> None:
    sink = SlowSink(delay=0.02)
    writer = SocketWriter(sink.send)
    writer.start()
    for i in range(5):
        await writer.put(f"old{i}", epoch=1)
    writer.put_nowait("status")  # epoch-less messages survive a fence
    await asyncio.sleep(0.005)  # the task is now sending old0
    purged = writer.fence(2)
    assert purged == 4
    writer.put_nowait("interrupted")
    assert not await writer.put("late-old", epoch=1)
    await writer.put("new", epoch=2)
    await writer.aclose(flush_timeout=2)
    assert sink.got == ["old0", "status", "interrupted", "new"]
    assert writer.dropped == 5


async def test_full_queue_waits_and_a_fence_frees_the_waiter() -> None:
    sink = SlowSink(delay=10)  # the client never reads
    writer = SocketWriter(sink.send, max_pending=3)
    writer.start()
    for i in range(4):  # one in flight, three queued
        await writer.put(f"m{i}", epoch=1)
        await asyncio.sleep(0)
    blocked = asyncio.create_task(writer.put("m4", epoch=1))
    await asyncio.sleep(0.02)
    assert not blocked.done()
    assert writer.pending == 3
    writer.fence(2)
    assert await asyncio.wait_for(blocked, 1) is False
    assert writer.pending == 0
    await writer.aclose(flush_timeout=0)


async def test_send_failure_closes_the_writer_and_drops_the_rest() -> None:
    sink = SlowSink(fail_after=2)
    writer = SocketWriter(sink.send)
    writer.start()
    for i in range(5):
        writer.put_nowait(f"m{i}")
    await asyncio.wait_for(writer.failed.wait(), 1)
    assert sink.got == ["m0", "m1"]
    assert writer.closed
    assert writer.put_nowait("after") is False
    await writer.aclose()


async def test_aclose_gives_up_on_a_stuck_socket() -> None:
    sink = SlowSink(delay=30)
    writer = SocketWriter(sink.send)
    writer.start()
    writer.put_nowait("stuck")
    writer.put_nowait("never")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await writer.aclose(flush_timeout=0.1)
    assert loop.time() - t0 < 1
    assert sink.got == []


def test_bad_bound_is_refused() -> None:
    async def send(message: str) -> None:
        return None

    with pytest.raises(ValueError, match="max_pending"):
        SocketWriter(send, max_pending=0)


async def test_a_cancelled_aclose_still_stops_the_task() -> None:
    sink = SlowSink(delay=30)
    writer = SocketWriter(sink.send)
    writer.start()
    writer.put_nowait("stuck")
    task = writer._task
    assert task is not None
    closing = asyncio.create_task(writer.aclose(flush_timeout=10))
    await asyncio.sleep(0.02)
    closing.cancel()
    await asyncio.gather(closing, return_exceptions=True)
    await asyncio.sleep(0)
    assert task.done()


async def _first_send_after_burst(*, prompt: bool) -> list[int]:
    """A producer queues five messages without ever suspending on its own; returns, per message sent, how many
    had been queued when it went to the socket."""
    queued = 0
    seen: list[int] = []

    async def send(message: str) -> None:
        seen.append(queued)

    writer = SocketWriter(send)
    writer.start()
    await asyncio.sleep(0)  # the task is idle, waiting for work
    for i in range(5):
        queued += 1
        await writer.put(f"m{i}", epoch=0, prompt=prompt)
    await writer.aclose(flush_timeout=1)
    return seen


async def test_a_prompt_put_hands_the_first_message_of_a_burst_to_the_socket_at_once() -> None:
    assert await _first_send_after_burst(prompt=True) == [1, 2, 3, 4, 5]
    # Without it the idle task only runs once the producer suspends: after the whole burst.
    assert await _first_send_after_burst(prompt=False) == [5, 5, 5, 5, 5]


async def test_a_prompt_put_keeps_order_and_the_fence() -> None:
    sink = SlowSink(delay=0.005)
    writer = SocketWriter(sink.send)
    writer.start()
    await asyncio.sleep(0)
    await writer.put("a0", epoch=1, prompt=True)  # idle: handed over at once, now being sent
    await writer.put("a1", epoch=1, prompt=True)  # busy: just queued
    await writer.put("a2", epoch=1, prompt=True)
    assert writer.fence(2) == 2
    writer.put_nowait("interrupted")
    assert not await writer.put("a3", epoch=1, prompt=True)
    await writer.put("b0", epoch=2, prompt=True)
    await writer.aclose(flush_timeout=2)
    assert sink.got == ["a0", "interrupted", "b0"]
    assert sink.max_concurrent == 1


# --- failures: an unsendable message is not a gone client; a dead writer is never silent ------------------


async def test_a_lone_surrogate_is_sent_repaired_and_the_writer_goes_on() -> None:
    got: list[str] = []

    async def send(message: str) -> None:
        message.encode("utf-8")  # what a real socket does first: raises UnicodeEncodeError on a lone surrogate
        got.append(message)

    writer = SocketWriter(send)
    writer.start()
    writer.put_nowait('{"type":"text_chunk","data":"echo \ud800"}')
    writer.put_nowait("next")
    await writer.aclose(flush_timeout=1)
    assert got == ['{"type":"text_chunk","data":"echo \ufffd"}', "next"]
    assert not writer.failed.is_set() and writer.sent == 2


async def test_an_encoding_error_from_the_socket_drops_that_message_only() -> None:
    got: list[str] = []
    failures: list[str] = []

    async def send(message: str) -> None:
        if message == "poison":
            raise UnicodeEncodeError("utf-8", message, 0, 1, "surrogates not allowed")
        got.append(message)

    writer = SocketWriter(send, on_failure=failures.append)
    writer.start()
    for message in ("a", "poison", "b"):
        writer.put_nowait(message)
    await writer.aclose(flush_timeout=1)
    assert got == ["a", "b"]
    assert writer.unsendable == 1 and not writer.failed.is_set() and failures == []


async def test_a_failed_send_is_a_gone_client_and_is_reported() -> None:
    failures: list[str] = []
    writer = SocketWriter(SlowSink(fail_after=1).send, on_failure=failures.append)
    writer.start()
    writer.put_nowait("m0")
    writer.put_nowait("m1")
    await asyncio.wait_for(writer.failed.wait(), 1)
    assert writer.client_gone
    assert failures == ["the client went away (ConnectionError)"]
    await writer.aclose()


async def test_a_writer_task_that_dies_of_a_bug_is_reported_not_left_mute(monkeypatch: pytest.MonkeyPatch) -> None:
    from voxline.transports import writer as writer_module

    def broken(text: str) -> str:
        raise RuntimeError("bug")

    monkeypatch.setattr(writer_module, "encodable", broken)
    failures: list[str] = []
    writer = SocketWriter(SlowSink().send, on_failure=failures.append)
    writer.start()
    writer.put_nowait("é")  # not ASCII: goes through the (broken) repair
    await asyncio.wait_for(writer.failed.wait(), 1)
    assert not writer.client_gone
    assert failures == ["the writer failed: RuntimeError: bug"]
    assert writer.put_nowait("after") is False
    await writer.aclose()
