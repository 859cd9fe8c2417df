"""The turn engine: signals in, decisions out, on an injected clock. No I/O, no tasks, no awaits.

Signals: the VAD's start and stop of speech (and whether that speech is the bot's own echo), the STT's
interims, finals and per-stretch text, the end-of-turn model's verdict, the bot's speaking state, and an
interrupt that came from elsewhere (the client). Each call returns the :mod:`~voxline.turns.decisions` it
completed; :attr:`TurnEngine.deadline` says when :meth:`TurnEngine.poll` must be called next (timers are
the caller's job, so tests move a :class:`~voxline.turns.clock.VirtualClock` instead of sleeping).

The user's speech comes in *stretches* (VAD start → stop). Each is one of three kinds, fixed at its start:

* ``turn`` — the bot is silent: the stretch is part of the user's turn. When it stops, the engine asks the
  STT to finalise and the model to judge (with ``model_doubt``: once the words are in, and only if they leave
  the turn in doubt), waits for both (the text up to ``final_timeout``, the verdict up to ``model_timeout``),
  lets the endpointing strategies vote and commits the turn once the silence has lasted the delay their score
  asks for — unless the user speaks again first, which continues the turn.
* ``candidate`` — the bot is speaking: a possible barge-in (:mod:`voxline.turns.barge_in`): it interrupts,
  pauses the bot, or is let go as a backchannel or a false interruption.
* ``echo`` — the echo detector says it is the bot's own voice: ignored, its text dropped.

Text arrives after the stretch it belongs to (the STT finalises after the VAD's stop), so stopped stretches
wait in a queue for their text, oldest first, until ``final_timeout``.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

from voxline.turns.barge_in import BargeInRules
from voxline.turns.clock import Clock, MonotonicClock
from voxline.turns.decisions import (
    AnalyzeTurn,
    Decision,
    FalseInterruption,
    FinalizeSTT,
    TurnStarted,
)
from voxline.turns.ending import EndOfTurn
from voxline.turns.late_text import LATE_TEXT_SECS, LateText, Owed
from voxline.turns.params import TurnParams
from voxline.turns.strategies import (
    EndpointingStrategy,
    InterruptionStrategy,
    MinDuration,
    MinWords,
    ModelVerdict,
    STTEndOfSpeech,
    TranscriptCompleteness,
)
from voxline.turns.stretch import CANDIDATE, ECHO, TURN, Stretch
from voxline.turns.words import backchannels_for, tokens, urgent_for

__all__ = ["LATE_TEXT_SECS", "TurnEngine"]


class TurnEngine(BargeInRules, LateText, EndOfTurn):
    """Decides user turn start/end, barge-in, backchannel and false interruption. See the module docstring.

    ``interruption`` and ``endpointing`` replace the default strategies; ``uses_model`` makes the engine ask
    for (and wait, within ``final_timeout``, for) an end-of-turn model verdict when the user falls silent.
    """

    def __init__(
        self,
        params: TurnParams | None = None,
        *,
        clock: Clock | None = None,
        interruption: Sequence[InterruptionStrategy] | None = None,
        endpointing: Sequence[EndpointingStrategy] | None = None,
        uses_model: bool = False,
    ) -> None:
        self.params = p = params or TurnParams()
        self.clock = clock or MonotonicClock()
        self.backchannels = p.backchannels if p.backchannels is not None else backchannels_for(p.language)
        self.urgent = urgent_for(p.language)
        if interruption is None:
            interruption = [
                MinDuration(p.min_interruption_duration),
                MinWords(
                    p.min_interruption_words, self.backchannels, p.interrupt_without_words_after, p.one_word_after
                ),
            ]
        if endpointing is None:
            endpointing = [TranscriptCompleteness(full_stop=p.full_stop_counts), STTEndOfSpeech()]
            if uses_model:
                endpointing.append(ModelVerdict())
        self.interruption = list(interruption)
        self.endpointing = list(endpointing)
        self.uses_model = uses_model
        self.bot_speaking = False
        self.paused = False
        self._speaking: Stretch | None = None
        self._stopped: collections.deque[Stretch] = collections.deque()
        self._given_up: collections.deque[Owed] = collections.deque()  # stretches whose text may still come
        self._candidate: Stretch | None = None  # the stretch that may interrupt the bot
        self._resume_at: float | None = None
        # the user's turn
        self.in_turn = False
        self._turn_start = 0.0
        self._held: list[str] = []
        self._turns = 0  # turns committed so far
        self._speech_end: float | None = None
        self._deciding = False  # silent after speech: waiting for text/verdict, then for the delay
        self._decide_by: float | None = None  # wait for the STT's text until then
        self._model_by: float | None = None  # ... and for the model's verdict until then
        self._commit_at: float | None = None
        self._score: float | None = None
        self._model_p: float | None = None
        self._request = 0
        self._model_deferred = False  # the model may still be asked about this silence, once the words are in
        self._silent_since = 0.0  # the VAD's stop it would be asked about
        self._stt_eos = False
        self._end_confidence: float | None = None  # of the last word of the latest final (TurnEvidence)
        self._end_interim: str | None = None  # the last interim that final replaced
        self._echo_until = 0.0  # text with no stretch of its own until then follows echo: it is echo

    # --- signals -------------------------------------------------------------------------------------------

    def user_started_speaking(self, *, echo: bool = False) -> list[Decision]:
        """The VAD reports speech (``vad_start_secs`` after it began). ``echo``: it is the bot's own voice."""
        now = self.clock.now()
        start = now - self.params.vad_start_secs
        if self._speech_end is not None:
            start = max(start, self._speech_end)
        if echo:
            self._speaking = Stretch(ECHO, start)
            return []
        return self._start_stretch(start, now)

    def speech_is_not_echo(self) -> list[Decision]:
        """The stretch in progress, taken for echo at its start, turns out to be the user (talking over it)."""
        stretch = self._speaking
        if stretch is None or stretch.kind != ECHO:
            return []
        now = self.clock.now()
        return self._start_stretch(max(stretch.start, now - self.params.vad_start_secs), now)

    def user_stopped_speaking(self, speech_end: float | None = None) -> list[Decision]:
        """The VAD reports silence; ``speech_end`` is when the speech ended (default: ``vad_stop_secs`` ago)."""
        now = self.clock.now()
        stretch, self._speaking = self._speaking, None
        if stretch is None:
            return []
        end = now - self.params.vad_stop_secs if speech_end is None else speech_end
        stretch.end = max(stretch.start, min(end, now))
        stretch.text_by = now + self.params.final_timeout
        out: list[Decision] = []
        if stretch.closed:  # the STT already sent its text for this stretch (it endpointed first): no waiting
            stretch.final = stretch.text
            stretch.text_by = None
        else:
            self._stopped.append(stretch)
            if stretch.kind != TURN:  # its text now, not after the STT's own endpointing (a turn's is asked below)
                out.append(FinalizeSTT(now))
        if stretch.kind == ECHO:
            self._echo_until = now + LATE_TEXT_SECS
        if stretch.kind == CANDIDATE:
            self._check_candidate(stretch, now, out, settled=stretch.closed)
        elif stretch.kind == TURN:
            self._speech_end = stretch.end
            self._deciding = True
            self._decide_by = stretch.text_by
            self._model_by = now + max(self.params.final_timeout, self.params.model_timeout)
            self._commit_at = None
            self._model_p = None
            self._request += 1
            out.append(FinalizeSTT(now))
            self._ask_model(now, stretch.end, out)
            if stretch.closed:
                self._evaluate(now, out)
        return out

    def transcript(
        self,
        text: str,
        *,
        is_final: bool = False,
        speech_final: bool = False,
        confidences: Sequence[tuple[str, float | None]] = (),
    ) -> list[Decision]:
        """An STT result (interim, or a final piece) for the speech in progress or the oldest stopped one.

        ``confidences``: (word, confidence) of a final's words, when the STT gives them.
        """
        now = self.clock.now()
        if is_final and self._owed_first(text, now, peek=True) is not None:
            return []  # the late final of a stretch given up on: its user_text follows
        self._stt_eos = self._stt_eos or speech_final
        oldest = self._stopped[0] if self._stopped else None
        stretch = (oldest or self._speaking) if is_final else (self._speaking or oldest)
        if stretch is None:
            return []
        if is_final:
            low = self.params.min_word_confidence
            doubtful = {w for word, c in confidences if c is not None and c < low for w in tokens(word)}
            if stretch.kind == TURN and tokens(text):
                self._end_confidence = next((c for word, c in reversed(confidences) if tokens(word)), None)
                self._end_interim = stretch.interim or None
            stretch.add_final(text, doubtful)
        else:
            stretch.set_interim(text, now)
        out: list[Decision] = []
        if stretch.kind == CANDIDATE:
            self._check_candidate(stretch, now, out)
        return out

    def user_text(self, text: str) -> list[Decision]:
        """The STT's text for a whole stretch (its ``UserTextFrame``): held for the turn, or dropped."""
        now = self.clock.now()
        out: list[Decision] = []
        text = text.strip()
        owed = self._owed_first(text, now)
        if owed is not None:
            self._late_final(owed, text)
        elif self._stopped:
            stretch = self._stopped.popleft()
            stretch.final = text
            self._settle(stretch, now, out)
        elif self._speaking is not None:  # the STT closed an utterance while the VAD still hears speech
            speaking = self._speaking
            if speaking.kind == TURN:
                self._held.append(text)
                speaking.finals.clear()
                speaking.interim, speaking.since = "", []
            elif speaking.kind == CANDIDATE:
                speaking.finals = [text]
                speaking.interim, speaking.since = "", []
                self._check_candidate(speaking, now, out)
            speaking.closed = True
        elif (owed := self._owed(now)) is not None and owed.kind in (ECHO, CANDIDATE):
            self._late_final(owed, text)  # late text of echo, of speech whose moment passed, or of a used interim
        elif now < self._echo_until and not self.in_turn:
            pass  # text that follows echo
        elif text:
            self._held.append(text)
            self._late_text(now, out)
        return out

    def end_of_turn_verdict(self, probability: float, request: int) -> list[Decision]:
        """The model's probability that the turn is complete, for :class:`AnalyzeTurn` number ``request``."""
        if request != self._request or not self._deciding:
            return []
        self._model_p = probability
        out: list[Decision] = []
        self._evaluate(self.clock.now(), out)
        return out

    def bot_started_speaking(self) -> list[Decision]:
        self.bot_speaking = True
        return []

    def bot_stopped_speaking(self) -> list[Decision]:
        """The bot's audio finished playing: a pending candidate becomes the start of the user's turn."""
        self.bot_speaking = False
        self.paused = False
        self._resume_at = None
        return self._release_candidate()

    def interrupted(self) -> list[Decision]:
        """An interrupt from elsewhere (the client's ``interrupt``): the bot is silent now."""
        return self.bot_stopped_speaking()

    def poll(self) -> list[Decision]:
        """Act on every deadline that has passed (call it at :attr:`deadline`)."""
        now = self.clock.now()
        out: list[Decision] = []
        candidate = self._candidate
        if candidate is not None and candidate is self._speaking:
            self._check_candidate(candidate, now, out)
        while self._stopped and self._stopped[0].text_by is not None and self._stopped[0].text_by <= now:
            stretch = self._stopped.popleft()
            # Its late text is dropped if the turn went on with its interim (committing it twice would answer
            # the user twice); text for a stretch that had none is news, and becomes a turn.
            kind = stretch.kind if stretch.kind != TURN or not stretch.text else ECHO
            self._given_up.append(Owed(kind, now + LATE_TEXT_SECS, stretch.text, self._turns))
            self._settle(stretch, now, out)
        if self._resume_at is not None and now >= self._resume_at:
            self._resume_at = None
            if self.paused:
                self.paused = False
                out.append(FalseInterruption(now, "no words in time"))
        if self._deciding:
            self._evaluate(now, out)
        return out

    @property
    def expects_text(self) -> bool:
        """STT text now belongs to user speech the engine tracks (else it is, say, typed input)."""
        return self._speaking is not None or bool(self._stopped) or self.in_turn or bool(self._given_up)

    def text_is_echo(self, *, is_final: bool = False) -> bool:
        """The STT result arriving now belongs to a stretch of echo, or is the late text of a stretch whose
        moment passed (its interim already went into a turn): the processor drops it, as :meth:`user_text`
        drops the stretch's text that follows it."""
        oldest = self._stopped[0] if self._stopped else None
        stretch = (oldest or self._speaking) if is_final else (self._speaking or oldest)
        if stretch is not None:
            return stretch.kind == ECHO
        now = self.clock.now()
        while self._given_up and self._given_up[0].until < now:
            self._given_up.popleft()
        if self._given_up:
            return self._given_up[0].kind in (ECHO, CANDIDATE)
        return now < self._echo_until and not self.in_turn

    @property
    def speech_is_echo(self) -> bool:
        """The speech in progress was taken for echo."""
        return self._speaking is not None and self._speaking.kind == ECHO

    @property
    def deadline(self) -> float | None:
        """When :meth:`poll` must run next (None: nothing is waiting on time)."""
        times: list[float] = []
        candidate = self._candidate
        if candidate is not None and candidate is self._speaking:
            times += self._candidate_times(candidate)
        if self._stopped and self._stopped[0].text_by is not None:
            times.append(self._stopped[0].text_by)
        if self._resume_at is not None:
            times.append(self._resume_at)
        if self._deciding:
            times += [t for t in (self._decide_by, self._model_by, self._commit_at) if t is not None]
        return min(times) if times else None

    # --- stretches -----------------------------------------------------------------------------------------

    def _start_stretch(self, start: float, now: float) -> list[Decision]:
        out: list[Decision] = []
        if self.bot_speaking:
            stretch = self._speaking = self._candidate = Stretch(CANDIDATE, start)
            self._check_candidate(stretch, now, out)
            return out
        self._speaking = Stretch(TURN, start)
        self._continue_turn(start, now, out)
        return out

    def _continue_turn(self, start: float, now: float, out: list[Decision]) -> None:
        self._deciding, self._decide_by, self._model_by, self._commit_at = False, None, None, None
        self._request += 1  # a verdict on the audio before this stretch is stale
        self._stt_eos = False
        self._end_confidence = self._end_interim = None  # the turn's text will end with this stretch's words
        if not self.in_turn:
            self.in_turn = True
            self._turn_start = start
            out.append(TurnStarted(now, start))

    def _settle(self, stretch: Stretch, now: float, out: list[Decision]) -> None:
        """A stopped stretch has its text (or waited long enough for it)."""
        if stretch.kind == TURN:
            text = stretch.text
            if text:
                self._held.append(text)
            if self._deciding:
                self._evaluate(now, out)
            elif text and not self.in_turn:
                self._late_text(now, out)
        elif stretch.kind == CANDIDATE:
            stretch.text_by = None
            self._check_candidate(stretch, now, out, settled=True)

    def _become_turn(self, stretch: Stretch, now: float, out: list[Decision]) -> None:
        """A candidate that interrupted the bot: the user's turn starts with it."""
        stretch.kind = TURN
        self._continue_turn(stretch.start, now, out)
        if stretch.end is None:
            return
        # It has stopped already: endpoint it like any stretch.
        self._speech_end = stretch.end
        self._deciding = True
        self._decide_by = stretch.text_by or now
        self._model_by = now + max(self.params.final_timeout, self.params.model_timeout)
        out.append(FinalizeSTT(now))
        self._ask_model(now, stretch.end, out)
        if stretch not in self._stopped:  # its text is in already
            if stretch.text:
                self._held.append(stretch.text)
            self._evaluate(now, out)

    def _ask_model(self, now: float, speech_end: float, out: list[Decision]) -> None:
        """The user fell silent: ask the model now, or (``model_doubt`` set) once the words are in and only if
        they leave the turn in doubt (``_evaluate`` asks)."""
        self._model_deferred = False
        if not self.uses_model:
            return
        if self.params.model_doubt is None:
            out.append(AnalyzeTurn(now, self._turn_start, speech_end, self._request))
        else:
            self._model_deferred, self._silent_since = True, now

    def _late_text(self, now: float, out: list[Decision]) -> None:
        """Text whose stretch was given up on (or committed without words): a turn, decided now."""
        if not self.in_turn:
            self.in_turn = True
            out.append(TurnStarted(now, self._speech_end or now))
        self._deciding, self._decide_by, self._model_by = True, None, None
        self._model_deferred = False
        self._speech_end = self._speech_end or now
        self._evaluate(now, out, reason="late text")
