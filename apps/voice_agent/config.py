"""The voice agent's settings, read with Starlette's ``Config`` from the environment and ``.env``.

Every setting has an environment variable of the same name in upper case (``docs/configuration.md`` has the
table). Keys are held as Starlette ``Secret`` values, whose ``repr`` is masked, so printing or logging the
settings never shows them. Build settings from any ``Config`` — tests pass ``Config(environ={...})`` — so
nothing here reads the process environment behind your back.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import attrs
from starlette.config import Config
from starlette.datastructures import CommaSeparatedStrings, Secret

__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "LLM_PROVIDERS",
    "STT_PROVIDERS",
    "TTS_PROVIDERS",
    "TTS_TRANSPORTS",
    "ConfigError",
    "Limits",
    "Settings",
    "TurnSettings",
    "load_config",
]

STT_PROVIDERS = ("auto", "deepgram", "local")
LLM_PROVIDERS = ("auto", "gemini", "openai", "echo")
TTS_PROVIDERS = ("auto", "deepgram", "local")
TTS_TRANSPORTS = ("websocket", "rest")

DEFAULT_SYSTEM_PROMPT = (
    "You are a friendly voice assistant. Your replies are spoken aloud, so answer in one to three short "
    "conversational sentences, without lists, markdown or emoji."
)


class ConfigError(ValueError):
    """A setting has a value the agent cannot use (named in the message)."""


def _secret(config: Config, name: str) -> Secret | None:
    value = config(name, default=None)
    return Secret(value) if value else None


def _choice(config: Config, name: str, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (case-insensitive); unset or empty is the first."""
    value = str(config(name, default=choices[0])).strip().lower() or choices[0]
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not one of: {', '.join(choices)}")
    return value


def _fallback(config: Config, name: str, choices: tuple[str, ...]) -> str | None:
    """An engine name other than ``auto``, or None when unset."""
    value = str(config(name, default="") or "").strip().lower()
    if value and (value == "auto" or value not in choices):
        raise ConfigError(f"{name}={value!r} is not one of: {', '.join(c for c in choices if c != 'auto')}")
    return value or None


def _int(config: Config, name: str, default: int, *, low: int, high: int) -> int:
    raw = config(name, default=None)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _float(config: Config, name: str, default: float, *, low: float, high: float) -> float:
    raw = config(name, default=None)
    if raw is None or str(raw).strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not low <= value <= high:  # also refuses nan
        raise ConfigError(f"{name} must be between {low:g} and {high:g}, got {raw}")
    return value


def _str(config: Config, name: str, default: str) -> str:
    value = config(name, default=None)
    return default if value is None or not str(value).strip() else str(value).strip()


def _opt(config: Config, name: str) -> str | None:
    value = config(name, default=None)
    return str(value).strip() or None if value is not None else None


def _default(cls: type, name: str) -> str:
    return str(getattr(attrs.fields(cls), name).default)


# --- admission control and session limits ----------------------------------------------------------------
# Who may open a session and how much one session may take (docs/security.md). A block of its own: it does
# not depend on the providers, and it can move with the rest of the server settings as it is.


@attrs.frozen(kw_only=True)
class Limits:
    """Admission control and per-session limits. 0 turns off the limits that say so."""

    max_sessions: int = 50
    """Sessions the process serves at once; one more is refused (close code 1013)."""
    max_sessions_per_ip: int = 10
    """Sessions one client address may hold at once."""
    idle_timeout: float = 120.0
    """Seconds without client audio or text before the session is closed (0: never)."""
    max_session_seconds: float = 3600.0
    """Longest a session may last, in seconds (0: no limit)."""
    max_messages_per_second: float = 200.0
    """Client messages a second (bursts up to a second's worth); more get an error and are dropped (0: off)."""
    max_audio_speed: float = 2.0
    """Client audio arriving faster than this many times real time gets an error and is dropped (0: off)."""
    handshake_timeout: float = 10.0
    """Seconds a new connection has to finish its HTTP request or WebSocket handshake (``voxline serve``)."""

    @classmethod
    def from_config(cls, config: Config) -> Limits:
        d, day, many = cls(), 86400.0, 100_000
        messages = _float(config, "MAX_MESSAGES_PER_SECOND", d.max_messages_per_second, low=0, high=many)
        return cls(
            max_sessions=_int(config, "MAX_SESSIONS", d.max_sessions, low=1, high=many),
            max_sessions_per_ip=_int(config, "MAX_SESSIONS_PER_IP", d.max_sessions_per_ip, low=1, high=many),
            idle_timeout=_float(config, "IDLE_TIMEOUT", d.idle_timeout, low=0, high=day),
            max_session_seconds=_float(config, "MAX_SESSION_SECONDS", d.max_session_seconds, low=0, high=7 * day),
            max_messages_per_second=messages,
            max_audio_speed=_float(config, "MAX_AUDIO_SPEED", d.max_audio_speed, low=0, high=1000),
            handshake_timeout=_float(config, "HANDSHAKE_TIMEOUT", d.handshake_timeout, low=0.1, high=3600),
        )


