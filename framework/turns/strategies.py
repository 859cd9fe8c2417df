"""Strategies: the small rules the engine combines. Write your own by implementing one method.

Two kinds, two questions:

* :class:`InterruptionStrategy` — *may this user speech interrupt the bot?* ``allows(speech)`` sees what the
  engine knows about the user's current stretch of speech while the bot talks (:class:`UserSpeech`). The bot
  is interrupted when **every** strategy allows it. Defaults: :class:`MinDuration` and :class:`MinWords`.
* :class:`EndpointingStrategy` — *is the user's turn finished?* ``vote(evidence)`` returns log-odds that it
  is (positive: finished; negative: more is coming; None: no opinion), from the :class:`TurnEvidence` the
  engine has when the user falls silent. Votes add up; :func:`endpointing_delay` turns the sum into how long
  to wait for more speech before the turn is committed. Defaults: :class:`TranscriptCompleteness`,
  :class:`ModelVerdict` (when an end-of-turn model is configured) and :class:`STTEndOfSpeech`.

Strategies are pure: no clock, no I/O, no state the engine does not pass in. That is what lets tests drive
the engine on a virtual clock.
"""

from __future__ import annotations

import math
from typing import Protocol

import attrs
from voxline.turns.params import TurnParams
from voxline.turns.words import Completeness, content_words, text_completeness, tokens

__all__ = [
    "EndpointingStrategy",
    "InterruptionStrategy",
    "MinDuration",
    "MinWords",
    "ModelVerdict",
    "STTEndOfSpeech",
    "TranscriptCompleteness",
    "TurnEvidence",
    "UserSpeech",
    "endpointing_delay",
]


@attrs.frozen(slots=True)
class UserSpeech:
    """The user's current stretch of speech while the bot talks."""

    duration: float
    """Seconds since the speech began (so far, or in all once ``ended``)."""
    text: str
    """What the STT has heard of it so far (its finals and latest interim)."""
    ended: bool
    """The VAD has reported its end."""
    final: bool
    """The STT's final for it is in (``text`` will not change)."""
    reliable: str | None = None
    """The words of ``text`` that can be relied on: interim words that have stood a while, final words the STT
    was sure of (None: all of ``text``)."""
    urgent: bool = False
    """``reliable`` has a word that plainly claims the floor ("stop", "wait", "no": ``voxline.turns.words.URGENT``)."""


class InterruptionStrategy(Protocol):
    def allows(self, speech: UserSpeech) -> bool:
        """Whether ``speech`` may interrupt the bot (asked again as the speech goes on)."""
        ...


@attrs.frozen(slots=True)
class MinDuration:
    """Speech must last ``seconds``: a cough or a click is not a barge-in. Shorter speech that has ended with
    words from the STT counts (a curt "stop")."""

    seconds: float = 0.5

    def allows(self, speech: UserSpeech) -> bool:
        return speech.duration >= self.seconds - 1e-9 or (speech.ended and bool(tokens(speech.text)))


@attrs.frozen(slots=True)
class MinWords:
    """The STT must have heard ``count`` words that say something: not backchannels ("uh-huh, yeah" never
    interrupts), nor function words, fillers or lone letters (``voxline.turns.words.content_words``), and only
    words it can be relied on for (:attr:`UserSpeech.reliable`).

    ``without_words_after``: speech that has gone on this long with no words at all interrupts anyway (the
    STT may give no interims, or not read this voice); None never does.

    ``one_word_after``: while the speech is shorter than this and its final is not in, the interim must have
    one word more than ``count`` unless one is urgent. A backchannel is short, and a rough STT reads it as a
    word that says something (pocketsphinx: "uh-huh" → "the flood"); its final then decides. None: off.
    """

    count: int
    backchannels: frozenset[str]
    without_words_after: float | None = 1.0
    one_word_after: float | None = None

    def allows(self, speech: UserSpeech) -> bool:
        if self.count <= 0:
            return True
        reliable = speech.text if speech.reliable is None else speech.reliable
        found = content_words(reliable, self.backchannels)
        if found >= self.count:
            short = self.one_word_after is not None and speech.duration < self.one_word_after - 1e-9
            return found > self.count or speech.final or speech.urgent or not short
        after = self.without_words_after
        return after is not None and not tokens(speech.text) and not speech.ended and speech.duration >= after


@attrs.frozen(slots=True)
class TurnEvidence:
    """What is known about the user's turn when they fall silent."""

    text: str
    """The turn's text so far: the STT's finals, then its latest interim if the final is not in yet."""
    final: bool
    """The STT's final for the last stretch of speech is in."""
    model_probability: float | None
    """The end-of-turn model's probability that the turn is complete (None: no model, or not yet)."""
    stt_end_of_speech: bool
    """The STT itself marked the end of speech (Deepgram's ``speech_final``)."""
    language: str
    last_word_confidence: float | None = None
    """The STT's confidence in the last word of ``text``, when its final gave one (None: unknown)."""
    interim: str | None = None
    """The STT's last interim for the speech that ends ``text``, which its final replaced (None: none came)."""


