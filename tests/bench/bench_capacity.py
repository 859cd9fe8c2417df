"""Benchmark: how many talking sessions one ``voxline serve`` process holds with the official SDKs in the path.

Three kinds of process on loopback, so that each one's CPU is its own:

* **the fakes** — tests/soak_fakes.py ``--realistic``: the fake Deepgram (live STT, Aura speak) and Gemini,
  with the app benchmark's provider delays (STT final 150 ms after the last voiced audio, Gemini's first token
  after 400 ms then 40 tokens/s, Aura's first byte 250 ms after Flush);
* **the server** — tests/bench/capacity_server.py: the voice agent exactly as ``voxline serve`` runs it
  (uvloop, the served app's GC tuning and memory upkeep, WebSocket compression off), Deepgram and Gemini
  through their official SDKs pointed at the fakes, plus a 10 ms event-loop lag probe in every worker;
* **the clients** — tests/bench/capacity_client.py: N sessions streaming real-time 20 ms audio (``--wire``), each
  taking a turn every ``--period`` seconds (1 s of tone, then a room-noise floor; the fake STT answers from
  its script), timing voice to voice (last tone chunk written → first reply ``audio`` read).

One server serves every level in turn. Per level: the server's CPU (all its processes, from /proc) per
session-second, its loop lag p50/p99/max over the measured window, voice to voice p50/p95 and its p95 minus
the single-session p95 (``added_p95_ms``, measured first, at N=1 with a turn every 4 s), unanswered turns, and
the fakes' and clients' CPU (if those saturate a core, the level measures the machine, not the server), and the
audio messages the fake Deepgram received per session-second (``stt_messages_per_session_s``). A
level passes when lag p99 <= 20 ms, added p95 <= 50 ms and no turn went unanswered; the summary line gives
the largest passing N and the first N whose lag p99 exceeds 20 ms. The 2-core machine is shared: each line
carries the 1-minute load average. ``BENCH_NICE=-10`` (as root) shields the benchmark's processes from the
rest of the machine: on Linux with autogroup scheduling a niceness only orders processes of one session, so
the benchmark starts a session of its own and gives its autogroup that niceness too (without it, on a machine
where four other test suites run, the three processes shared ~40 % of one core and the server measured lag of
seconds at 14 % CPU). The lines report ``nice``.

Options: ``--quick`` (two short levels), ``--levels``, ``--workers`` (``voxline serve --workers``),
``--turn-engine on|off`` (sets ``TURN_ENGINE`` for apps that have issue 11's turn engine; the lines say
whether the app knows the setting), ``--profile DIR`` (cProfile of each worker over each measured window),
``--clients`` (client processes per level), ``--audio tone|speech`` (the turns' audio: the default 1 s tone is
speech to the fake STT but not to Silero, so the turn engine's VAD events, endpointing and smart-turn model stay
idle; ``speech`` sends a flite-spoken question instead, and measures them), ``--wire json|binary`` (how the
clients send the microphone: ``json``, the default, is the seed's base64 ``audio`` message, what a seed-only
client sends; ``binary`` is what the bundled page sends to a server that offers it: ``config`` ``binary_audio``,
then raw binary frames).

Before the levels, ``capacity_idle_server``: the server's CPU with no session for 10 s (its 100 Hz lag probe, the
app's timers) and the machine's burst tax (tests/bench/wake_tax.py: the CPU of one small unit of work done every
20 ms over the same work back to back). Each level also reports ``above_idle_ms_per_session_s``, its CPU less
the idle server's, per session. On the shared VM a single session's figure is mostly that tax: read it with the
idle line, not as a fixed per-process cost.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from array import array
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from app_fixtures import pct  # noqa: E402
from app_load import _cpu_seconds, _free_port  # noqa: E402
from wake_tax import measure as measure_wake_tax  # noqa: E402

LAG_BUDGET_MS = 20.0
ADDED_BUDGET_MS = 50.0


def emit(name: str, **fields: Any) -> None:
    print(json.dumps({"bench": "capacity", "name": name, **fields}), flush=True)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _tree_cpu(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process and its children (uvicorn's workers), from /proc (Linux)."""
    user = system = 0.0
    for p in (pid, *_children(pid)):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            user += int(fields[11]) / os.sysconf("SC_CLK_TCK")
            system += int(fields[12]) / os.sysconf("SC_CLK_TCK")
    return user, system


