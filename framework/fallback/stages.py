""":class:`FallbackTTS` and :class:`FallbackSTT`: a speech stage over several providers, switching when one fails.

``FallbackTTS([DeepgramTTS(...), EspeakTTS()])`` takes the place of one TTS stage. Its providers
(*members*) are real stages, started and stopped by the fallback, with the pipeline's epoch clock; none is
linked into the pipeline. Frames go to the member serving now; what a member pushes lands on a small *tap*
and is forwarded only if that member is serving, so a member that was switched away from can never leak
audio or transcripts. Interrupts and the ``StartFrame`` go to every member (each keeps its epoch and settings)
and are forwarded once by the fallback itself.

When it switches (the :class:`~voxline.fallback.roster.Roster` logs it and pushes ``MetricsFrame("tts.fallback")``
or ``"stt.fallback"``; it goes back after the cooldown when the member's ``health_check`` passes):

* a non-fatal ``ErrorFrame`` from the member serving (a connection that keeps failing, a provider error, a
  request that failed): the error is logged rather than passed on, since the next member takes over;
* TTS only: **no audio within ``first_byte_timeout``** of the first sentence of a reply.

Nothing of the turn is lost:

* **TTS.** Every sentence and queued control frame (``LLMResponseEndFrame``, ``EndFrame``, ``SettingsFrame``)
  handed to the member is kept until it is done: a control frame when it comes out of the member, a sentence
  when the member's :meth:`~voxline.tts.TTSProcessor.spoken_text` covers it (its audio pushed in full). On a
  switch the rest — sentences of the current reply not yet spoken in full, control frames not yet out — goes
  to the next member, in order. A sentence cut off mid-audio is spoken again from its start.
* **STT.** The audio since the last finished turn (at most ``replay_seconds``) is kept; on a switch the next
  member gets it first, then the live audio: the user's utterance is transcribed by the new engine.

An STT member has no "first byte" to time (a silent user gets no transcripts either), so the STT switches on
errors only — for a WebSocket provider, the report after its socket failed ``max_retries`` times in a row.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from typing import Generic, TypeVar

from voxline.fallback.roster import Roster, Switch
from voxline.frames import (
    AudioFrame,
    EndFrame,
    ErrorFrame,
    Frame,
    InterruptFrame,
    LLMResponseEndFrame,
    SettingsFrame,
    SpeakTextFrame,
    StartFrame,
    TTSAudioFrame,
    UserTextFrame,
)
from voxline.processor import DOWNSTREAM, UPSTREAM, Direction, Processor
from voxline.providers.redaction import redact
from voxline.stt import STTProcessor
from voxline.tts import TTSProcessor

__all__ = ["FallbackSTT", "FallbackTTS"]

logger = logging.getLogger("voxline.fallback")

M = TypeVar("M", bound=Processor)

_BROADCAST = (StartFrame, InterruptFrame)


class _Tap(Processor):
    """Where one member's output lands (both directions): handed to the fallback stage that owns it."""

    def __init__(self, owner: _FallbackStage[M], member: M) -> None:
        super().__init__(name=f"{owner.name}:{member.name}")
        self.owner = owner
        self.member = member

    async def _deliver(self, frame: Frame, direction: Direction) -> None:
        await self.owner._from_member(self.member, frame, direction)


