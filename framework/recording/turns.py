"""The turn log: one record per user turn — what the user said, what the agent replied, whether and why the
reply was cut, what the user heard of it, and the turn's latencies.

:class:`TurnLog` is fed by the recorder (:mod:`~voxline.recording.recorder`) with what it sees at the pipeline's
stage boundaries, in session time (seconds since the recording started). A turn is written when the next one
begins or the session ends, because what the user heard of a reply is known only when a barge-in cuts it —
possibly after the reply has been generated in full.

Latencies, in milliseconds: ``stt_ms``, ``llm_ttft_ms``, ``tts_ttfb_ms`` (the stages' own metrics, the first of
each in the turn) and ``response_ms``: from the end of the user's turn (the end of speech the STT reported,
else the moment the turn's text left the STT) to the moment the first audio of the reply reached the output.
Other metrics the stages report (``turn.*``, ...) are kept under their own names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from voxline.providers.redaction import redact

__all__ = ["TurnLog"]

_NAMES = {"stt.latency": "stt_ms", "llm.ttft": "llm_ttft_ms", "tts.ttfb": "tts_ttfb_ms"}
_TO_MS = {"s": 1000.0, "ms": 1.0, "us": 0.001, "ns": 1e-6}


class TurnLog:
    """Builds turn records; ``emit(record)`` receives each finished one (``{"type": "turn", ...}``)."""

    def __init__(self, emit: Callable[[dict[str, Any]], None]) -> None:
        self._emit = emit
        self._turn: dict[str, Any] | None = None
        self._count = 0
        self._speech_end: float | None = None
        self._generating = False
        self._playback_end = 0.0
        self._early: dict[str, float] = {}
        self.turns: list[dict[str, Any]] = []
        """Every finished record, in order."""

    def user_stopped(self, t: float) -> None:
        self._speech_end = t

    def user_turn(self, t: float, text: str) -> None:
        self.finish()
        self._count += 1
        end = self._speech_end if self._speech_end is not None and self._speech_end <= t else t
        self._speech_end = None
        self._turn = {
            "type": "turn",
            "turn": self._count,
            "t": round(t, 3),
            "user": redact(text),
            "user_end": round(end, 3),
            "reply": "",
            "interrupted": False,
            "interruption": None,
            "heard": None,
            "latencies": {},
            "_first_audio": None,
        }
        self._turn["latencies"].update(self._early)
        self._early = {}

    def reply_started(self) -> None:
        self._generating = True

    def reply_text(self, text: str) -> None:
        if self._turn is not None:
            self._turn["reply"] += text

    def reply_ended(self, t: float, interrupted: bool) -> None:
        self._generating = False
        if self._turn is not None:
            self._turn["reply_end"] = round(t, 3)
            if interrupted:
                self._turn["interrupted"] = True

    def agent_audio(self, t: float, playback_end: float) -> None:
        self._playback_end = playback_end
        if self._turn is not None and self._turn["_first_audio"] is None:
            self._turn["_first_audio"] = t

    def interrupted(self, t: float, reason: str) -> None:
        """An interrupt reached the output: it cuts the turn's reply if one was being made or played."""
        active = self._generating or self._playback_end > t
        self._generating = False
        self._playback_end = min(self._playback_end, t)
        if self._turn is None or not active or self._turn["interruption"] is not None:
            return
        self._turn["interrupted"] = True
        self._turn["interruption"] = {"t": round(t, 3), "reason": redact(reason)}

    def error(self, t: float, message: str) -> None:
        """A stage failed during the turn (the session went on)."""
        if self._turn is not None:
            self._turn.setdefault("errors", []).append({"t": round(t, 3), "message": redact(message)})

    def heard(self, text: str, played_seconds: float) -> None:
        if self._turn is not None:
            self._turn["heard"] = redact(text)
            self._turn["played_seconds"] = round(played_seconds, 3)

    def metric(self, name: str, value: float, unit: str) -> None:
        """A stage's measurement. The STT's and the turn engine's come before the turn's text: they belong to
        the turn that text starts."""
        key = _NAMES.get(name, name)
        early = name.startswith(("stt.", "turn."))
        if self._turn is None and not early:
            return
        latencies = self._early if early or self._turn is None else self._turn["latencies"]
        if key not in latencies:
            latencies[key] = round(value * _TO_MS.get(unit, 1.0), 1) if unit in _TO_MS else value

    def finish(self) -> None:
        """Write the turn in progress (if any)."""
        turn, self._turn = self._turn, None
        if turn is None:
            return
        first_audio = turn.pop("_first_audio")
        if first_audio is not None:
            turn["latencies"]["response_ms"] = round((first_audio - turn["user_end"]) * 1000, 1)
        self.turns.append(turn)
        self._emit(turn)
