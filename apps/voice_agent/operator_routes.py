"""The HTTP routes an operator's machinery uses, next to the page, ``/ws`` and ``/health``:

* ``GET /livez`` — liveness: 200 while the process runs, draining or not (``/health`` is readiness: 503 while
  draining). Point a container's health check or a supervisor's liveness probe here, a load balancer at
  ``/health``.
* ``POST /session`` — mints a short-lived session token for a browser (``SESSION_SECRET``), for callers that
  present ``AUTH_TOKEN`` (your backend): ``{"token", "expires_at", "expires_in"}``. See docs/security.md.
* ``GET /metrics`` — Prometheus metrics (``METRICS=on``, the default); behind ``AUTH_TOKEN`` when it is set
  (Prometheus: ``authorization: {credentials: <token>}``). See docs/metrics.md.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from voxline.apps.voice_agent.app import AgentState

__all__ = ["operator_routes"]


def operator_routes(state: AgentState) -> list[Route]:
    async def livez(request: Request) -> Response:
        return JSONResponse({"status": "alive", "draining": state.drain.draining, "sessions": state.sessions})

    async def session(request: Request) -> Response:
        auth = state.admission.auth
        if not auth.can_mint:
            return JSONResponse({"error": "session tokens are off: the server has no SESSION_SECRET"}, 404)
        if state.settings.ops.auth_token is None:
            return JSONResponse(
                {"error": "minting session tokens needs AUTH_TOKEN (the caller must prove it is your backend)"}, 403
            )
        if not auth.allows_admin(request.headers, request.query_params):
            return JSONResponse(
                {"error": "send Authorization: Bearer <AUTH_TOKEN>"}, 401, {"WWW-Authenticate": "Bearer"}
            )
        token, expires = auth.mint()
        return JSONResponse(
            {"token": token, "expires_at": expires, "expires_in": round(auth.ttl)},
            headers={"Cache-Control": "no-store"},
        )

    async def metrics(request: Request) -> Response:
        from voxline.apps.voice_agent.metrics import CONTENT_TYPE_LATEST, render

        if not state.admission.auth.allows_admin(request.headers, request.query_params):
            return JSONResponse(
                {"error": "send Authorization: Bearer <AUTH_TOKEN>"}, 401, {"WWW-Authenticate": "Bearer"}
            )
        state.sync_sessions()
        body = await asyncio.to_thread(render)
        return Response(body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    routes = [Route("/livez", livez, methods=["GET"]), Route("/session", session, methods=["POST"])]
    if state.settings.ops.metrics:
        routes.append(Route("/metrics", metrics, methods=["GET"]))
    return routes
