"""Benchmark: the CPU one client audio message costs on its way in, layer by layer, in one process.

A 20 ms microphone chunk (640 bytes of 16 kHz PCM) arrives 50 times a second per session. This times what the
server does with one, back to back, on the real code of each layer, with no socket in between (the socket read
itself is the event loop's, measured by tests/bench/bench_capacity.py):

* ``uvicorn``: uvicorn's WebSocket protocol (``--ws``, default ``websockets-sansio``) parses the masked frame
  (``data_received``, as the loop calls it) and queues the ASGI message; the app awaits the ASGI ``receive``;
* ``starlette``: the same, read through Starlette's ``WebSocket.receive`` (its state checks);
* ``task``: the same, read by a task that does nothing with the message but wake the next (the benchmark's
  own task switches: the reader's wake-up, which a served session pays too, and the timing loop's);
* ``voxline``: the whole input as it runs in a session: voxline's reader task (``WebSocketInput``) wakes on
  the message, applies the limits, parses it and pushes an ``AudioFrame`` to the next stage (a sink) — the
  reader task's wake-up per message included, as in a served session.

Each wire: ``json`` (the seed's ``{"type":"audio","data":"<base64>"}``) and ``binary`` (a raw frame after
``config`` ``binary_audio``). Per case: microseconds of CPU (``time.process_time``) per message, the best of
``--repeats`` runs of ``--messages`` messages (the best: on a shared machine the noise only adds). Layers are
measured interleaved, so that a change of the machine's load hits them alike; compare runs made back to back.

``python tests/bench/bench_client_in.py [--ws websockets-sansio|websockets|wsproto] [--messages N]`` (``wsproto`` needs
the ``wsproto`` package, which voxline does not install; ``websockets`` is uvicorn's deprecated legacy one).

``--sockets N`` measures the same path with real sockets instead: a uvicorn server process (uvloop, compression
off, as ``voxline serve`` runs) whose sessions are voxline's input and a sink, N loopback clients sending 20 ms
chunks in real time (spread over ten 2 ms phase slots), and the server's CPU from /proc over ``--seconds``,
divided by the messages sent: everything one message costs the server process, the loop's socket read included.
The clock ticks in 10 ms, so keep N x seconds large (100 sessions for 20 s: 100,000 messages).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from websockets.frames import Frame, Opcode

PCM = bytes(range(256)) * 2 + bytes(128)  # 640 bytes: 20 ms at 16 kHz
HANDSHAKE = (
    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def emit(name: str, **fields: Any) -> None:
    print(json.dumps({"bench": "client_in", "name": name, **fields}), flush=True)


def wire_frame(wire: str) -> bytes:
    """One masked client frame carrying :data:`PCM`, as a browser sends it."""
    if wire == "binary":
        return Frame(Opcode.BINARY, PCM).serialize(mask=True)
    text = json.dumps({"type": "audio", "data": base64.b64encode(PCM).decode()}, separators=(",", ":"))
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=True)


class FakeTransport(asyncio.Transport):
    """What uvicorn's protocol needs of a socket transport; writes go nowhere."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def write(self, data: Any) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def can_write_eof(self) -> bool:
        return False

    def abort(self) -> None:
        self.closed = True

    def resume_reading(self) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


async def _connection(ws_impl: str, app: Any) -> Any:
    """A uvicorn WebSocket protocol instance, handshake done, running ``app``."""
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    config = Config(app=app, ws=ws_impl, ws_per_message_deflate=False, ws_ping_interval=None, log_level="warning")
    config.load()
    protocol = config.ws_protocol_class(config=config, server_state=ServerState(), app_state={})  # type: ignore[misc,call-arg]
    protocol.connection_made(FakeTransport())
    protocol.data_received(HANDSHAKE)
    return protocol


async def _time(feed: Any, consume: Any, frame: bytes, n: int) -> float:
    """CPU seconds per message: ``feed`` the frame (the loop's ``data_received``), then ``consume`` it."""
    t0 = time.process_time()
    for _ in range(n):
        feed(frame)
        await consume()
    return (time.process_time() - t0) / n