class _FallbackStage(Processor, Generic[M]):
    """What the speech fallbacks share: members behind taps, the roster, broadcasting, switching on errors."""

    kind = ""

    def __init__(self, members: Sequence[M], *, cooldown: float, probe_interval: float, name: str | None) -> None:
        super().__init__(name=name)
        self._roster: Roster[M] = Roster(
            self,
            members,
            kind=self.kind,
            cooldown=cooldown,
            probe_interval=probe_interval,
            probe=self._probe,
            on_switch=self._switched,
        )
        self._taps = [_Tap(self, member) for member in members]

    @property
    def members(self) -> list[M]:
        return self._roster.members

    @property
    def active(self) -> M:
        """The member serving now."""
        return self._roster.active

    @property
    def switches(self) -> list[Switch]:
        return self._roster.switches

    async def _probe(self, member: M) -> None:
        check = getattr(member, "health_check", None)
        if check is None:
            raise NotImplementedError(f"{member.name} has no health check")
        await check()

    # --- lifecycle --------------------------------------------------------------------------------------

    async def on_start(self) -> None:
        for member, tap in zip(self.members, self._taps, strict=True):
            member._next = member._prev = tap
            await member._start(self._clock, self._observers)
        self._roster.resume()

    async def on_stop(self) -> None:
        for member in self.members:
            await member._stop()

    # --- frames in ---------------------------------------------------------------------------------------

    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, _BROADCAST) and direction is DOWNSTREAM:
            for member in [self.active, *(m for m in self.members if m is not self.active)]:
                await member._deliver(frame, direction)
            await self.push(frame, direction)
            return
        await self._hand(self.active, frame, direction)

    async def _hand(self, member: M, frame: Frame, direction: Direction) -> None:
        """Give ``frame`` to ``member`` (subclasses note what they must be able to replay)."""
        await member._deliver(frame, direction)

    # --- frames out --------------------------------------------------------------------------------------

    async def _from_member(self, member: M, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, _BROADCAST) and direction is DOWNSTREAM:
            return  # the fallback forwards those itself, once
        if member is not self.active:
            if isinstance(frame, ErrorFrame):
                logger.info("%s: %s (standing by) reported: %s", self.name, member.name, redact(frame.message))
            return
        failed = frame.message if isinstance(frame, ErrorFrame) and not frame.fatal and direction is UPSTREAM else None
        if failed is not None and await self._roster.fail_over(failed):
            return  # the next member takes over; the switch itself is logged and measured
        self._observe(frame, direction)
        await self.push(frame, direction)

    def _observe(self, frame: Frame, direction: Direction) -> None:
        """A frame the serving member pushed (subclasses track what is done)."""

    async def _switched(self, old: M, new: M) -> None:
        """The roster switched from ``old`` to ``new`` (subclasses replay what ``old`` left undone)."""


