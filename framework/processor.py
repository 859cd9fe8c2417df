"""The processor: one stage of a pipeline, and the place where the interruption contract is enforced.

A processor receives frames in :meth:`Processor.process` and emits frames with :meth:`Processor.push`, in
either direction. By default a processor runs *inline*: ``push`` calls the next processor's entry point
directly, with no queue and no task, so a pure transform costs one method call per hop. A stage that has to
wait on I/O without holding up the stage before it uses :class:`~voxline.queued.QueuedProcessor`, which pays
for a queue and a worker task.

Epochs
------
Every :class:`~voxline.frames.DataFrame` belongs to an epoch. An :class:`~voxline.frames.InterruptFrame`
starts a new one (numbers come from one :class:`EpochClock` per pipeline task). On its way in
(:meth:`Processor._deliver`) every processor:

* drops data frames of an epoch older than its own — nothing stale reaches it or anything after it;
* on an interrupt of a newer epoch, adopts that epoch and cancels the tasks it started with
  :meth:`Processor.create_task` for older epochs, *before* its ``process`` sees the interrupt;
* ignores an interrupt it has already seen, so each interrupt reaches each processor exactly once.

System frames are never queued: they reach ``process`` the moment they are delivered.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from voxline.frames import CancelFrame, DataFrame, EndFrame, ErrorFrame, Frame, InterruptFrame

if TYPE_CHECKING:
    from voxline.observers import Observer

__all__ = ["DOWNSTREAM", "UPSTREAM", "Direction", "EpochClock", "Processor", "link"]

logger = logging.getLogger("voxline.processor")


class Direction(enum.IntEnum):
    """Which way a frame travels: downstream (towards the output) or upstream (towards the input)."""

    DOWNSTREAM = 0
    UPSTREAM = 1


DOWNSTREAM = Direction.DOWNSTREAM
UPSTREAM = Direction.UPSTREAM


class EpochClock:
    """Hands out epoch numbers for one pipeline; shared by all its processors so epochs never collide."""

    __slots__ = ("current",)

    def __init__(self) -> None:
        self.current = 0

    def advance(self) -> int:
        self.current += 1
        return self.current


class _Deliverable(Protocol):
    async def _deliver(self, frame: Frame, direction: Direction) -> None: ...


class Processor:
    """Base class of every stage. Override :meth:`process`; call :meth:`push` to emit frames.

    ``process`` must forward every frame it does not consume (``await self.push(frame, direction)``), system
    frames above all: an interrupt that is not forwarded never reaches the stages after this one.
    """

    __slots__ = ("__dict__", "_clock", "_dropped", "_epoch", "_next", "_observers", "_prev", "_tasks", "name")

    def __init__(self, *, name: str | None = None) -> None:
        self.name = name or type(self).__name__
        self._next: _Deliverable | None = None
        self._prev: _Deliverable | None = None
        self._epoch = 0
        self._clock = EpochClock()
        self._tasks: dict[asyncio.Task[Any], bool] | None = None
        self._observers: tuple[Observer, ...] = ()
        self._dropped = 0

    def __repr__(self) -> str:
        return f"<{self.name} epoch={self._epoch}>"

    # --- what subclasses override -----------------------------------------------------------------------

    async def process(self, frame: Frame, direction: Direction) -> None:
        """Handle one frame. The default forwards it unchanged."""
        await self.push(frame, direction)

    async def on_start(self) -> None:
        """Open resources (connections, models). Called once, before any frame; must not push frames."""

    async def on_stop(self) -> None:
        """Release resources. Called once when the pipeline stops, after this processor's tasks are done."""

    # --- what subclasses call ---------------------------------------------------------------------------

    @property
    def epoch(self) -> int:
        """The newest epoch this processor has seen; data frames it pushes without one get this epoch."""
        return self._epoch

    @property
    def dropped_frames(self) -> int:
        """How many stale data frames this processor's gate has dropped (a counter for tests and metrics)."""
        return self._dropped

    async def push(self, frame: Frame, direction: Direction = DOWNSTREAM) -> None:
        """Send ``frame`` to the next processor in ``direction``.

        A data frame without an epoch is stamped with this processor's epoch. An interrupt pushed downstream
        without an epoch gets a fresh one from the pipeline's clock, and this processor enters that epoch
        itself first. An interrupt pushed *upstream* is a request: the task turns it into a new interrupt at
        the head of the pipeline, so every stage sees it once, in order.
        """
        if isinstance(frame, DataFrame):
            if frame.epoch is None:
                frame = frame.with_epoch(self._epoch)
        elif type(frame) is InterruptFrame and frame.epoch is None and direction is DOWNSTREAM:
            frame = InterruptFrame(epoch=self._clock.advance(), reason=frame.reason)
            self._enter_epoch(frame.epoch)  # type: ignore[arg-type]
        target = self._next if direction is DOWNSTREAM else self._prev
        if target is None:
            return
        if self._observers:
            for observer in self._observers:
                observer.on_push(self, target, frame, direction)
        await target._deliver(frame, direction)

    def create_task(
        self, coro: Coroutine[Any, Any, Any], *, name: str | None = None, epoch_bound: bool = True
    ) -> asyncio.Task[Any]:
        """Run ``coro`` in a task this processor owns.

        An *epoch-bound* task (the default) is work for the current turn: the next interrupt cancels it.
        Every task is cancelled and awaited when the pipeline stops, and an exception in one becomes an
        :class:`ErrorFrame`, never a silent death.
        """
        task = asyncio.get_running_loop().create_task(self._guard(coro), name=name or f"{self.name}-task")
        if self._tasks is None:
            self._tasks = {}
        self._tasks[task] = epoch_bound
        task.add_done_callback(self._forget_task)
        return task

    async def push_error(self, message: str, *, exception: BaseException | None = None, fatal: bool = False) -> None:
        """Report a failure upstream (to the task and the transport) and keep going unless ``fatal``."""
        if exception is not None:
            logger.error("%s: %s", self.name, message, exc_info=exception)
        else:
            logger.error("%s: %s", self.name, message)
        await self.push(
            ErrorFrame(message=message, fatal=fatal, source=self.name, exception=exception), Direction.UPSTREAM
        )

    # --- framework internals ----------------------------------------------------------------------------

    async def _deliver(self, frame: Frame, direction: Direction) -> None:
        """Entry point of a processor: the epoch gate, then ``process``."""
        if isinstance(frame, DataFrame):
            if frame.epoch is not None and frame.epoch < self._epoch:
                self._dropped += 1
                return
        elif type(frame) is InterruptFrame and direction is DOWNSTREAM:
            if frame.epoch is None or frame.epoch <= self._epoch:
                return
            self._enter_epoch(frame.epoch)
        try:
            await self.process(frame, direction)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._on_process_error(frame, direction, exc)

    def _enter_epoch(self, epoch: int) -> None:
        """Adopt ``epoch`` and cancel this processor's work for older ones."""
        self._epoch = epoch
        if self._clock.current < epoch:
            self._clock.current = epoch
        if self._tasks:
            for task, bound in list(self._tasks.items()):
                if bound:
                    task.cancel()

    async def _on_process_error(self, frame: Frame, direction: Direction, exc: Exception) -> None:
        await self.push_error(f"{type(exc).__name__} while processing {frame.name}: {exc}", exception=exc)
        if isinstance(frame, (EndFrame, InterruptFrame, CancelFrame)):
            # These must get through even when a stage fails on them, or the pipeline would wait for its end
            # forever or stages after this one would miss the interrupt. Pushing them twice is harmless: the
            # sink ends once, and each processor ignores an interrupt it has already seen.
            await self.push(frame, direction)

    async def _guard(self, coro: Coroutine[Any, Any, Any]) -> Any:
        try:
            return await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self.push_error(f"{type(exc).__name__} in a task of {self.name}: {exc}", exception=exc)
            return None

    def _forget_task(self, task: asyncio.Task[Any]) -> None:
        if self._tasks is not None:
            self._tasks.pop(task, None)

    async def _start(self, clock: EpochClock, observers: tuple[Observer, ...]) -> None:
        self._clock = clock
        self._observers = observers
        await self.on_start()

    async def _stop(self) -> None:
        """Cancel and await every task this processor owns, then run :meth:`on_stop`."""
        await self._cancel_tasks()
        await self.on_stop()

    async def _cancel_tasks(self) -> None:
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for task in tasks:
                self._tasks.pop(task, None)

    def _leaves(self) -> list[Processor]:
        """The processors that actually handle frames (a pipeline returns its flattened children)."""
        return [self]


def link(processors: Sequence[Processor]) -> list[Processor]:
    """Flatten nested pipelines and connect the leaves in order; returns the leaves."""
    leaves = [leaf for p in processors for leaf in p._leaves()]
    for a, b in itertools.pairwise(leaves):
        a._next = b
        b._prev = a
    return leaves
