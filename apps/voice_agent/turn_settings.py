"""The voice agent's ``TURN_*`` settings: the turn engine's main knobs, declared like every other setting.

A block of its own (rows near the end of the settings table): it does not depend on which providers run.
:class:`TurnSettings` is what :mod:`voxline.apps.voice_agent.turn_wiring` builds the engine from
(docs/turn-taking.md); ``Settings.turns`` holds it, read with the rest of the settings.
"""

from __future__ import annotations

from typing import Any

import attrs
from starlette.datastructures import CommaSeparatedStrings
from voxline.registry import Setting, Values
from voxline.registry.settings import ConfigError, Source, choice, integer, number, on_off

__all__ = [
    "TURNS",
    "TURN_BACKCHANNELS",
    "TURN_ECHO_THRESHOLD",
    "TURN_ENGINE",
    "TURN_FALSE_INTERRUPTION_TIMEOUT",
    "TURN_MAX_ENDPOINTING_SECS",
    "TURN_MIN_ENDPOINTING_SECS",
    "TURN_MIN_INTERRUPTION_SECS",
    "TURN_MIN_INTERRUPTION_WORDS",
    "TURN_SMART_TURN",
    "TURN_SMART_TURN_DOUBT",
    "TurnSettings",
]


def _doubt(name: str, raw: str) -> str:
    value = raw.strip().lower()
    if value in ("auto", "always"):
        return value
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(f"{name} must be auto, always or a number of seconds (0-3), got {raw!r}") from None
    if not 0 <= seconds <= 3:
        raise ConfigError(f"{name} must be between 0 and 3 seconds, got {raw}")
    return f"{seconds:g}"


def _words(name: str, raw: str) -> tuple[str, ...]:
    return tuple(w for w in (w.strip().lower() for w in CommaSeparatedStrings(raw)) if w)


TURN_ENGINE = Setting(
    "TURN_ENGINE",
    on_off(),
    True,
    "The server-side turn engine (docs/turn-taking.md): Silero VAD in front of the STT on every path, barge-in "
    "by voice, backchannels and the agent's own echo ignored, false interruptions resumed. `off`: the STT's own "
    "endpointing ends turns and only the client's `interrupt` cuts the reply.",
    default_doc="`on`",
)
TURN_MIN_INTERRUPTION_SECS = Setting(
    "TURN_MIN_INTERRUPTION_SECS",
    number(0, 10),
    0.5,
    "User speech must last this long to interrupt the reply (unless it ended with words).",
)
TURN_MIN_INTERRUPTION_WORDS = Setting(
    "TURN_MIN_INTERRUPTION_WORDS",
    integer(0, 9),
    1,
    "Words that are not backchannels the STT must hear before the reply is interrupted (`0`: duration alone).",
)
TURN_BACKCHANNELS: Setting[tuple[str, ...]] = Setting(
    "TURN_BACKCHANNELS",
    _words,
    (),
    "Comma-separated words that never interrupt and are not answered while the agent speaks (`uh-huh, yeah, "
    "right, okay, mm-hmm, ...`).",
    default_doc="the language's list",
)
TURN_FALSE_INTERRUPTION_TIMEOUT = Setting(
    "TURN_FALSE_INTERRUPTION_TIMEOUT",
    number(0, 30),
    1.5,
    "Seconds after which a reply paused for wordless speech (a cough, a hum) resumes.",
)
TURN_MIN_ENDPOINTING_SECS = Setting(
    "TURN_MIN_ENDPOINTING_SECS",
    number(0, 10),
    0.35,
    "Silence after a turn that reads as finished before it is answered.",
)
TURN_MAX_ENDPOINTING_SECS = Setting(
    "TURN_MAX_ENDPOINTING_SECS",
    number(0, 30),
    2.5,
    'The longest wait after a turn that reads as unfinished ("a table for ...").',
)
TURN_SMART_TURN = Setting(
    "TURN_SMART_TURN",
    choice("auto", "on", "off"),
    "auto",
    "The smart-turn end-of-turn model: `auto` (used when installed: `python -m voxline.processors.turns.install`), "
    "`on` (a session without it cannot start), `off`.",
)
TURN_SMART_TURN_DOUBT = Setting(
    "TURN_SMART_TURN_DOUBT",
    _doubt,
    "auto",
    "When the engine asks smart-turn: `always` (at every pause of the user's speech, at once), or a number of "
    "seconds `s` (only once the words are in, and only when some verdict could move the wait after the turn by "
    "more than `s`: `0` skips only the turns whose words decide whatever it says, such as one ending in "
    '"for" or "um"). `auto`: 0.6 on Deepgram (its punctuation and fillers decide most turns), `always` on the '
    "local engines.",
)
TURN_ECHO_THRESHOLD = Setting(
    "TURN_ECHO_THRESHOLD",
    number(0.05, 0.95),
    0.5,
    "Share of the microphone's energy the agent's own played audio must explain for speech to count as echo "
    "(0.05-0.95).",
)
TURNS: tuple[Setting[Any], ...] = (
    TURN_ENGINE,
    TURN_MIN_INTERRUPTION_SECS,
    TURN_MIN_INTERRUPTION_WORDS,
    TURN_BACKCHANNELS,
    TURN_FALSE_INTERRUPTION_TIMEOUT,
    TURN_MIN_ENDPOINTING_SECS,
    TURN_MAX_ENDPOINTING_SECS,
    TURN_SMART_TURN,
    TURN_SMART_TURN_DOUBT,
    TURN_ECHO_THRESHOLD,
)
"""The turn engine's settings, in table order."""


