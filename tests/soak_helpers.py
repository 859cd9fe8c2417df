"""The soak driver: opens and closes many voice-agent sessions of every kind against a real uvicorn server in
this process, and measures what a long-running server would leak (tasks, threads, fds, RSS) and its GC pauses.

Used by ``tests/test_soak.py`` (assertions) and ``tests/bench/bench_soak.py`` (figures). The kinds, each the way
a real client ends a session:

* ``clean`` — a whole turn (a typed turn; every tenth a spoken one), ``status: complete``, then a normal close.
* ``drop_reply`` — a typed turn, then the TCP connection is aborted (no close frame) at the first ``audio``.
* ``drop_speech`` — speech streamed up to the middle of an utterance (the server says the user started
  speaking), then the TCP connection is aborted.
* ``before_greeting`` — the TCP connection is aborted right after the WebSocket handshake, before the client
  has read ``status: connected``.
* ``idle`` — the client connects, reads the greeting and sends nothing: the server's idle timeout closes it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from websockets.asyncio.client import ClientConnection, connect

KINDS = ("clean", "drop_reply", "drop_speech", "before_greeting", "idle")


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


_TCP_STATES = {"01": "ESTABLISHED", "06": "TIME_WAIT", "08": "CLOSE_WAIT", "0A": "LISTEN"}


def _tcp_endpoint(hex_address: str) -> str:
    """``0100007F:1F90`` (as /proc/net/tcp writes it) → ``127.0.0.1:8080``; IPv6 addresses stay in hex."""
    host, port = hex_address.split(":")
    if len(host) == 8:
        host = ".".join(str(int(host[i : i + 2], 16)) for i in (6, 4, 2, 0))
    return f"{host}:{int(port, 16)}"


def _tcp_sockets() -> dict[str, str]:
    """inode → ``tcp <local>-><remote> <state>`` for every TCP socket in this network namespace."""
    found: dict[str, str] = {}
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                state = _TCP_STATES.get(fields[3], fields[3])
                found[fields[9]] = f"tcp {_tcp_endpoint(fields[1])}->{_tcp_endpoint(fields[2])} {state}"
    return found


def fd_kinds() -> tuple[str, ...]:
    """What each open fd is, named in a failure message: a TCP socket by its endpoints and state (so a
    keep-alive connection to a provider can be told from a leaked client socket), another socket or pipe by
    its kind (``socket``, ``pipe``, ``anon_inode``), a file by its path."""
    tcp = _tcp_sockets()
    kinds = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in tcp:
            kinds.append(tcp[target[8:-1]])
        else:
            kinds.append(target.split(":", 1)[0] if ":[" in target else target)
    return tuple(sorted(kinds))


def _describe(task: asyncio.Task[Any]) -> str:
    coro = task.get_coro()
    where = getattr(coro, "__qualname__", type(coro).__name__)
    frame = getattr(coro, "cr_frame", None)
    line = f"{frame.f_code.co_filename.rsplit('/', 2)[-1]}:{frame.f_lineno}" if frame is not None else ""
    return f"{task.get_name()} {where} {line}".strip()


@attrs.define
class Snapshot:
    sessions: int
    rss_mib: float
    tasks: int
    threads: int
    fds: int
    gc_objects: int
    thread_names: tuple[str, ...] = ()
    task_names: tuple[str, ...] = ()
    fd_kinds: tuple[str, ...] = ()

    @classmethod
    def take(cls, sessions: int) -> Snapshot:
        names = tuple(sorted(t.name for t in threading.enumerate()))
        tasks = tuple(sorted(_describe(t) for t in asyncio.all_tasks()))
        return cls(sessions, rss_mib(), len(tasks), len(names), fd_count(), 0, names, tasks, fd_kinds())

    def new_threads(self, earlier: Snapshot) -> list[str]:
        """Threads alive now that were not before, except the event loop's default executor: a pool of at most
        ``min(32, cpus + 4)`` threads, started as ``asyncio.to_thread`` needs them (not a leak)."""
        pool = [n for n in self.thread_names if n.startswith("asyncio_")]
        grown = [n for n in self.thread_names if n not in earlier.thread_names and not n.startswith("asyncio_")]
        if len(pool) > min(32, (os.cpu_count() or 1) + 4):
            grown += pool
        return grown


class GCWatch:
    """Times every garbage collection (``gc.callbacks``): the longest pause per generation."""

    def __init__(self) -> None:
        self.longest = [0.0, 0.0, 0.0]
        self.count = [0, 0, 0]
        self._start = 0.0
        self.paused = False
        """Set around explicit ``gc.collect()`` calls: only the collections the interpreter chose are timed."""

    def __enter__(self) -> GCWatch:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if self.paused:
            return
        if phase == "start":
            self._start = time.perf_counter()
            return
        generation = info["generation"]
        self.count[generation] += 1
        self.longest[generation] = max(self.longest[generation], time.perf_counter() - self._start)


@attrs.define
class Turn:
    """What a client sends to make the agent answer: a typed turn, and speech for the spoken turns."""

    text: str = "hello there, how are you today"
    speech: bytes = b""
    """16 kHz mono Int16 PCM of an utterance with silence after it (ends a spoken turn)."""
    speech_start: bytes = b""
    """Leading silence and the start of an utterance (a client dropped mid-speech sends this)."""
    chunk_bytes: int = 3200  # 100 ms
    audio_pause: float = 0.05
    """Seconds between audio chunks (100 ms chunks every 50 ms: twice real time, inside the audio-rate cap)."""


class SessionClient:
    """One client connection: reads every message, waits for the ones the kind needs."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self.closed_by_server: int | None = None
        self.streaming: asyncio.Task[None] | None = None
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self.messages.append(json.loads(raw))
                self._changed.set()
        except Exception:
            pass
        self.closed_by_server = self.ws.close_code
        self._changed.set()

    async def wait(self, predicate: Callable[[dict[str, Any]], bool], timeout: float) -> bool:
        """Wait until a message matches; False if the socket closed first."""
        async with asyncio.timeout(timeout):
            seen = 0
            while True:
                for message in self.messages[seen:]:
                    if predicate(message):
                        return True
                seen = len(self.messages)
                if self._reader.done():
                    return False
                self._changed.clear()
                await self._changed.wait()

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def send_audio(self, pcm: bytes, turn: Turn, pause: float) -> None:
        for i in range(0, len(pcm), turn.chunk_bytes):
            await self.send({"type": "audio", "data": base64.b64encode(pcm[i : i + turn.chunk_bytes]).decode()})
            await asyncio.sleep(pause)

    async def stream(self, pcm: bytes, turn: Turn, pause: float) -> None:
        """``pcm`` (a chunk every ``pause`` s), then quiet microphone audio at real time until cancelled: a
        browser keeps streaming."""
        await self.send_audio(pcm, turn, pause)
        quiet = base64.b64encode(bytes(turn.chunk_bytes)).decode()
        seconds = turn.chunk_bytes / 32000
        while True:
            await asyncio.sleep(seconds)
            await self.send({"type": "audio", "data": quiet})

    def abort(self) -> None:
        """Drop the TCP connection without a close frame (a client that lost its network or was killed)."""
        self.ws.transport.abort()

    async def finish(self) -> None:
        if self.streaming is not None:
            self.streaming.cancel()
            with contextlib.suppress(BaseException):
                await self.streaming
        self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 2)
        self.ws.transport.abort()


