"""A bounded thread pool shared by every session of one engine kind, with urgent jobs ahead of the rest.

Why shared and bounded: on a 2-core machine, ten sessions each decoding on a thread of their own would run
twenty threads of model inference against two cores, and every one of them would finish late. One pool per
engine kind (whisper, piper, pocketsphinx) with a fixed number of workers keeps the cores busy with as many
jobs as they can run; the rest wait in line. So more sessions make replies come later, a little at a time
(graceful degradation), instead of making the whole machine thrash.

Why priorities: a user who has stopped speaking waits for the final transcript; nobody waits for an interim
one. ``urgent=True`` jobs (finals) go ahead of every queued non-urgent job (interims), first come first served
within each class. A job whose caller was cancelled before it started (an interrupted reply, a session that
ended) is skipped without running.

The threads are made by a :class:`concurrent.futures.ThreadPoolExecutor` with ``workers`` threads; they live
as long as the process (like the espeak thread), and the interpreter joins them at exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["WorkerPool"]

T = TypeVar("T")


class _Job:
    __slots__ = ("args", "fn", "future", "loop")

    def __init__(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[Any],
    ) -> None:
        self.fn = fn
        self.args = args
        self.loop = loop
        self.future = future


class WorkerPool:
    """``workers`` threads running blocking jobs for async callers; see the module docstring."""

    def __init__(self, name: str, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"WorkerPool({name!r}) needs at least 1 worker, got {workers}")
        self.name = name
        self.workers = workers
        self._executor: ThreadPoolExecutor | None = None
        self._heap: list[tuple[int, int, _Job]] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._running = 0
        self.jobs_run = 0
        """Jobs run to completion or failure (skipped ones not counted), for tests and benchmarks."""
        self.jobs_skipped = 0
        """Jobs whose caller gave up before a worker took them."""

    @property
    def busy(self) -> int:
        """Workers running a job right now."""
        return self._running

    @property
    def queued(self) -> int:
        """Jobs waiting for a worker."""
        return len(self._heap)

    @property
    def idle(self) -> bool:
        """A worker is free and nothing waits: a job submitted now starts at once."""
        return self._running + len(self._heap) < self.workers

    async def run(self, fn: Callable[..., T], *args: Any, urgent: bool = False) -> T:
        """Run ``fn(*args)`` on a worker and return its result. Cancelling the call skips the job if it has
        not started; a job already running finishes in its thread and its result is dropped."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        job = _Job(fn, args, loop, future)
        with self._lock:
            heapq.heappush(self._heap, (0 if urgent else 1, next(self._seq), job))
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix=self.name)
            executor = self._executor
        # One hand-off per job; the worker that takes it runs the most urgent job waiting, not necessarily this one.
        executor.submit(self._run_next)
        return await future

    def _run_next(self) -> None:
        with self._lock:
            _, _, job = heapq.heappop(self._heap)
            if job.future.done():  # cancelled by its caller while it waited
                self.jobs_skipped += 1
                return
            self._running += 1
        result: Any = None
        error: BaseException | None = None
        try:
            result = job.fn(*job.args)
        except BaseException as exc:
            error = exc
        with self._lock:  # before the caller hears of it, so what it reads next is up to date
            self._running -= 1
            self.jobs_run += 1
        _post(job, result, error)


def _post(job: _Job, result: Any, exc: BaseException | None) -> None:
    def settle() -> None:
        if job.future.done():
            return
        if exc is not None:
            job.future.set_exception(exc)
        else:
            job.future.set_result(result)

    with contextlib.suppress(RuntimeError):  # the caller's loop has closed (process shutdown): nobody waits
        job.loop.call_soon_threadsafe(settle)
