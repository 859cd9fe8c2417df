"""The voice agent's settings: the providers' settings from the registry plus the app's own, declared alike.

Every setting is a :class:`~voxline.registry.settings.Setting` — environment variable, parser, default, the
words of its row in the settings table — whether a provider declares it (``DEEPGRAM_API_KEY``,
``GEMINI_MODEL``; :mod:`voxline.processors.registry`), the app does (server, logging, admission control,
tools; below), its operations block does (drain, auth, resume, metrics, tracing;
:mod:`~voxline.apps.voice_agent.ops_settings`) or the turn engine's does
(:mod:`~voxline.apps.voice_agent.turn_settings`). :func:`agent_settings` is the whole list in table order:
:meth:`Settings.from_config` reads it, ``voxline settings`` prints it as the table in README.md and
docs/configuration.md (a test keeps them equal).

Build settings from any Starlette ``Config`` — tests pass ``Config(environ={...})`` — so nothing here reads the
process environment behind your back. Keys are :class:`~voxline.registry.settings.Secret` values: printing or
logging the settings never shows them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import attrs
from starlette.config import Config
from starlette.datastructures import CommaSeparatedStrings
from voxline.apps.voice_agent.ops_settings import OPERATIONS, Operations
from voxline.apps.voice_agent.turn_settings import TURNS, TurnSettings
from voxline.registry import Plan, Registry, Setting, Values
from voxline.registry.common import DEFAULT_SYSTEM_PROMPT, SYSTEM_PROMPT
from voxline.registry.settings import (
    ConfigError,
    Source,
    choice,
    integer,
    number,
    optional_text,
    text,
)

__all__ = [
    "AGENT_TOOLS",
    "DEFAULT_SYSTEM_PROMPT",
    "LIMITS",
    "OPERATIONS",
    "RECORDING",
    "SERVER",
    "TURNS",
    "ConfigError",
    "Limits",
    "Operations",
    "Settings",
    "TurnSettings",
    "agent_settings",
    "default_registry",
    "load_config",
]

T = TypeVar("T")
_DAY = 86400.0
_MANY = 100_000


def _log_dir(name: str, raw: str) -> Path | None:
    return Path(raw) if raw else None


def _origins(name: str, raw: str) -> tuple[str, ...]:
    from voxline.apps.voice_agent.origins import OriginPolicy

    origins = tuple(o.strip() for o in CommaSeparatedStrings(raw) if o.strip())
    bad = OriginPolicy.invalid_entries(origins)
    if bad:
        raise ConfigError(
            f"{name}: {', '.join(map(repr, bad))} is not an origin; write scheme://host[:port], "
            "e.g. https://voice.example.com (or * for any origin)"
        )
    return origins


# --- the app's own settings --------------------------------------------------------------------------------

AGENT_TOOLS = Setting(
    "AGENT_TOOLS",
    optional_text(),
    None,
    "A module on the import path (e.g. `mypkg.tools`) whose `@tool` functions the LLM may call (docs/tools.md). "
    "A module that cannot be imported or declares no tools is reported to the session.",
    role="app",
)

HOST = Setting("HOST", text(), "127.0.0.1", "Interface `voxline serve` binds (the Docker image sets `0.0.0.0`).")
PORT = Setting("PORT", integer(0, 65535), 8000, "Port `voxline serve` listens on.")
LOG_LEVEL = Setting(
    "LOG_LEVEL",
    choice("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", upper=True),
    "INFO",
    "`DEBUG`, `INFO`, `WARNING`, `ERROR` or `CRITICAL`.",
)
LOG_DIR: Setting[Path | None] = Setting(
    "LOG_DIR",
    _log_dir,
    Path("logs"),
    "Directory of the rotating `voice-backend.log` (10 MiB × 5; with `--workers N`, one "  # noqa: RUF001
    "`voice-backend.worker-<i>.log` per worker). Empty: log to stderr only.",
    blank_is_default=False,
)
CORS_ORIGINS: Setting[tuple[str, ...]] = Setting(
    "CORS_ORIGINS",
    _origins,
    (),
    "Comma-separated origins (`scheme://host[:port]`) also allowed to use the agent, e.g. "
    "`https://yourdomain.com`: CORS headers on the HTTP endpoints, and the `Origin` check on `/ws` (browsers do "
    "not apply CORS to WebSockets). Behind a proxy or a port mapping, list the page's public origin here. `*` "
    "allows any site (trusted networks only). A refused page gets an `error` and close code 1008. See "
    "`docs/security.md`.",
    default_doc="— (only the agent's own page, and clients without an `Origin` header)",
)
MAX_MESSAGE_BYTES = Setting(
    "MAX_MESSAGE_BYTES",
    integer(1024, 16 << 20),
    1 << 20,
    "Largest client message accepted on `/ws`; bigger ones get an `error`.",
    default_doc="`1048576` (1 MiB)",
)
SERVER: tuple[Setting[Any], ...] = (HOST, PORT, LOG_LEVEL, LOG_DIR, CORS_ORIGINS, MAX_MESSAGE_BYTES)
"""Server and logging settings."""

# Admission control and per-session limits (docs/security.md). 0 turns off the limits that say so.
MAX_SESSIONS = Setting(
    "MAX_SESSIONS",
    integer(1, _MANY),
    50,
    "Sessions the process serves at once (a cloud session takes ~4 MiB, an offline one ~90 MiB); one more gets "
    "an `error` and close code 1013 (try again later).",
)
MAX_SESSIONS_PER_IP = Setting(
    "MAX_SESSIONS_PER_IP",
    integer(1, _MANY),
    10,
    "Sessions one client address may hold at once; one more gets an `error` and close code 1013.",
)
IDLE_TIMEOUT = Setting(
    "IDLE_TIMEOUT",
    number(0, _DAY),
    120.0,
    "Seconds without audio or typed text from the client before the session is closed (an `error`, then close "
    "code 1000). `0`: never.",
)
MAX_SESSION_SECONDS = Setting(
    "MAX_SESSION_SECONDS",
    number(0, 7 * _DAY),
    3600.0,
    "Longest a session may last, in seconds; then an `error` and close code 1000. `0`: no limit.",
)
MAX_MESSAGES_PER_SECOND = Setting(
    "MAX_MESSAGES_PER_SECOND",
    number(0, _MANY),
    200.0,
    "Client messages a second (bursts up to a second's worth; a message counts one more per 64 KiB); each one "
    "over gets an `error` and is dropped. `0`: off.",
)
MAX_AUDIO_SPEED = Setting(
    "MAX_AUDIO_SPEED",
    number(0, 1000),
    2.0,
    "Client audio arriving faster than this many times real time (after a burst of 2 s of audio) gets an "
    "`error` and is dropped, not queued. `0`: off.",
)
HANDSHAKE_TIMEOUT = Setting(
    "HANDSHAKE_TIMEOUT",
    number(0.1, 3600),
    10.0,
    "Seconds a new connection has to complete its HTTP request or WebSocket handshake under `voxline serve`; "
    "slower ones are closed.",
)
LIMITS: tuple[Setting[Any], ...] = (
    MAX_SESSIONS,
    MAX_SESSIONS_PER_IP,
    IDLE_TIMEOUT,
    MAX_SESSION_SECONDS,
    MAX_MESSAGES_PER_SECOND,
    MAX_AUDIO_SPEED,
    HANDSHAKE_TIMEOUT,
)


@attrs.frozen(kw_only=True)
class Limits:
    """Admission control and per-session limits, as read (see the settings above for what each one means)."""

    max_sessions: int = MAX_SESSIONS.default
    max_sessions_per_ip: int = MAX_SESSIONS_PER_IP.default
    idle_timeout: float = IDLE_TIMEOUT.default
    max_session_seconds: float = MAX_SESSION_SECONDS.default
    max_messages_per_second: float = MAX_MESSAGES_PER_SECOND.default
    max_audio_speed: float = MAX_AUDIO_SPEED.default
    handshake_timeout: float = HANDSHAKE_TIMEOUT.default

    @classmethod
    def from_config(cls, config: Source) -> Limits:
        return cls.from_values(Values.read(LIMITS, config))

    @classmethod
    def from_values(cls, values: Values) -> Limits:
        return cls(**{setting.name.lower(): values[setting] for setting in LIMITS})


# Recording sessions (docs/recording.md): off unless RECORD_DIR is set.
RECORD_DIR: Setting[Path | None] = Setting(
    "RECORD_DIR",
    _log_dir,
    None,
    "Directory where every session is recorded: `<id>.wav` (stereo: the user left, the agent right, as heard), "
    "`<id>.jsonl` (the turns) and `<id>.replay.jsonl.gz` (for `voxline replay`). Never holds a key; holds the "
    "users' voices: tell them. Empty: no recording.",
)
RECORD_MAX_MB = Setting(
    "RECORD_MAX_MB",
    number(0.01, 100_000),
    50.0,
    "Most a session's recording may take on disk, in MB (all its files together); the recording stops there and "
    "its `.jsonl` ends with a `limit` line saying so (the session goes on).",
)
RECORDING: tuple[Setting[Any], ...] = (RECORD_DIR, RECORD_MAX_MB)
"""Session recording settings."""


# --- everything ----------------------------------------------------------------------------------------------


def default_registry() -> Registry:
    """The built-in providers (:data:`voxline.processors.registry.REGISTRY`)."""
    from voxline.processors.registry import REGISTRY

    return REGISTRY


def agent_settings(registry: Registry | None = None) -> list[Setting[Any]]:
    """Every setting the voice agent reads, in the order of the docs' table."""
    return [
        *(registry or default_registry()).settings(),
        AGENT_TOOLS,
        *SERVER,
        *LIMITS,
        *OPERATIONS,
        *TURNS,
        *RECORDING,
    ]


