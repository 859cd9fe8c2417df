"""The voice agent's Starlette app: the browser page, ``/ws``, ``/health`` and the operator's routes
(``/livez``, ``/session``, ``/metrics``: :mod:`~voxline.apps.voice_agent.operator_routes`).

``create_app(config)`` builds the whole app from a Starlette ``Config`` (tests pass their own); the package's
module-level ``app`` is ``create_app()`` over the environment and ``.env``, for
``uvicorn voxline.apps.voice_agent:app``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import voxline
from starlette.applications import Starlette
from starlette.config import Config
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket
from voxline.apps.voice_agent.admission import Admission
from voxline.apps.voice_agent.config import Settings, load_config
from voxline.apps.voice_agent.drain import Drain
from voxline.apps.voice_agent.logs import configure_logging
from voxline.apps.voice_agent.memory import MemoryUpkeep, tune_garbage_collector
from voxline.apps.voice_agent.metrics import LagProbe, metrics, process_exited
from voxline.apps.voice_agent.monitor import SessionMonitor
from voxline.apps.voice_agent.operator_routes import operator_routes
from voxline.apps.voice_agent.resume import Resumes
from voxline.apps.voice_agent.session import run_session
from voxline.apps.voice_agent.stage_errors import StageErrors
from voxline.apps.voice_agent.store import open_store
from voxline.apps.voice_agent.tracing import make_tracer
from voxline.providers.clients import aclose_shared
from voxline.registry import Plan, Provider, Registry
from voxline.task import PipelineTask

__all__ = ["STATIC_DIR", "AgentState", "create_app", "tune_garbage_collector"]

logger = logging.getLogger("voxline.apps.voice_agent")

STATIC_DIR = Path(__file__).with_name("static")

PLACEHOLDER = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>voxline voice agent</title></head>
<body><h1>voxline voice agent</h1>
<p>The server is running, but the browser client (<code>static/index.html</code>) is not installed.</p>
<p>Connect a WebSocket client to <code>/ws</code>; see <code>/health</code> for the configured providers.</p>
</body></html>"""


class AgentState:
    """What the app's handlers share: settings, the plan, admission control, the live sessions, the last
    provider error of each stage, and the operations side (drain, resuming, metrics, tracing)."""

    def __init__(self, settings: Settings, plan: Plan, static_dir: Path, *, upkeep: bool = False) -> None:
        self.settings = settings
        self.plan = plan
        self.static_dir = static_dir
        self.stage_errors = StageErrors(plan)
        self.admission = Admission(settings)
        self.memory = MemoryUpkeep(enabled=upkeep, live=lambda: self.admission.live)
        self.tasks: set[PipelineTask] = set()
        ops = settings.ops
        self.drain = Drain(ops.drain_timeout)
        self.metrics = metrics()
        self.resumes = Resumes(
            open_store(str(ops.redis_url) if ops.redis_url else None), ops.resume_seconds, self.metrics
        )
        self.tracer = make_tracer(ops.tracing == "otel")
        self.monitors: set[SessionMonitor] = set()
        self.lag = LagProbe(self.metrics, hooks=[self.sync_sessions])

    @property
    def sessions(self) -> int:
        """Sessions admitted and not yet torn down."""
        return self.admission.live

    def sync_sessions(self) -> None:
        """Bring the metrics up to date with the counters the live sessions keep."""
        for monitor in list(self.monitors):
            monitor.sync()


