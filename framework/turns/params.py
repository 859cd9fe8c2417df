"""The knobs of the turn engine, in one frozen value (validated where it is built).

Defaults follow the anchors: LiveKit AgentSession (``min_interruption_duration`` 0.5 s,
``false_interruption_timeout`` 2.0 s with resume, endpointing 0.5 s min / 3.0 s max) and Pipecat's
smart-turn wiring (Silero VAD with ``stop_secs`` 0.2 s, then the end-of-turn verdict). Ours are tuned on the
conversation benchmark (``tests/bench/bench_turns.py``): see docs/turn-taking.md.
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["TurnParams"]


def _non_negative(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"TurnParams.{attribute.name} must be a number of seconds, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"TurnParams.{attribute.name} must be >= 0, got {value}")


def _words(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        raise TypeError("TurnParams.backchannels must be a collection of words, not one string")
    return frozenset(str(w).lower() for w in value)


@attrs.frozen(slots=True, kw_only=True)
class TurnParams:
    """When the user's turn starts and ends, and when their speech interrupts the bot."""

    # --- the VAD in front ---------------------------------------------------------------------------------
    vad_start_secs: float = attrs.field(default=0.2, validator=_non_negative)
    """How much speech the VAD needs before it reports a start (its ``start_secs``): speech began this long
    before the start event."""
    vad_stop_secs: float = attrs.field(default=0.2, validator=_non_negative)
    """Silence the VAD needs before it reports a stop (its ``stop_secs``). Short on purpose: the end-of-turn
    decision, not the VAD, says when the turn is over."""

    # --- barge-in ------------------------------------------------------------------------------------------
    min_interruption_duration: float = attrs.field(default=0.5, validator=_non_negative)
    """User speech must last this long (from its start) before it can interrupt the bot, unless the STT has
    already given it words that are not backchannels."""
    min_interruption_words: int = attrs.field(default=1, validator=attrs.validators.ge(0))
    """Words that are not backchannels the STT must have heard before the bot is interrupted (0: duration
    alone interrupts)."""
    interrupt_without_words_after: float | None = attrs.field(default=1.0, validator=_non_negative)
    """Speech this long with no words from the STT yet interrupts anyway (an STT without interim results, a
    voice it cannot read). None: never without words."""
    one_word_after: float | None = attrs.field(default=0.8, validator=_non_negative)
    """Until user speech has lasted this long, one interim word that says something does not interrupt unless it
    is urgent ("stop", "wait", "no"): a backchannel is short and a rough STT reads it as a word ("uh-huh" → "the
    flood"); its final decides. None: one word always does."""
    stable_word_secs: float = attrs.field(default=0.15, validator=_non_negative)
    """An interim word counts towards a barge-in once it has stood unchanged this long (STTs revise interims;
    on a hum they try one word after another)."""
    min_word_confidence: float = attrs.field(default=0.4, validator=_non_negative)
    """A final word the STT gives a lower confidence than this does not count towards a barge-in."""
    false_interruption_timeout: float = attrs.field(default=1.5, validator=_non_negative)
    """After pausing the bot for speech without words, resume if no words come within this many seconds."""
    resume_false_interruption: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    """Pause the bot while a possible barge-in is checked, and resume it after a false one. False: never
    pause; speech either interrupts or is ignored."""
    language: str = attrs.field(default="en", validator=attrs.validators.instance_of(str))
    """Selects the backchannel and completeness word lists (``voxline.turns.words``)."""
    backchannels: frozenset[str] | None = attrs.field(default=None, converter=attrs.converters.optional(_words))
    """Backchannel words; None: the list for :attr:`language`."""

    # --- end of turn ---------------------------------------------------------------------------------------
    min_endpointing_delay: float = attrs.field(default=0.35, validator=_non_negative)
    """Silence after the end of speech before a turn that reads as finished is committed."""
    unsure_endpointing_delay: float = attrs.field(default=1.0, validator=_non_negative)
    """... when no strategy has an opinion (no words, no model)."""
    max_endpointing_delay: float = attrs.field(default=2.5, validator=_non_negative)
    """... when the turn reads as unfinished ("a table for ..."): the longest the engine waits."""
    full_stop_counts: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    """A transcript ending in "." reads as finished. False for an STT that ends every transcript with one
    (whisper: "I would like a table for.", "a taxi to the time." for "to the, um,"): its last word decides."""
    model_timeout: float = attrs.field(default=1.0, validator=_non_negative)
    """After the VAD's stop, how long to wait for the end-of-turn model's verdict (at least ``final_timeout``).
    Longer than the STT's wait: the model is the one sign of a trailing "um" the STT wrote down as a word, and on
    a busy machine it took 0.5-1.5 s; a turn committed without it was cut off."""
    final_timeout: float = attrs.field(default=0.4, validator=_non_negative)
    """After the VAD's stop, how long to wait for the STT's final before deciding on what is there (the model's
    verdict is waited for up to ``model_timeout``)."""
    model_doubt: float | None = attrs.field(default=None, validator=_non_negative)
    """Ask the end-of-turn model only when the words leave the turn in doubt (``voxline.turns.asking``): once the
    STT's text is in (or ``final_timeout`` passed), the engine works out the endpointing delay the other
    strategies' votes give, and the delays a verdict of "surely unfinished" and "surely finished" would give;
    when both lie within this many seconds of the first, the words have decided and the model is not asked (its
    CPU saved). 0: only when no verdict can move the delay at all (an unfinished ending: "for", "um").
    None: ask at every stop of the user's speech without waiting for the text (the verdict comes soonest)."""

    def __attrs_post_init__(self) -> None:
        if not self.min_endpointing_delay <= self.unsure_endpointing_delay <= self.max_endpointing_delay:
            raise ValueError(
                "TurnParams endpointing delays must satisfy min <= unsure <= max, got "
                f"{self.min_endpointing_delay} / {self.unsure_endpointing_delay} / {self.max_endpointing_delay}"
            )
