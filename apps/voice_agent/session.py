"""One WebSocket session of the voice agent: admit the client, greet it, build its pipeline, run it, close.

Admission comes first (:mod:`~voxline.apps.voice_agent.admission`: origin, credentials, the session caps); a
refused client gets an ``error`` and a close code, and nothing is built for it. A draining process refuses new
sessions with HTTP 503 (:mod:`~voxline.apps.voice_agent.drain`).

The order of the first messages is part of the protocol: ``status: connected``, then ``session`` (which
providers run, whether this is the offline demo, which keys are missing, and — ``ready``/``problems`` — whether
the pipeline could be built). If it cannot be built the client also gets an ``error`` naming what is missing
(for clients that know only the base protocol's messages), and the socket stays open (the page shows the message;
reconnecting would only repeat it) until the client leaves or the idle timeout closes it.

The session's lifetime is one structured scope (:mod:`~voxline.apps.voice_agent.lifetime`): the pipeline and
a watch over the connection, the session limits and the drain end together, every stage is stopped and its
provider sockets closed before this coroutine returns, and only then is the session counted down.

Operations hook in at a few points (:mod:`~voxline.apps.voice_agent.operations`): a ``?resume=`` token brings
back a conversation before the pipeline runs, the conversation is kept for the next resume, and a monitor
watches the pipeline's ends for metrics, spans and the drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket, WebSocketState
from voxline.apps.voice_agent.admission import Refusal, Slot, refuse, refuse_draining
from voxline.apps.voice_agent.drain import SessionDrain
from voxline.apps.voice_agent.factory import ProviderUnavailable, build_processors
from voxline.apps.voice_agent.lifetime import SERVER_ERROR, Ending, run_scoped
from voxline.apps.voice_agent.logs import session_id
from voxline.apps.voice_agent.operations import Operated, operate
from voxline.apps.voice_agent.recording import finish_recording, start_recording
from voxline.apps.voice_agent.turn_wiring import connect_turns
from voxline.pipeline import Pipeline
from voxline.processor import Processor
from voxline.task import PipelineTask
from voxline.transports import TransportParams, WebSocketTransport

if TYPE_CHECKING:
    from voxline.apps.voice_agent.app import AgentState

__all__ = ["run_session"]

logger = logging.getLogger("voxline.apps.voice_agent.session")


async def run_session(websocket: WebSocket, state: AgentState) -> None:
    """Serve one client from admission to the end of its session."""
    sid = uuid.uuid4().hex[:12]
    session_id.set(sid)  # this coroutine runs in its own context: every task made below inherits the id
    sink = state.metrics
    if state.drain.draining:
        sink.rejections.labels("draining").inc()
        await refuse_draining(websocket)
        return
    slot = await _admit(websocket, state)
    if isinstance(slot, Refusal):
        sink.rejections.labels(slot.kind).inc()
        await refuse(websocket, slot)
        return
    sink.sessions_active.inc()
    try:
        with slot:
            try:
                await websocket.accept()
            except Exception as exc:  # the client left during the handshake
                logger.info("client left before the session started: %s", exc)
                return
            started = time.monotonic()
            ending = await _serve(websocket, state, sid)
            sink.session_endings.labels(ending.kind).inc()
            logger.info("session closed after %.1f s: %s", time.monotonic() - started, ending.reason)
    finally:
        sink.sessions_active.dec()
        state.memory.session_ended()  # counted down first: the upkeep sees whether any session still runs


async def _admit(websocket: WebSocket, state: AgentState) -> Slot | Refusal:
    """Admission; a client refused only for its credentials is let in by a resume token of a live conversation."""
    slot = state.admission.admit(websocket)
    resume = websocket.query_params.get("resume")
    if isinstance(slot, Refusal) and slot.kind == "unauthorized" and await state.resumes.known(resume):
        return state.admission.admit(websocket, authenticated=True)
    return slot


async def _serve(websocket: WebSocket, state: AgentState, sid: str) -> Ending:
    settings, plan, limits = state.settings, state.plan, state.settings.limits
    logger.info("client connected from %s; engines %s", _peer(websocket), plan.engines)
    params = TransportParams(
        max_message_bytes=settings.max_message_bytes,
        max_messages_per_second=limits.max_messages_per_second or None,
        max_audio_speed=limits.max_audio_speed or None,
        session_id=sid,
    )
    transport = WebSocketTransport(websocket, params)
    transport.send_status("connected")
    ending = Ending("the session failed to start", SERVER_ERROR)
    ops: Operated | None = None
    try:
        record = await state.resumes.take(websocket.query_params.get("resume"))
        # Built before the session message, so that message can say plainly whether this session can run.
        problem: str | None = None
        processors: list[Processor] = []
        try:
            processors = build_processors(settings, plan)
        except ProviderUnavailable as exc:
            problem = str(exc)
            if exc.stage is not None:
                state.stage_errors.record(exc.stage, problem)
        features = connect_turns(transport, processors)  # the echo detector hears what the client plays
        if problem is not None:
            transport.send_event("session", {**_session_data(sid, state, problem), "features": features})
            logger.error("cannot build the pipeline: %s", problem)
            transport.send_error(f"The voice pipeline cannot start: {problem}")
            drain = SessionDrain(state.drain, lambda: True, lambda: transport.send_status("draining"))
            ending = await run_scoped(_wait_for_disconnect(websocket, transport), transport, limits, None, drain)
            return ending
        recorder = start_recording(settings, sid, transport, processors)  # RECORD_DIR; None when off
        task = PipelineTask(
            Pipeline([transport.input(), *processors, transport.output()]),
            name=f"session-{sid}",
            observers=[recorder] if recorder is not None else [],
        )
        ops = operate(state, sid, transport, processors, task, record)
        session = {**_session_data(sid, state, None), "features": features, **ops.session_fields()}
        transport.send_event("session", session)
        watch = state.stage_errors.watch(processors, lambda entry: transport.send_event("stage_error", entry))
        task.on_upstream(watch)
        transport.start()  # read at once: a client that leaves while the pipeline starts is noticed at once
        state.tasks.add(task)
        try:
            ending = await run_scoped(task.run(), transport, limits, task, ops.drain(transport))
        finally:
            state.tasks.discard(task)
            await finish_recording(recorder, transport.end_reason or "")
        fatal = [e for e in task.errors if e.fatal]
        if fatal and not transport.disconnected.is_set():
            logger.error("session ended by a fatal error: %s", fatal[-1].message)
            # A stage that failed to start never had its error pass the input: tell the client here.
            for error in fatal:
                if error.message not in transport.input().errors_reported:
                    transport.send_error(f"The voice pipeline stopped: {error.message}")
                    watch(error)
            ending = Ending(f"fatal error: {fatal[-1].message}", SERVER_ERROR, None)
        return ending
    except Exception as exc:  # a bug in the session code itself: the client hears of it, the socket is closed
        logger.exception("the session failed")
        ending = Ending(f"the session failed: {exc!r}", SERVER_ERROR, f"The session failed: {type(exc).__name__}")
        return ending
    finally:
        if ops is not None:
            await ops.aclose()  # the conversation saved before the socket closes: a reconnecting client finds it
        await _close(websocket, transport, ending)


async def _close(websocket: WebSocket, transport: WebSocketTransport, ending: Ending) -> None:
    """Tell the client why (if it can still hear), flush briefly, close with the ending's code."""
    if ending.code is None:
        await transport.aclose(flush_timeout=0)
        return
    if ending.message is not None:
        transport.send_error(ending.message)
    await transport.aclose(flush_timeout=1.0)
    if websocket.client_state is WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await websocket.close(code=ending.code, reason=ending.reason[:100])


def _session_data(sid: str, state: AgentState, problem: str | None) -> dict[str, Any]:
    """The ``session`` message. ``ready``/``problems`` say whether the pipeline could be built, so a client need
    not guess from the timing of an ``error`` that the session cannot run."""
    plan = state.plan
    problems = list(plan.problems) if plan.problems else ([problem] if problem is not None else [])
    return {
        "id": sid,
        "engines": plan.engines,
        "offline_demo": plan.offline_demo,
        "missing": list(plan.missing),
        "ready": problem is None,
        "problems": problems,
        "audio_in_rate": 16000,
        "audio_out_rate": 24000,
    }


async def _wait_for_disconnect(websocket: WebSocket, transport: WebSocketTransport) -> None:
    """Keep a session that has no pipeline open (and ignore what it sends) until the client leaves."""
    try:
        while websocket.client_state is WebSocketState.CONNECTED:
            message = await websocket.receive()
            if message.get("type") == "websocket.disconnect":
                break
    except Exception as exc:  # the socket is gone
        logger.info("client socket closed: %s", exc)
    transport.disconnected.set()
    transport.end("client disconnected")


def _peer(websocket: WebSocket) -> str:
    client = websocket.client
    return f"{client.host}:{client.port}" if client else "?"
