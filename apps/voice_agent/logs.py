"""Logging — timestamps and levels, to stderr and ``logs/voice-backend.log`` —
plus the session id on every line and a last-line guard that keeps API keys out of every log (the process-wide
redactor of :mod:`voxline.providers.redaction`, which the provider stages use too).

**One file per process.** Python's rotating handler cannot share a file between processes (each rotates on its
own; lines are lost). With ``voxline serve --workers N`` (``VOXLINE_WORKERS=N``) each worker claims a slot — a
lock on ``logs/.worker-<i>.lock``, released when it exits, so a restarted worker takes the slot of the one it
replaces — and writes ``voice-backend.worker-<i>.log`` (``tail -f logs/voice-backend*.log`` follows them all).

The session id lives in a context variable. Each WebSocket session sets it before it creates any task, and
asyncio copies the context into every task created after that, so a line logged by any stage of the session
(or by the SDKs it calls) carries the id without anyone passing it around. Lines outside a session show
``-``.
"""

from __future__ import annotations

import contextvars
import logging
import logging.handlers
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from voxline.providers.redaction import SECRETS, hide_secret

__all__ = ["LOG_FILE_NAME", "SessionFilter", "configure_logging", "log_file_name", "session_id"]

LOG_FILE_NAME = "voice-backend.log"
FORMAT = "%(asctime)s - %(levelname)s - [%(session_id)s] %(name)s - %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"

session_id: contextvars.ContextVar[str] = contextvars.ContextVar("voxline_session_id", default="-")


class SessionFilter(logging.Filter):
    """Adds ``session_id`` to each record and masks every secret the process knows (``secrets`` are added to
    them), in the message and its traceback."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        for secret in secrets:
            hide_secret(secret)

    def filter(self, record: logging.LogRecord) -> bool:
        record.session_id = session_id.get()
        SECRETS.scrub(record)
        return True


_INSTALLED: list[logging.Handler] = []
_SLOT: tuple[Path, int, IO[bytes]] | None = None  # (log dir, slot, the open lock file that holds it)
WORKERS_ENV = "VOXLINE_WORKERS"


def log_file_name(log_dir: Path) -> str:
    """``voice-backend.log``, or this worker's own file when ``voxline serve`` runs several (see the module)."""
    try:
        workers = int(os.environ.get(WORKERS_ENV, "1"))
    except ValueError:
        workers = 1
    if workers <= 1:
        return LOG_FILE_NAME
    return f"voice-backend.worker-{_claim_slot(log_dir, workers)}.log"


def _claim_slot(log_dir: Path, workers: int) -> int:
    """The first worker slot no live process holds (a lock file each; the lock dies with its process)."""
    global _SLOT
    if _SLOT is not None and _SLOT[0] == log_dir:
        return _SLOT[1]
    import fcntl

    for slot in range(workers * 4):  # more slots than workers: a dying worker may still hold its lock
        lock = (log_dir / f".worker-{slot}.lock").open("ab")
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        _SLOT = (log_dir, slot, lock)
        return slot
    return os.getpid()  # every slot taken (should not happen): a file of its own all the same


def configure_logging(level: str = "INFO", log_dir: Path | None = Path("logs"), secrets: Iterable[str] = ()) -> None:
    """Send every log line to stderr and (if ``log_dir``) a rotating ``voice-backend.log``.

    Calling it again replaces the handlers it installed before (tests build many apps in one process).
    """
    root = logging.getLogger()
    for handler in _INSTALLED:
        root.removeHandler(handler)
        handler.close()
    _INSTALLED.clear()
    session_filter = SessionFilter(secrets)
    formatter = logging.Formatter(FORMAT, DATE_FORMAT)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                log_dir / log_file_name(log_dir), maxBytes=10 * 1024 * 1024, backupCount=5, encoding="utf-8"
            )
        )
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(session_filter)
        root.addHandler(handler)
        _INSTALLED.append(handler)
    root.setLevel(level)
    # Uvicorn's loggers go through the same handlers (the CLI starts uvicorn with log_config=None).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
