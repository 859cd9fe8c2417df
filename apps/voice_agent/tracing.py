"""Optional OpenTelemetry spans: one per turn, one per provider call in it (``TRACING=otel``).

Only ``opentelemetry-api`` is used (``pip install 'voxline[server]'``): the spans go to whatever tracer provider the
process has. Without an SDK they cost next to nothing and go nowhere; install ``opentelemetry-sdk`` and an
exporter (or run under ``opentelemetry-instrument``) to collect them. With ``TRACING=off`` (the default) not even
that: no span is made.

The spans are built from the frames that leave the pipeline (:mod:`~voxline.apps.voice_agent.monitor`), with the
times the stages measured, so a trace shows where a turn's time went without instrumenting the hot path::

    voxline.turn            from the end of the user's speech (or typed turn) to the end of the reply
    ├─ voxline.stt          the end of speech's arrival → the final transcript  (stt.latency)
    ├─ voxline.llm          the model's reply; event ``first_token`` (llm.ttft)
    └─ voxline.tts          synthesis of the reply; event ``first_audio`` per piece (tts.ttfb)

Attributes: ``voxline.session.id``, ``voxline.turn``, ``voxline.interrupted``, the turn's figures
(``voxline.*_ms``), and per call ``voxline.provider`` and ``voxline.kind``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import voxline

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

__all__ = ["TurnSpans", "make_tracer", "wall_ns"]

SCOPE = "voxline.apps.voice_agent"


def make_tracer(enabled: bool) -> Tracer | None:
    """The app's tracer when tracing is on (raises ImportError naming the package when the API is missing)."""
    if not enabled:
        return None
    try:
        from opentelemetry import trace
    except ImportError as exc:  # pragma: no cover - the settings check names the package first
        raise ImportError("TRACING=otel needs opentelemetry-api: pip install 'voxline[server]'") from exc
    return trace.get_tracer(SCOPE, voxline.__version__)


def wall_ns(monotonic_ns: int | None = None) -> int:
    """A monotonic timestamp as the wall-clock nanoseconds OpenTelemetry wants (now when None)."""
    now = time.time_ns()
    return now if monotonic_ns is None else now - (time.monotonic_ns() - monotonic_ns)


class TurnSpans:
    """The spans of one session's turns. Fed by the session monitor; every method is cheap and never raises."""

    def __init__(self, tracer: Tracer, session_id: str, engines: dict[str, str]) -> None:
        self.tracer = tracer
        self.session_id = session_id
        self.engines = engines
        self.turn = 0
        self._anchor: int | None = None  # wall ns: the end of the user's turn
        self._stt: tuple[int, int] | None = None  # wall ns: start, end
        self._turn_span: Span | None = None
        self._llm: Span | None = None
        self._tts: Span | None = None

    def user_end(self, monotonic_ns: int | None = None) -> None:
        self._anchor = wall_ns(monotonic_ns)

    def stt(self, seconds: float) -> None:
        end = wall_ns()
        self._stt = (end - int(seconds * 1e9), end)

    def reply_start(self) -> None:
        from opentelemetry import trace

        self._end_turn(interrupted=True)  # a reply that never ended (cut before its end frame)
        self.turn += 1
        now = wall_ns()
        start = self._anchor if self._anchor is not None and self._anchor <= now else now
        turn = self.tracer.start_span(
            "voxline.turn",
            start_time=start,
            attributes={"voxline.session.id": self.session_id, "voxline.turn": self.turn},
        )
        self._turn_span = turn
        parent = trace.set_span_in_context(turn)
        if self._stt is not None:
            stt = self.tracer.start_span(
                "voxline.stt", context=parent, start_time=self._stt[0], attributes=self._call("stt")
            )
            stt.end(end_time=self._stt[1])
        self._llm = self.tracer.start_span("voxline.llm", context=parent, start_time=now, attributes=self._call("llm"))
        self._anchor = self._stt = None

    def first_token(self, seconds: float) -> None:
        if self._llm is not None:
            self._llm.add_event("first_token", {"voxline.ttft_ms": round(seconds * 1000, 1)})

    def tts_started(self) -> None:
        from opentelemetry import trace

        if self._turn_span is None or self._tts is not None:
            return
        parent = trace.set_span_in_context(self._turn_span)
        self._tts = self.tracer.start_span("voxline.tts", context=parent, attributes=self._call("tts"))

    def first_audio(self, seconds: float) -> None:
        if self._tts is not None:
            self._tts.add_event("first_audio", {"voxline.ttfb_ms": round(seconds * 1000, 1)})

    def tts_stopped(self) -> None:
        if self._tts is not None:
            self._tts.end()
            self._tts = None

    def figures(self, data: dict[str, Any]) -> None:
        """The turn's figures (the client's ``metrics`` message) on the turn span."""
        if self._turn_span is not None:
            for key, value in data.items():
                if isinstance(value, (int, float)) and key != "turn":
                    self._turn_span.set_attribute(f"voxline.{key}", value)

    def reply_end(self, *, interrupted: bool) -> None:
        self._end_turn(interrupted=interrupted)

    def close(self) -> None:
        self._end_turn(interrupted=True)

    def _end_turn(self, *, interrupted: bool) -> None:
        for span in (self._tts, self._llm):
            if span is not None:
                span.end()
        self._tts = self._llm = None
        if self._turn_span is not None:
            self._turn_span.set_attribute("voxline.interrupted", interrupted)
            self._turn_span.end()
            self._turn_span = None

    def _call(self, kind: str) -> dict[str, Any]:
        return {
            "voxline.kind": kind,
            "voxline.provider": self.engines.get(kind, "?"),
            "voxline.session.id": self.session_id,
        }
