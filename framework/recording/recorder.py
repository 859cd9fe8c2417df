"""The session recorder: an observer at the pipeline's stage boundaries (no stage is changed to be recorded).

:class:`SessionRecorder` is attached to a :class:`~voxline.task.PipelineTask` as an observer and told which
processors play each provider stage (``stt``, ``llm``, ``tts``) and which are the transport's input and output.
From the hops it sees, in session time (seconds since it started):

* **the client's input** — audio, typed turns and ``interrupt`` messages, as they left the input;
* **what each provider stage emitted, relative to its input** — STT: every frame it made, with the samples of
  audio it had received and the seconds since the last of them arrived; LLM: each text chunk or error, with
  the seconds since the user's turn reached it; TTS: each audio chunk (its length) or error, with the seconds
  since it began that piece of text (a piece's first audio comes with the stage's ``tts.ttfb``);
* **what the user heard** — the agent's audio where the output's playback clock put it, cut at an interrupt;
* **the turns** (:mod:`~voxline.recording.turns`).

It hands everything to a :class:`~voxline.recording.writer.RecordingWriter` (files, off the event loop) or keeps
it in memory (``writer=None``: a replay records itself this way). Frames a stage only passed on are told apart
from frames it made by their ids. Text is redacted (:func:`voxline.providers.redaction.redact`).
"""

from __future__ import annotations

import base64
import time
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from typing import Any

from voxline.frames import (
    AudioFrame,
    BotHeardTextFrame,
    DataFrame,
    ErrorFrame,
    Frame,
    InterruptFrame,
    LLMResponseEndFrame,
    LLMResponseStartFrame,
    MetricsFrame,
    SpeakTextFrame,
    TextFrame,
    TTSAudioFrame,
    UserStoppedSpeakingFrame,
    UserTextFrame,
)
from voxline.processor import DOWNSTREAM, Direction, Processor
from voxline.providers.redaction import redact
from voxline.recording.codec import encode_frame
from voxline.recording.turns import TurnLog
from voxline.recording.writer import RecordingWriter

__all__ = ["FORMAT_VERSION", "SessionRecorder"]

FORMAT_VERSION = 1
CLIENT_INTERRUPT = "client interrupt"
"""The reason the transport's input gives the interrupt a client's ``interrupt`` message starts."""
_SEEN = 4096


