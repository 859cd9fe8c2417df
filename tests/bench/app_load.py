"""Part 3 of the app benchmark (tests/bench/bench_app.py): how many real-time sessions one server process holds.

``python tests/bench/app_load.py PORT`` serves the loopback-bot app that ``run_sessions`` drives (it starts it
as a subprocess itself). See bench_app.py's docstring for the method.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from app_fixtures import PHASES, emit, pct


def light_app() -> Any:
    """The server of part 3: the voxline transport around a loopback bot, plus /lag."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket
    from voxline.frames import AudioFrame, Frame, TTSAudioFrame
    from voxline.pipeline import Pipeline
    from voxline.processor import Direction, Processor
    from voxline.task import PipelineTask
    from voxline.transports import WebSocketTransport

    reply = b"\x01\x00" * 2400  # 100 ms at 24 kHz

    class LoopbackBot(Processor):
        """Answers every 100 ms of input audio with 100 ms of 24 kHz output audio."""

        def __init__(self) -> None:
            super().__init__(name="LoopbackBot")
            self.samples = 0

        async def process(self, frame: Frame, direction: Direction) -> None:
            if type(frame) is AudioFrame:
                self.samples += frame.num_samples
                if self.samples >= 1600:
                    self.samples -= 1600
                    await self.push(TTSAudioFrame(pcm=reply, sample_rate=24000))
                return
            await self.push(frame, direction)

    lags: list[float] = []

    async def monitor() -> None:
        while True:
            t = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - t - 0.01)

    async def lag(request: Request) -> JSONResponse:
        data = {
            "n": len(lags),
            "p50": pct(lags, 50) * 1000,
            "p99": pct(lags, 99) * 1000,
            "max": max(lags, default=0.0) * 1000,
        }
        if request.query_params.get("reset"):
            lags.clear()
        return JSONResponse(data)

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        transport = WebSocketTransport(websocket)
        task = PipelineTask(Pipeline([transport.input(), LoopbackBot(), transport.output()]))
        try:
            await task.run()
        finally:
            await transport.aclose()

    reply_message = '{"type":"audio","data":"' + base64.b64encode(reply).decode() + '"}'

    async def raw(websocket: WebSocket) -> None:
        """The baseline: the same traffic through Starlette and uvicorn with no voxline at all."""
        await websocket.accept()
        count = 0
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if (message.get("text") or "").startswith('{"type":"config"'):
                continue
            count += 1
            if count % 5 == 0:
                await websocket.send_text(reply_message)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        if os.environ.get("BENCH_GC", "app") == "app":
            from voxline.apps.voice_agent.app import tune_garbage_collector

            tune_garbage_collector()  # as the served voice agent does
        watcher = asyncio.create_task(monitor())
        yield
        watcher.cancel()

    routes = [Route("/lag", lag), WebSocketRoute("/ws", ws), WebSocketRoute("/raw", raw)]
    return Starlette(routes=routes, lifespan=lifespan)


def serve_light(port: int, ws_impl: str) -> None:
    import uvicorn

    uvicorn.run(
        light_app(),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ws=ws_impl,  # type: ignore[arg-type]
        ws_ping_interval=None,
        ws_per_message_deflate=False,  # as `voxline serve` runs: base64 audio does not compress
        loop=os.environ.get("BENCH_LOOP", "auto"),  # type: ignore[arg-type]
    )


