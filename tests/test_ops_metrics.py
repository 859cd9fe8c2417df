"""Prometheus /metrics and OpenTelemetry spans, fed from what the pipeline already reports: spoken and typed
turns, interruptions, provider errors, reconnects and fallbacks, refusals and drops, over real sockets against
the fake providers. The session monitor does no work per audio frame (counted here)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from app_helpers import Client, serve_app, silence, tone
from ops_support import ahttp, cloud_env, cloud_fakes
from prometheus_client.parser import text_string_to_metric_families
from starlette.config import Config
from voxline.apps.voice_agent import create_app
from voxline.apps.voice_agent.monitor import SessionMonitor

UTTERANCE = tone(0.4) + silence(0.6)
REPLY = "Sunny all day. Light wind in the evening."


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


class Scrape:
    """Two scrapes of /metrics and the difference between them (the registry is the process's: other tests count
    into it too)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.before: dict[Any, float] = {}
        self.after: dict[Any, float] = {}

    async def take(self) -> dict[Any, float]:
        status, text = await ahttp(f"{self.base}/metrics")
        assert status == 200
        return _samples(text)

    def delta(self, name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return self.after.get(key, 0.0) - self.before.get(key, 0.0)


@asynccontextmanager
async def agent(tmp_path: Path, **env: str) -> AsyncIterator[tuple[str, Any, Any, Any]]:
    async with cloud_fakes(REPLY, tokens_per_second=0) as (dg, gm):
        app = create_app(Config(environ={"LOG_DIR": "", **cloud_env(dg, gm), **env}), static_dir=tmp_path)
        async with serve_app(app) as url:
            yield url, app.state.agent, dg, gm


async def test_turns_latencies_interruptions_refusals_and_drops_are_counted(tmp_path: Path) -> None:
    async with agent(tmp_path) as (url, state, _dg, gm):
        scrape = Scrape(url.replace("ws://", "http://"))
        scrape.before = await scrape.take()
        async with Client.connect(url) as client:
            await client.wait_message("session")
            assert state.metrics.sessions_active._value.get() >= 1
            await client.send_audio(UTTERANCE, pause=0.002)  # a spoken turn: STT, LLM, TTS, voice to voice
            await client.wait_message("status", "complete", timeout=15)
            await client.wait_message("speaking", {"who": "bot", "state": "stopped"}, timeout=15)
            gm.pacing = type(gm.pacing)(first_token_delay=0.0, tokens_per_second=5)
            await client.send({"type": "text", "data": "tell me more"})  # cut by the client mid-reply
            await client.wait_message("text_chunk", timeout=10)
            await client.send({"type": "interrupt"})
            await client.wait_message("status", "interrupted", timeout=10)
            await client.send("not json")  # bad input: an error and a drop
            await client.wait_for(lambda m: any(x["type"] == "error" for x in m))
        async with Client.connect(url) as refused:  # the wrong origin
            await refused.ws.close()
        from websockets.asyncio.client import connect

        async with connect(url + "/ws", additional_headers={"Origin": "https://evil.example"}) as ws:
            await ws.recv()
        await _until(lambda: state.sessions == 0)
        scrape.after = await scrape.take()

    d = scrape.delta
    assert d("voxline_sessions_total", resumed="false") == 2
    assert d("voxline_turns_total", outcome="complete") == 1
    assert d("voxline_turns_total", outcome="interrupted") == 1
    assert d("voxline_interruptions_total", by="client") == 1
    for stage in ("stt", "llm_ttft", "tts_ttfb", "voice_to_voice"):
        assert d("voxline_latency_seconds_count", stage=stage) >= 1, stage
    assert d("voxline_rejections_total", reason="origin") == 1
    assert d("voxline_drops_total", reason="bad_input") == 1
    assert d("voxline_session_endings_total", reason="client_left") == 2
    assert scrape.after[("voxline_sessions_active", ())] == 0
    assert d("voxline_event_loop_lag_seconds_count") > 0


async def test_provider_errors_reconnects_and_fallbacks_are_counted_by_provider_and_kind(tmp_path: Path) -> None:
    async with agent(tmp_path, LLM_FALLBACK="echo") as (url, state, dg, gm):
        scrape = Scrape(url.replace("ws://", "http://"))
        scrape.before = await scrape.take()
        async with Client.connect(url) as client:
            await client.wait_message("session")
            gm.fail(503, times=2)  # both tries of the step fail: the fallback (echo) takes the turn
            await client.send({"type": "text", "data": "hello"})
            await client.wait_message("status", "complete", timeout=15)
            dg.faults.tts_error_after_bytes = 1000  # the speak socket fails mid-reply and is opened again
            await client.send({"type": "text", "data": "again"})
            await client.wait_message("status", "complete", count=2, timeout=15)
            await _until(lambda: sum(c.kind == "speak" for c in dg.connections) >= 2)
        await _until(lambda: state.sessions == 0)
        scrape.after = await scrape.take()
    assert scrape.delta("voxline_fallback_switches_total", kind="llm") >= 1
    assert scrape.delta("voxline_provider_reconnects_total", provider="deepgram", kind="tts") >= 1

    async with agent(tmp_path) as (url, state, _dg, gm):
        scrape = Scrape(url.replace("ws://", "http://"))
        scrape.before = await scrape.take()
        async with Client.connect(url) as client:
            await client.wait_message("session")
            gm.fail(503, times=3)  # every attempt fails: the turn ends with an error
            await client.send({"type": "text", "data": "hello"})
            await client.wait_for(lambda m: any(x["type"] == "error" for x in m), timeout=15)
        await _until(lambda: state.sessions == 0)
        scrape.after = await scrape.take()
    assert scrape.delta("voxline_provider_errors_total", provider="gemini", kind="llm") == 1


async def test_the_monitor_sees_no_audio_frames(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hot path: per audio message in or out, the monitor does nothing (it sees only the frames that leave
    the pipeline's ends: a handful per turn)."""
    calls = {"down": 0, "up": 0}
    down, up = SessionMonitor.on_downstream, SessionMonitor.on_upstream

    def count_down(self: SessionMonitor, frame: Any) -> None:
        calls["down"] += 1
        down(self, frame)

    def count_up(self: SessionMonitor, frame: Any) -> None:
        calls["up"] += 1
        up(self, frame)

    monkeypatch.setattr(SessionMonitor, "on_downstream", count_down)
    monkeypatch.setattr(SessionMonitor, "on_upstream", count_up)
    async with agent(tmp_path) as (url, _state, _dg, _gm), Client.connect(url) as client:
        await client.wait_message("session")
        for _ in range(3):
            await client.send_audio(UTTERANCE, pause=0.002)
            await client.wait_message("status", "complete", count=_ + 1, timeout=15)
            await client.wait_message("speaking", {"who": "bot", "state": "stopped"}, count=_ + 1, timeout=15)
        audio_in = 3 * len(UTTERANCE) // 640
        audio_out = len(client.of_type("audio"))
    assert audio_in + audio_out > 100
    print(f"monitor calls {calls} for {audio_in} audio messages in and {audio_out} out")
    assert calls["down"] + calls["up"] <= 15 * 3 + 5, calls  # per turn, not per frame


async def test_otel_spans_per_turn_and_per_provider_call(tmp_path: Path) -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # once per process; later calls are ignored (and warned about)
    if trace.get_tracer_provider() is not provider:
        pytest.skip("another test set the process's tracer provider first")
    async with agent(tmp_path, TRACING="otel") as (url, _state, _dg, _gm), Client.connect(url) as client:
        await client.wait_message("session")
        await client.send_audio(UTTERANCE, pause=0.002)
        await client.wait_message("status", "complete", timeout=15)
        await client.wait_message("speaking", {"who": "bot", "state": "stopped"}, timeout=15)
        sid = client.of_type("session")[0]["id"]
    spans = {s.name: s for s in exporter.get_finished_spans() if s.attributes.get("voxline.session.id") == sid}
    assert set(spans) == {"voxline.turn", "voxline.stt", "voxline.llm", "voxline.tts"}
    turn = spans["voxline.turn"]
    assert turn.attributes["voxline.turn"] == 1 and turn.attributes["voxline.interrupted"] is False
    assert turn.attributes["voxline.voice_to_voice_ms"] > 0
    for name in ("voxline.stt", "voxline.llm", "voxline.tts"):
        child = spans[name]
        assert child.parent is not None and child.parent.span_id == turn.context.span_id
        assert child.attributes["voxline.provider"] in ("deepgram", "gemini")
    assert [e.name for e in spans["voxline.llm"].events] == ["first_token"]
    assert "first_audio" in [e.name for e in spans["voxline.tts"].events]
    assert turn.start_time <= spans["voxline.llm"].start_time <= spans["voxline.llm"].end_time <= turn.end_time


async def test_tracing_off_makes_no_spans_and_metrics_off_has_no_route(tmp_path: Path) -> None:
    async with agent(tmp_path, METRICS="off") as (url, state, _dg, _gm):
        assert state.tracer is None
        assert (await ahttp(url.replace("ws://", "http://") + "/metrics"))[0] == 404


async def _until(predicate: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 - polling state from outside
            await asyncio.sleep(0.02)


def test_the_grafana_dashboard_imports_and_queries_only_series_the_agent_exports() -> None:
    import json
    import re

    from prometheus_client import CollectorRegistry, generate_latest
    from voxline.apps.voice_agent.metrics import Metrics

    registry = CollectorRegistry()
    sink = Metrics(registry)
    for labels in (("stt",), ("x",)):
        sink.latency.labels(*labels).observe(0.1)
    sink.loop_lag.observe(0.001)
    sink.turn_engine.labels("model").observe(0.1)
    exported = {s.name for f in text_string_to_metric_families(generate_latest(registry).decode()) for s in f.samples}
    exported |= {f"{f.name}_total" for f in registry.collect() if f.type == "counter"}
    dashboard = json.loads((Path(__file__).resolve().parent.parent / "docs" / "grafana-dashboard.json").read_text())
    assert dashboard["__inputs"][0]["pluginId"] == "prometheus" and dashboard["panels"]
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bvoxline_\w+", target["expr"])
    }
    assert queried and queried - exported == set()
    documented = set(
        re.findall(r"`(voxline_\w+)`", (Path(__file__).resolve().parent.parent / "docs" / "metrics.md").read_text())
    )
    families = {f.name if f.type != "counter" else f"{f.name}_total" for f in registry.collect()}
    assert families == documented
