"""The turn engine as a pipeline stage: frames in, decisions out as frames, timers on the event loop.

Place::

    input → SileroVAD(stop_secs=0.2) → turns.tap → STT → turns → LLM → aggregator → TTS → output

``turns.tap`` (a :class:`~voxline.turns.audio.TurnAudioTap`) keeps the user's recent audio for the end-of-turn
model and the echo detector, because the STT consumes the audio frames. The processor itself sits after the
STT and:

* consumes the STT's ``UserTextFrame``\\ s (one per stretch of speech) and commits the user's turn as one
  ``UserTextFrame`` when the engine decides it is over, after a ``UserTurnEndedFrame`` and the metric
  ``turn.endpointing_delay`` (end of speech → decision). Typed input (a ``UserTextFrame`` the tap saw
  pass, before the STT) goes through untouched;
* interrupts on barge-in: pushes ``InterruptFrame(reason="barge-in")`` (the contract's way: the head starts
  the new epoch and sends it through every stage), metric ``turn.barge_in_latency`` (speech start → now);
* pushes ``BotPlaybackFrame("pause"/"resume")`` downstream for the output transport, ``BackchannelFrame``
  for a backchannel (whose text is dropped), ``UserTurnStartedFrame`` at the start of a turn;
* drops the VAD events and transcripts of speech the echo detector takes for the bot's own voice;
* asks the STT to finalise (``stt.finalize()``) when the user falls silent, and runs the end-of-turn model.

Everything else is forwarded. Bot speaking state comes from ``Bot{Started,Stopped}SpeakingFrame`` travelling
upstream from the output; an interrupt that is not this stage's own (the client's ``interrupt``) tells the
engine the bot went silent.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Sequence

from voxline.frames import (
    BackchannelFrame,
    BotPlaybackFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    InterruptFrame,
    MetricsFrame,
    TranscriptFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    UserTextFrame,
    UserTurnEndedFrame,
    UserTurnStartedFrame,
)
from voxline.processor import DOWNSTREAM, Direction, Processor
from voxline.turns.audio import AudioHistory, TurnAudioTap
from voxline.turns.clock import Clock, MonotonicClock
from voxline.turns.decisions import (
    AnalyzeTurn,
    Backchannel,
    BargeIn,
    Decision,
    FalseInterruption,
    FinalizeSTT,
    PausePlayback,
    TurnEnded,
    TurnStarted,
)
from voxline.turns.echo import EchoDetector
from voxline.turns.engine import TurnEngine
from voxline.turns.model import EndOfTurnModel, Finalizer
from voxline.turns.params import TurnParams
from voxline.turns.strategies import EndpointingStrategy, InterruptionStrategy

__all__ = ["TurnProcessor"]

logger = logging.getLogger("voxline.turns")


class TurnProcessor(Processor):
    """Turn-taking for a voice pipeline; see the module docstring for where it goes and what it does.

    ``model``: an end-of-turn model (e.g. ``voxline.processors.turns.SmartTurnModel``). ``stt``: the STT stage
    when it can finalise on request (``DeepgramSTT``). ``echo``: an :class:`EchoDetector` the output side
    feeds with what played. ``pre_speech``: seconds of audio before the turn's speech the model also sees.
    """

    def __init__(
        self,
        *,
        params: TurnParams | None = None,
        model: EndOfTurnModel | None = None,
        stt: Finalizer | None = None,
        echo: EchoDetector | None = None,
        interruption: Sequence[InterruptionStrategy] | None = None,
        endpointing: Sequence[EndpointingStrategy] | None = None,
        clock: Clock | None = None,
        pre_speech: float = 0.5,
        echo_window: float = 0.3,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.clock = clock or MonotonicClock()
        self.engine = TurnEngine(
            params, clock=self.clock, interruption=interruption, endpointing=endpointing, uses_model=model is not None
        )
        self.params = self.engine.params
        self.model = model
        self.stt = stt
        self.echo = echo
        self.pre_speech = pre_speech
        self.echo_window = echo_window
        seconds = max(10.0, (model.max_seconds if model is not None else 0.0) + pre_speech + 2.0)
        self.history = AudioHistory(self.clock, seconds=seconds)
        self.tap = TurnAudioTap(self.history, name=f"{self.name}-tap")
        """The stage to put before the STT (it fills :attr:`history`)."""
        self.counts: collections.Counter[str] = collections.Counter()
        """Decisions made so far, by type name (for tests, benchmarks and logs)."""
        self._timer: asyncio.TimerHandle | None = None
        self._echo_timer: asyncio.TimerHandle | None = None
        self._barging = False
        self._model_failed = False
        self._shown: list[str] = []
        """Final text shown to the client since the last committed turn (see :meth:`_show_committed`)."""

    # --- frames -----------------------------------------------------------------------------------------

    async def process(self, frame: Frame, direction: Direction) -> None:
        engine = self.engine
        if isinstance(frame, InterruptFrame):
            own, self._barging = self._barging, False
            await self.push(frame, direction)
            if not own:
                await self._act(engine.interrupted())
            return
        if direction is not DOWNSTREAM:
            await self.push(frame, direction)
            if isinstance(frame, BotStartedSpeakingFrame):
                await self._act(engine.bot_started_speaking())
            elif isinstance(frame, BotStoppedSpeakingFrame):
                await self._act(engine.bot_stopped_speaking())
            return
        if isinstance(frame, UserStartedSpeakingFrame):
            echo = self._echo_now()
            decisions = engine.user_started_speaking(echo=echo)
            if echo:
                self._watch_echo()
                return
            await self.push(frame, direction)
            await self._act(decisions)
        elif isinstance(frame, UserStoppedSpeakingFrame):
            was_echo = engine.speech_is_echo
            end = self.history.clock_time(frame.audio_time) if frame.audio_time is not None else None
            decisions = engine.user_stopped_speaking(end)
            logger.debug("%s: the VAD's stop", self.name)
            if not was_echo:
                await self.push(frame, direction)
            await self._act(decisions)
        elif isinstance(frame, TranscriptFrame):
            if engine.text_is_echo(is_final=frame.is_final):
                return
            confidences: list[tuple[str, float | None]] = []
            if frame.is_final:  # per word; an STT that gives no words vouches for the whole text at once
                confidences = [(w.text, w.confidence) for w in frame.words] or [(frame.text, frame.confidence)]
                last = confidences[-1]
                logger.debug("%s: final %r (confidence %s, end %s)", self.name, frame.text, frame.confidence, last)
            else:
                logger.debug("%s: interim %r", self.name, frame.text)
            decisions = engine.transcript(
                frame.text, is_final=frame.is_final, speech_final=frame.speech_final, confidences=confidences
            )
            await self.push(frame, direction)
            if frame.is_final and frame.text.strip():
                self._shown.append(frame.text.strip())
            await self._act(decisions)
        elif isinstance(frame, UserTextFrame) and self._from_stt(frame):
            logger.debug("%s: the STT's text: %r", self.name, frame.text)
            await self._act(engine.user_text(frame.text))
        else:
            await self.push(frame, direction)

    def _from_stt(self, frame: UserTextFrame) -> bool:
        """The STT made this text (typed input passed the tap, before the STT; without a tap: if speech is
        being tracked)."""
        if frame.id in self.tap.typed:
            self.tap.typed.remove(frame.id)
            return False
        return self.tap.history.samples > 0 or self.engine.expects_text

    async def on_stop(self) -> None:
        for timer in (self._timer, self._echo_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._echo_timer = None

    # --- decisions --------------------------------------------------------------------------------------

    async def _act(self, decisions: list[Decision]) -> None:
        for decision in decisions:
            self.counts[type(decision).__name__] += 1
            await self._apply(decision)
        self._arm()

    async def _show_committed(self, text: str) -> None:
        """The client shows final transcripts as the user's words. A turn committed from interim text (its STT's
        final had not come in time) would leave them blank, and the final that comes later is dropped as late
        text: say what was answered, as a final transcript, unless the finals already shown said it."""
        shown = " ".join(self._shown)
        said = text.strip()
        if _words(shown) == _words(said):
            return
        if shown and _words(said)[: len(_words(shown))] == _words(shown):
            said = " ".join(said.split()[len(shown.split()) :])  # only what the finals shown did not say
        if said:
            await self.push(TranscriptFrame(text=said, is_final=True, epoch=self.epoch))

    async def _apply(self, d: Decision) -> None:
        if isinstance(d, TurnEnded):
            logger.debug(
                "%s: turn ended (%s, %.0f ms, score %s): %r", self.name, d.reason, d.delay * 1000, d.score, d.text
            )
            await self.push(UserTurnEndedFrame(text=d.text, reason=d.reason, speech_end=max(0.0, d.speech_end)))
            await self._metric("turn.endpointing_delay", d.delay)
            if d.text:
                await self._show_committed(d.text)
                await self.push(UserTextFrame(text=d.text, epoch=self.epoch))
            self._shown.clear()
        elif isinstance(d, BargeIn):
            logger.debug("%s: barge-in (%s)", self.name, d.reason)
            await self._metric("turn.barge_in_latency", d.at - d.speech_start)
            self._barging = True
            try:
                await self.push(InterruptFrame(reason="barge-in"))
            finally:
                self._barging = False
        elif isinstance(d, TurnStarted):
            await self.push(UserTurnStartedFrame())
        elif isinstance(d, Backchannel):
            await self.push(BackchannelFrame(text=d.text))
        elif isinstance(d, PausePlayback):
            await self.push(BotPlaybackFrame(action="pause", reason="user speaking"))
        elif isinstance(d, FalseInterruption):
            await self.push(BotPlaybackFrame(action="resume", reason=d.reason))
        elif isinstance(d, FinalizeSTT):
            if self.stt is not None:
                self.create_task(self._finalize(self.stt), name=f"{self.name}-finalize", epoch_bound=False)
        elif isinstance(d, AnalyzeTurn) and self.model is not None and not self._model_failed:
            self.create_task(self._analyze(self.model, d), name=f"{self.name}-analyze", epoch_bound=False)

    async def _metric(self, name: str, seconds: float) -> None:
        await self.push(MetricsFrame(name=name, value=max(0.0, seconds), unit="s", source=self.name))

    async def _finalize(self, stt: Finalizer) -> None:
        try:
            await stt.finalize()
        except Exception as exc:  # the STT's own endpointing still ends the stretch
            logger.warning("%s: the STT could not finalise: %s", self.name, exc)

    async def _analyze(self, model: EndOfTurnModel, request: AnalyzeTurn) -> None:
        audio = self.history.between(request.speech_start - self.pre_speech, request.until)
        audio = audio[-int(model.max_seconds * model.sample_rate) :]
        if len(audio) == 0:
            return
        started = time.perf_counter()
        try:
            probability = await model.analyze(audio)
        except Exception as exc:
            self._model_failed = True  # decide on the other evidence from now on, rather than fail every turn
            await self.push_error(f"the end-of-turn model failed; going on without it: {exc}", exception=exc)
            return
        await self._metric("turn.model", time.perf_counter() - started)
        logger.debug("%s: end-of-turn model p=%.3f", self.name, probability)
        await self._act(self.engine.end_of_turn_verdict(probability, request.request))

    # --- timers -----------------------------------------------------------------------------------------

    def _arm(self) -> None:
        deadline = self.engine.deadline
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if deadline is not None:
            delay = max(0.0, deadline - self.clock.now())
            self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.create_task(self._poll(), name=f"{self.name}-timer", epoch_bound=False)

    async def _poll(self) -> None:
        await self._act(self.engine.poll())

    # --- echo -------------------------------------------------------------------------------------------

    def _echo_now(self, window: float | None = None) -> bool:
        if self.echo is None or self.history.end_time is None:
            return False
        mic = self.history.last(window or self.params.vad_start_secs + 0.1)
        return self.echo.is_echo(mic, self.history.end_time)

    def _watch_echo(self) -> None:
        """While speech taken for echo goes on, check again every 0.2 s: the user may start talking over it."""
        if self._echo_timer is not None:
            self._echo_timer.cancel()
        self._echo_timer = asyncio.get_running_loop().call_later(0.2, self._recheck_echo)

    def _recheck_echo(self) -> None:
        self._echo_timer = None
        if not self.engine.speech_is_echo:
            return
        if self._echo_now(self.echo_window):
            self._watch_echo()
            return
        self.create_task(self._not_echo(), name=f"{self.name}-echo", epoch_bound=False)

    async def _not_echo(self) -> None:
        decisions = self.engine.speech_is_not_echo()
        await self.push(UserStartedSpeakingFrame())
        await self._act(decisions)


def _words(text: str) -> list[str]:
    """Words, for comparing what was shown with what was committed (case and punctuation aside)."""
    return [w.strip(".,!?;:\"'").lower() for w in text.split()]