class FallbackTTS(_FallbackStage[TTSProcessor]):
    """A TTS stage over several TTS stages (priority order); see the module docstring.

    ``first_byte_timeout`` (s): no audio for a reply this long after its first sentence was handed over means
    the member failed. ``cooldown``/``probe_interval``: see :class:`~voxline.fallback.roster.Roster`.
    """

    kind = "tts"

    def __init__(
        self,
        members: Sequence[TTSProcessor],
        *,
        first_byte_timeout: float = 3.0,
        cooldown: float = 30.0,
        probe_interval: float = 10.0,
        name: str | None = None,
    ) -> None:
        super().__init__(members, cooldown=cooldown, probe_interval=probe_interval, name=name)
        self.first_byte_timeout = first_byte_timeout
        self._handed: list[Frame] = []  # sentences and queued control frames the serving member may still owe
        self._voiced: set[int] = set()  # epochs with audio out of the serving member
        self._watched: dict[tuple[int, int], asyncio.Task[None]] = {}

    async def _hand(self, member: TTSProcessor, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, (SpeakTextFrame, LLMResponseEndFrame, EndFrame, SettingsFrame)):
            self._prune()
            self._handed.append(frame)
        await member._deliver(frame, direction)
        if isinstance(frame, SpeakTextFrame) and frame.text.strip():
            self._watch(self.epoch if frame.epoch is None else frame.epoch)

    def _watch(self, epoch: int) -> None:
        if epoch in self._voiced or epoch < self.epoch:
            return
        for key in [k for k, task in self._watched.items() if task.done()]:
            del self._watched[key]
        key = (epoch, self._roster.index)
        if key not in self._watched:
            self._watched[key] = self.create_task(self._first_byte(epoch, self.active), name=f"{self.name}-ttfb")

    async def _first_byte(self, epoch: int, member: TTSProcessor) -> None:
        await asyncio.sleep(self.first_byte_timeout)
        if epoch not in self._voiced and member is self.active and epoch >= self.epoch:
            reason = f"no audio within {self.first_byte_timeout:g} s"
            if not await self._roster.fail_over(reason):
                await self.push_error(f"{member.name}: {reason}, and no other TTS provider is available")

    def _observe(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, TTSAudioFrame) and frame.epoch is not None:
            self._voiced.add(frame.epoch)
        elif direction is DOWNSTREAM:
            at = next((i for i, f in enumerate(self._handed) if f is frame), None)
            if at is None:
                return
            if isinstance(frame, (LLMResponseEndFrame, EndFrame)):
                del self._handed[: at + 1]  # a reply's end comes out after its audio: all before it is done
            else:
                del self._handed[at]

    def _prune(self) -> None:
        """Drop sentences of ended epochs (an interrupt cut them: never resent)."""
        current = self.epoch
        self._handed = [f for f in self._handed if not (isinstance(f, SpeakTextFrame) and _epoch(f, self) < current)]

    async def _switched(self, old: TTSProcessor, new: TTSProcessor) -> None:
        self._prune()
        spoken: dict[int, int] = {}
        owed: list[Frame] = []
        for frame in self._handed:
            if isinstance(frame, SpeakTextFrame):
                epoch = _epoch(frame, self)
                budget = spoken.setdefault(epoch, len(old.spoken_text(epoch)))
                if budget >= len(frame.text):
                    spoken[epoch] = budget - len(frame.text)  # its audio was pushed in full: not said again
                    continue
                spoken[epoch] = 0
            owed.append(frame)
        self._handed = []
        if owed:
            logger.info("%s: %s takes over %d frame(s) %s left undone", self.name, new.name, len(owed), old.name)
        for frame in owed:
            await self._hand(new, frame, DOWNSTREAM)


class FallbackSTT(_FallbackStage[STTProcessor]):
    """An STT stage over several STT stages (priority order); see the module docstring.

    ``replay_seconds``: how much audio of the turn in progress is kept for the next member.
    """

    kind = "stt"

    def __init__(
        self,
        members: Sequence[STTProcessor],
        *,
        replay_seconds: float = 15.0,
        cooldown: float = 30.0,
        probe_interval: float = 10.0,
        name: str | None = None,
    ) -> None:
        super().__init__(members, cooldown=cooldown, probe_interval=probe_interval, name=name)
        self.replay_seconds = replay_seconds
        self._recent: deque[AudioFrame] = deque()
        self._recent_seconds = 0.0

    async def finalize(self) -> bool:
        """End the user's current utterance now (see :meth:`voxline.stt.STTProcessor.finalize`)."""
        return await self.active.finalize()

    async def _hand(self, member: STTProcessor, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, AudioFrame) and direction is DOWNSTREAM and not isinstance(frame, TTSAudioFrame):
            self._recent.append(frame)
            self._recent_seconds += frame.duration
            while self._recent and self._recent_seconds - self._recent[0].duration >= self.replay_seconds:
                self._recent_seconds -= self._recent.popleft().duration
        await member._deliver(frame, direction)

    def _observe(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, UserTextFrame):
            self._recent.clear()  # the turn is transcribed: its audio is no longer owed
            self._recent_seconds = 0.0

    async def _switched(self, old: STTProcessor, new: STTProcessor) -> None:
        frames = list(self._recent)
        if frames:
            seconds = self._recent_seconds
            logger.info("%s: %s gets the %.1f s of audio of the turn in progress", self.name, new.name, seconds)
        for frame in frames:
            await new._deliver(frame, DOWNSTREAM)


def _epoch(frame: SpeakTextFrame, stage: Processor) -> int:
    return stage.epoch if frame.epoch is None else frame.epoch
