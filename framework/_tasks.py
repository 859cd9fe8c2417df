"""The tasks a processor owns: started guarded, cancelled by the next interrupt when epoch-bound, all
cancelled and awaited when the pipeline stops.

A stage that streams a reply or reads a provider's socket does that work in tasks (``create_task``). What the
framework promises about them — a failure becomes an :class:`~voxline.frames.ErrorFrame`, never a silent death;
an interrupt aborts epoch-bound ones (through :mod:`voxline._scope`); nothing outlives the stage — is one job,
kept here as :class:`TaskOwner`, the base of :class:`~voxline.processor.Processor`, apart from the frame
routing and the epoch gate in processor.py.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Coroutine
from typing import Any

from voxline._scope import register, unregister
from voxline.epochs import WORK_EPOCH

__all__ = ["STOP_TIMEOUT", "TaskOwner"]

logger = logging.getLogger("voxline.processor")

STOP_TIMEOUT = 5.0
"""Seconds a processor's tasks (and its ``on_stop``) get to finish once cancelled before we log and move on."""


class TaskOwner:
    """Task ownership for :class:`~voxline.processor.Processor` (``name`` and ``_epoch`` are its slots)."""

    __slots__ = ("_tasks",)

    name: str  # a Processor's slots
    _epoch: int

    def __init__(self) -> None:
        self._tasks: dict[asyncio.Task[Any], bool] | None = None  # made on the first create_task

    async def push_error(self, message: str, *, exception: BaseException | None = None, fatal: bool = False) -> None:
        raise NotImplementedError  # Processor.push_error

    def create_task(
        self, coro: Coroutine[Any, Any, Any], *, name: str | None = None, epoch_bound: bool = True
    ) -> asyncio.Task[Any]:
        """Run ``coro`` in a task this processor owns.

        An *epoch-bound* task (the default) is work for the current turn: the next interrupt cancels it.
        Every task is cancelled and awaited when the pipeline stops, and an exception in one becomes an
        :class:`ErrorFrame`, never a silent death.
        """
        context = None
        if not epoch_bound and WORK_EPOCH.get() is not None:
            # Work that outlives turns is not part of the frame being processed now.
            context = contextvars.copy_context()
            context.run(WORK_EPOCH.set, None)
        task = asyncio.get_running_loop().create_task(
            self._guard(coro), name=name or f"{self.name}-task", context=context
        )
        task.add_done_callback(lambda _: coro.close())  # a task cancelled before it ran never awaited its coroutine
        if self._tasks is None:
            self._tasks = {}
        self._tasks[task] = epoch_bound
        if epoch_bound:
            work_epoch = WORK_EPOCH.get()
            if work_epoch is not None and work_epoch < self._epoch:
                task.cancel()  # made for a frame whose epoch an interrupt has already ended
        task.add_done_callback(self._forget_task)
        return task

    async def _guard(self, coro: Coroutine[Any, Any, Any]) -> Any:
        scope = register()
        try:
            return await coro
        except asyncio.CancelledError:
            if scope.aborted or scope.task.cancelling():
                raise
            # Nobody cancelled this task (a future it awaited was cancelled): say so rather than die silently.
            await self.push_error(f"CancelledError in a task of {self.name} (a cancelled future?)")
            return None
        except Exception as exc:
            await self.push_error(f"{type(exc).__name__} in a task of {self.name}: {exc}", exception=exc)
            return None
        finally:
            unregister(scope)

    def _forget_task(self, task: asyncio.Task[Any]) -> None:
        if self._tasks is not None:
            self._tasks.pop(task, None)

    async def _cancel_tasks(self) -> None:
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            _, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
            for task in tasks:
                self._tasks.pop(task, None)
            for task in pending:
                logger.error("%s: task %s ignored cancellation for %g s", self.name, task.get_name(), STOP_TIMEOUT)
