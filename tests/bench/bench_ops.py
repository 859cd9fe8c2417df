"""Benchmark of what the operations side costs a session: metrics, spans, resume saves, /metrics itself.

Prints one JSON object per line. ``--quick`` runs fewer rounds (a smoke run).

* ``ops.monitor_per_turn``: one turn's frames as they leave a real session's pipeline (speaking events, the
  stage metrics, reply start and end, TTS start and stop, the bot's speaking events upstream) through the
  :class:`SessionMonitor`, plus the output's turn record closing the turn into the latency histograms. Per audio
  frame the monitor does nothing at all (tests/test_ops_metrics.py counts its calls), so this per-turn figure is
  its whole cost. Also with ``TRACING=otel`` (the API's no-op tracer: no SDK installed in the process).
* ``ops.resume_save``: dumping a 20-turn conversation to JSON and putting it in the in-process store (what a
  session does after every reply).
* ``ops.metrics_render``: one ``/metrics`` exposition of this process's registry.

Run: ``python tests/bench/bench_ops.py [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def emit(name: str, value: float, unit: str, **extra: Any) -> None:
    line = {"bench": "ops", "name": name, "value": round(value, 3), "unit": unit, "target": None, **extra}
    print(json.dumps({**line, "load": round(os.getloadavg()[0], 2)}), flush=True)


class _Socket:
    async def receive(self) -> dict[str, Any]:
        await asyncio.Event().wait()
        return {}

    async def send_text(self, data: str) -> None:
        return None


def _turn_frames() -> tuple[list[Any], list[Any]]:
    from voxline.frames import (
        BotStartedSpeakingFrame,
        BotStoppedSpeakingFrame,
        LLMResponseEndFrame,
        LLMResponseStartFrame,
        MetricsFrame,
        TTSStartedFrame,
        TTSStoppedFrame,
        UserStartedSpeakingFrame,
        UserStoppedSpeakingFrame,
    )

    down = [
        UserStartedSpeakingFrame(),
        UserStoppedSpeakingFrame(),
        MetricsFrame(name="stt.latency", value=0.15),
        LLMResponseStartFrame(epoch=0),
        MetricsFrame(name="llm.ttft", value=0.4),
        TTSStartedFrame(epoch=0),
        MetricsFrame(name="tts.ttfb", value=0.25),
        MetricsFrame(name="tts.ttfb", value=0.2),
        TTSStoppedFrame(epoch=0),
        LLMResponseEndFrame(epoch=0),
    ]
    return down, [BotStartedSpeakingFrame(), BotStoppedSpeakingFrame()]


async def monitor_per_turn(rounds: int, *, tracing: bool) -> float:
    from voxline.apps.voice_agent.metrics import metrics
    from voxline.apps.voice_agent.monitor import SessionMonitor
    from voxline.apps.voice_agent.tracing import TurnSpans, make_tracer
    from voxline.transports import WebSocketTransport

    transport = WebSocketTransport(_Socket())
    tracer = make_tracer(tracing)
    spans = TurnSpans(tracer, "bench", {"stt": "deepgram", "llm": "gemini", "tts": "deepgram"}) if tracer else None
    monitor = SessionMonitor(transport, [], metrics(), spans=spans)
    record = monitor.turn_record
    down, up = _turn_frames()
    samples = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(rounds):
            for frame in down[:9]:
                monitor.on_downstream(frame)
            record.mark_user_end(time.monotonic_ns())
            record.mark_first_audio(time.monotonic_ns())
            record.take()
            monitor.on_downstream(down[9])
            for frame in up:
                monitor.on_upstream(frame)
        samples.append((time.perf_counter() - started) / rounds * 1e6)
    return statistics.median(samples)


async def resume_save(rounds: int) -> float:
    from voxline.apps.voice_agent.resume import Record, dump_turns
    from voxline.apps.voice_agent.store import MemoryStore
    from voxline.context import Context

    context = Context("prompt")
    for i in range(10):
        context.add_user(f"question number {i}: what is the weather like tomorrow in the mountains?")
        context.add_assistant("It will be sunny in the morning, cloudy later, with a little wind by the evening.")
    store = MemoryStore()
    started = time.perf_counter()
    for _ in range(rounds):
        await store.put("key", Record("conv", dump_turns(context), 10).to_json(), 30)
    return (time.perf_counter() - started) / rounds * 1e6


def metrics_render(rounds: int) -> float:
    from voxline.apps.voice_agent.metrics import render

    started = time.perf_counter()
    for _ in range(rounds):
        render()
    return (time.perf_counter() - started) / rounds * 1e3


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds = 200 if args.quick else 5000
    emit("monitor_per_turn", await monitor_per_turn(rounds, tracing=False), "us")
    emit("monitor_per_turn_tracing_noop", await monitor_per_turn(rounds, tracing=True), "us")
    emit("resume_save", await resume_save(rounds), "us", turns=20)
    emit("metrics_render", metrics_render(max(20, rounds // 50)), "ms")


if __name__ == "__main__":
    asyncio.run(main())
