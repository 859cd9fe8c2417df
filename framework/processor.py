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
* on an interrupt of a newer epoch, adopts that epoch and aborts the work it started for older ones (see
  :mod:`voxline._scope`), *before* its ``process`` sees the interrupt;
* ignores an interrupt it has already seen, so each interrupt reaches each processor exactly once;
* while a downstream system frame is inside it, holds back data and control frames arriving behind it, so a
  system frame that suspends in some stage's ``process`` is still never overtaken by what came after it.

An interrupt always starts at the head of the pipeline: one pushed downstream from the middle is handed to the
task's head, which numbers it and sends it through every stage in order (the pushing stage included).

System frames are never queued: they reach ``process`` the moment they are delivered.

Two neighbours hold what is not frame routing: :mod:`voxline.epochs` the values (``Direction``, ``EpochClock``,
``WORK_EPOCH``, re-exported here) and :mod:`voxline._tasks` the tasks a processor owns (``create_task`` and their
teardown, the base class :class:`~voxline._tasks.TaskOwner`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from voxline._lanes import SystemLane
from voxline._scope import abort, current_scope
from voxline._tasks import STOP_TIMEOUT, TaskOwner
from voxline.epochs import DOWNSTREAM, UPSTREAM, WORK_EPOCH, Direction, EpochClock
from voxline.frames import CancelFrame, DataFrame, EndFrame, ErrorFrame, Frame, InterruptFrame, SystemFrame

if TYPE_CHECKING:
    from voxline.observers import Observer

__all__ = ["DOWNSTREAM", "STOP_TIMEOUT", "UPSTREAM", "WORK_EPOCH", "Direction", "EpochClock", "Processor", "link"]

logger = logging.getLogger("voxline.processor")


class Processor(TaskOwner):
    """Base class of every stage. Override :meth:`process`; call :meth:`push` to emit frames.

    ``process`` must forward every frame it does not consume (``await self.push(frame, direction)``), system
    frames above all: an interrupt that is not forwarded never reaches the stages after this one.
    """

    __slots__ = (
        "__dict__",
        "_clock",
        "_dropped",
        "_epoch",
        "_lane",
        "_last_end",
        "_next",
        "_observers",
        "_plain_gate",
        "_prev",
        "_started",
        "_sys_busy",
        "name",
    )

    def __init__(self, *, name: str | None = None) -> None:
        self.name = name or type(self).__name__
        self._next: Processor | None = None
        self._prev: Processor | None = None
        self._plain_gate = type(self)._deliver is Processor._deliver  # push may run the gate inline
        self._epoch = 0
        self._clock = EpochClock()
        super().__init__()
        self._observers: tuple[Observer, ...] = ()
        self._dropped = 0
        self._lane = SystemLane(self)
        self._sys_busy = self._lane.busy  # the lane's list, read by the gate on every hop (one lookup, not two)
        self._last_end: Frame | None = None
        self._started = False

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
        """The newest epoch this processor has seen (data frames pushed outside frame processing get it)."""
        return self._epoch

    @property
    def dropped_frames(self) -> int:
        """How many stale data frames this processor's gate has dropped (a counter for tests and metrics)."""
        return self._dropped

    async def push(self, frame: Frame, direction: Direction = DOWNSTREAM) -> None:
        """Send ``frame`` to the next processor in ``direction``.

        A data frame without an epoch is stamped with the epoch of the work that made it: the data frame this
        task is processing (so output of old work stays old), else this processor's epoch. One older than this
        processor's epoch is dropped here. An interrupt pushed downstream
        without an epoch starts a new epoch: it goes to the head of the pipeline, which sends it through every
        stage in order, this one included, before ``push`` returns (the task that pushed it is not cancelled by
        it: what it pushes afterwards belongs to the new epoch). An interrupt pushed *upstream* is a request
        that travels to the head and does the same from there.
        """
        if isinstance(frame, DataFrame):
            epoch = frame.epoch
            if epoch is None:
                epoch = WORK_EPOCH.get()
                if epoch is None:
                    epoch = self._epoch
                frame = frame.with_epoch(epoch)
            if epoch < self._epoch:
                self._dropped += 1  # stale already here: the next stage may not have seen the interrupt yet
                return
            target = self._next if direction is DOWNSTREAM else self._prev
            if target is None:
                return
            if self._observers:
                for observer in self._observers:
                    observer.on_push(self, target, frame, direction)
            if not target._plain_gate or (target._sys_busy and direction is DOWNSTREAM):
                await target._deliver(frame, direction)
                return
            # The common case, inlined: the next stage's gate (Processor._deliver) without a second coroutine.
            if epoch < target._epoch:
                target._dropped += 1
                return
            token = WORK_EPOCH.set(epoch)
            try:
                await target.process(frame, direction)
            except Exception as exc:
                await target._on_process_error(frame, direction, exc)
            finally:
                WORK_EPOCH.reset(token)
            return
        if direction is DOWNSTREAM and type(frame) is InterruptFrame and frame.epoch is None:
            started = await self._start_interrupt(frame)
            if started is None:
                return
            frame = started
        elif isinstance(frame, (EndFrame, CancelFrame)):
            self._last_end = frame
        target = self._next if direction is DOWNSTREAM else self._prev
        if target is None:
            return
        if self._observers:
            for observer in self._observers:
                observer.on_push(self, target, frame, direction)
        scope = current_scope()
        if scope is None:
            await target._deliver(frame, direction)
            return
        # A control or system frame is delivered whole: an interrupt that aborts the work of this task waits
        # until the frame has gone through, so no stage after this one misses it.
        scope.shield += 1
        try:
            await target._deliver(frame, direction)
        finally:
            scope.shield -= 1
        scope.check_deferred_abort()

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
            if self._sys_busy and direction is DOWNSTREAM:
                await self._after_system_frames()
                if frame.epoch is not None and frame.epoch < self._epoch:
                    self._dropped += 1
                    return
            token = WORK_EPOCH.set(frame.epoch)
            try:
                await self.process(frame, direction)
            except Exception as exc:
                await self._on_process_error(frame, direction, exc)
            finally:
                WORK_EPOCH.reset(token)
            return
        if isinstance(frame, SystemFrame):
            await self._deliver_system(frame, direction)
            return
        if self._sys_busy and direction is DOWNSTREAM:
            await self._lane.wait_clear()
        try:
            await self.process(frame, direction)
        except Exception as exc:
            await self._on_process_error(frame, direction, exc)

    async def _deliver_system(self, frame: Frame, direction: Direction) -> None:
        """A system frame's way in: at once, in order with other system frames (:mod:`voxline._lanes`)."""
        if direction:  # upstream (Direction.UPSTREAM == 1): nothing to keep in order
            await self._process_reported(frame, direction)
            return
        lane = self._lane
        task = asyncio.current_task()
        if type(frame) is not InterruptFrame:
            lane.enter(task)
            try:
                await self._process_reported(frame, direction)
            finally:
                lane.leave(task)
            return
        await lane.take_turn(task)
        try:
            epoch = frame.epoch
            if epoch is not None and epoch > self._epoch:  # each interrupt reaches each stage once
                self._enter_epoch(epoch)
                await self._process_reported(frame, direction)
        finally:
            lane.end_turn(task)

    async def _process_reported(self, frame: Frame, direction: Direction) -> None:
        """``process``, with a failure reported (and the frame passed on when it must be)."""
        try:
            await self.process(frame, direction)
        except Exception as exc:
            await self._on_process_error(frame, direction, exc)

    async def _after_system_frames(self) -> None:
        """Wait until no downstream system frame is inside this processor (rare: only if ``process`` awaits)."""
        await self._lane.wait_clear()

    async def _start_interrupt(self, frame: InterruptFrame) -> InterruptFrame | None:
        """Number a new interrupt pushed by this processor; ``None`` when the head has already sent it through."""
        if self._lane.in_interrupt and self._lane.handling_interrupt(asyncio.current_task()):
            # Pushed while this stage handles an interrupt: it is that interrupt (and must not start a loop).
            return InterruptFrame(epoch=self._epoch, reason=frame.reason)
        head = self._clock.head
        if head is not None and head is not self:
            await head.push(frame, DOWNSTREAM)
            return None
        epoch = self._clock.advance()
        scope = current_scope()
        if scope is not None and scope.exempt < epoch:
            scope.exempt = epoch  # the task that starts an epoch is not aborted by it
        self._enter_epoch(epoch)
        if WORK_EPOCH.get() is not None:
            # Inside a frame's processing: what the pushing stage does next there is new work (the enclosing
            # delivery restores the old value when that processing returns). Outside (a reader task), stamping
            # follows the stage's own epoch anyway, and setting it would pin every later frame to this epoch.
            WORK_EPOCH.set(epoch)
        return InterruptFrame(epoch=epoch, reason=frame.reason)

    def _enter_epoch(self, epoch: int) -> None:
        """Adopt ``epoch`` and abort this processor's epoch-bound work for older ones."""
        self._epoch = epoch
        if self._clock.current < epoch:
            self._clock.current = epoch
        if self._tasks:
            for task, bound in list(self._tasks.items()):
                if bound:
                    abort(task, epoch)

    async def _on_process_error(self, frame: Frame, direction: Direction, exc: Exception) -> None:
        await self.push_error(f"{type(exc).__name__} while processing {frame.name}: {exc}", exception=exc)
        must_pass = isinstance(frame, (EndFrame, CancelFrame)) and self._last_end is not frame
        if must_pass or isinstance(frame, InterruptFrame):
            # These must get through even when a stage fails on them, or the pipeline would wait for its end
            # forever or stages after this one would miss the interrupt. A stage that already forwarded the
            # interrupt is safe: each processor ignores an interrupt it has seen.
            await self.push(frame, direction)

    async def _start(self, clock: EpochClock, observers: tuple[Observer, ...]) -> None:
        self._clock = clock
        self._observers = observers
        await self.on_start()
        self._started = True

    async def _stop(self) -> None:
        """Cancel and await every task this processor owns, then run :meth:`on_stop` (once, if started)."""
        await self._cancel_tasks()
        if self._started:
            self._started = False
            try:
                async with asyncio.timeout(STOP_TIMEOUT):
                    await self.on_stop()
            finally:
                await self._cancel_tasks()

    def _leaves(self) -> list[Processor]:
        """The processors that actually handle frames (a pipeline returns its flattened children)."""
        return [self]


def link(processors: Sequence[Processor]) -> list[Processor]:
    """Flatten nested pipelines and connect the leaves in order; returns the leaves."""
    leaves = [leaf for p in processors for leaf in p._leaves()]
    seen: set[int] = set()
    for leaf in leaves:
        if id(leaf) in seen:
            raise ValueError(f"processor {leaf.name!r} appears twice in one pipeline; create a second instance")
        seen.add(id(leaf))
    for a, b in itertools.pairwise(leaves):
        a._next = b
        b._prev = a
    return leaves
