"""The ``voxline`` command: ``serve`` runs the voice agent, ``check`` tries every configured provider once,
``settings`` prints the settings table, ``replay`` plays a recorded session again on virtual time.

``voxline check`` reads the same ``.env`` as ``serve`` and makes one real round trip per stage with the
agent's exact options (:mod:`voxline.registry.check`): one line per stage, exit status 0 only when all passed,
``--json`` for scripts.

``serve``: host and port default to the ``HOST``/``PORT`` settings (environment or ``.env``); flags override them.
uvicorn runs with the agent's HTTP protocol (:mod:`voxline.apps.voice_agent.handshake`: connections that do
not complete a request within ``HANDSHAKE_TIMEOUT`` are closed), without WebSocket compression, and with a
WebSocket frame limit that follows ``MAX_MESSAGE_BYTES``.

With ``--workers N`` each worker is a process of its own: it drains on its own (SIGTERM reaches every worker),
writes its own log file (``VOXLINE_WORKERS``: :mod:`voxline.apps.voice_agent.logs`), and writes its metrics to
a shared directory (``PROMETHEUS_MULTIPROC_DIR``, made here and emptied at every start) that ``/metrics`` sums.
A client resuming its conversation may land on any worker: that needs ``REDIS_URL`` (a warning says so).
``serve`` also keeps numpy's BLAS to one thread unless ``OPENBLAS_NUM_THREADS`` is set (:data:`BLAS_THREADS`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from voxline.apps.voice_agent.config import Settings

__all__ = ["main"]

APP = "voxline.apps.voice_agent:app"
HTTP_PROTOCOL = "voxline.apps.voice_agent.handshake:GuardedHTTPProtocol"
"""uvicorn's HTTP protocol plus a handshake timeout (HANDSHAKE_TIMEOUT): half-open connections are closed."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voxline", description="voxline: real-time voice AI")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the voice agent (browser page at /, WebSocket at /ws)")
    serve.add_argument("--host", help="interface to bind (default: HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: PORT or 8000; 0 picks a free one)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument("--reload", action="store_true", help="restart on code changes (development)")
    serve.add_argument("--env-file", default=".env", help="file of settings to read (default .env)")
    check = commands.add_parser("check", help="one real round trip with every configured provider, before you talk")
    check.add_argument("--env-file", default=".env", help="file of settings to read (default .env)")
    check.add_argument("--json", action="store_true", help="print the results as JSON")
    check.add_argument("--timeout", type=float, default=30.0, help="seconds each stage may take (default 30)")
    check.add_argument("--no-fallbacks", action="store_true", help="skip LLM_FALLBACK and TTS_FALLBACK")
    check.add_argument("-v", "--verbose", action="store_true", help="show the stages' log lines")
    table = commands.add_parser("settings", help="print every setting as the Markdown table of the docs")
    table.add_argument("--write", nargs="*", metavar="FILE", help="replace the settings table in these files")
    replay = commands.add_parser("replay", help="replay a recorded session (RECORD_DIR) and print its turn timeline")
    replay.add_argument("file", help="a <session>.replay.jsonl.gz file (docs/recording.md)")
    replay.add_argument("--json", action="store_true", help="print the replayed turns as JSON lines")
    replay.add_argument(
        "--no-smart-turn",
        action="store_true",
        help="leave the smart-turn model out of the replayed turn engine even if the session ran it",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command == "check":
        return check(args)
    if args.command == "settings":
        return settings_table(args)
    if args.command == "replay":
        return replay(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


def _settings(env_file: str) -> Any:
    """The agent's settings from the environment and ``env_file``; None (after saying why) when one is unusable."""
    from voxline.apps.voice_agent.config import ConfigError, Settings, load_config

    try:
        return Settings.from_config(load_config(env_file))
    except ConfigError as exc:
        print(f"voxline: {exc}", file=sys.stderr)
        return None


BLAS_THREADS = "OPENBLAS_NUM_THREADS"
"""numpy's OpenBLAS starts a thread per core and, after a large enough product, lets them spin ~25 ms waiting
for more work: CPU taken from the sessions on the other core for nothing (docs/performance.md, smart-turn's
front end). The server's products are small; ``serve`` keeps BLAS to one thread unless the operator set it."""


def serve(args: argparse.Namespace) -> int:
    os.environ.setdefault(BLAS_THREADS, "1")  # before numpy loads OpenBLAS here or in a worker (inherited)
    settings = _settings(args.env_file)
    if settings is None:
        return 2
    if args.workers < 1:
        print("voxline: --workers must be at least 1", file=sys.stderr)
        return 2
    os.environ["VOXLINE_ENV_FILE"] = args.env_file  # the app (and every worker) reads the same file
    workers = args.workers if not args.reload else 1
    os.environ["VOXLINE_WORKERS"] = str(workers)  # one log file per worker
    metrics_dir = _metrics_dir(workers)
    if workers > 1 and settings.ops.redis_url is None and settings.ops.resume_seconds > 0:
        print(
            f"voxline: with --workers {workers} a client that resumes its conversation may reach another worker, "
            "which cannot see it: set REDIS_URL (docs/deploy.md)",
            file=sys.stderr,
        )
    try:
        _run(args, settings, workers)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _metrics_dir(workers: int) -> Path | None:
    """Prometheus multi-process mode for several workers: a fresh directory (ours to remove), or the operator's
    ``PROMETHEUS_MULTIPROC_DIR`` emptied (its files from a previous run would be summed in)."""
    if workers <= 1:
        return None
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
        return None
    path = Path(tempfile.mkdtemp(prefix="voxline-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return path


def _run(args: argparse.Namespace, settings: Settings, workers: int) -> None:
    import uvicorn

    uvicorn.run(
        APP,
        host=args.host or settings.host,
        port=settings.port if args.port is None else args.port,
        workers=workers if not args.reload else None,
        reload=args.reload,
        log_config=None,  # the app's own logging setup (timestamps, session ids, logs/voice-backend.log)
        log_level=settings.log_level.lower(),
        ws_max_size=max(16 * 1024 * 1024, settings.max_message_bytes * 2),
        http=HTTP_PROTOCOL,
        # Compression costs CPU on every audio message and buys little: base64 PCM hardly compresses.
        ws_per_message_deflate=False,
        # A backstop after the drain (voxline.apps.voice_agent.drain) has let the sessions finish and close.
        timeout_graceful_shutdown=5,
    )


def check(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from voxline.providers.redaction import hide_secret
    from voxline.registry.check import format_lines, lines_json

    settings = _settings(args.env_file)
    if settings is None:
        return 2
    for key in settings.secrets():
        hide_secret(key)
    # The stages log every failure; the lines below say it once, with the fix.
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.CRITICAL, format="%(levelname)s %(name)s: %(message)s"
    )
    lines = asyncio.run(_check(settings, args.timeout, not args.no_fallbacks))
    print(lines_json(lines) if args.json else format_lines(lines))
    return 0 if all(line.ok for line in lines) else 1


async def _check(settings: Any, timeout: float, fallbacks: bool) -> list[Any]:
    from voxline.providers.clients import aclose_shared
    from voxline.registry.check import check_plan

    try:
        return await check_plan(
            settings.registry, settings.values, settings.plan(), timeout=timeout, fallbacks=fallbacks
        )
    finally:
        await aclose_shared()


def settings_table(args: argparse.Namespace) -> int:
    from voxline.apps.voice_agent.config import agent_settings
    from voxline.registry.settings import replace_table, settings_table

    table = settings_table(agent_settings())
    if not args.write:
        print(table)
        return 0
    for name in args.write:
        path = Path(name)
        path.write_text(replace_table(path.read_text(), table))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def replay(args: argparse.Namespace) -> int:
    """Exit status 0 when the replay's turn decisions and latencies match the recording's, 1 when they differ,
    2 when the file is not a recording."""
    import json

    from voxline.apps.voice_agent.replay import replay_recording
    from voxline.recording import format_timeline

    try:
        result = replay_recording(args.file, smart_turn=not args.no_smart_turn)
    except (ValueError, RuntimeError) as exc:
        print(f"voxline: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print("\n".join(json.dumps(turn) for turn in result.turns))
    else:
        print(format_timeline(result))
    return 1 if result.differences() else 0
