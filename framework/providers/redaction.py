"""Secrets never reach a log line or an error message: one process-wide registry of secrets and one way to scrub.

Provider stages register their API keys with :func:`hide_secret` when they are built. Everything a stage reports
(error frames, log lines) goes through :func:`redact`, and :class:`RedactingFilter` — installed on the loggers
the SDK stack writes to (the ``websockets`` client prints every handshake header at DEBUG, ``Authorization``
included) and by the voice agent on its log handlers — scrubs every record, its traceback included. URL
credentials (``https://user:password@host``) are masked too, whoever configured them.

Registered secrets stay registered for the life of the process: a key in use by one session is a secret for
every other session's log lines too.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Final

__all__ = ["LIBRARY_LOGGERS", "SECRETS", "RedactingFilter", "Redactor", "hide_secret", "redact"]

MASK: Final = "***"
_USERINFO: Final = re.compile(r"//[^/@\s]+@")

LIBRARY_LOGGERS: Final = (
    "websockets",
    "websockets.client",
    "deepgram",
    "httpx",
    "httpcore",
    "httpx2",
    "httpcore2",
    "google_genai",
    "openai",
)
"""Loggers of the SDK stack that may print a request's headers or URL. A filter on a logger applies to the records
it creates itself (not its children's), hence ``websockets.client`` beside ``websockets``."""


class Redactor:
    """A set of secrets and the rule that masks them (and URL credentials) in text and log records. Thread-safe."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        """Mask ``secret`` from now on. Values shorter than 4 characters are ignored (they would mask words)."""
        if not secret or len(secret) < 4 or secret in self._secrets:
            return
        with self._lock:
            # Longest first, so a secret that contains another is masked whole.
            self._secrets = tuple(sorted({*self._secrets, secret}, key=len, reverse=True))

    def __contains__(self, secret: object) -> bool:
        return secret in self._secrets

    def redact(self, text: str) -> str:
        """``text`` with every secret, and any ``user:password@`` in a URL, replaced by ``***``."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        if "@" in text:
            text = _USERINFO.sub("//" + MASK + "@", text)
        return text

    def scrub(self, record: logging.LogRecord) -> None:
        """Mask secrets in ``record``'s message and traceback, in place (the message is formatted first)."""
        try:
            message = record.getMessage()
        except Exception:  # a malformed call; logging reports it when it formats the record
            return
        masked = self.redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)


SECRETS: Final = Redactor()
"""The process-wide redactor every stage and the voice agent's log filter use."""


class RedactingFilter(logging.Filter):
    """A logging filter that masks the secrets of ``redactor`` (the process-wide one by default); never drops."""

    def __init__(self, redactor: Redactor = SECRETS) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        self.redactor.scrub(record)
        return True


_INSTALLED = False
_INSTALL_LOCK = threading.Lock()


def _install_on_library_loggers() -> None:
    global _INSTALLED
    with _INSTALL_LOCK:
        if _INSTALLED:
            return
        _INSTALLED = True
        log_filter = RedactingFilter()
        for name in LIBRARY_LOGGERS:
            logging.getLogger(name).addFilter(log_filter)


def hide_secret(secret: str | None) -> None:
    """Register ``secret`` (an API key) with the process-wide redactor, and make sure the SDK loggers are scrubbed."""
    SECRETS.add(secret)
    if secret:
        _install_on_library_loggers()


def redact(text: str) -> str:
    """``text`` with every registered secret and URL credential masked."""
    return SECRETS.redact(text)