async def measure(ws_impl: str, wire: str, n: int) -> dict[str, float]:
    """One run of each layer for ``wire``: microseconds per message."""
    from starlette.websockets import WebSocket
    from voxline.frames import AudioFrame
    from voxline.frames import Frame as VFrame
    from voxline.pipeline import Pipeline
    from voxline.processor import Direction, Processor
    from voxline.testing import started
    from voxline.transports import TransportParams, WebSocketTransport

    frame = wire_frame(wire)
    results: dict[str, float] = {}
    ready: asyncio.Queue[tuple[Any, Any]] = asyncio.Queue()
    done = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await ready.put((receive, send))
        await done.wait()

    # 1. uvicorn alone: parse, queue, ASGI receive.
    protocol = await _connection(ws_impl, app)
    receive, send = await ready.get()
    results["uvicorn_us"] = await _time(protocol.data_received, receive, frame, n)

    # 2. through Starlette's WebSocket.receive.
    ws = WebSocket({"type": "websocket", "path": "/ws", "headers": []}, receive, send)
    ws.client_state = ws.application_state = ws.client_state.__class__.CONNECTED
    results["starlette_us"] = await _time(protocol.data_received, ws.receive, frame, n)

    # 3. a bare reader task doing nothing with the message: the task switches every layer below pays.
    arrived = asyncio.Event()

    async def bare_reader() -> None:
        while True:
            await ws.receive()
            arrived.set()

    async def wait_arrived() -> None:
        await arrived.wait()
        arrived.clear()

    reader = asyncio.create_task(bare_reader())
    await _time(protocol.data_received, wait_arrived, frame, 200)
    results["task_us"] = await _time(protocol.data_received, wait_arrived, frame, n)
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)

    # 4. the whole input: voxline's reader task reading Starlette's socket, pushing AudioFrames to a sink.
    class Sink(Processor):
        def __init__(self) -> None:
            super().__init__(name="Sink")
            self.frames = 0
            self.arrived = asyncio.Event()

        async def process(self, frame: VFrame, direction: Direction) -> None:
            if type(frame) is AudioFrame:
                self.frames += 1
                self.arrived.set()
                return
            await self.push(frame, direction)

    sink = Sink()
    transport = WebSocketTransport(ws, TransportParams(max_messages_per_second=None, max_audio_speed=None))
    if wire == "binary":
        transport.parser.binary_audio = True  # as after the client's config message
    async with started(Pipeline([transport.input(), sink])):

        async def consume() -> None:
            await sink.arrived.wait()
            sink.arrived.clear()

        await _time(protocol.data_received, consume, frame, 200)  # the reader task is running and warm
        results["voxline_us"] = await _time(protocol.data_received, consume, frame, n)
        if sink.frames != n + 200:
            raise RuntimeError(f"the sink got {sink.frames} frames, not {n + 200}")
        done.set()
        await transport.aclose()
    return {k: round(v * 1e6, 2) for k, v in results.items()}


# --- with real sockets ------------------------------------------------------------------------------------


def socket_app() -> Any:
    """The server of ``--sockets``: each session is voxline's input and a sink."""
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket
    from voxline.frames import AudioFrame
    from voxline.frames import Frame as VFrame
    from voxline.pipeline import Pipeline
    from voxline.processor import Direction, Processor
    from voxline.task import PipelineTask
    from voxline.transports import WebSocketTransport

    class Sink(Processor):
        async def process(self, frame: VFrame, direction: Direction) -> None:
            if type(frame) is not AudioFrame:
                await self.push(frame, direction)

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        transport = WebSocketTransport(websocket)
        transport.send_status("connected")
        try:
            await PipelineTask(Pipeline([transport.input(), Sink()])).run()
        finally:
            await transport.aclose()

    return Starlette(routes=[WebSocketRoute("/ws", ws)])


