"""What the turn engine decides: small immutable values the processor turns into frames and calls.

Every signal the engine receives returns a list of these, in the order they must be acted on.
"""

from __future__ import annotations

import attrs

__all__ = [
    "AnalyzeTurn",
    "Backchannel",
    "BargeIn",
    "Decision",
    "FalseInterruption",
    "FinalizeSTT",
    "PausePlayback",
    "TurnEnded",
    "TurnStarted",
]


@attrs.frozen(slots=True)
class Decision:
    """Base of every decision; ``at`` is when it was made, on the engine's clock."""

    at: float


@attrs.frozen(slots=True)
class TurnStarted(Decision):
    """The user has the floor: speech that is not echo, and (while the bot speaks) not a backchannel."""

    speech_start: float


@attrs.frozen(slots=True)
class TurnEnded(Decision):
    """The user's turn is over: commit ``text`` (the turn's STT pieces, joined) as one user turn.

    ``delay`` is the silence the engine waited after the end of speech (``speech_end``); ``reason`` the
    verdict that set it: ``"complete"``, ``"incomplete"`` (waited the longest), ``"unsure"``, ``"late text"``.
    """

    text: str
    speech_end: float
    delay: float
    reason: str
    score: float | None = None


@attrs.frozen(slots=True)
class BargeIn(Decision):
    """Interrupt the bot: the user is taking the floor while it speaks. ``speech_start`` is when they began."""

    speech_start: float
    reason: str


@attrs.frozen(slots=True)
class Backchannel(Decision):
    """The user only acknowledged ("uh-huh") while the bot spoke: no barge-in, no turn; drop its text."""

    text: str


@attrs.frozen(slots=True)
class PausePlayback(Decision):
    """User speech long enough to be a barge-in, but no words yet: pause the bot while we find out."""


@attrs.frozen(slots=True)
class FalseInterruption(Decision):
    """The speech that paused the bot was not a barge-in (noise, a cough, a backchannel): resume playback."""

    reason: str


@attrs.frozen(slots=True)
class FinalizeSTT(Decision):
    """The user stopped speaking: ask the STT for its final now rather than after its own endpointing."""


@attrs.frozen(slots=True)
class AnalyzeTurn(Decision):
    """Run the end-of-turn model on the user's audio from ``speech_start`` (minus pre-roll) to now (``until``).

    Its verdict comes back through :meth:`TurnEngine.end_of_turn_verdict` with this ``request`` number; a
    verdict for an older request (the user spoke again meanwhile) is ignored.
    """

    speech_start: float
    speech_end: float
    request: int
    until: float | None = None
    """The audio up to this clock time (the VAD's stop, when the engine waited for the words before asking);
    None: up to now."""
