"""The operations side of one session that can run, set up and torn down in one place (few lines in session.py).

:func:`operate` restores a resumed conversation into the LLM stage's context before the pipeline runs, starts
keeping the conversation for the next resume (:mod:`~voxline.apps.voice_agent.resume`), and attaches the
:class:`~voxline.apps.voice_agent.monitor.SessionMonitor` (metrics, spans, the drain's "quiet") to the pipeline's
two ends. :meth:`Operated.aclose` undoes it when the session ends — the last save included, before the socket
is closed, so a client told to reconnect (a drain's 1012) finds its latest words.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import attrs
from voxline.apps.voice_agent.drain import SessionDrain
from voxline.apps.voice_agent.monitor import SessionMonitor
from voxline.apps.voice_agent.resume import Conversation, Record, restore_turns
from voxline.apps.voice_agent.tracing import TurnSpans
from voxline.llm import LLMProcessor
from voxline.processor import Processor
from voxline.task import PipelineTask
from voxline.transports import WebSocketTransport

if TYPE_CHECKING:
    from voxline.apps.voice_agent.app import AgentState

__all__ = ["Operated", "operate"]

logger = logging.getLogger("voxline.apps.voice_agent.operations")


@attrs.define
class Operated:
    state: AgentState
    monitor: SessionMonitor
    conversation: Conversation | None
    resumed: bool

    def session_fields(self) -> dict[str, Any]:
        """What the ``session`` message adds (docs/protocol.md, "Resuming")."""
        c = self.conversation
        return {} if c is None else {"resume_token": c.token, "resumed": self.resumed, "conversation": c.conversation}

    def drain(self, transport: WebSocketTransport) -> SessionDrain:
        return SessionDrain(self.state.drain, self.monitor.quiet, lambda: transport.send_status("draining"))

    async def aclose(self) -> None:
        self.state.monitors.discard(self.monitor)
        self.monitor.close()
        if self.conversation is not None:
            await self.conversation.aclose()


def operate(
    state: AgentState,
    sid: str,
    transport: WebSocketTransport,
    processors: list[Processor],
    task: PipelineTask,
    record: Record | None,
) -> Operated:
    """Set up a session's operations (see the module). ``record``: the conversation its client resumes, if any."""
    llm = next((p for p in processors if isinstance(p, LLMProcessor)), None)
    if llm is not None and record is not None:
        try:
            restored = restore_turns(llm.context, record.turns)
            logger.info("resumed conversation %s: %d turns", record.conversation, restored)
        except (ValueError, TypeError, KeyError) as exc:
            logger.warning("could not restore conversation %s: %s", record.conversation, exc)
            record = None
    spans = TurnSpans(state.tracer, sid, state.plan.engines) if state.tracer is not None else None
    monitor = SessionMonitor(transport, processors, state.metrics, spans=spans)
    conversation: Conversation | None = None
    if llm is not None and state.resumes.enabled:
        name = record.conversation if record is not None else sid
        conversation = state.resumes.track(name, llm.context, lambda: monitor.turn_record.turn)
        monitor.on_turn_end = conversation.save_soon
        conversation.start()
    if record is not None:
        monitor.turn_record.turn = record.turn
    monitor.attach(task)
    state.monitors.add(monitor)
    state.metrics.sessions.labels("true" if record is not None else "false").inc()
    return Operated(state, monitor, conversation, record is not None)
