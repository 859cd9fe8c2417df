"""Barge-in: whether the user's speech while the bot talks interrupts it, pauses it, or is let go.

The part of :class:`~voxline.turns.engine.TurnEngine` that looks after the *candidate* stretch (user speech
that began while the bot was speaking). It asks the interruption strategies as the speech and its words come
in; when all allow it, :class:`~voxline.turns.decisions.BargeIn` and the stretch becomes the start of the
user's turn (the engine's ``_become_turn``). Speech long enough but without words yet pauses the bot
(:class:`~voxline.turns.decisions.PausePlayback`); a stretch that ends as a backchannel, or without words, is
let go and a paused bot resumes (:class:`~voxline.turns.decisions.FalseInterruption`).

A mixin rather than an object of its own: the decisions share the engine's state (the bot's speaking state,
the turn it starts), and the engine stays one value a test drives on a virtual clock.
"""

from __future__ import annotations

from voxline.turns.clock import Clock
from voxline.turns.decisions import Backchannel, BargeIn, Decision, FalseInterruption, PausePlayback
from voxline.turns.params import TurnParams
from voxline.turns.strategies import InterruptionStrategy, UserSpeech
from voxline.turns.stretch import Stretch
from voxline.turns.words import is_backchannel, tokens

__all__ = ["BargeInRules"]


class BargeInRules:
    """The candidate's decisions; mixed into :class:`~voxline.turns.engine.TurnEngine`, which sets the state."""

    params: TurnParams
    clock: Clock
    backchannels: frozenset[str]
    urgent: frozenset[str]
    interruption: list[InterruptionStrategy]
    bot_speaking: bool
    paused: bool
    _candidate: Stretch | None
    _resume_at: float | None

    def _become_turn(self, stretch: Stretch, now: float, out: list[Decision]) -> None:
        raise NotImplementedError  # the engine's: the user's turn starts with the stretch

    def _candidate_times(self, stretch: Stretch) -> list[float]:
        p = self.params
        now = self.clock.now()
        times = [stretch.start + p.min_interruption_duration]
        if p.interrupt_without_words_after is not None:
            times.append(stretch.start + p.interrupt_without_words_after)
        if p.one_word_after is not None:
            times.append(stretch.start + p.one_word_after)
        settling = stretch.next_stable(now, p.stable_word_secs)
        if settling is not None:
            times.append(settling)
        return [t for t in times if t > now]

    def _check_candidate(self, stretch: Stretch, now: float, out: list[Decision], *, settled: bool = False) -> None:
        if stretch is not self._candidate:
            return
        end = stretch.end if stretch.end is not None else now
        if stretch.end is not None and not settled:
            return  # stopped: its final (better evidence than any interim) is on its way
        reliable = stretch.reliable(now, self.params.stable_word_secs, self.urgent)
        urgent = any(word in self.urgent for word in tokens(reliable))
        speech = UserSpeech(end - stretch.start, stretch.text, stretch.end is not None, settled, reliable, urgent)
        if all(strategy.allows(speech) for strategy in self.interruption):
            self._candidate = None
            self.bot_speaking = self.paused = False
            self._resume_at = None
            out.append(BargeIn(now, stretch.start, "words" if tokens(stretch.text) else "duration"))
            self._become_turn(stretch, now, out)
            return
        p = self.params
        if stretch.end is None:
            long_enough = speech.duration >= p.min_interruption_duration - 1e-9
            if long_enough and not tokens(stretch.text) and p.resume_false_interruption and not self.paused:
                self.paused = True
                self._resume_at = now + p.false_interruption_timeout
                out.append(PausePlayback(now))
            return
        if not settled:
            return  # stopped: wait for its text
        self._candidate = None
        self._resume_at = None
        text = stretch.text
        if text and is_backchannel(text, self.backchannels):
            out.append(Backchannel(now, text))
        if self.paused:
            self.paused = False
            out.append(FalseInterruption(now, "backchannel" if text else "no words"))

    def _release_candidate(self) -> list[Decision]:
        stretch, self._candidate = self._candidate, None
        if stretch is None:
            return []
        out: list[Decision] = []
        self._become_turn(stretch, self.clock.now(), out)
        return out
