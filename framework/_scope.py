"""Abort scopes: how an interrupt stops the old-epoch work of a task without tearing frames apart.

Every task the framework runs for a processor (a queue worker, a task from ``create_task``) has a
:class:`Scope`. An interrupt *aborts* a scope: it cancels the task, or — for a queue worker — only the frame the
worker is busy with (the worker catches the cancellation and takes the next frame). Two rules keep that safe:

* **Control and system frames are delivered whole.** While the task is pushing one (``shield`` > 0) the abort
  is deferred and fires the moment that push returns, so no stage after it misses an end of stream, a
  response boundary or an interrupt.
* **The task that starts an epoch is not aborted by it** (``exempt``): a stage that detects a barge-in while
  handling a frame pushes the interrupt and carries on; what it pushes next belongs to the new epoch.

Scopes live in a dict keyed by task (not a context variable) so that tasks spawned from inside a scope do not
inherit it.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["Scope", "abort", "current_scope", "register", "unregister"]

_SCOPES: dict[asyncio.Task[Any], Scope] = {}


class Scope:
    """Abort bookkeeping of one task."""

    __slots__ = ("aborted", "cancels", "exempt", "pending", "shield", "task")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.shield = 0
        """Depth of control/system frame pushes in progress in this task."""
        self.pending = False
        """An abort arrived while shielded; it fires when the outermost shielded push returns."""
        self.aborted = False
        """A CancelledError on its way through this task is an abort (not a stop)."""
        self.cancels = 0
        """``Task.cancel()`` calls made for aborts, to be matched by ``uncancel()``."""
        self.exempt = 0
        """Epochs up to this one were started by this task and do not abort it."""

    def abort(self, epoch: int) -> None:
        """Stop this task's work for epochs older than ``epoch`` as soon as that is safe."""
        if self.exempt >= epoch:
            return
        if self.shield or self.task is asyncio.current_task():
            self.pending = True
            return
        self.aborted = True
        self.cancels += 1
        self.task.cancel()

    def check_deferred_abort(self) -> None:
        """Called after a shielded push: raise the abort that waited for it."""
        if self.pending and not self.shield:
            self.pending = False
            self.aborted = True
            raise asyncio.CancelledError

    def absorb(self) -> bool:
        """After catching CancelledError: True if it was only our abort (the task may carry on)."""
        if not self.aborted:
            return False
        self.aborted = False
        self.pending = False
        while self.cancels:
            self.cancels -= 1
            self.task.uncancel()
        return self.task.cancelling() == 0

    def reset(self) -> None:
        """Forget an abort that never landed (the work it was meant for ended first)."""
        if self.aborted:
            self.absorb()
        self.pending = False


def current_scope() -> Scope | None:
    task = asyncio.current_task()
    return None if task is None else _SCOPES.get(task)


def register() -> Scope:
    """Give the current task a scope (call first thing in the task)."""
    task = asyncio.current_task()
    assert task is not None
    scope = _SCOPES[task] = Scope(task)
    return scope


def unregister(scope: Scope) -> None:
    _SCOPES.pop(scope.task, None)


def abort(task: asyncio.Task[Any], epoch: int) -> None:
    """Abort ``task``'s work for epochs older than ``epoch`` (cancel it outright if it has no scope yet)."""
    scope = _SCOPES.get(task)
    if scope is None:
        if task is not asyncio.current_task():
            task.cancel()
    else:
        scope.abort(epoch)
