"""Per-turn latency figures for the client's ``metrics`` message.

Stages report what they measure as :class:`~voxline.frames.MetricsFrame`s travelling downstream
(``stt.latency``, ``llm.ttft``, ``tts.ttfb``). The output transport collects them for the current turn and adds
the one figure only it can know: voice to voice, from the moment the server had the end of the user's speech
(or a typed turn) to the moment the first audio of the reply was handed to the socket.
"""

from __future__ import annotations

from typing import Any

from voxline.frames import MetricsFrame

__all__ = ["TurnMetrics"]

_FIELDS = {"stt.latency": "stt_ms", "llm.ttft": "llm_ttft_ms", "tts.ttfb": "tts_ttfb_ms"}
_TO_MS = {"s": 1000.0, "ms": 1.0, "us": 0.001, "ns": 1e-6}


class TurnMetrics:
    """Collects one turn's figures; :meth:`take` returns them for the message and starts the next turn."""

    __slots__ = ("_values", "anchor_ns", "first_audio_ns", "turn")

    def __init__(self) -> None:
        self.turn = 0
        self._values: dict[str, float | None] = {}
        self.anchor_ns: int | None = None
        """When the user's turn ended (monotonic ns), if known."""
        self.first_audio_ns: int | None = None

    def add(self, frame: MetricsFrame) -> None:
        field = _FIELDS.get(frame.name)
        scale = _TO_MS.get(frame.unit)
        if field is None or scale is None:
            return
        if self._values.get(field) is None:  # the first report of a turn is the one that counts
            self._values[field] = round(frame.value * scale, 1)

    def mark_user_end(self, now_ns: int) -> None:
        self.anchor_ns = now_ns

    def mark_first_audio(self, now_ns: int) -> None:
        if self.first_audio_ns is None:
            self.first_audio_ns = now_ns

    @property
    def has_data(self) -> bool:
        return bool(self._values) or self.first_audio_ns is not None

    def take(self) -> dict[str, Any]:
        """The message data for the turn that just ended; resets for the next one."""
        self.turn += 1
        v2v: float | None = None
        if self.anchor_ns is not None and self.first_audio_ns is not None and self.first_audio_ns >= self.anchor_ns:
            v2v = round((self.first_audio_ns - self.anchor_ns) / 1e6, 1)
        data: dict[str, Any] = {
            "turn": self.turn,
            "stt_ms": self._values.get("stt_ms"),
            "llm_ttft_ms": self._values.get("llm_ttft_ms"),
            "tts_ttfb_ms": self._values.get("tts_ttfb_ms"),
            "voice_to_voice_ms": v2v,
        }
        self._values = {}
        self.anchor_ns = None
        self.first_audio_ns = None
        return data
