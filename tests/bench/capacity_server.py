"""The server process of the capacity benchmark (tests/bench/bench_capacity.py): the voice agent as
``voxline serve`` serves it, plus an event-loop lag probe.

``python tests/bench/capacity_server.py PORT WORKERS`` runs ``voxline serve --port PORT --workers WORKERS``
(the CLI's own code path: uvicorn on uvloop, the served app with its GC tuning and memory upkeep, WebSocket
compression off, the agent's HTTP protocol) with one change: the ASGI app is :data:`app`, which wraps the
served app to start a lag probe in every worker. Configuration comes from the environment (the benchmark
points the providers at the fakes' process).

The probe sleeps 10 ms in a loop and records how late each wake-up was; every second it appends
``(monotonic time, lag)`` pairs to ``$BENCH_LAG_DIR/lag-<pid>.bin`` (float64), so the benchmark can read
every worker's lag over any window without a request that would land on one worker only. Beside it,
``gc-<pid>.bin`` holds ``(monotonic time, seconds spent in garbage collection so far)`` once a second.

``BENCH_PROFILE=DIR``: each worker runs cProfile between SIGUSR1 (start) and SIGUSR2 (stop and write
``DIR/prof-<pid>-<window>.pstats``), so a profile covers only the measured window.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
import time
from array import array
from pathlib import Path
from typing import Any

PROBE_INTERVAL = 0.01


class _GCTime:
    """Seconds spent in garbage collection so far (``gc.callbacks``), to tell the collector's share of the CPU."""

    def __init__(self) -> None:
        self.total = 0.0
        self._start = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.total += time.perf_counter() - self._start


async def _probe(lag_path: Path, gc_path: Path) -> None:
    collector = _GCTime()
    pending = array("d")
    flushed = time.monotonic()
    while True:
        t = time.monotonic()
        await asyncio.sleep(PROBE_INTERVAL)
        now = time.monotonic()
        pending.extend((now, now - t - PROBE_INTERVAL))
        if now - flushed >= 1.0:
            with lag_path.open("ab") as f:
                pending.tofile(f)
            with gc_path.open("ab") as f:
                array("d", (now, collector.total)).tofile(f)
            del pending[:]
            flushed = now


def _profiling(directory: str) -> None:
    import cProfile

    loop = asyncio.get_running_loop()
    current: list[cProfile.Profile] = []
    windows = iter(range(1, 1000))

    def start() -> None:
        current[:] = [cProfile.Profile()]
        current[0].enable()

    def stop() -> None:
        if current:
            current[0].disable()
            current.pop().dump_stats(Path(directory) / f"prof-{os.getpid()}-{next(windows)}.pstats")

    loop.add_signal_handler(signal.SIGUSR1, start)
    loop.add_signal_handler(signal.SIGUSR2, stop)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The served voice agent, with the lag probe started when the worker's lifespan starts."""
    from voxline.apps.voice_agent import app as agent

    if scope["type"] == "lifespan" and not _started:
        directory = Path(os.environ["BENCH_LAG_DIR"])
        probe = _probe(directory / f"lag-{os.getpid()}.bin", directory / f"gc-{os.getpid()}.bin")
        _started.append(asyncio.create_task(probe))
        if os.environ.get("BENCH_PROFILE"):
            _profiling(os.environ["BENCH_PROFILE"])
    await agent(scope, receive, send)


_started: list[asyncio.Task[None]] = []


def main() -> int:
    from voxline.apps import cli

    cli.APP = "capacity_server:app"
    port, workers = sys.argv[1], sys.argv[2]
    return cli.main(["serve", "--port", port, "--workers", workers, "--env-file", "/nonexistent/.env"])


if __name__ == "__main__":
    sys.exit(main())
