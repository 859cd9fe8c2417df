"""Auth: the static AUTH_TOKEN (header or ?token=), short-lived HMAC session tokens minted by /session, and the
refusals (an error naming what is missing, then close code 1008). The docs' server-to-server example runs too."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from starlette.config import Config
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from voxline.apps.voice_agent import create_app
from voxline.apps.voice_agent.auth import mint_session_token, verify_session_token
from voxline.apps.voice_agent.config import ConfigError, Settings

TOKEN = "static-token-0123456789abcdef"
SECRET = "session-secret-0123456789abcdef0123456789"
ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def agent(tmp_path: Path, **env: str) -> Iterator[TestClient]:
    environ = {"LOG_DIR": "", "LLM_PROVIDER": "echo", "STT_PROVIDER": "local", "TTS_PROVIDER": "local", **env}
    with TestClient(create_app(Config(environ=environ), static_dir=tmp_path, preload=False)) as client:
        yield client


def _refused(client: TestClient, url: str, headers: dict[str, str] | None = None) -> tuple[str, int]:
    with client.websocket_connect(url, headers=headers or {}) as ws:
        error = ws.receive_json()
        assert error["type"] == "error"
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_json()
    return error["data"], info.value.code


def _admitted(client: TestClient, url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    with client.websocket_connect(url, headers=headers or {}) as ws:
        assert ws.receive_json() == {"type": "status", "data": "connected"}
        message = ws.receive_json()
        while message["type"] != "session":
            message = ws.receive_json()
        return dict(message["data"])


def test_no_auth_settings_admit_anyone(tmp_path: Path) -> None:
    with agent(tmp_path) as client:
        assert _admitted(client, "/ws")["ready"] in (True, False)
        assert client.get("/health").json()["auth"] == {"required": False, "session_tokens": False}


def test_the_static_token_by_header_or_query_and_nothing_else(tmp_path: Path) -> None:
    with agent(tmp_path, AUTH_TOKEN=TOKEN) as client:
        _admitted(client, "/ws", {"Authorization": f"Bearer {TOKEN}"})
        _admitted(client, f"/ws?token={TOKEN}")
        text, code = _refused(client, "/ws")
        assert code == 1008 and "needs a token" in text and "Authorization: Bearer" in text
        text, code = _refused(client, "/ws?token=" + TOKEN[:-1] + "x")
        assert code == 1008 and "did not accept your token" in text
        text, code = _refused(client, "/ws", {"Authorization": f"Basic {TOKEN}"})
        assert code == 1008 and "needs a token" in text
        health = client.get("/health").json()
        assert health["auth"] == {"required": True, "session_tokens": False}
        assert health["limits"]["refused"] == {"1008": 3}
        assert TOKEN not in client.get("/health").text
        # The operator's routes are behind it too.
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_session_tokens_are_minted_for_the_backend_and_open_sessions_until_they_expire(tmp_path: Path) -> None:
    with agent(tmp_path, AUTH_TOKEN=TOKEN, SESSION_SECRET=SECRET, SESSION_TOKEN_TTL="60") as client:
        assert client.post("/session").status_code == 401  # only the backend (AUTH_TOKEN) may mint
        assert client.post("/session", headers={"Authorization": "Bearer nope-nope-nope-nope"}).status_code == 401
        minted = client.post("/session", headers={"Authorization": f"Bearer {TOKEN}"})
        assert minted.status_code == 200 and minted.headers["cache-control"] == "no-store"
        body = minted.json()
        assert body["expires_in"] == 60 and abs(body["expires_at"] - (time.time() + 60)) < 5
        _admitted(client, f"/ws?token={body['token']}")
        _admitted(client, f"/ws?token={body['token']}")  # reusable until it expires (reconnects)
        expired, _ = mint_session_token(SECRET, 60, now=time.time() - 61)
        text, code = _refused(client, f"/ws?token={expired}")
        assert code == 1008 and "expired" in text
        forged, _ = mint_session_token("another-secret-0123456789abcdef0123456789", 60)
        text, code = _refused(client, f"/ws?token={forged}")
        assert code == 1008 and "did not accept" in text


def test_session_tokens_without_auth_token_are_minted_by_your_backend_not_by_session(tmp_path: Path) -> None:
    with agent(tmp_path, SESSION_SECRET=SECRET) as client:
        refused = client.post("/session")
        assert refused.status_code == 403 and "AUTH_TOKEN" in refused.json()["error"]
        token, _ = mint_session_token(SECRET, 30)  # what the operator's backend does with the shared secret
        _admitted(client, f"/ws?token={token}")
        assert _refused(client, "/ws")[1] == 1008
    with agent(tmp_path) as client:
        assert client.post("/session").status_code == 404


def test_token_format_and_tampering() -> None:
    token, expires = mint_session_token(SECRET, 120, now=1_000_000)
    assert re.fullmatch(r"v1\.1000120\.[\w-]{16}\.[\w-]{43}", token) and expires == 1_000_120
    assert verify_session_token(SECRET, token, now=1_000_100) is None
    assert verify_session_token(SECRET, token, now=1_000_121) == "expired"
    version, _expiry, nonce, signature = token.split(".")
    assert verify_session_token(SECRET, f"{version}.9999999999.{nonce}.{signature}", now=0) == "invalid"
    assert verify_session_token(SECRET, "v2" + token[2:], now=0) == "invalid"
    assert verify_session_token(SECRET, "garbage", now=0) == "invalid"
    assert verify_session_token(SECRET, "x" * 5000, now=0) == "invalid"


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"AUTH_TOKEN": "short"}, "AUTH_TOKEN must be at least 16"),
        ({"SESSION_SECRET": "short-secret"}, "SESSION_SECRET must be at least 32"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL must start with redis://"),
        ({"DRAIN_TIMEOUT": "-1"}, "DRAIN_TIMEOUT must be between"),
        ({"TRACING": "jaeger"}, "TRACING='jaeger' is not one of"),
    ],
)
def test_bad_operations_settings_are_refused_by_name(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(needle)):
        Settings.from_config(Config(environ=env))


def test_tokens_and_the_redis_password_are_secrets() -> None:
    settings = Settings.from_config(Config(environ={"AUTH_TOKEN": TOKEN, "SESSION_SECRET": SECRET}))
    assert TOKEN not in repr(settings) and SECRET not in repr(settings)
    assert {TOKEN, SECRET} <= set(settings.secrets())
    redis = Settings.from_config(Config(environ={"REDIS_URL": "redis://:pa55word-xyz@cache:6379/0"}))
    assert "pa55word-xyz" in redis.secrets()


def test_the_docs_server_to_server_example_mints_a_token_the_agent_accepts(tmp_path: Path) -> None:
    """docs/security.md's backend example, run as written against a real server (its URL and token swapped in)."""
    import subprocess
    import sys

    from ops_support import agent_env, served

    doc = (ROOT / "docs" / "security.md").read_text()
    code = doc.split("```python\n", 1)[1].split("```", 1)[0]
    env = agent_env(tmp_path, AUTH_TOKEN=TOKEN, SESSION_SECRET=SECRET, LLM_PROVIDER="echo")
    with served(tmp_path, env) as server:
        run_env = {**env, "VOXLINE_URL": server.url, "VOXLINE_AUTH_TOKEN": TOKEN}
        out = subprocess.run([sys.executable, "-c", code], env=run_env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        ws_url = out.stdout.strip().splitlines()[-1]
        assert ws_url.startswith(server.ws + "/ws?token=v1.")

        async def connect_once() -> str:
            from websockets.asyncio.client import connect

            async with connect(ws_url, open_timeout=10) as ws:
                return str(await ws.recv())

        import asyncio

        assert '"connected"' in asyncio.run(connect_once())
