"""The operations settings: graceful drain, who may connect, where sessions wait to be resumed, metrics, tracing.

What running the agent in production adds (docs/deploy.md, docs/security.md "Authentication", docs/metrics.md).
Each is a declared :class:`~voxline.registry.settings.Setting`, like the server's and the limits' in
:mod:`~voxline.apps.voice_agent.config`: :data:`OPERATIONS` is part of ``agent_settings()``, so the settings
tables list them and ``Settings.from_config`` reads them. :class:`Operations` is the block as read
(``settings.ops``); none of it depends on the providers.

The token, the session secret and the Redis URL are :class:`~voxline.registry.settings.Secret` values: no log
line, repr or ``/health`` shows them (nor the Redis password).
"""

from __future__ import annotations

import importlib.util
from typing import Any
from urllib.parse import urlsplit

import attrs
from voxline.registry import Setting, Values
from voxline.registry.settings import ConfigError, Parser, Secret, choice, number

__all__ = [
    "AUTH_TOKEN",
    "DRAIN_TIMEOUT",
    "METRICS",
    "MIN_SECRET_CHARS",
    "MIN_TOKEN_CHARS",
    "OPERATIONS",
    "REDIS_URL",
    "RESUME_SECONDS",
    "SESSION_SECRET",
    "SESSION_TOKEN_TTL",
    "TRACING",
    "TRACING_CHOICES",
    "Operations",
]

TRACING_CHOICES = ("off", "otel")
MIN_TOKEN_CHARS = 16
MIN_SECRET_CHARS = 32
_DAY = 86400.0


def _long_secret(least: int) -> Parser[Secret | None]:
    """A key of at least ``least`` characters (a short one is guessable)."""

    def parse(name: str, raw: str) -> Secret | None:
        if len(raw) < least:
            raise ConfigError(f"{name} must be at least {least} characters (use a random one)")
        return Secret(raw)

    return parse


def _needs(setting: str, module: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"{setting} needs the {module} package: pip install 'voxline[server]'")


def _redis_url(name: str, raw: str) -> Secret | None:
    if not raw.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"{name} must start with redis://, rediss:// or unix://")
    _needs(name, "redis")
    return Secret(raw)


def _tracing(name: str, raw: str) -> str:
    value = choice(*TRACING_CHOICES)(name, raw)
    if value == "otel":
        _needs(f"{name}=otel", "opentelemetry")
    return value


DRAIN_TIMEOUT = Setting(
    "DRAIN_TIMEOUT",
    number(0, _DAY),
    30.0,
    "Seconds a SIGTERM'd agent gives its live sessions to finish their replies (each is then closed with 1012 "
    "and the page reconnects elsewhere) before it exits; `/health` answers 503 from the first instant. See "
    "`docs/deploy.md`.",
)
AUTH_TOKEN: Setting[Secret | None] = Setting(
    "AUTH_TOKEN",
    _long_secret(MIN_TOKEN_CHARS),
    None,
    f"A static bearer token ({MIN_TOKEN_CHARS}+ characters) every `/ws` client must present, as "
    "`Authorization: Bearer <token>` or `/ws?token=<token>`; it also guards `POST /session` and `/metrics`. A "
    "client without it gets an `error` and close code 1008. See `docs/security.md`.",
    default_doc="— (no auth)",
    role="key",
)
SESSION_SECRET: Setting[Secret | None] = Setting(
    "SESSION_SECRET",
    _long_secret(MIN_SECRET_CHARS),
    None,
    f"HMAC key ({MIN_SECRET_CHARS}+ characters) of short-lived session tokens for browsers: `POST /session` "
    "mints them for a caller with `AUTH_TOKEN`, `/ws` accepts them until they expire.",
    role="key",
)
SESSION_TOKEN_TTL = Setting("SESSION_TOKEN_TTL", number(1, _DAY), 300.0, "Seconds a session token opens sessions.")
RESUME_SECONDS = Setting(
    "RESUME_SECONDS",
    number(0, _DAY),
    30.0,
    "Seconds a client that lost its socket has to resume its conversation with the `resume_token` of its "
    "`session` message (`/ws?resume=<token>`). `0`: no resuming.",
)
REDIS_URL: Setting[Secret | None] = Setting(
    "REDIS_URL",
    _redis_url,
    None,
    "Where conversations wait to be resumed (`redis://host:6379/0`): set it so a client can resume on another "
    "worker or host (`pip install 'voxline[server]'`).",
    default_doc="— (kept in the process)",
    role="key",
)
METRICS = Setting(
    "METRICS",
    choice("on", "off"),
    "on",
    "Prometheus metrics at `/metrics` (`docs/metrics.md`); `off` removes the route.",
)
TRACING = Setting(
    "TRACING",
    _tracing,
    "off",
    "`otel`: OpenTelemetry spans per turn and per provider call, to the process's tracer provider "
    "(`voxline[server]`; bring the SDK and an exporter).",
)
OPERATIONS: tuple[Setting[Any], ...] = (
    DRAIN_TIMEOUT,
    AUTH_TOKEN,
    SESSION_SECRET,
    SESSION_TOKEN_TTL,
    RESUME_SECONDS,
    REDIS_URL,
    METRICS,
    TRACING,
)
"""The operations settings, in the order of the docs' table."""


@attrs.frozen(kw_only=True)
class Operations:
    """Graceful drain, who may connect (tokens), where sessions live for resuming, metrics and tracing, as read
    (see the settings above for what each one means)."""

    drain_timeout: float = DRAIN_TIMEOUT.default
    auth_token: Secret | None = None
    session_secret: Secret | None = None
    session_token_ttl: float = SESSION_TOKEN_TTL.default
    resume_seconds: float = RESUME_SECONDS.default
    redis_url: Secret | None = None
    metrics: bool = True
    tracing: str = TRACING.default

    @property
    def auth_required(self) -> bool:
        return self.auth_token is not None or self.session_secret is not None

    @classmethod
    def from_values(cls, values: Values) -> Operations:
        return cls(
            drain_timeout=values[DRAIN_TIMEOUT],
            auth_token=values[AUTH_TOKEN],
            session_secret=values[SESSION_SECRET],
            session_token_ttl=values[SESSION_TOKEN_TTL],
            resume_seconds=values[RESUME_SECONDS],
            redis_url=values[REDIS_URL],
            metrics=values[METRICS] == "on",
            tracing=values[TRACING],
        )

    def secrets(self) -> list[str]:
        """Values no log line may show: the token, the secret, the Redis URL and its password."""
        values = [str(s) for s in (self.auth_token, self.session_secret, self.redis_url) if s]
        if self.redis_url is not None:
            password = urlsplit(str(self.redis_url)).password
            if password:
                values.append(password)
        return values
