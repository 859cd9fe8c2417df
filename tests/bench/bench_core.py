"""Benchmarks of the core (frames, processors, pipeline task). One JSON object per line on stdout.

Run: ``python tests/bench/bench_core.py`` (full) or ``--quick`` (a smoke run of every workload, in seconds).
Each line: ``{"bench": "core", "name", "value", "unit", "target", "ok", ...details}``. ``ok`` compares with the
target; the full run is what docs/performance.md records. Where each clock starts and stops:

* ``w1_throughput`` — 5 passthrough processors, 20,000 small data frames (alternating ``TextFrame`` and a
  640-byte ``AudioFrame``), built before the clock. Clock: from just before the first ``queue_frame`` to the
  moment the sink sees the ``EndFrame`` queued after the last one. Best and median of 5 runs. Variants for
  information: with an observer attached, and with all five stages ``QueuedProcessor``s.
* ``w2_latency`` — one 20 ms ``AudioFrame`` every 20 ms for 10 s (paced on absolute deadlines) through 5
  passthrough processors. ``w2_latency_p99``: a head stage pushes the frames from its own task, as the WebSocket
  input transport does; clock from ``perf_counter_ns`` just before its ``await self.push(frame)`` to the sink's
  ``on_downstream`` callback for that frame. ``w2_latency_queue_frame_p99``: the frames go in with
  ``await task.queue_frame(frame)`` instead (clock starts just before it), which adds the hand-off to the
  head's worker task: one event-loop wake-up.
* ``w3_interrupt`` — passthrough, an LLM stand-in streaming a ``TextFrame`` every 1 ms from an epoch-bound
  task, a slow ``QueuedProcessor`` (2 ms per text frame) with a backlog of 50 frames queued in it, and two
  passthroughs. Clock: just before ``await task.interrupt()`` to the sink's callback for the
  ``InterruptFrame``. Every text frame carries the turn it was made for in its text (not only in its epoch
  stamp, which is what the gates check); the sink counts those of a turn an interrupt had already ended when
  they arrived (must be 0), over the whole run.
* ``w4_idle_pipelines`` — 100 pipelines of 5 passthrough processors, each created and run until
  ``wait_until_running()``. Memory: ``tracemalloc`` traced bytes after minus before, / 100. Tasks:
  ``len(asyncio.all_tasks())`` after minus before, / 100 (this counts the task running ``run()``, which the
  caller creates, and the head's worker). Time: a separate pass without tracemalloc, from before the first
  ``PipelineTask(...)`` to the last ``wait_until_running()`` returning.
* ``import_voxline`` / ``import_voxline_task`` — a fresh interpreter per sample; the clock is inside it,
  around the import statement only (interpreter start-up excluded). Median of 9 (5 with ``--quick``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import subprocess
import sys
import time
import tracemalloc
from typing import Any

from voxline.frames import (
    AudioFrame,
    EndFrame,
    Frame,
    InterruptFrame,
    StartFrame,
    TextFrame,
    UserTextFrame,
)
from voxline.pipeline import Pipeline
from voxline.processor import Direction, Processor
from voxline.queued import QueuedProcessor
from voxline.task import PipelineTask


def emit(name: str, value: float, unit: str, target: float | None, higher_is_better: bool, **details: Any) -> None:
    ok = None if target is None else (value >= target if higher_is_better else value <= target)
    line = {"bench": "core", "name": name, "value": round(value, 3), "unit": unit, "target": target, "ok": ok}
    print(json.dumps({**line, **details}), flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


class Passthrough(Processor):
    """The base Processor forwards everything: the cost of a hop and nothing else."""


class QueuedPassthrough(QueuedProcessor):
    pass


# --- W1 ------------------------------------------------------------------------------------------------------


async def _throughput_once(n: int, stage: type[Processor], observers: tuple[Any, ...] = ()) -> float:
    frames: list[Frame] = [
        TextFrame(text="hello") if i % 2 else AudioFrame(pcm=b"\0" * 640, sample_rate=16000) for i in range(n)
    ]
    task = PipelineTask(Pipeline([stage() for _ in range(5)]), observers=observers)
    done = asyncio.Event()
    end_ns = 0

    def on_frame(frame: Frame) -> None:
        nonlocal end_ns
        if isinstance(frame, EndFrame):
            end_ns = time.perf_counter_ns()
            done.set()

    task.on_downstream(on_frame)
    runner = asyncio.create_task(task.run())
    await task.wait_until_running()
    gc.collect()
    start_ns = time.perf_counter_ns()
    for frame in frames:
        await task.queue_frame(frame)
    await task.queue_frame(EndFrame())
    await done.wait()
    await runner
    return n / ((end_ns - start_ns) / 1e9)


class _NullObserver:
    def on_push(self, source: Any, destination: Any, frame: Frame, direction: Direction) -> None:
        pass


async def w1(quick: bool) -> None:
    n, runs = (2_000, 2) if quick else (20_000, 5)
    rates = [await _throughput_once(n, Passthrough) for _ in range(runs)]
    emit(
        "w1_throughput",
        max(rates),
        "frames/s",
        60_000,
        True,
        median=round(statistics.median(rates)),
        frames=n,
        hops=5,
        pipecat_leanest=9_600,
    )
    observed = [await _throughput_once(n, Passthrough, (_NullObserver(),)) for _ in range(runs)]
    emit("w1_throughput_with_observer", max(observed), "frames/s", None, True, frames=n)
    queued = [await _throughput_once(n, QueuedPassthrough) for _ in range(runs)]
    emit("w1_throughput_queued_stages", max(queued), "frames/s", None, True, frames=n)


# --- W2 ------------------------------------------------------------------------------------------------------


class Microphone(Processor):
    """A head stage that pushes audio from its own task, the way the WebSocket input transport does."""

    def __init__(self, count: int, sent: dict[int, int]) -> None:
        super().__init__()
        self.count = count
        self.sent = sent
        self.done = asyncio.Event()

    async def process(self, frame: Frame, direction: Direction) -> None:
        await self.push(frame, direction)
        if isinstance(frame, StartFrame):
            self.create_task(self._speak(), epoch_bound=False)

    async def _speak(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(self.count):
            await asyncio.sleep(max(0.0, start + i * 0.02 - loop.time()))
            frame = AudioFrame(pcm=b"\0" * 640, sample_rate=16000)
            self.sent[frame.id] = time.perf_counter_ns()
            await self.push(frame)
        self.done.set()


def _latency_sink(sent: dict[int, int], latencies_us: list[float]) -> Any:
    def on_frame(frame: Frame) -> None:
        now = time.perf_counter_ns()
        start = sent.pop(frame.id, None)
        if start is not None:
            latencies_us.append((now - start) / 1000)

    return on_frame


async def w2(quick: bool) -> None:
    count = int((1.0 if quick else 10.0) / 0.02)
    # From a head stage's push to the sink: the path audio takes from the input transport.
    sent: dict[int, int] = {}
    pushed_us: list[float] = []
    mic = Microphone(count, sent)
    task = PipelineTask(Pipeline([mic, *(Passthrough() for _ in range(5))]))
    task.on_downstream(_latency_sink(sent, pushed_us))
    runner = asyncio.create_task(task.run())
    await task.wait_until_running()
    await mic.done.wait()
    await task.queue_frame(EndFrame())
    await runner
    # From task.queue_frame to the sink: adds the hand-off to the head's worker task (one event-loop wake-up).
    sent = {}
    queued_us: list[float] = []
    task = PipelineTask(Pipeline([Passthrough() for _ in range(5)]))
    task.on_downstream(_latency_sink(sent, queued_us))
    runner = asyncio.create_task(task.run())
    await task.wait_until_running()
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(count):
        await asyncio.sleep(max(0.0, start + i * 0.02 - loop.time()))
        frame = AudioFrame(pcm=b"\0" * 640, sample_rate=16000)
        sent[frame.id] = time.perf_counter_ns()
        await task.queue_frame(frame)
    await asyncio.sleep(0.05)
    await task.queue_frame(EndFrame())
    await runner
    for name, values in (("w2_latency_p99", pushed_us), ("w2_latency_queue_frame_p99", queued_us)):
        emit(
            name,
            percentile(values, 99),
            "us",
            150,
            False,
            p50=round(percentile(values, 50), 1),
            max=round(max(values), 1),
            frames=len(values),
            pipecat_p50=343,
            pipecat_p99=628,
        )


# --- W3 ------------------------------------------------------------------------------------------------------


class LLMStandIn(Processor):
    """Answers a UserTextFrame by streaming text from an epoch-bound task, one chunk per millisecond."""

    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, UserTextFrame):
            self.create_task(self._stream())
            return
        await self.push(frame, direction)

    async def _stream(self) -> None:
        turn = self.epoch  # tagged into the text: the sink checks the truth, not the stamp the gates check
        for i in range(10_000):
            await asyncio.sleep(0.001)
            await self.push(TextFrame(text=f"{turn}:token{i} "))


class SlowStage(QueuedProcessor):
    """Takes 2 ms per text frame (a TTS stand-in), so a backlog builds up in its queue."""

    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, TextFrame):
            await asyncio.sleep(0.002)
        await self.push(frame, direction)


async def w3(quick: bool) -> None:
    trials = 20 if quick else 200
    slow = SlowStage()
    task = PipelineTask(Pipeline([Passthrough(), LLMStandIn(), slow, Passthrough(), Passthrough()]))
    seen_ns: dict[int, int] = {}
    stale = 0
    current = {"epoch": 0}

    def on_frame(frame: Frame) -> None:
        nonlocal stale
        if isinstance(frame, InterruptFrame) and frame.epoch is not None:
            seen_ns[frame.epoch] = time.perf_counter_ns()
        elif isinstance(frame, TextFrame) and int(frame.text.split(":", 1)[0]) < current["epoch"]:
            stale += 1  # made for a turn that an interrupt had already ended when it reached the sink

    task.on_downstream(on_frame)
    runner = asyncio.create_task(task.run())
    await task.wait_until_running()
    latencies_us: list[float] = []
    backlog = []
    for _ in range(trials):
        await task.queue_frame(UserTextFrame(text="go"))
        for i in range(50):
            await task.queue_frame(TextFrame(text=f"{task.epoch}:queued{i} "))
        await asyncio.sleep(0.01)
        backlog.append(slow.queued)
        start = time.perf_counter_ns()
        await task.interrupt("bench")
        current["epoch"] = task.epoch
        latencies_us.append((seen_ns[task.epoch] - start) / 1000)
        await asyncio.sleep(0.02)
    await task.queue_frame(EndFrame())
    await runner
    emit(
        "w3_interrupt_p95",
        percentile(latencies_us, 95) / 1000,
        "ms",
        0.3,
        False,
        p50_ms=round(percentile(latencies_us, 50) / 1000, 4),
        max_ms=round(max(latencies_us) / 1000, 4),
        stale_frames=stale,
        mean_backlog=round(statistics.mean(backlog), 1),
        trials=trials,
        pipecat_p50_ms=0.70,
        pipecat_p95_ms=1.10,
    )
    emit("w3_stale_frames", stale, "frames", 0, False)


# --- W4 ------------------------------------------------------------------------------------------------------


async def _start_many(n: int) -> tuple[list[PipelineTask], list[asyncio.Task[None]]]:
    tasks = [PipelineTask(Pipeline([Passthrough() for _ in range(5)])) for _ in range(n)]
    runners = [asyncio.create_task(t.run()) for t in tasks]
    for t in tasks:
        await t.wait_until_running()
    return tasks, runners


async def _stop_many(tasks: list[PipelineTask], runners: list[asyncio.Task[None]]) -> None:
    for t in tasks:
        await t.cancel()
    await asyncio.gather(*runners)


async def w4(quick: bool) -> None:
    n = 100
    # Time, without tracemalloc (it slows allocation down several times).
    gc.collect()
    start = time.perf_counter()
    tasks, runners = await _start_many(n)
    elapsed_ms = (time.perf_counter() - start) * 1000
    await _stop_many(tasks, runners)
    del tasks, runners
    # Memory and tasks.
    gc.collect()
    before_tasks = len(asyncio.all_tasks())
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    tasks, runners = await _start_many(n)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    per_task = (len(asyncio.all_tasks()) - before_tasks) / n
    await _stop_many(tasks, runners)
    emit("w4_memory_per_pipeline", (after - before) / n / 1024, "KiB", 60, False, pipelines=n, pipecat_kib=240)
    emit("w4_tasks_per_pipeline", per_task, "tasks", 6, False, pipecat_tasks=19)
    emit("w4_start_100_pipelines", elapsed_ms, "ms", 50, False, pipecat_ms=226)


# --- imports -------------------------------------------------------------------------------------------------


def imports(quick: bool) -> None:
    samples = 5 if quick else 9
    for module, name in (("voxline", "import_voxline"), ("voxline.task", "import_voxline_task")):
        code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
        times = [
            float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
            for _ in range(samples)
        ]
        emit(name, statistics.median(times) * 1000, "ms", 150, False, samples=samples, pipecat_ms=404)


async def main(quick: bool) -> None:
    await w1(quick)
    await w2(quick)
    await w3(quick)
    await w4(quick)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run of every workload")
    args = parser.parse_args()
    asyncio.run(main(args.quick))
    imports(args.quick)
