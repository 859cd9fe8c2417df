"""Logging as the seed backend does it — timestamps and levels, to stderr and ``logs/voice-backend.log`` —
plus the session id on every line and a last-line guard that keeps API keys out of every log.

The session id lives in a context variable. Each WebSocket session sets it before it creates any task, and
asyncio copies the context into every task created after that, so a line logged by any stage of the session
(or by the SDKs it calls) carries the id without anyone passing it around. Lines outside a session show
``-``.
"""

from __future__ import annotations

import contextvars
import logging
import logging.handlers
import sys
from collections.abc import Iterable
from pathlib import Path

__all__ = ["LOG_FILE_NAME", "SessionFilter", "configure_logging", "session_id"]

LOG_FILE_NAME = "voice-backend.log"
FORMAT = "%(asctime)s - %(levelname)s - [%(session_id)s] %(name)s - %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"

session_id: contextvars.ContextVar[str] = contextvars.ContextVar("voxline_session_id", default="-")


class SessionFilter(logging.Filter):
    """Adds ``session_id`` to each record and masks any configured secret that slipped into a message."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if len(s) >= 4)

    def filter(self, record: logging.LogRecord) -> bool:
        record.session_id = session_id.get()
        if self.secrets:
            message = record.getMessage()
            masked = message
            for secret in self.secrets:
                if secret in masked:
                    masked = masked.replace(secret, "***")
            if masked != message:
                record.msg = masked
                record.args = None
            if record.exc_info and not record.exc_text:
                text = logging.Formatter().formatException(record.exc_info)
                for secret in self.secrets:
                    text = text.replace(secret, "***")
                record.exc_text = text
        return True


_INSTALLED: list[logging.Handler] = []


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
                log_dir / LOG_FILE_NAME, maxBytes=10 * 1024 * 1024, backupCount=5, encoding="utf-8"
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