def _origins(config: Config) -> tuple[str, ...]:
    from voxline.apps.voice_agent.origins import OriginPolicy

    origins = tuple(o.strip() for o in CommaSeparatedStrings(config("CORS_ORIGINS", default="")) if o.strip())
    bad = OriginPolicy.invalid_entries(origins)
    if bad:
        raise ConfigError(
            f"CORS_ORIGINS: {', '.join(map(repr, bad))} is not an origin; write scheme://host[:port], "
            "e.g. https://voice.example.com (or * for any origin)"
        )
    return origins


# --- turn-taking ---------------------------------------------------------------------------------------------
# The turn engine's main knobs (docs/turn-taking.md); voxline.apps.voice_agent.turn_wiring builds the engine
# from them. A block of its own: it does not depend on which providers run.

SMART_TURN = ("auto", "on", "off")


def _on_off(config: Config, name: str, default: bool) -> bool:
    value = str(config(name, default="") or "").strip().lower()
    if not value:
        return default
    if value in ("on", "true", "1", "yes"):
        return True
    if value in ("off", "false", "0", "no"):
        return False
    raise ConfigError(f"{name}={value!r} is not on or off")


@attrs.frozen(kw_only=True)
class TurnSettings:
    """How the agent takes turns: barge-in, backchannels, false interruptions, endpointing."""

    enabled: bool = True
    """The server-side turn engine (Silero VAD, barge-in by voice, echo and backchannel handling). Off: the STT's
    own endpointing ends turns and only the client's ``interrupt`` cuts the bot (the agent before turn-taking)."""
    min_interruption_secs: float = 0.5
    """User speech must last this long before it interrupts the bot (unless it ended with words)."""
    min_interruption_words: int = 1
    """Words that are not backchannels the STT must hear before the bot is interrupted (0: duration alone)."""
    backchannels: tuple[str, ...] = ()
    """Words that never interrupt and are not answered while the bot speaks; empty: the language's list."""
    false_interruption_timeout: float = 1.5
    """A bot paused for wordless speech resumes after this many seconds."""
    min_endpointing_secs: float = 0.35
    """Silence after a turn that reads as finished before it is answered."""
    max_endpointing_secs: float = 2.5
    """The longest wait after a turn that reads as unfinished ("a table for ...")."""
    smart_turn: str = "auto"
    """The smart-turn end-of-turn model: ``auto`` (when installed), ``on`` (required), ``off``."""
    echo_threshold: float = 0.5
    """Share of the microphone's energy the bot's own played audio must explain for speech to count as echo."""

    @classmethod
    def from_config(cls, config: Config) -> TurnSettings:
        d, f = cls(), _float
        words = tuple(w.strip().lower() for w in CommaSeparatedStrings(config("TURN_BACKCHANNELS", default="")))
        settings = cls(
            enabled=_on_off(config, "TURN_ENGINE", d.enabled),
            min_interruption_secs=f(config, "TURN_MIN_INTERRUPTION_SECS", d.min_interruption_secs, low=0, high=10),
            min_interruption_words=_int(config, "TURN_MIN_INTERRUPTION_WORDS", d.min_interruption_words, low=0, high=9),
            backchannels=tuple(w for w in words if w),
            false_interruption_timeout=_float(
                config, "TURN_FALSE_INTERRUPTION_TIMEOUT", d.false_interruption_timeout, low=0, high=30
            ),
            min_endpointing_secs=_float(config, "TURN_MIN_ENDPOINTING_SECS", d.min_endpointing_secs, low=0, high=10),
            max_endpointing_secs=_float(config, "TURN_MAX_ENDPOINTING_SECS", d.max_endpointing_secs, low=0, high=30),
            smart_turn=_choice(config, "TURN_SMART_TURN", SMART_TURN),
            echo_threshold=_float(config, "TURN_ECHO_THRESHOLD", d.echo_threshold, low=0.05, high=0.95),
        )
        if settings.min_endpointing_secs > settings.max_endpointing_secs:
            raise ConfigError(
                f"TURN_MIN_ENDPOINTING_SECS ({settings.min_endpointing_secs:g}) must not exceed "
                f"TURN_MAX_ENDPOINTING_SECS ({settings.max_endpointing_secs:g})"
            )
        return settings


