"""Prometheus metrics of the voice agent, served at ``/metrics`` (docs/metrics.md lists every series).

The figures come from what the pipeline already reports — never from per-audio-frame work:

* per turn, the same figures the client's ``metrics`` message carries (STT latency, LLM time to first token,
  TTS time to first byte, voice to voice), taken from the output transport's turn record when it closes a turn;
* the frames that leave the pipeline's two ends (:class:`~voxline.apps.voice_agent.monitor.SessionMonitor`):
  replies, interruptions, ``<kind>.fallback`` switches, ``turn.*`` measurements, provider errors — a handful
  per turn, since the output consumes every data frame and only control and system frames reach the end;
* counters the transport and the provider sockets keep anyway (refused and dropped messages, reconnects),
  read every few seconds and at the end of each session;
* admission (refusals by reason) and the process itself (event-loop lag, draining).

With ``--workers N`` every worker writes its figures to files in ``PROMETHEUS_MULTIPROC_DIR`` (``voxline serve``
creates and empties it) and whichever worker answers ``/metrics`` sums them (prometheus-client's multi-process
mode): one scrape sees the whole server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

__all__ = ["CONTENT_TYPE_LATEST", "LagProbe", "Metrics", "metrics", "render"]

logger = logging.getLogger("voxline.apps.voice_agent.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
LAG_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
LATENCY_STAGES = {
    "stt_ms": "stt",
    "llm_ttft_ms": "llm_ttft",
    "tts_ttfb_ms": "tts_ttfb",
    "voice_to_voice_ms": "voice_to_voice",
}
"""The client's ``metrics`` message fields → the ``stage`` label of ``voxline_latency_seconds``."""


class Metrics:
    """Every series of the agent. One per process (Prometheus registries are process-wide): :func:`metrics`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry if registry is not None else REGISTRY
        self.sessions_active = Gauge(
            "voxline_sessions_active",
            "Sessions admitted and not yet torn down",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.sessions = Counter("voxline_sessions", "Sessions started", ["resumed"], registry=r)
        self.session_endings = Counter("voxline_session_endings", "Sessions ended, by why", ["reason"], registry=r)
        self.turns = Counter("voxline_turns", "Replies, by whether the model finished", ["outcome"], registry=r)
        self.interruptions = Counter(
            "voxline_interruptions", "Replies cut while generated or played, by who cut them", ["by"], registry=r
        )
        self.latency = Histogram(
            "voxline_latency_seconds",
            "Per turn: STT latency, LLM time to first token, TTS time to first byte, voice to voice",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.turn_engine = Histogram(
            "voxline_turn_engine_seconds", "The turn engine's measurements (turn.*)", ["measure"], registry=r
        )
        self.provider_errors = Counter(
            "voxline_provider_errors", "Errors reported by provider stages", ["provider", "kind"], registry=r
        )
        self.provider_reconnects = Counter(
            "voxline_provider_reconnects",
            "Provider sockets opened again after a drop",
            ["provider", "kind"],
            registry=r,
        )
        self.fallbacks = Counter(
            "voxline_fallback_switches", "Fallback stages switching provider", ["kind"], registry=r
        )
        self.rejections = Counter("voxline_rejections", "Connections refused, by reason", ["reason"], registry=r)
        self.drops = Counter("voxline_drops", "Messages refused or dropped, by reason", ["reason"], registry=r)
        self.resumes = Counter("voxline_resumes", "Resume requests, by outcome", ["outcome"], registry=r)
        self.store_errors = Counter("voxline_store_errors", "Session store operations that failed", ["op"], registry=r)
        self.loop_lag = Histogram(
            "voxline_event_loop_lag_seconds", "How late the event loop ran a timer", buckets=LAG_BUCKETS, registry=r
        )
        self.draining = Gauge("voxline_draining", "1 while the process drains", registry=r, multiprocess_mode="livemax")
        self.draining.set(0)

    def observe_turn(self, figures: dict[str, Any]) -> None:
        """One turn's figures, as the client's ``metrics`` message has them (ms, None when unknown)."""
        for field, stage in LATENCY_STAGES.items():
            value = figures.get(field)
            if isinstance(value, (int, float)):
                self.latency.labels(stage).observe(value / 1000.0)


_METRICS: Metrics | None = None


def metrics() -> Metrics:
    """The process's metrics (made on first use)."""
    global _METRICS
    if _METRICS is None:
        _METRICS = Metrics()
    return _METRICS


def render() -> bytes:
    """The exposition text: this process's registry, or every worker's files in multi-process mode."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def process_exited() -> None:
    """Drop this worker's live gauges from the sums (multi-process mode; at the app's shutdown)."""
    if os.environ.get(MULTIPROC_ENV):
        with contextlib.suppress(Exception):
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


class LagProbe:
    """Measures event-loop lag (how late a timer fires) every ``interval`` s, and runs ``every`` hooks each
    ``sync_every`` ticks (the sessions' counters are read there)."""

    def __init__(
        self,
        sink: Metrics,
        *,
        interval: float = 0.25,
        sync_every: int = 20,
        hooks: Iterable[Callable[[], None]] = (),
    ) -> None:
        self.sink = sink
        self.interval = interval
        self.sync_every = sync_every
        self.hooks = list(hooks)
        self.worst = 0.0
        """The largest lag seen so far (seconds)."""
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag")

    async def _run(self) -> None:
        ticks = 0
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.interval)
            lag = max(0.0, time.monotonic() - before - self.interval)
            self.worst = max(self.worst, lag)
            self.sink.loop_lag.observe(lag)
            ticks += 1
            if ticks % self.sync_every == 0:
                for hook in self.hooks:
                    try:
                        hook()
                    except Exception:  # a metrics hook must never take the probe down
                        logger.exception("a metrics hook failed")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