@attrs.frozen(kw_only=True)
class TurnSettings:
    """How the agent takes turns: barge-in, backchannels, false interruptions, endpointing (the ``TURN_*``
    settings above, as read; the defaults are the declarations')."""

    enabled: bool = TURN_ENGINE.default
    """The server-side turn engine (Silero VAD, barge-in by voice, echo and backchannel handling). Off: the STT's
    own endpointing ends turns and only the client's ``interrupt`` cuts the bot (the agent before turn-taking)."""
    min_interruption_secs: float = TURN_MIN_INTERRUPTION_SECS.default
    """User speech must last this long before it interrupts the bot (unless it ended with words)."""
    min_interruption_words: int = TURN_MIN_INTERRUPTION_WORDS.default
    """Words that are not backchannels the STT must hear before the bot is interrupted (0: duration alone)."""
    backchannels: tuple[str, ...] = TURN_BACKCHANNELS.default
    """Words that never interrupt and are not answered while the bot speaks; empty: the language's list."""
    false_interruption_timeout: float = TURN_FALSE_INTERRUPTION_TIMEOUT.default
    """A bot paused for wordless speech resumes after this many seconds."""
    min_endpointing_secs: float = TURN_MIN_ENDPOINTING_SECS.default
    """Silence after a turn that reads as finished before it is answered."""
    max_endpointing_secs: float = TURN_MAX_ENDPOINTING_SECS.default
    """The longest wait after a turn that reads as unfinished ("a table for ...")."""
    smart_turn: str = TURN_SMART_TURN.default
    """The smart-turn end-of-turn model: ``auto`` (when installed), ``on`` (required), ``off``."""
    smart_turn_doubt: str = TURN_SMART_TURN_DOUBT.default
    """When smart-turn is asked: ``always``, ``auto`` (the path's default) or seconds (``TurnParams.model_doubt``)."""
    echo_threshold: float = TURN_ECHO_THRESHOLD.default
    """Share of the microphone's energy the bot's own played audio must explain for speech to count as echo."""

    @classmethod
    def from_config(cls, config: Source) -> TurnSettings:
        return cls.from_values(Values.read(TURNS, config))

    @classmethod
    def from_values(cls, values: Values) -> TurnSettings:
        """The ``TURN_*`` values; ConfigError when the endpointing bounds are the wrong way round."""
        settings = cls(
            enabled=values[TURN_ENGINE],
            min_interruption_secs=values[TURN_MIN_INTERRUPTION_SECS],
            min_interruption_words=values[TURN_MIN_INTERRUPTION_WORDS],
            backchannels=values[TURN_BACKCHANNELS],
            false_interruption_timeout=values[TURN_FALSE_INTERRUPTION_TIMEOUT],
            min_endpointing_secs=values[TURN_MIN_ENDPOINTING_SECS],
            max_endpointing_secs=values[TURN_MAX_ENDPOINTING_SECS],
            smart_turn=values[TURN_SMART_TURN],
            smart_turn_doubt=values[TURN_SMART_TURN_DOUBT],
            echo_threshold=values[TURN_ECHO_THRESHOLD],
        )
        if settings.min_endpointing_secs > settings.max_endpointing_secs:
            raise ConfigError(
                f"TURN_MIN_ENDPOINTING_SECS ({settings.min_endpointing_secs:g}) must not exceed "
                f"TURN_MAX_ENDPOINTING_SECS ({settings.max_endpointing_secs:g})"
            )
        return settings
