"""One WebSocket session of the voice agent: greet the client, build its pipeline, run it, clean up.

The order of the first messages is part of the protocol: ``status: connected``, then ``session`` (which
engines run, whether this is the offline demo, which keys are missing, and — ``ready``/``problems`` — whether
the pipeline could be built). If it cannot be built the client also gets an ``error`` naming what is missing
(for clients that know only the seed's messages), and the socket stays open (the page shows the message;
reconnecting would only repeat it) until the client leaves.

When the client disconnects, the transport's input ends the pipeline task, and stopping the task stops every
stage: provider sockets are closed before this coroutine returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket, WebSocketState
from voxline.apps.voice_agent.factory import EngineUnavailable, build_processors
from voxline.apps.voice_agent.logs import session_id
from voxline.pipeline import Pipeline
from voxline.task import PipelineTask
from voxline.transports import TransportParams, WebSocketTransport

if TYPE_CHECKING:
    from voxline.apps.voice_agent.app import AgentState

__all__ = ["run_session"]

logger = logging.getLogger("voxline.apps.voice_agent.session")


async def run_session(websocket: WebSocket, state: AgentState) -> None:
    """Serve one client from accept to disconnect."""
    sid = uuid.uuid4().hex[:12]
    session_id.set(sid)  # this coroutine runs in its own context: every task made below inherits the id
    if not _origin_allowed(websocket, state.settings.cors_origins):
        logger.warning("refused a WebSocket from origin %s", websocket.headers.get("origin"))
        await websocket.close(code=1008)  # before accept: the handshake is answered with HTTP 403
        return
    await websocket.accept()
    state.sessions += 1
    started = time.monotonic()
    settings, plan = state.settings, state.plan
    logger.info("client connected from %s; engines %s", _peer(websocket), plan.engines)
    transport = WebSocketTransport(
        websocket, TransportParams(max_message_bytes=settings.max_message_bytes, session_id=sid)
    )
    transport.send_status("connected")
    try:
        # Built before the session message, so that message can say plainly whether this session can run.
        problem: str | None = None
        try:
            processors = build_processors(settings, plan)
        except EngineUnavailable as exc:
            problem = str(exc)
        transport.send_event("session", _session_data(sid, state, problem))
        if problem is not None:
            logger.error("cannot build the pipeline: %s", problem)
            transport.send_error(f"The voice pipeline cannot start: {problem}")
            await _wait_for_disconnect(websocket)
            return
        task = PipelineTask(Pipeline([transport.input(), *processors, transport.output()]), name=f"session-{sid}")
        state.tasks.add(task)
        try:
            await task.run()
        finally:
            state.tasks.discard(task)
        fatal = [e for e in task.errors if e.fatal]
        if fatal and not transport.disconnected.is_set():
            logger.error("session ended by a fatal error: %s", fatal[-1].message)
            # A stage that failed to start never had its error pass the input: tell the client here.
            for error in fatal:
                if error.message not in transport.input().errors_reported:
                    transport.send_error(f"The voice pipeline stopped: {error.message}")
            await transport.aclose(flush_timeout=1.0)
            with contextlib.suppress(Exception):
                await websocket.close(code=1011, reason="pipeline failed")
    finally:
        state.sessions -= 1
        logger.info("session closed after %.1f s", time.monotonic() - started)
        await transport.aclose(flush_timeout=0.2)


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


async def _wait_for_disconnect(websocket: WebSocket) -> None:
    """Keep a session that has no pipeline open (and ignore what it sends) until the client leaves."""
    while websocket.client_state is WebSocketState.CONNECTED:
        try:
            message = await websocket.receive()
        except Exception:
            return
        if message.get("type") == "websocket.disconnect":
            return
        await asyncio.sleep(0)


def _origin_allowed(websocket: WebSocket, allowed: tuple[str, ...]) -> bool:
    """With ``CORS_ORIGINS`` set, a browser page from another site may not open a session (browsers do not
    apply CORS to WebSockets, so the server checks ``Origin``). The agent's own page and non-browser clients
    (no ``Origin``) are always allowed."""
    origin = websocket.headers.get("origin")
    if not allowed or origin is None or "*" in allowed or origin in allowed:
        return True
    host = websocket.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


def _peer(websocket: WebSocket) -> str:
    client = websocket.client
    return f"{client.host}:{client.port}" if client else "?"
