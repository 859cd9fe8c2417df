"""Run a processor (or pipeline) through a list of steps in one call, and return what came out.

* :func:`run_processor` — feed frames on a schedule (:class:`Sleep`, :class:`Interrupt`), then an ``EndFrame``.
* :func:`drive` — the same steps plus :class:`Until`, waiting for the output instead of for wall-clock time.
* :func:`barge_in_on_first_audio` — the barge-in every TTS test needs: feed a reply, interrupt the moment its
  first audio is out, feed the next.

All three build on :func:`~voxline.testing.started`, so a failing or timed-out run is torn down whole.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from voxline.frames import Frame
from voxline.observers import Observer
from voxline.processor import Processor
from voxline.testing.result import RunResult
from voxline.testing.running import started
from voxline.testing.steps import Interrupt, Sleep, Step, audio_out

__all__ = ["barge_in_on_first_audio", "drive", "run_processor"]


async def run_processor(
    processor: Processor,
    frames: Iterable[Frame | Sleep | Interrupt],
    *,
    send_end: bool = True,
    timeout: float = 10.0,
    observers: Sequence[Observer] = (),
) -> RunResult:
    """Run ``processor`` on ``frames`` and collect its output. Raises ``TimeoutError`` if it never ends.

    With ``send_end=False`` the run is cancelled (not ended gracefully) once the frames are fed: use it to see
    what a processor emits without the flush an :class:`EndFrame` would cause. A stage that fails to start is
    not an exception here: the result's ``errors`` say which.
    """
    async with asyncio.timeout(timeout), started(processor, observers=observers, check_start=False) as run:
        if not run.running:
            await run.wait_finished(timeout=timeout)
            return run.result()
        await run.step(*frames)
        return await (run.end(timeout=timeout) if send_end else run.cancel("run_processor: send_end=False"))


async def drive(processor: Processor, steps: Sequence[Step], *, timeout: float = 20.0) -> RunResult:
    """Run ``processor`` through ``steps``, then an ``EndFrame``; return what came out (like ``run_processor``)."""
    async with asyncio.timeout(timeout), started(processor) as run:
        await run.step(*steps)
        return await run.end(timeout=timeout)


async def barge_in_on_first_audio(
    processor: Processor, before: Sequence[Frame], after: Sequence[Frame], *, timeout: float = 15.0
) -> RunResult:
    """Feed ``before``, interrupt as soon as its first audio is out (not after a guessed delay), then ``after``."""
    return await drive(processor, [*before, audio_out(), Interrupt(), *after], timeout=timeout)
