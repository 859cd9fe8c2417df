"""The ``voxline`` command: ``voxline serve`` runs the voice agent with uvicorn.

Host and port default to the ``HOST``/``PORT`` settings (environment or ``.env``); flags override them.
uvicorn runs with the agent's HTTP protocol (:mod:`voxline.apps.voice_agent.handshake`: connections that do
not complete a request within ``HANDSHAKE_TIMEOUT`` are closed), without WebSocket compression, and with a
WebSocket frame limit that follows ``MAX_MESSAGE_BYTES``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


def serve(args: argparse.Namespace) -> int:
    import uvicorn
    from voxline.apps.voice_agent.config import ConfigError, Settings, load_config

    try:
        settings = Settings.from_config(load_config(args.env_file))
    except ConfigError as exc:
        print(f"voxline: {exc}", file=sys.stderr)
        return 2
    if args.workers < 1:
        print("voxline: --workers must be at least 1", file=sys.stderr)
        return 2
    os.environ["VOXLINE_ENV_FILE"] = args.env_file  # the app (and every worker) reads the same file
    uvicorn.run(
        APP,
        host=args.host or settings.host,
        port=settings.port if args.port is None else args.port,
        workers=args.workers if not args.reload else None,
        reload=args.reload,
        log_config=None,  # the app's own logging setup (timestamps, session ids, logs/voice-backend.log)
        log_level=settings.log_level.lower(),
        ws_max_size=max(16 * 1024 * 1024, settings.max_message_bytes * 2),
        http=HTTP_PROTOCOL,
        # Compression costs CPU on every audio message and buys little: base64 PCM hardly compresses.
        ws_per_message_deflate=False,
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
