"""One WebSocket session of the voice agent: admit the client, greet it, build its pipeline, run it, close.

Admission comes first (:mod:`~voxline.apps.voice_agent.admission`: origin, the session caps); a refused
client gets an ``error`` and a close code, and nothing is built for it.

The order of the first messages is part of the protocol: ``status: connected``, then ``session`` (which
providers run, whether this is the offline demo, which keys are missing, and — ``ready``/``problems`` — whether
the pipeline could be built). If it cannot be built the client also gets an ``error`` naming what is missing
(for clients that know only the base protocol's messages), and the socket stays open (the page shows the message;
reconnecting would only repeat it) until the client leaves or the idle timeout closes it.

The session's lifetime is one structured scope (:mod:`~voxline.apps.voice_agent.lifetime`): the pipeline and
a watch over the connection and the session limits end together, every stage is stopped and its provider
sockets closed before this coroutine returns, and only then is the session counted down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket, WebSocketState
from voxline.apps.voice_agent.admission import Refusal, refuse
from voxline.apps.voice_agent.factory import ProviderUnavailable, build_processors
from voxline.apps.voice_agent.lifetime import SERVER_ERROR, Ending, run_scoped
from voxline.apps.voice_agent.logs import session_id
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
    slot = state.admission.admit(websocket)
    if isinstance(slot, Refusal):
        await refuse(websocket, slot)
        return
    try:
        with slot:
            try:
                await websocket.accept()
            except Exception as exc:  # the client left during the handshake
                logger.info("client left before the session started: %s", exc)
                return
            started = time.monotonic()
            ending = await _serve(websocket, state, sid)
            logger.info("session closed after %.1f s: %s", time.monotonic() - started, ending.reason)
    finally:
        state.memory.session_ended()  # counted down first: the upkeep sees whether any session still runs


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
    try:
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
        transport.send_event("session", {**_session_data(sid, state, problem), "features": features})
        if problem is not None:
            logger.error("cannot build the pipeline: %s", problem)
            transport.send_error(f"The voice pipeline cannot start: {problem}")
            ending = await run_scoped(_wait_for_disconnect(websocket, transport), transport, limits, None)
            return ending
        task = PipelineTask(Pipeline([transport.input(), *processors, transport.output()]), name=f"session-{sid}")
        watch = state.stage_errors.watch(processors, lambda entry: transport.send_event("stage_error", entry))
        task.on_upstream(watch)
        transport.start()  # read at once: a client that leaves while the pipeline starts is noticed at once
        state.tasks.add(task)
        try:
            ending = await run_scoped(task.run(), transport, limits, task)
        finally:
            state.tasks.discard(task)
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