class Settings:
    """Everything the app reads from its configuration: ``settings[SETTING]`` for any declared setting, and the
    app's own as attributes. Build with :meth:`from_config`."""

    def __init__(self, values: Values, registry: Registry) -> None:
        self.values = values
        self.registry = registry
        self.limits = Limits.from_values(values)
        self.ops = Operations.from_values(values)
        self.turns = TurnSettings.from_values(values)

    @classmethod
    def from_config(cls, config: Source, registry: Registry | None = None) -> Settings:
        """Read every setting of ``registry`` (default: the built-in one) and the app's; ConfigError names a bad one."""
        registry = registry or default_registry()
        return cls(Values.read(agent_settings(registry), config), registry)

    def __getitem__(self, setting: Setting[T]) -> T:
        return self.values[setting]

    def __repr__(self) -> str:
        return f"Settings({self.values!r})"

    def plan(self) -> Plan:
        """Which provider runs each stage: the registry's ``auto`` rule over these settings. Pure: it builds
        nothing (for ``local`` it looks which packages are installed), so it is cheap and testable anywhere."""
        return self.registry.plan(self.values)

    @property
    def host(self) -> str:
        return self.values[HOST]

    @property
    def port(self) -> int:
        return self.values[PORT]

    @property
    def log_level(self) -> str:
        return self.values[LOG_LEVEL]

    @property
    def log_dir(self) -> Path | None:
        return self.values[LOG_DIR]

    @property
    def cors_origins(self) -> tuple[str, ...]:
        return self.values[CORS_ORIGINS]

    @property
    def max_message_bytes(self) -> int:
        return self.values[MAX_MESSAGE_BYTES]

    @property
    def agent_tools(self) -> str | None:
        return self.values[AGENT_TOOLS]

    @property
    def record_dir(self) -> Path | None:
        return self.values[RECORD_DIR]

    @property
    def record_max_bytes(self) -> int:
        return round(self.values[RECORD_MAX_MB] * 1_000_000)

    @property
    def system_prompt(self) -> str:
        return self.values[SYSTEM_PROMPT]

    def fallback(self, stage: str) -> str | None:
        """``LLM_FALLBACK`` / ``TTS_FALLBACK``: the provider named to back the stage up, if any."""
        return self.values[self.registry.fallback("llm" if stage == "llm" else "tts")]

    def secrets(self) -> list[str]:
        """The key values (and the Redis password), for the log filter that makes sure none is ever written out."""
        return list(dict.fromkeys([*self.values.secrets(), *self.ops.secrets()]))

    def public(self) -> dict[str, Any]:
        """The settings without keys (only whether each is set), for /health and the startup log line."""
        keys = [s for s in self.registry.settings() if s.secret]
        return {f"{s.name.lower()}_set": self.values.is_set(s) for s in keys}


def load_config(env_file: str | Path | None = None) -> Config:
    """Starlette ``Config`` over the process environment and ``env_file`` (if it exists).

    The default file is ``$VOXLINE_ENV_FILE`` (set by ``voxline serve --env-file``), else ``.env``.
    """
    if env_file is None:
        env_file = os.environ.get("VOXLINE_ENV_FILE", ".env")
    if env_file is not None and Path(env_file).is_file():
        return Config(env_file)
    return Config()