def _turn_engine(choice: str | None) -> str:
    from voxline.apps.voice_agent.config import agent_settings

    if "TURN_ENGINE" not in {s.name for s in agent_settings()}:
        return "absent (the app has no TURN_ENGINE setting)"
    return choice or "default"


class Stack:
    """The fakes' process and the server process, started once for all levels."""

    def __init__(self, workers: int, turn_engine: str | None, profile: str | None, tmp: Path) -> None:
        self.lag_dir = tmp / "lag"
        self.lag_dir.mkdir()
        self.fakes_stats = tmp / "fakes-stats.bin"
        self.fakes = subprocess.Popen(
            [sys.executable, str(HERE.parent / "soak_fakes.py"), "--realistic"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "BENCH_FAKES_STATS": str(self.fakes_stats)},
        )
        assert self.fakes.stdout is not None
        urls = json.loads(self.fakes.stdout.readline())
        self.port = _free_port()
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
            "PYTHONUNBUFFERED": "1",
            "DEEPGRAM_API_KEY": "test-key",
            "GEMINI_API_KEY": "test-key",
            "DEEPGRAM_BASE_URL": urls["deepgram"],
            "GEMINI_BASE_URL": urls["gemini"],
            "LOG_LEVEL": "WARNING",
            "LOG_DIR": str(tmp),
            "MAX_SESSIONS": "5000",
            "MAX_SESSIONS_PER_IP": "5000",
            "BENCH_LAG_DIR": str(self.lag_dir),
        }
        if turn_engine:
            env["TURN_ENGINE"] = turn_engine
        if profile:
            env["BENCH_PROFILE"] = profile
        self.server = subprocess.Popen(
            [sys.executable, str(HERE / "capacity_server.py"), str(self.port), str(workers)], env=env
        )
        self.url = f"http://127.0.0.1:{self.port}"
        for _ in range(300):
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=5) as response:
                    json.loads(response.read())
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(1.0)

    def workers(self) -> list[int]:
        return _children(self.server.pid) or [self.server.pid]

    def lags(self, start: float, end: float) -> list[float]:
        values: list[float] = []
        for path in self.lag_dir.glob("lag-*.bin"):
            pairs = array("d")
            pairs.frombytes(path.read_bytes())
            values += [pairs[i + 1] for i in range(0, len(pairs) - 1, 2) if start <= pairs[i] < end]
        return values

    def stt_messages_per_s(self, start: float, end: float) -> float | None:
        """Audio messages the fake Deepgram received per second between ``start`` and ``end`` (its 0.5 s ticks
        inside the window)."""
        pairs = array("d")
        with contextlib.suppress(OSError):
            pairs.frombytes(self.fakes_stats.read_bytes())
        inside = [(pairs[i], pairs[i + 1]) for i in range(0, len(pairs) - 1, 2) if start <= pairs[i] <= end]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return None
        return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])

    def gc_seconds(self, start: float, end: float) -> float:
        """Seconds the workers spent in garbage collection between ``start`` and ``end`` (1 s resolution)."""
        total = 0.0
        for path in self.lag_dir.glob("gc-*.bin"):
            pairs = array("d")
            pairs.frombytes(path.read_bytes())
            inside = [pairs[i + 1] for i in range(0, len(pairs) - 1, 2) if start <= pairs[i] < end]
            if len(inside) > 1:
                total += inside[-1] - inside[0]
        return total

    def close(self) -> None:
        self.server.terminate()
        try:
            self.server.wait(15)
        except subprocess.TimeoutExpired:
            self.server.kill()
        assert self.fakes.stdin is not None
        self.fakes.stdin.close()
        self.fakes.wait(10)


