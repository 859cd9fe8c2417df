"""The one writer of a WebSocket session: an outbound queue drained by a single task.

Everything a session sends — status, transcripts, text, audio, errors, events — goes through one
:class:`SocketWriter`, so messages leave in the order they were queued and no two coroutines ever write to the
socket at once.

Interruption is enforced here, at the last hop before the wire. Each queued message may carry the epoch it
belongs to. :meth:`SocketWriter.fence` raises the writer's epoch floor: queued messages of older epochs are
purged at once, and any that arrive later are dropped on arrival. A message the task already handed to the
socket when the fence went up is the only one that can still leave, and it leaves *before* anything queued
after the fence (the ``interrupted`` status, say), because sending is serial.

Nothing is paced: a message goes out as soon as the socket takes it (the browser has a jitter buffer). The
queue is bounded for data: :meth:`put` waits while ``max_pending`` messages are queued — back-pressure on the
stage producing audio — and a fence frees it at once. Small control messages (:meth:`put_nowait`) never wait.

A failed send means the client has gone — except an encoding error, which is the message's fault: every
message is made encodable (:func:`~voxline.transports.protocol.encodable`) before the socket sees it, and one
that still cannot be sent is dropped and logged while the session goes on. When the writer stops for good
(the client went away, or the task itself failed), :attr:`SocketWriter.failed` is set, so whoever owns the
session can tear it down instead of leaving it mute.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from voxline.transports.protocol import encodable

__all__ = ["SocketWriter"]

logger = logging.getLogger("voxline.transports.writer")

SendText = Callable[[str], Awaitable[None]]


class SocketWriter:
    """Queues outbound messages and sends them from one task. Create it inside a running event loop."""

    def __init__(
        self,
        send_text: SendText,
        *,
        max_pending: int = 256,
        name: str = "writer",
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, got {max_pending}")
        self._send_text = send_text
        self.max_pending = max_pending
        self.name = name
        self._queue: deque[tuple[int | None, str]] = deque()
        self._fence = 0
        self._wakeup: asyncio.Future[None] | None = None
        self._space: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.sent = 0
        """Messages handed to the socket."""
        self.dropped = 0
        """Messages discarded: stale (older than the fence) or queued after the socket closed."""
        self.failed = asyncio.Event()
        """Set when the writer stopped for good (the client went away, or the task failed); it then drops
        everything."""
        self.failure: str | None = None
        """Why :attr:`failed` was set."""
        self.client_gone = False
        """True when :attr:`failed` was set because a send failed (the client went away)."""
        self._on_failure = on_failure
        self.unsendable = 0
        """Messages dropped because they could not be encoded (the session went on)."""

    # --- state ----------------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        return len(self._queue)

    @property
    def fence_epoch(self) -> int:
        return self._fence

    @property
    def closed(self) -> bool:
        return self._closed

    # --- producing ------------------------------------------------------------------------------------

    def put_nowait(self, message: str, epoch: int | None = None) -> bool:
        """Queue ``message`` without waiting (control messages). False if it was dropped."""
        if self._closed or (epoch is not None and epoch < self._fence):
            self.dropped += 1
            return False
        self._queue.append((epoch, message))
        self._wake()
        return True

    async def put(self, message: str, epoch: int | None = None, *, prompt: bool = False) -> bool:
        """Queue ``message``, waiting while the queue is full. False if it was dropped (stale or closed).

        ``prompt``: if the sending task is idle, yield once after queueing so that it hands ``message`` to the
        socket before the caller goes on. A producer that pushes a burst without ever suspending (a provider
        socket whose next messages are already buffered) would otherwise have the first message wait until the
        whole burst had been taken in. Costs one event-loop turn, and only when the task was idle.
        """
        while len(self._queue) >= self.max_pending and not self._closed:
            if epoch is not None and epoch < self._fence:
                break
            if self._space is None or self._space.done():
                self._space = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._space)
        wakeup = self._wakeup
        idle = wakeup is not None and not wakeup.done()
        if not self.put_nowait(message, epoch):
            return False
        if prompt and idle:
            await asyncio.sleep(0)  # the woken task runs first: its wakeup was scheduled before this task's
        return True

    def fence(self, epoch: int) -> int:
        """Drop every queued message older than ``epoch`` and refuse such messages from now on.

        Returns how many queued messages were purged. Raising the fence to an epoch at or below the current
        one changes nothing.
        """
        if epoch <= self._fence:
            return 0
        self._fence = epoch
        queue = self._queue
        if not queue:
            return 0
        kept = [item for item in queue if item[0] is None or item[0] >= epoch]
        purged = len(queue) - len(kept)
        if purged:
            queue.clear()
            queue.extend(kept)
            self.dropped += purged
            self._free_space()
        return purged

    # --- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"{self.name}-send")
            self._task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        # A bug, not the client: never leave a session whose writer is dead looking alive.
        exc = task.exception()
        logger.error("%s: the sending task failed", self.name, exc_info=exc)
        self._fail(f"the writer failed: {type(exc).__name__}: {exc}")

    def _fail(self, reason: str, *, client_gone: bool = False) -> None:
        self._closed = True
        self.failure = reason
        self.client_gone = client_gone
        self.dropped += len(self._queue)
        self._queue.clear()
        self._free_space()
        self.failed.set()
        if self._on_failure is not None:
            self._on_failure(reason)

    async def aclose(self, *, flush_timeout: float = 0.5) -> None:
        """Stop accepting messages, try to send what is queued within ``flush_timeout``, then stop the task."""
        self._closed = True
        self._free_space()
        task = self._task
        if task is None:
            self.dropped += len(self._queue)
            self._queue.clear()
            return
        # The task returns by itself once the queue is empty and the writer closed; give it flush_timeout.
        self._wake()
        try:
            if not task.done() and not self.failed.is_set() and flush_timeout > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(task), flush_timeout)
        finally:  # also when the caller is cancelled while flushing: the task never outlives the writer
            task.cancel()
            self._task = None
            self.dropped += len(self._queue)
            self._queue.clear()
        await asyncio.gather(task, return_exceptions=True)

    # --- the one sending task -------------------------------------------------------------------------

    async def _run(self) -> None:
        queue = self._queue
        loop = asyncio.get_running_loop()
        send = self._send_text
        while True:
            if not queue:
                if self._closed:
                    return
                self._wakeup = loop.create_future()
                await self._wakeup
                self._wakeup = None
                continue
            epoch, message = queue.popleft()
            if len(queue) < self.max_pending:
                self._free_space()
            if epoch is not None and epoch < self._fence:
                self.dropped += 1
                continue
            if not message.isascii():
                message = encodable(message)
            try:
                await send(message)
            except asyncio.CancelledError:
                raise
            except UnicodeError as exc:  # the message's fault, not the client's: drop it, keep the session
                self.unsendable += 1
                self.dropped += 1
                logger.error("%s: dropped a message that cannot be sent (%s)", self.name, exc)
                continue
            except Exception as exc:
                logger.info("%s: the client went away (%s); dropping %d queued messages", self.name, exc, len(queue))
                self.dropped += 1
                self._fail(f"the client went away ({type(exc).__name__})", client_gone=True)
                return
            self.sent += 1

    def _wake(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    def _free_space(self) -> None:
        space = self._space
        if space is not None and not space.done():
            space.set_result(None)