class SessionRecorder:
    """Records one session; see the module docstring. Call :meth:`close` (or :meth:`aclose`) at the end."""

    def __init__(
        self,
        *,
        stages: Mapping[str, Sequence[Processor]],
        input: Processor,
        output: Processor,
        writer: RecordingWriter | None = None,
        session: str = "",
        info: Mapping[str, Any] | None = None,
    ) -> None:
        self.writer = writer
        self.lines: list[dict[str, Any]] = []
        """The replay file's lines, when there is no writer (kept in memory)."""
        self._input, self._output = input, output
        self._stage_of: dict[Processor, str] = {p: stage for stage, group in stages.items() for p in group}
        self._seen: dict[str, OrderedDict[int, None]] = {stage: OrderedDict() for stage in stages}
        self._t0 = time.monotonic()
        self.turns = TurnLog(self._turn_line)
        self._closed = False
        # STT: audio received; LLM: the request in progress; TTS: pieces waiting, the piece being voiced.
        self._stt_samples = 0
        self._stt_audio_t = 0.0
        self._llm_request: tuple[float, str] | None = None
        self._llm_first = False
        self._tts_first = False
        self._tts_waiting: deque[str] = deque()
        self._tts_piece: tuple[float, str] | None = None
        self._playback_end = 0.0
        header = {
            "type": "header",
            "version": FORMAT_VERSION,
            "session": session,
            "started": round(time.time(), 3),
            "stages": {stage: [p.name for p in group] for stage, group in stages.items()},
            **(info or {}),
        }
        self._replay(header)
        self._turns_out({**header, "type": "session"})

    @property
    def now(self) -> float:
        """Seconds since the recording started (the clock of every line)."""
        return time.monotonic() - self._t0

    # --- the observer ------------------------------------------------------------------------------------

    def on_push(self, source: Processor, destination: Any, frame: Frame, direction: Direction) -> None:
        if self._closed:
            return
        if isinstance(frame, DataFrame) and frame.epoch is not None and frame.epoch < destination.epoch:
            return  # observed before the next stage's gate, which drops it: it never arrived
        t = self.now
        if source is self._input and direction is DOWNSTREAM:
            self._client(t, frame)
        elif destination is self._input and isinstance(frame, InterruptFrame) and frame.reason == CLIENT_INTERRUPT:
            self._replay({"type": "client", "t": _r(t), "interrupt": True})
        if destination is self._output and direction is DOWNSTREAM:
            self._at_output(t, frame)
        elif isinstance(frame, ErrorFrame) and source is self._input:
            self._turns_out({"type": "error", "t": _r(t), "source": frame.source, "message": redact(frame.message)})
            self.turns.error(t, frame.message)
        stage_in = self._stage_of.get(destination)
        stage_out = self._stage_of.get(source)
        if stage_in is not None and stage_in != stage_out:
            self._entered(stage_in, t, frame, direction)
        if stage_out is not None and stage_out != stage_in:
            self._left(stage_out, t, frame, direction)

    def _client(self, t: float, frame: Frame) -> None:
        if type(frame) is AudioFrame:
            if self.writer is not None:
                self.writer.put("user", t, frame.pcm, frame.sample_rate)
            self._replay({"type": "client", "t": _r(t), "audio": base64.b64encode(frame.pcm).decode()})
        elif isinstance(frame, UserTextFrame):
            self._replay({"type": "client", "t": _r(t), "text": redact(frame.text)})

    def _at_output(self, t: float, frame: Frame) -> None:
        if isinstance(frame, TTSAudioFrame):
            start = max(self._playback_end, t)
            self._playback_end = start + frame.duration
            if self.writer is not None:
                self.writer.put("agent", t, start, frame.pcm, frame.sample_rate)
            self.turns.agent_audio(t, self._playback_end)
        elif isinstance(frame, InterruptFrame):
            if self._playback_end > t and self.writer is not None:
                self.writer.put("cut", t)
            self._playback_end = min(self._playback_end, t)
            self.turns.interrupted(t, frame.reason)
        elif isinstance(frame, MetricsFrame):
            self.turns.metric(frame.name, frame.value, frame.unit)
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self.turns.user_stopped(t)
        elif isinstance(frame, LLMResponseStartFrame):
            self.turns.reply_started()
        elif isinstance(frame, LLMResponseEndFrame):
            self.turns.reply_ended(t, frame.interrupted)

    # --- stage boundaries --------------------------------------------------------------------------------

    def _entered(self, stage: str, t: float, frame: Frame, direction: Direction) -> None:
        if stage == "stt" and isinstance(frame, AudioFrame):
            self._stt_samples += frame.num_samples
            self._stt_audio_t = t
            return  # consumed by the stage
        seen = self._seen[stage]
        seen[frame.id] = None
        if len(seen) > _SEEN:
            seen.popitem(last=False)
        if direction is not DOWNSTREAM:
            return
        if stage == "llm" and isinstance(frame, UserTextFrame):
            self._llm_request = (t, frame.text)
            self._llm_first = True
            self.turns.user_turn(t, frame.text)
        elif stage == "tts" and isinstance(frame, SpeakTextFrame) and frame.text.strip():
            self._tts_waiting.append(frame.text)
        elif isinstance(frame, InterruptFrame) and stage == "tts":
            self._tts_waiting.clear()
            self._tts_piece = None

    def _left(self, stage: str, t: float, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, BotHeardTextFrame) and stage == "tts" and frame.text is not None:
            self.turns.heard(frame.text, frame.played_seconds)
        if self._seen[stage].pop(frame.id, False) is None:
            return  # passed through, not made here
        if stage == "stt":
            self._replay(
                {
                    "type": "stt",
                    "t": _r(t),
                    "audio": self._stt_samples,
                    "after": _r(t - self._stt_audio_t),
                    "dir": "down" if direction is DOWNSTREAM else "up",
                    "frame": encode_frame(frame),
                }
            )
        elif stage == "llm":
            self._llm_output(t, frame)
        elif stage == "tts":
            self._tts_output(t, frame)

    def _llm_output(self, t: float, frame: Frame) -> None:
        request = self._llm_request
        if request is None or not isinstance(frame, (TextFrame, ErrorFrame)):
            return
        line: dict[str, Any] = {"type": "llm", "t": _r(t), "request": redact(request[1]), "after": _r(t - request[0])}
        if self._llm_first:
            line["first"], self._llm_first = True, False
        if isinstance(frame, TextFrame):
            self.turns.reply_text(frame.text)
            line["text"] = redact(frame.text)
        else:
            line["error"] = redact(frame.message)
        self._replay(line)

    def _tts_output(self, t: float, frame: Frame) -> None:
        if isinstance(frame, MetricsFrame) and frame.name == "tts.ttfb":
            text = self._tts_waiting.popleft() if self._tts_waiting else ""
            self._tts_piece = (t - frame.value, text)
            self._tts_first = True
            return
        if not isinstance(frame, (TTSAudioFrame, ErrorFrame)):
            return
        if isinstance(frame, ErrorFrame) and self._tts_piece is None and self._tts_waiting:
            self._tts_piece = (t, self._tts_waiting.popleft())
            self._tts_first = True
        piece = self._tts_piece
        if piece is None:
            return
        line: dict[str, Any] = {"type": "tts", "t": _r(t), "request": redact(piece[1]), "after": _r(t - piece[0])}
        if self._tts_first:
            line["first"], self._tts_first = True, False
        if isinstance(frame, TTSAudioFrame):
            line["samples"], line["rate"] = frame.num_samples, frame.sample_rate
        else:
            line["error"] = redact(frame.message)
            self._tts_piece = None
        self._replay(line)

    # --- output ------------------------------------------------------------------------------------------

    def _replay(self, line: dict[str, Any]) -> None:
        if self.writer is not None:
            self.writer.put("replay", line)
        else:
            self.lines.append(line)

    def _turns_out(self, line: dict[str, Any]) -> None:
        if self.writer is not None:
            self.writer.put("turns", line)

    def _turn_line(self, turn: dict[str, Any]) -> None:
        self._turns_out(turn)
        self._replay(turn)

    def close(self, reason: str = "") -> None:
        """The session ended: write the last turn and the end line (the writer finishes the files)."""
        if self._closed:
            return
        self.turns.finish()
        end = {"type": "end", "t": _r(self.now), "turns": len(self.turns.turns), "reason": redact(reason)}
        self._replay(end)
        self._turns_out(end)
        self._closed = True

    async def aclose(self, reason: str = "") -> None:
        """:meth:`close`, then wait (in a thread, not on the loop) for the writer to finish the files."""
        import asyncio

        self.close(reason)
        if self.writer is not None:
            await asyncio.to_thread(self.writer.close)


def _r(seconds: float) -> float:
    return round(seconds, 4)