def serve(port: int, ws_impl: str) -> None:
    import uvicorn

    uvicorn.run(
        socket_app(),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ws=ws_impl,
        ws_ping_interval=None,
        ws_per_message_deflate=False,  # as `voxline serve` runs
        ws_max_size=16 * 1024 * 1024,
    )


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def stream(port: int, n: int, seconds: float, wire: str, server_pid: int) -> dict[str, Any]:
    """N clients streaming 20 ms chunks in real time; the server's CPU per message over ``seconds``."""
    from websockets.asyncio.client import connect

    frame = wire_frame(wire)
    clients = []
    for _ in range(n):
        ws = await connect(f"ws://127.0.0.1:{port}/ws", ping_interval=None, compression=None)
        await ws.recv()  # status connected
        if wire == "binary":
            await ws.send('{"type":"config","data":{"binary_audio":true}}')
        clients.append(ws)
    start = time.monotonic()
    ticks, sent, cpu0, t0 = 0, 0, -1.0, 0.0
    while time.monotonic() < start + 2.0 + seconds:
        for k in range(10):
            await asyncio.sleep(max(0.0, start + ticks * 0.02 + k * 0.002 - time.monotonic()))
            for ws in clients[k::10]:
                ws.transport.write(frame)
            sent += len(clients[k::10])
        ticks += 1
        if cpu0 < 0 and time.monotonic() >= start + 2.0:  # 2 s of warm-up
            cpu0, t0, sent = _cpu_seconds(server_pid), time.monotonic(), 0
        await asyncio.sleep(max(0.0, start + ticks * 0.02 - time.monotonic()))
    await asyncio.sleep(0.1)  # the last chunks read
    cpu1, t1 = _cpu_seconds(server_pid), time.monotonic()
    for ws in clients:
        ws.transport.abort()
    return {
        "sessions": n,
        "messages": sent,
        "server_cpu": round((cpu1 - cpu0) / (t1 - t0), 3),
        "server_us_per_message": round((cpu1 - cpu0) / sent * 1e6, 2),
    }


def run_sockets(ws_impl: str, n: int, seconds: float, wires: list[str], repeats: int) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--ws", ws_impl])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        runner = _runner()[0]
        for _ in range(repeats):
            for wire in wires:  # interleaved: a change of the machine's load hits both wires alike
                result = runner(stream(port, n, seconds, wire, server.pid))
                emit(f"client_in_socket_{wire}", ws=ws_impl, **result, load_avg_1m=os.getloadavg()[0])
    finally:
        server.terminate()
        server.wait(10)


def _runner() -> tuple[Any, str]:
    try:
        import uvloop

        return uvloop.run, "uvloop"
    except ImportError:
        return asyncio.run, "asyncio"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ws", default="websockets-sansio", help="uvicorn's WebSocket implementation")
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--wire", choices=["json", "binary", "both"], default="both")
    parser.add_argument("--sockets", type=int, default=0, help="measure with this many real client sockets")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per run (--sockets)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the --sockets server process
    parser.add_argument("--quick", action="store_true", help="a smoke run (nox -s bench -- --quick)")
    args = parser.parse_args()
    if args.quick:
        args.messages, args.repeats, args.seconds = 2000, 1, 3.0
    if args.serve:
        serve(args.serve, args.ws)
        return
    wires = ["json", "binary"] if args.wire == "both" else [args.wire]
    if args.sockets:
        run_sockets(args.ws, args.sockets, args.seconds, wires, args.repeats)
        return
    runner, loop = _runner()
    best: dict[str, dict[str, float]] = {w: {} for w in wires}
    for _ in range(args.repeats):
        for wire in wires:
            for key, value in runner(measure(args.ws, wire, args.messages)).items():
                best[wire][key] = min(best[wire].get(key, value), value)
    for wire in wires:
        b = best[wire]
        emit(
            f"client_in_{wire}",
            ws=args.ws,
            loop=loop,
            messages=args.messages,
            repeats=args.repeats,
            **b,
            starlette_wrapper_us=round(b["starlette_us"] - b["uvicorn_us"], 2),
            voxline_own_us=round(b["voxline_us"] - b["task_us"], 2),
            load_avg_1m=os.getloadavg()[0],
        )


if __name__ == "__main__":
    main()