def idle_server(stack: Stack, seconds: float) -> dict[str, Any]:
    """The server's CPU with no session (its lag probe, the app's timers), and what the machine charges for
    short bursts of work (tests/bench/wake_tax.py): what a single session's figure mostly measures."""
    cpu0, wall0 = _tree_cpu(stack.server.pid), time.monotonic()
    time.sleep(seconds)
    cpu1, wall1 = _tree_cpu(stack.server.pid), time.monotonic()
    wall = wall1 - wall0
    return {
        "server_idle_cpu_ms_per_s": round((sum(cpu1) - sum(cpu0)) * 1000 / wall, 1),
        "probe_ticks_per_s": round(len(stack.lags(wall0, wall1)) / wall, 1),
        "machine": measure_wake_tax(),
        "load_avg_1m": os.getloadavg()[0],
    }


def run_level(
    stack: Stack, n: int, period: float, warmup: float, seconds: float, clients: int, idle_ms: float = 0.0
) -> dict[str, Any]:
    import signal

    shares = [n // clients + (i < n % clients) for i in range(clients)]
    starts = [sum(shares[:i]) for i in range(clients)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(HERE / "capacity_client.py"),
                stack.url,
                str(k),
                str(period),
                str(warmup),
                str(seconds),
                str(first),
                str(n),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for k, first in zip(shares, starts, strict=True)
        if k
    ]
    windows = [json.loads(p.stdout.readline()) for p in procs if p.stdout is not None]
    window_from = max(w["from"] for w in windows)
    time.sleep(max(0.0, window_from - time.monotonic()))
    profiling = bool(os.environ.get("BENCH_PROFILE_ACTIVE"))
    if profiling:
        for pid in stack.workers():
            os.kill(pid, signal.SIGUSR1)
    cpu0, fakes0, wall0 = _tree_cpu(stack.server.pid), _cpu_seconds(stack.fakes.pid), time.monotonic()
    window_to = window_from + seconds
    time.sleep(max(0.0, window_to - time.monotonic()))
    cpu1, fakes1, wall1 = _tree_cpu(stack.server.pid), _cpu_seconds(stack.fakes.pid), time.monotonic()
    if profiling:
        for pid in stack.workers():
            os.kill(pid, signal.SIGUSR2)
    done = [json.loads(p.stdout.readline()) for p in procs if p.stdout is not None]
    for p in procs:
        p.wait(60)
    wall = wall1 - wall0
    user, system = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
    lags = stack.lags(window_from, window_to)
    latencies = [x for d in done for x in d["latencies_ms"]]
    stt_messages = stack.stt_messages_per_s(window_from, window_to)
    return {
        "sessions": n,
        "server_cpu": round((user + system) / wall, 3),
        "server_cpu_ms_per_session_s": round((user + system) * 1000 / wall / n, 3),
        "above_idle_ms_per_session_s": round(((user + system) * 1000 / wall - idle_ms) / n, 3),
        "server_system_share": round(system / (user + system), 2) if user + system else None,
        "server_gc_share": round(stack.gc_seconds(window_from, window_to) / max(user + system, 1e-9), 3),
        "loop_lag_p50_ms": round(pct(lags, 50) * 1000, 2),
        "loop_lag_p99_ms": round(pct(lags, 99) * 1000, 2),
        "loop_lag_max_ms": round(max(lags, default=float("nan")) * 1000, 2),
        "v2v_p50_ms": round(pct(latencies, 50), 1),
        "v2v_p95_ms": round(pct(latencies, 95), 1),
        "turns": len(latencies),
        "unanswered": sum(d["unanswered"] for d in done),
        "sessions_closed_early": sum(d["closed"] for d in done),
        "stt_messages_per_session_s": round(stt_messages / n, 2) if stt_messages is not None else None,
        "fakes_cpu": round((fakes1 - fakes0) / wall, 3),
        "clients_cpu": round(sum(d["client_cpu_s"] for d in done) / (wall + 3.0), 3),
        "client_late_ticks": sum(d["late_ticks"] for d in done),
        "load_avg_1m": os.getloadavg()[0],
    }


def _shield() -> str:
    """Apply ``BENCH_NICE`` to this process (its children inherit it) and to its own autogroup; see the docstring."""
    niceness = os.environ.get("BENCH_NICE", "0")
    if niceness == "0":
        return niceness
    with contextlib.suppress(OSError):  # a process-group leader cannot: then the group is the caller's
        os.setsid()  # a session of its own: its autogroup holds only the benchmark's processes
    with contextlib.suppress(OSError):
        Path("/proc/self/autogroup").write_text(niceness)
    os.nice(int(niceness))
    return niceness


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run: two levels, short windows")
    parser.add_argument("--levels", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--period", type=float, default=10.0, help="seconds between one session's turns")
    parser.add_argument("--seconds", type=float, help="measured seconds per level")
    parser.add_argument("--clients", type=int, default=0, help="client processes per level (0: one per 200)")
    parser.add_argument("--turn-engine", choices=["on", "off"])
    parser.add_argument("--profile", help="write cProfile stats of each worker's measured windows here")
    parser.add_argument(
        "--audio",
        choices=["tone", "speech"],
        default="tone",
        help="the turns: a tone (not speech to Silero: the turn engine's VAD path stays idle) or flite speech",
    )
    parser.add_argument(
        "--wire",
        choices=["json", "binary"],
        default="json",
        help="the clients' microphone frames: the seed's base64 JSON, or raw binary (the bundled page's wire)",
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the single-session level")
    args = parser.parse_args()
    levels = args.levels or ([20, 60] if args.quick else [50, 100, 150, 200, 250, 300, 400])
    seconds = args.seconds or (10.0 if args.quick else 20.0)
    nice = _shield()
    common = {"workers": args.workers, "turn_engine": _turn_engine(args.turn_engine), "period_s": args.period}
    common["nice"] = nice
    common["audio"] = args.audio
    common["wire"] = args.wire
    os.environ["BENCH_AUDIO"] = args.audio  # the clients' processes inherit it
    os.environ["BENCH_WIRE"] = args.wire
    if args.profile:
        os.environ["BENCH_PROFILE_ACTIVE"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(args.workers, args.turn_engine, args.profile, Path(tmp))
        try:
            single_p95 = None
            idle = idle_server(stack, 5.0 if args.quick else 10.0)
            emit("capacity_idle_server", **common, **idle)
            idle_ms = idle["server_idle_cpu_ms_per_s"]
            if not args.no_baseline:
                one = run_level(stack, 1, 4.0, 4.0, 16.0 if args.quick else 40.0, 1, idle_ms)
                single_p95 = one["v2v_p95_ms"]
                emit("capacity_single_session", **common, **one, period_override_s=4.0)
            best, first_over, costs = 0, None, []
            for n in levels:
                clients = args.clients or max(1, -(-n // 200))
                result = run_level(stack, n, args.period, args.period, seconds, clients, idle_ms)
                added = round(result["v2v_p95_ms"] - single_p95, 1) if single_p95 is not None else None
                over = result["loop_lag_p99_ms"] > LAG_BUDGET_MS
                ok = not over and result["unanswered"] == 0 and (added is None or added <= ADDED_BUDGET_MS)
                emit("capacity_level", **common, ok=ok, added_p95_ms=added, client_processes=clients, **result)
                costs.append(result["server_cpu_ms_per_session_s"])
                if ok and first_over is None:
                    best = n
                if over and first_over is None:
                    first_over = n
                if over and result["loop_lag_p99_ms"] > 5 * LAG_BUDGET_MS:
                    break  # far past the budget: higher levels only take longer to fail
            emit(
                "capacity",
                **common,
                unit="sessions",
                value=best,
                target=300 if args.workers > 1 else 200,
                first_n_over_lag_budget=first_over,
                cpu_ms_per_session_s_median=statistics.median(costs),
                target_cpu_ms_per_session_s=5.0,
                single_session_v2v_p95_ms=single_p95,
                levels=levels,
                load_avg_1m=os.getloadavg()[0],
            )
        finally:
            stack.close()


if __name__ == "__main__":
    main()