class EndpointingStrategy(Protocol):
    def vote(self, evidence: TurnEvidence) -> float | None:
        """Log-odds that the turn is finished; None for no opinion."""
        ...


@attrs.frozen(slots=True)
class TranscriptCompleteness:
    """Reads the words: an unfinished ending ("for", "the", "and", "um") votes strongly against ending the
    turn, punctuation or a content word for it (:func:`voxline.turns.words.text_completeness`).

    ``full_stop=False`` for an STT whose full stops say nothing (whisper ends every transcript with one, the
    unfinished ones too): the last word decides, "?" and "!" still count.

    ``doubtful_below``: a last word the STT is less sure of than this (:attr:`TurnEvidence.last_word_confidence`)
    cannot say the turn is finished — the vote *for* finishing is withheld (None), an unfinished ending still
    votes against. An STT with a language model completes the sentence it hears cut off: whisper writes "call,
    uh, …" as "call us?" ("us" 0.22) and "to the, um, …" as "to the pump." ("pump" 0.24), and its "?" and last
    word then read as a finished question. None: off (every word counts).

    ``second_opinion``: the interims come from another recogniser than the final (whisper's finals, pocketsphinx's
    interims): when the last interim ends unfinished ("can you send the report to") and the final reads finished
    ("Can you send the reporter?"), the unfinished reading wins — the final's recogniser completed the words, the
    other one heard them end open. Off for an STT whose final merely extends its own interims (Deepgram: "I want
    to" → "I want to go.").
    """

    weight: float = 1.0
    full_stop: bool = True
    doubtful_below: float | None = None
    second_opinion: bool = False

    def vote(self, evidence: TurnEvidence) -> float | None:
        vote = text_completeness(evidence.text, evidence.language, full_stop=self.full_stop)
        if vote is None:
            return None
        if vote > 0 and self.second_opinion and evidence.interim:
            heard = text_completeness(evidence.interim, evidence.language, full_stop=self.full_stop)
            if heard == Completeness.INCOMPLETE:
                return heard * self.weight
        sure = evidence.last_word_confidence
        if vote > 0 and self.doubtful_below is not None and sure is not None and sure < self.doubtful_below:
            return None  # a made-up ending says nothing: the other strategies (the model) decide
        return vote * self.weight


@attrs.frozen(slots=True)
class ModelVerdict:
    """The audio end-of-turn model's probability, as log-odds clipped to ±``clip``, scaled by ``weight``.

    Weighed so that the words win a disagreement unless the model is very sure: on synthetic and flat voices
    smart-turn calls finished questions unfinished (Pipecat's example: 11 of 12 times; on our corpus flite
    slt's "What is the weather like today?" scores 0.02), while it hears what the words cannot — a trailing
    "um" that the STT writes down as "thumb" scores 0.01 on every voice. A finished-looking text (+2) against
    p = 0.2 still ends at the minimum delay; against p = 0.01 it waits about 1.6 s.
    """

    weight: float = 0.6
    clip: float = 4.0

    def vote(self, evidence: TurnEvidence) -> float | None:
        p = evidence.model_probability
        if p is None:
            return None
        p = min(max(p, 1e-4), 1 - 1e-4)
        return max(-self.clip, min(self.clip, math.log(p / (1 - p)))) * self.weight


@attrs.frozen(slots=True)
class STTEndOfSpeech:
    """The STT's own end of speech (its endpointing heard silence long enough) is mild evidence."""

    vote_for: float = 0.5

    def vote(self, evidence: TurnEvidence) -> float | None:
        return self.vote_for if evidence.stt_end_of_speech else None


def endpointing_delay(score: float | None, params: TurnParams) -> float:
    """Seconds of silence to wait after the end of speech for a turn whose votes add up to ``score``.

    Score ≥ +1: :attr:`TurnParams.min_endpointing_delay`; 0 or no vote: the unsure delay; ≤ -1: the max;
    linear in between, so a weak verdict waits a little longer than a firm one.
    """
    p = params
    if score is None:
        return p.unsure_endpointing_delay
    if score >= 1.0:
        return p.min_endpointing_delay
    if score <= -1.0:
        return p.max_endpointing_delay
    if score >= 0:
        return p.unsure_endpointing_delay + (p.min_endpointing_delay - p.unsure_endpointing_delay) * score
    return p.unsure_endpointing_delay + (p.max_endpointing_delay - p.unsure_endpointing_delay) * -score
