"""The reference voice agent: a browser page and a WebSocket voice pipeline (STT → LLM → TTS).

``create_app(config)`` builds the Starlette app; ``app`` (built on first access, from the environment and
``.env``) is what ``uvicorn voxline.apps.voice_agent:app`` and ``voxline serve`` run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["app", "create_app"]

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from voxline.apps.voice_agent.app import create_app

    app: Starlette


def __getattr__(name: str) -> Any:
    # Lazy, so that importing the package (for create_app in tests) reads no environment and opens no log file.
    if name == "create_app":
        from voxline.apps.voice_agent.app import create_app

        return create_app
    if name == "app":
        from voxline.apps.voice_agent.app import create_app

        value = create_app(tune_gc=True, drain_on_sigterm=True)  # the served app owns its process
        globals()["app"] = value
        return value
    raise AttributeError(f"module 'voxline.apps.voice_agent' has no attribute {name!r}")