def _is(kind: str, data: Any = None) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m.get("type") == kind and (data is None or m.get("data") == data)


async def run_one(url: str, kind: str, turn: Turn, *, number: int, timeout: float = 30.0) -> str:
    """One session of ``kind``; returns what happened (``"ok"`` or a short reason), never raises."""
    try:
        ws = await asyncio.wait_for(connect(url + "/ws", max_size=None, ping_interval=None, compression=None), 10)
    except Exception as exc:
        return f"connect failed: {type(exc).__name__}"
    if kind == "before_greeting":
        ws.transport.abort()
        with contextlib.suppress(Exception):
            await ws.wait_closed()
        return "ok"
    client = SessionClient(ws)
    try:
        if not await client.wait(_is("session"), timeout):
            return f"closed before the session message ({client.closed_by_server})"
        if kind == "idle":
            # Only the server may end it: its idle timeout.
            await client.wait(lambda m: False, timeout)
            return "ok" if client.closed_by_server is not None else "idle session not closed"
        spoken = kind == "drop_speech" or (kind == "clean" and number % 10 == 0 and bool(turn.speech))
        if kind == "drop_speech":
            # Under 2 s of audio: it may come at once (the audio-rate cap's burst), as after a network stall.
            streaming = asyncio.create_task(client.stream(turn.speech_start, turn, 0.0))
            try:
                if not await client.wait(_is("speaking", {"who": "user", "state": "started"}), timeout):
                    return "closed before the user started speaking"
            finally:
                streaming.cancel()
            client.abort()
            return "ok"
        if spoken:
            client.streaming = asyncio.create_task(client.stream(turn.speech, turn, turn.audio_pause))
        else:
            await client.send({"type": "text", "data": turn.text})
        if kind == "drop_reply":
            if not await client.wait(_is("audio"), timeout):
                return "closed before the reply's audio"
            client.abort()
            return "ok"
        if not await client.wait(_is("status", "complete"), timeout):
            reason = client.ws.close_reason
            return f"closed before the turn completed ({client.closed_by_server} {reason}; spoken={spoken})"
        return "ok"
    except TimeoutError:
        return f"{kind}: timed out; got {[m.get('type') for m in client.messages][-8:]}"
    except Exception as exc:
        return f"{kind}: {type(exc).__name__}: {exc}"
    finally:
        await client.finish()