def _loop_name() -> str:
    """The event loop uvicorn runs the server on ("auto" means uvloop when it is installed)."""
    loop = os.environ.get("BENCH_LOOP", "auto")
    if loop == "auto":
        try:
            import uvloop  # noqa: F401
        except ImportError:
            return "asyncio"
        return "uvloop"
    return loop


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _get(url: str) -> Any:
    def fetch() -> Any:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())

    return await asyncio.to_thread(fetch)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _load_level(
    base: str, n: int, seconds: float, server_pid: int, *, path: str = "/ws", binary: bool = False
) -> dict[str, Any]:
    from websockets.asyncio.client import connect
    from websockets.frames import Frame, Opcode

    pcm = b"\x02\x00" * 320  # 20 ms at 16 kHz
    if binary:
        frame = Frame(Opcode.BINARY, pcm)
    else:
        frame = Frame(Opcode.TEXT, json.dumps({"type": "audio", "data": base64.b64encode(pcm).decode()}).encode())
    # The load generator must not be what saturates the 2 cores: each tick writes one pre-built (masked) frame
    # straight to every connection's transport instead of going through the client library's send path.
    wire = frame.serialize(mask=True)
    received = [0]
    conns: list[Any] = []
    readers: list[asyncio.Task[None]] = []

    async def read(ws: Any) -> None:
        async for message in ws:
            if message.startswith('{"type":"audio"'):
                received[0] += 1

    try:
        for i in range(0, n, 25):
            batch = await asyncio.gather(
                *(
                    connect(base.replace("http", "ws") + path, ping_interval=None, compression=None)
                    for _ in range(min(25, n - i))
                )
            )
            if binary:
                for ws in batch:
                    await ws.send('{"type":"config","data":{"binary_audio":true}}')
            conns += batch
            readers += [asyncio.create_task(read(ws)) for ws in batch]
        transports = [ws.transport for ws in conns]
        ticks = 0
        start = time.monotonic()
        measure_from = start + 1.0  # one second of warm-up
        counted_from = 0
        late_ticks = 0
        reset = False
        # Browsers are not in phase: each session sends every 20 ms, but the sessions are spread over 10
        # slots of 2 ms (writing all of them at the same instant would measure a synthetic burst instead).
        slots = [transports[k::PHASES] for k in range(PHASES)]
        while time.monotonic() < measure_from + seconds:
            for k, slot in enumerate(slots):
                await asyncio.sleep(max(0.0, start + ticks * 0.02 + k * 0.02 / PHASES - time.monotonic()))
                for transport in slot:
                    transport.write(wire)
            ticks += 1
            now = time.monotonic()
            if not reset and now >= measure_from:
                await _get(base + "/lag?reset=1")
                cpu_from, wall_from = _cpu_seconds(server_pid), time.monotonic()
                counted_from = received[0]
                measured_ticks_from = ticks
                reset = True
            delay = start + ticks * 0.02 - now
            if delay < -0.02:
                late_ticks += 1
            await asyncio.sleep(max(0.0, delay))
        lag = await _get(base + "/lag?reset=1")
        cpu = (_cpu_seconds(server_pid) - cpu_from) / (time.monotonic() - wall_from)
        got = received[0] - counted_from
        expected = n * (ticks - measured_ticks_from) / 5
        return {
            "sessions": n,
            "audio_in": "binary" if binary else "json",
            "loop_lag_p50_ms": round(lag["p50"], 2),
            "loop_lag_p99_ms": round(lag["p99"], 2),
            "loop_lag_max_ms": round(lag["max"], 2),
            "audio_delivered": round(got / expected, 3) if expected else None,
            "server_cpu": round(cpu, 3),
            "server_cpu_ms_per_session_s": round(cpu * 1000 / n, 3),
            "client_late_ticks": late_ticks,
            "load_avg_1m": os.getloadavg()[0],
        }
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)
        await asyncio.gather(*readers, return_exceptions=True)
        await asyncio.sleep(0.5)


def run_sessions(levels: list[int], seconds: float, ws_impl: str, binary: bool) -> None:
    port = _free_port()
    # BENCH_NICE=-10 (as root) shields the server from other work on a shared machine: the question is what
    # one process holds when it has a core, not how the scheduler shares one. The level lines report it.
    niceness = int(os.environ.get("BENCH_NICE", "0"))
    server = subprocess.Popen(
        [sys.executable, __file__, str(port), ws_impl],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=(lambda: os.nice(niceness)) if niceness else None,
    )
    try:
        asyncio.run(bench_sessions(f"http://127.0.0.1:{port}", server.pid, levels, seconds, ws_impl, binary))
    finally:
        server.terminate()
        server.wait(10)


async def bench_sessions(
    base: str, server_pid: int, levels: list[int], seconds: float, ws_impl: str, binary: bool
) -> None:
    for _ in range(100):
        try:
            await _get(base + "/lag")
            break
        except OSError:
            await asyncio.sleep(0.1)
    baseline = await _load_level(base, levels[0], seconds, server_pid, path="/raw", binary=binary)
    emit("sessions_baseline_no_voxline", ws=ws_impl, loop=_loop_name(), **baseline)
    best = 0
    failures = 0
    cpu_costs: list[float] = []
    for n in levels:
        result = await _load_level(base, n, seconds, server_pid, binary=binary)
        ok = result["loop_lag_p99_ms"] <= 20 and (result["audio_delivered"] or 0) >= 0.95
        emit("sessions_level", ws=ws_impl, loop=_loop_name(), nice=os.environ.get("BENCH_NICE", "0"), ok=ok, **result)
        if ok or not cpu_costs:  # a starved server (lag over budget) under-reports its CPU per session
            cpu_costs.append(result["server_cpu_ms_per_session_s"])
        if ok:
            best, failures = n, 0
        else:
            failures += 1
            if failures == 2:
                break
    audio_in = "binary" if binary else "json"
    cost = statistics.median(cpu_costs)
    emit(
        "sessions",
        unit="sessions",
        value=best,
        target=300,
        ws=ws_impl,
        loop=_loop_name(),
        nice=os.environ.get("BENCH_NICE", "0"),
        audio_in=audio_in,
        levels=levels,
        cpu_ms_per_session_s=cost,
        # What one core could hold at 70 % busy (the rest is headroom for lag): a load-independent estimate,
        # since loop lag on a machine shared with other work measures the machine as much as the server.
        sessions_per_core_at_70pct=int(700 / cost) if cost else None,
        baseline_cpu_ms_per_session_s=baseline["server_cpu_ms_per_session_s"],
    )


if __name__ == "__main__":
    serve_light(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "websockets-sansio")