def create_app(
    config: Config | None = None,
    *,
    static_dir: Path | None = None,
    setup_logging: bool = True,
    preload: bool = True,
    tune_gc: bool = False,
    drain_on_sigterm: bool = False,
    registry: Registry | None = None,
) -> Starlette:
    """The voice agent, configured from ``config`` (default: the environment and ``.env``).

    ``preload`` imports the providers' modules at startup (not in the first session) and loads the local models
    in the background (when a stage uses them). ``tune_gc``
    applies :func:`tune_garbage_collector` at startup and the memory upkeep after sessions
    (:mod:`~voxline.apps.voice_agent.memory`); they change the whole process, so only the served app
    (``voxline serve``, ``uvicorn voxline.apps.voice_agent:app``) turns them on, and ``drain_on_sigterm``
    (:mod:`~voxline.apps.voice_agent.drain`: SIGTERM lets the sessions finish their replies first).
    ``registry``: the providers to choose from (default: the built-in ones, :mod:`voxline.processors.registry`).
    """
    settings = Settings.from_config(config if config is not None else load_config(), registry)
    plan = settings.plan()
    state = AgentState(settings, plan, static_dir or STATIC_DIR, upkeep=tune_gc)
    if setup_logging:
        configure_logging(settings.log_level, settings.log_dir, settings.secrets())

    async def health(request: Request) -> Response:
        body = _health(state)
        if state.drain.draining:  # readiness: a load balancer sends no new clients here
            body["status"] = "draining"
            return JSONResponse(body, 503, headers={"Retry-After": "1"})
        return JSONResponse(body)

    async def index(request: Request) -> Response:
        page = state.static_dir / "index.html"
        if page.is_file():
            return FileResponse(page, headers={"Cache-Control": "no-cache"})
        return HTMLResponse(PLACEHOLDER)

    async def ws(websocket: WebSocket) -> None:
        await run_session(websocket, state)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        logger.info(
            "voxline %s voice agent: providers %s%s%s",
            voxline.__version__,
            plan.engines,
            " (offline demo)" if plan.offline_demo else "",
            f"; problems: {'; '.join(plan.problems)}" if plan.problems else "",
        )
        if preload:
            _import_providers(settings, plan)
        if tune_gc:
            tune_garbage_collector()  # after the imports: the freeze takes them out of every full collection
        warm = asyncio.create_task(_preload(state)) if preload and _preloads(settings, plan) else None
        turns = asyncio.create_task(_preload_turns(settings)) if preload else None
        if drain_on_sigterm:
            state.drain.install(lambda: state.sessions)
        state.lag.start()
        yield
        state.drain.uninstall()
        await state.drain.aclose()
        await state.lag.aclose()
        for task in (warm, turns):
            if task is not None and not task.done():
                task.cancel()
        await state.memory.aclose()
        if state.tasks:
            logger.info("shutting down: cancelling %d sessions", len(state.tasks))
            await asyncio.gather(*(t.cancel("server shutdown") for t in list(state.tasks)), return_exceptions=True)
            await _sessions_gone(state, timeout=3.0)  # their last saves for resuming, before the store closes
        await state.resumes.store.aclose()
        process_exited()
        # The provider clients (genai, httpx, Deepgram) are shared by every session of the process: closed last.
        closed = await aclose_shared()
        logger.info("shut down; closed %d shared provider clients", closed)

    middleware = []
    if settings.cors_origins:
        middleware.append(Middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET"]))
    routes = [
        Route("/health", health, methods=["GET"]),
        *operator_routes(state),
        WebSocketRoute("/ws", ws),
        Route("/", index, methods=["GET"]),
        Mount("/", StaticFiles(directory=state.static_dir, check_dir=False, follow_symlink=True), name="static"),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.agent = state
    return app


async def _sessions_gone(state: AgentState, *, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while state.sessions and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110 - a count, no event
        await asyncio.sleep(0.05)


def _import_providers(settings: Settings, plan: Plan) -> None:
    """Import the providers' modules now, by building (and dropping) one set of stages: constructors connect to
    nothing. Left to the first session, google-genai's import alone costs that session ~0.7 s, and its ~80,000
    objects would miss the startup freeze."""
    from voxline.apps.voice_agent.factory import ProviderUnavailable, build_processors

    try:
        build_processors(settings, plan)
    except ProviderUnavailable:
        pass  # each session tells its client what is missing
    except Exception:
        logger.exception("could not import the providers at startup")


def _preloads(settings: Settings, plan: Plan) -> list[Provider]:
    """The chosen providers (and fallbacks) that load models at startup."""
    chosen = [step.provider for step in plan.stages.values()]
    for stage in ("llm", "tts"):
        name = settings.fallback(stage)
        if name:
            entry = settings.registry.get(stage, name)
            chosen.append(entry if isinstance(entry, Provider) else entry.resolve())
    unique = {id(p): p for p in chosen}.values()
    return [p for p in unique if p.preload is not None]


async def _preload(state: AgentState) -> None:
    """Load the chosen local engines' models in the background at startup, so the first session does not wait.

    A provider that is not installed is left to the session that needs it (which tells its client); a model that
    fails its integrity check is an error of its stage on /health straight away (and every session fails it)."""
    providers = _preloads(state.settings, state.plan)
    for provider in providers:
        assert provider.preload is not None
        try:
            await provider.preload(state.settings.values)
        except asyncio.CancelledError:
            raise
        except ImportError as exc:
            logger.warning("could not preload %s: %s", provider.name, exc)
        except Exception as exc:
            logger.error("could not load %s: %s", provider.name, exc)
            state.stage_errors.record(provider.stage, f"{provider.name} could not be loaded: {exc}")
    logger.info("local engines loaded: %s", ", ".join(p.name for p in providers))
    state.memory.settled()  # what the models loaded stays for the life of the process


async def _preload_turns(settings: Settings) -> None:
    """Silero and the smart-turn model, loaded once for the process (voxline.apps.voice_agent.turn_wiring)."""
    try:
        from voxline.apps.voice_agent.turn_wiring import preload_turns

        await preload_turns(settings)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # the session that needs them reports it to its client
        logger.warning("could not preload the turn engine's models: %s", exc)


def _health(state: AgentState) -> dict[str, Any]:
    s, plan = state.settings, state.plan
    stages: dict[str, dict[str, Any]] = {}
    for stage, step in plan.stages.items():
        described = step.provider.describe(s.values)
        stages[stage] = {
            "engine": step.choice,
            "provider": step.provider.name,
            **described,
            "last_error": state.stage_errors.last(stage),
        }
    return {
        "status": "ok" if not plan.problems else "degraded",
        "version": voxline.__version__,
        "engines": plan.engines,
        "stages": stages,
        "offline_demo": plan.offline_demo,
        "missing": list(plan.missing),
        "problems": list(plan.problems),
        "keys": s.public(),
        "sessions": state.sessions,
        "limits": state.admission.health(),
        "auth": {"required": state.admission.auth.required, "session_tokens": state.admission.auth.can_mint},
        "resume": state.resumes.health(),
    }