@attrs.define
class SoakResult:
    sessions: int = 0
    outcomes: Counter[str] = attrs.field(factory=Counter)
    per_kind: Counter[str] = attrs.field(factory=Counter)
    snapshots: list[Snapshot] = attrs.field(factory=list)
    seconds: float = 0.0
    gc_longest: list[float] = attrs.field(factory=lambda: [0.0, 0.0, 0.0])
    gc_count: list[int] = attrs.field(factory=lambda: [0, 0, 0])
    checkpoints: list[Snapshot] = attrs.field(factory=list)
    """Snapshots between the warm-up and the end."""
    full_collect_s: float = 0.0
    """One ``gc.collect()`` at the end, timed: the longest pause a full collection can cost now."""

    @property
    def warm(self) -> Snapshot:
        return self.snapshots[1] if len(self.snapshots) > 1 else self.snapshots[0]

    @property
    def end(self) -> Snapshot:
        return self.snapshots[-1]

    @property
    def failures(self) -> dict[str, int]:
        return {k: v for k, v in self.outcomes.items() if k != "ok"}

    def figures(self) -> dict[str, Any]:
        warm, end = self.warm, self.end
        return {
            "sessions": self.sessions,
            "per_kind": dict(self.per_kind),
            "failures": self.failures,
            "seconds": round(self.seconds, 1),
            "rss_start_mib": round(self.snapshots[0].rss_mib, 1),
            "rss_warm_mib": round(warm.rss_mib, 1),
            "rss_end_mib": round(end.rss_mib, 1),
            "rss_growth_after_warm_mib": round(end.rss_mib - warm.rss_mib, 1),
            "rss_checkpoints_mib": [round(c.rss_mib, 1) for c in (warm, *self.checkpoints, end)],
            "tasks_warm": warm.tasks,
            "tasks_end": end.tasks,
            "tasks_new": sorted(set(end.task_names) - set(warm.task_names)),
            "threads_warm": warm.threads,
            "threads_end": end.threads,
            "threads_new": end.new_threads(warm),
            "fds_warm": warm.fds,
            "fds_end": end.fds,
            "gc_objects_end": end.gc_objects,
            "gc_longest_ms": [round(x * 1000, 1) for x in self.gc_longest],
            "gc_collections": list(self.gc_count),
            "full_collect_ms": round(self.full_collect_s * 1000, 1),
        }