# --- everything else ---------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Settings:
    """Everything the app reads from its configuration. Build with :meth:`from_config`."""

    # provider choice per stage
    stt_provider: str = "auto"
    llm_provider: str = "auto"
    tts_provider: str = "auto"
    # keys (masked) and endpoints (None: the SDK's default, the real service)
    deepgram_api_key: Secret | None = None
    gemini_api_key: Secret | None = None
    openai_api_key: Secret | None = None
    deepgram_base_url: str | None = None
    gemini_base_url: str | None = None
    openai_base_url: str | None = None
    # models and voice
    deepgram_stt_model: str = "nova-3"
    stt_language: str = "en"
    deepgram_tts_voice: str = "aura-asteria-en"
    deepgram_tts_transport: str = "websocket"
    gemini_model: str = "gemini-3.8-flash"
    openai_model: str = "gpt-4o-mini"
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    # tools and fallbacks (voxline.apps.voice_agent.tools)
    agent_tools: str | None = None
    llm_fallback: str | None = None
    tts_fallback: str | None = None
    # server
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_dir: Path | None = Path("logs")
    cors_origins: tuple[str, ...] = ()
    max_message_bytes: int = 1 << 20
    limits: Limits = attrs.field(factory=Limits)
    turns: TurnSettings = attrs.field(factory=TurnSettings)

    @classmethod
    def from_config(cls, config: Config) -> Settings:
        log_dir = config("LOG_DIR", default="logs")
        level = _str(config, "LOG_LEVEL", "INFO").upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ConfigError(f"LOG_LEVEL={level!r} is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return cls(
            stt_provider=_choice(config, "STT_PROVIDER", STT_PROVIDERS),
            llm_provider=_choice(config, "LLM_PROVIDER", LLM_PROVIDERS),
            tts_provider=_choice(config, "TTS_PROVIDER", TTS_PROVIDERS),
            deepgram_api_key=_secret(config, "DEEPGRAM_API_KEY"),
            gemini_api_key=_secret(config, "GEMINI_API_KEY"),
            openai_api_key=_secret(config, "OPENAI_API_KEY"),
            deepgram_base_url=_opt(config, "DEEPGRAM_BASE_URL"),
            gemini_base_url=_opt(config, "GEMINI_BASE_URL"),
            openai_base_url=_opt(config, "OPENAI_BASE_URL"),
            deepgram_stt_model=_str(config, "DEEPGRAM_STT_MODEL", _default(cls, "deepgram_stt_model")),
            stt_language=_str(config, "STT_LANGUAGE", _default(cls, "stt_language")),
            deepgram_tts_voice=_str(config, "DEEPGRAM_TTS_VOICE", _default(cls, "deepgram_tts_voice")),
            deepgram_tts_transport=_choice(config, "DEEPGRAM_TTS_TRANSPORT", TTS_TRANSPORTS),
            gemini_model=_str(config, "GEMINI_MODEL", _default(cls, "gemini_model")),
            openai_model=_str(config, "OPENAI_MODEL", _default(cls, "openai_model")),
            system_prompt=_str(config, "SYSTEM_PROMPT", DEFAULT_SYSTEM_PROMPT),
            agent_tools=_opt(config, "AGENT_TOOLS"),
            llm_fallback=_fallback(config, "LLM_FALLBACK", LLM_PROVIDERS),
            tts_fallback=_fallback(config, "TTS_FALLBACK", TTS_PROVIDERS),
            host=_str(config, "HOST", "127.0.0.1"),
            port=_int(config, "PORT", 8000, low=0, high=65535),
            log_level=level,
            log_dir=Path(log_dir) if str(log_dir).strip() else None,
            cors_origins=_origins(config),
            max_message_bytes=_int(config, "MAX_MESSAGE_BYTES", 1 << 20, low=1024, high=16 << 20),
            limits=Limits.from_config(config),
            turns=TurnSettings.from_config(config),
        )

    def secrets(self) -> list[str]:
        """The key values, for the log filter that makes sure none is ever written out."""
        return [str(s) for s in (self.deepgram_api_key, self.gemini_api_key, self.openai_api_key) if s]

    def public(self) -> dict[str, Any]:
        """The settings without keys (only whether each is set), for /health and the startup log line."""
        return {
            "deepgram_api_key_set": self.deepgram_api_key is not None,
            "gemini_api_key_set": self.gemini_api_key is not None,
            "openai_api_key_set": self.openai_api_key is not None,
        }


def load_config(env_file: str | Path | None = None) -> Config:
    """Starlette ``Config`` over the process environment and ``env_file`` (if it exists).

    The default file is ``$VOXLINE_ENV_FILE`` (set by ``voxline serve --env-file``), else ``.env``.
    """
    if env_file is None:
        env_file = os.environ.get("VOXLINE_ENV_FILE", ".env")
    if env_file is not None and Path(env_file).is_file():
        return Config(env_file)
    return Config()
