"""What one session's pipeline is doing, seen from its two ends — for metrics, spans, the drain and resuming.

:class:`SessionMonitor` subscribes to the frames that leave the pipeline (``PipelineTask.on_downstream`` and
``on_upstream``). The output transport consumes every data frame (audio, text, transcripts), so only control and
system frames get there — a handful per turn: reply start and end, interrupts, speaking events, metrics, errors.
Nothing is done per audio frame. From them it keeps:

* **the turn's state**: a reply generating, the bot speaking (by the output's playback clock), the user speaking,
  a turn heard but not yet answered — what the drain's :meth:`SessionMonitor.quiet` asks before closing;
* **metrics** (:mod:`~voxline.apps.voice_agent.metrics`): replies, interruptions by who cut them, the turn's
  latency figures (the output's own turn record, :class:`MeteredTurn`, the same as the client's ``metrics``
  message), ``<kind>.fallback`` switches, ``turn.*`` measurements, provider errors; refused and dropped messages
  and provider reconnects from the counters the transport and the provider sockets keep (:meth:`sync`);
* **spans** (:mod:`~voxline.apps.voice_agent.tracing`) when tracing is on;
* a **turn-end hook**: the conversation is saved for resuming after every reply and every interruption.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from voxline.apps.voice_agent.metrics import Metrics
from voxline.apps.voice_agent.tracing import TurnSpans
from voxline.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    ErrorFrame,
    Frame,
    InterruptFrame,
    LLMResponseEndFrame,
    LLMResponseStartFrame,
    MetricsFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from voxline.llm import LLMProcessor
from voxline.processor import Processor
from voxline.providers.socket import ProviderSocket
from voxline.stt import STTProcessor
from voxline.task import PipelineTask
from voxline.transports import WebSocketTransport
from voxline.transports.metrics import TurnMetrics
from voxline.tts import TTSProcessor

__all__ = ["MeteredTurn", "SessionMonitor", "stage_labels"]

logger = logging.getLogger("voxline.apps.voice_agent.monitor")

ANSWER_GRACE = 3.0
"""Seconds after the user stopped speaking during which a reply may still be coming (the STT finalising):
a draining session waits that long before it counts as quiet."""
INTERRUPTERS = {
    "client interrupt": "client",
    "typed turn": "typed",
    "barge-in": "speech",
    "user started speaking": "speech",
    "user spoke again": "speech",
}
PROVIDERS = {"openai_compat": "openai"}


class MeteredTurn(TurnMetrics):
    """The output transport's turn record, telling ``on_take`` each turn's figures as it closes the turn."""

    __slots__ = ("on_take",)

    def __init__(self, on_take: Callable[[dict[str, Any]], None]) -> None:
        super().__init__()
        self.on_take = on_take

    def take(self) -> dict[str, Any]:
        data = super().take()
        self.on_take(data)
        return data


def stage_labels(stages: Iterable[Processor]) -> dict[str, tuple[str, str]]:
    """``{stage name: (provider, kind)}`` for the speech and language stages (fallback members included)."""
    labels: dict[str, tuple[str, str]] = {}
    for stage in stages:
        kind = (
            "stt"
            if isinstance(stage, STTProcessor)
            else "llm"
            if isinstance(stage, LLMProcessor)
            else "tts"
            if isinstance(stage, TTSProcessor)
            else None
        )
        members = getattr(stage, "members", None)
        if isinstance(members, list) and members:
            labels.update(stage_labels(members))
            continue
        if kind is None:
            continue
        module = type(stage).__module__.split(".")
        package = module[2] if module[:2] == ["voxline", "processors"] and len(module) > 2 else "local"
        labels[stage.name] = (PROVIDERS.get(package, package), kind)
    return labels


def _sockets(
    stages: Iterable[Processor], labels: dict[str, tuple[str, str]]
) -> list[tuple[ProviderSocket[Any], str, str]]:
    found: list[tuple[ProviderSocket[Any], str, str]] = []
    for stage in stages:
        members = getattr(stage, "members", None)
        if isinstance(members, list) and members:
            found += _sockets(members, labels)
            continue
        provider, kind = labels.get(stage.name, ("other", "other"))
        attributes = getattr(stage, "__dict__", {}).values()
        found += [(v, provider, kind) for v in attributes if isinstance(v, ProviderSocket)]
    return found


class SessionMonitor:
    """Watches one session (see the module docstring). Attach it to the task before the task runs."""

    def __init__(
        self,
        transport: WebSocketTransport,
        stages: list[Processor],
        sink: Metrics,
        *,
        spans: TurnSpans | None = None,
        on_turn_end: Callable[[], None] | None = None,
    ) -> None:
        self.transport = transport
        self.stages = stages
        self.sink = sink
        self.spans = spans
        self.on_turn_end = on_turn_end
        self.labels = stage_labels(stages)
        self.replying = False
        self.bot_speaking = False
        self.user_speaking = False
        self.user_stopped_at: float | None = None
        """When the user last stopped speaking with no reply started since (monotonic s)."""
        self.turns = 0
        self.interruptions = 0
        self._synced: dict[str, int] = {}
        self._socket_counts: dict[int, int] = {}
        self.turn_record = MeteredTurn(self._turn_figures)

    def attach(self, task: PipelineTask) -> None:
        """Subscribe to the task's two ends, and put the metered turn record into the output transport."""
        task.on_downstream(self.on_downstream)
        task.on_upstream(self.on_upstream)
        self.transport.output().metrics = self.turn_record

    # --- frames --------------------------------------------------------------------------------------------

    def on_downstream(self, frame: Frame) -> None:
        """A frame that left the end of the pipeline (after the output transport): never audio or text."""
        try:
            self._downstream(frame)
        except Exception:  # observing must never break the session
            logger.exception("the session monitor failed on %s", frame.name)

    def _downstream(self, frame: Frame) -> None:
        spans = self.spans
        if isinstance(frame, MetricsFrame):
            self._metric(frame)
        elif isinstance(frame, LLMResponseStartFrame):
            self.replying = True
            self.user_stopped_at = None
            if spans is not None:
                spans.reply_start()
        elif isinstance(frame, LLMResponseEndFrame):
            self.replying = False
            self.turns += 1
            self.sink.turns.labels("interrupted" if frame.interrupted else "complete").inc()
            if spans is not None:
                spans.reply_end(interrupted=frame.interrupted)
            self._turn_ended()
        elif isinstance(frame, InterruptFrame):
            if self.replying or self.bot_speaking:
                self.interruptions += 1
                self.sink.interruptions.labels(INTERRUPTERS.get(frame.reason, "other")).inc()
                self._turn_ended()
            self.replying = False
        elif isinstance(frame, UserStartedSpeakingFrame):
            self.user_speaking = True
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self.user_speaking = False
            self.user_stopped_at = time.monotonic()
            if spans is not None:
                wall = None if frame.audio_time is None else self.transport.audio_clock.wall_ns(frame.audio_time)
                spans.user_end(wall)
        elif spans is not None and isinstance(frame, TTSStartedFrame):
            spans.tts_started()
        elif spans is not None and isinstance(frame, TTSStoppedFrame):
            spans.tts_stopped()

    def on_upstream(self, frame: Frame) -> None:
        """A frame that left the head of the pipeline going upstream: errors, the bot's speaking events."""
        try:
            if isinstance(frame, BotStartedSpeakingFrame):
                self.bot_speaking = True
            elif isinstance(frame, BotStoppedSpeakingFrame):
                self.bot_speaking = False
            elif isinstance(frame, ErrorFrame):
                label = self.labels.get(frame.source)
                if label is not None:
                    self.sink.provider_errors.labels(*label).inc()
        except Exception:
            logger.exception("the session monitor failed on %s", frame.name)

    def _metric(self, frame: MetricsFrame) -> None:
        name = frame.name
        spans = self.spans
        if name.endswith(".fallback"):
            self.sink.fallbacks.labels(name.removesuffix(".fallback")).inc()
        elif name.startswith("turn.") and frame.unit == "s":
            self.sink.turn_engine.labels(name.removeprefix("turn.")).observe(frame.value)
        elif spans is not None and frame.unit == "s":
            if name == "stt.latency":
                spans.stt(frame.value)
            elif name == "llm.ttft":
                spans.first_token(frame.value)
            elif name == "tts.ttfb":
                spans.first_audio(frame.value)

    def _turn_figures(self, data: dict[str, Any]) -> None:
        self.sink.observe_turn(data)
        if self.spans is not None:
            self.spans.figures(data)

    def _turn_ended(self) -> None:
        if self.on_turn_end is not None:
            self.on_turn_end()

    # --- what the drain asks -------------------------------------------------------------------------------

    def quiet(self) -> bool:
        """Nothing would be cut by closing now: no reply being made or played, no typed turn or final transcript
        waiting for its answer (the drain's deadline bounds the wait), nobody talking."""
        transport = self.transport
        if self.replying or self.bot_speaking or transport.bot_active or transport.busy:
            return False
        if transport.typed_turn_ns is not None or transport.turn_pending_since is not None or self.user_speaking:
            return False
        stopped = self.user_stopped_at
        return stopped is None or time.monotonic() - stopped > ANSWER_GRACE

    # --- counters read now and then ------------------------------------------------------------------------

    def sync(self) -> None:
        """Add what the transport and the provider sockets counted since the last call."""
        transport = self.transport
        limiter = transport.limiter
        rejected = transport.input().rejected
        counts = {
            "message_rate": limiter.refused_messages,
            "audio_rate": limiter.refused_audio,
            "bad_input": max(0, rejected - limiter.refused_messages - limiter.refused_audio),
            "output_discarded": transport.writer.dropped,
            "errors_not_sent": transport.errors_suppressed,
        }
        for reason, total in counts.items():
            delta = total - self._synced.get(reason, 0)
            if delta > 0:
                self.sink.drops.labels(reason).inc(delta)
                self._synced[reason] = total
        for socket, provider, kind in _sockets(self.stages, self.labels):
            reconnects = max(0, socket.connections - 1)
            delta = reconnects - self._socket_counts.get(id(socket), 0)
            if delta > 0:
                self.sink.provider_reconnects.labels(provider, kind).inc(delta)
                self._socket_counts[id(socket)] = reconnects

    def close(self) -> None:
        """The session is over: a last sync, and any span still open is ended."""
        self.sync()
        if self.spans is not None:
            self.spans.close()