async def soak(
    url: str,
    turn: Turn,
    *,
    sessions_per_kind: int,
    concurrency: int,
    live_sessions: Callable[[], int],
    warm_up: int = 100,
    kinds: tuple[str, ...] = KINDS,
    progress: Callable[[SoakResult], Awaitable[None]] | None = None,
    settle: Callable[[], Awaitable[None]] | None = None,
    checkpoint: int = 0,
) -> SoakResult:
    """Run ``sessions_per_kind`` sessions of each kind, ``concurrency`` at a time, interleaving the kinds.

    Snapshots, each taken with no session live: before, after ``warm_up`` sessions, every ``checkpoint``
    sessions after that (0: none), and at the end — once the sessions' tasks have finished too.
    """
    plan = [kinds[i % len(kinds)] for i in range(sessions_per_kind * len(kinds))]
    result = SoakResult()
    result.snapshots.append(await _settled(0, live_sessions, settle=settle))
    start = time.monotonic()

    async def run(numbers: range) -> None:
        pending = iter(numbers)

        async def worker() -> None:
            for number in pending:  # one shared iterator: each number runs once
                kind = plan[number]
                outcome = await run_one(url, kind, turn, number=number)
                result.outcomes[outcome if outcome == "ok" else f"{kind}: {outcome}"] += 1
                result.per_kind[kind] += 1
                result.sessions += 1
                if progress is not None and result.sessions % 500 == 0:
                    await progress(result)

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    with GCWatch() as watch:
        done = min(warm_up, len(plan))
        await run(range(done))
        result.snapshots.append(await _settled(result.sessions, live_sessions, watch, settle=settle))
        tasks_warm = result.snapshots[-1].tasks
        step = checkpoint or len(plan)
        while done < len(plan):
            await run(range(done, min(done + step, len(plan))))
            done = min(done + step, len(plan))
            if done < len(plan):
                result.checkpoints.append(await _settled(result.sessions, live_sessions, watch, settle=settle))
        result.seconds = time.monotonic() - start
    result.gc_longest, result.gc_count = watch.longest, watch.count
    result.snapshots.append(await _settled(result.sessions, live_sessions, settle=settle, tasks=tasks_warm))
    t = time.perf_counter()
    gc.collect()
    result.full_collect_s = time.perf_counter() - t
    result.end.gc_objects = len(gc.get_objects())
    return result


async def _settled(
    sessions: int,
    live: Callable[[], int],
    watch: GCWatch | None = None,
    timeout: float = 30.0,
    settle: Callable[[], Awaitable[None]] | None = None,
    tasks: int | None = None,
) -> Snapshot:
    """A snapshot once the server has no live session (and, with ``tasks``, no more asyncio tasks than that:
    a teardown still finishing is not a leak, a task still there after ``timeout`` is), the loop has had a
    moment to finish closing, and the server's own upkeep after sessions (``settle``) has run."""
    deadline = time.monotonic() + timeout
    while live() and time.monotonic() < deadline:  # noqa: ASYNC110 - polling the server's count
        await asyncio.sleep(0.02)
    while tasks is not None and len(asyncio.all_tasks()) > tasks and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    if watch is not None:
        watch.paused = True
    gc.collect()
    if watch is not None:
        watch.paused = False
    if settle is not None:
        await settle()
    return Snapshot.take(sessions)
