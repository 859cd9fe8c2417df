"""Scale-out on real engines, as docs/deploy.md sets it up: Debian's nginx (deploy/nginx.conf) in front of two
`voxline serve` processes sharing Debian's redis-server, on the fake providers. Conversations run through nginx;
one backend is SIGTERM'd mid-conversation; its clients finish their replies, are closed with 1012, come back
through nginx, land on the other backend and go on with their history. Also: the Docker image and
docker-compose.yml say what docs/deploy.md says (no Docker engine runs here)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from pathlib import Path
from typing import Any

import pytest
from ops_support import (
    Served,
    WsClient,
    agent_env,
    ahttp,
    cloud_fakes,
    deploy_stack,
    free_port,
    http,
    record,
    served,
    ws_client,
)

pytestmark = [pytest.mark.nginx, pytest.mark.redis]

ROOT = Path(__file__).resolve().parent.parent
REPLIES = "Sure. It will be sunny in the morning and cloudy later, with a little wind by the evening."
BOT_STOPPED = {"who": "bot", "state": "stopped"}


async def _turn(client: WsClient, text: str, n: int) -> None:
    await client.send({"type": "text", "data": text})
    await client.wait_message("status", "complete", count=n, timeout=20)
    await client.wait_message("speaking", BOT_STOPPED, count=n, timeout=20)


async def _serving(agents: list[Served]) -> list[int]:
    return [(await ahttp(f"{a.url}/livez"))[1]["sessions"] for a in agents]


async def test_a_backend_sigtermed_mid_conversation_its_clients_resume_on_the_other_through_nginx(
    tmp_path: Path,
) -> None:
    async with cloud_fakes(REPLIES) as (dg, gm), contextlib.AsyncExitStack() as exits:
        port, agents = exits.enter_context(deploy_stack(tmp_path, dg, gm))
        proxy = f"ws://127.0.0.1:{port}/ws"
        assert http(f"http://127.0.0.1:{port}/health")[0] == 200
        assert http(f"http://127.0.0.1:{port}/metrics")[0] == 404  # not exposed through the proxy

        clients = [await exits.enter_async_context(ws_client(proxy)) for _ in range(4)]
        for client in clients:
            await client.wait_message("session")
        assert await _serving(agents) == [2, 2]  # least_conn spread them
        await asyncio.gather(*(_turn(c, f"client {i} first question", 1) for i, c in enumerate(clients)))

        for i, client in enumerate(clients):
            await client.send({"type": "text", "data": f"client {i} second question"})
        for client in clients:
            await client.wait_message("text_chunk", timeout=20)  # every reply under way
        victim, survivor = agents
        sent = victim.sigterm()
        status, _ = await ahttp(f"{victim.url}/health")
        assert status == 503
        await asyncio.sleep(0.2)
        for client in clients:
            await client.wait_message("status", "complete", count=2, timeout=20)

        moved = [c for c in clients if ("status", "draining") in _kinds(c)]
        stayed = [c for c in clients if c not in moved]
        assert len(moved) == 2 and len(stayed) == 2
        gaps = []
        for client in moved:
            assert await client.closed(timeout=20) == 1012
            kinds = _kinds(client)
            assert kinds.index(("status", "complete")) < len(kinds) - 1  # the reply was whole before the close
            assert ("speaking", BOT_STOPPED) in kinds[kinds.index(("status", "draining")) :]
        for client in moved:  # what the page does: reconnect at once, through the proxy, with the token
            token = client.session()["resume_token"]
            closed_at = client.closed_at or time.monotonic()
            again = await exits.enter_async_context(ws_client(f"{proxy}?resume={token}"))
            await again.wait_message("session")
            gaps.append(time.monotonic() - closed_at)
            assert again.session()["resumed"] is True, again.session()
            client.resumed = again  # type: ignore[attr-defined]
        exit_code = await asyncio.to_thread(victim.process.wait, 20)
        exited = time.monotonic() - sent
        assert exited <= 15 and exit_code in (0, -15)
        assert await _serving([survivor]) == [4]

        talkers = [getattr(c, "resumed", c) for c in clients]
        await asyncio.gather(
            *(
                _turn(t, f"client {i} third question", 1 if t is not c else 3)
                for i, (t, c) in enumerate(zip(talkers, clients, strict=True))
            )
        )
        for i in range(len(clients)):
            turns = _request_for(gm, f"client {i} third question").chat.turns
            users = [text for role, text in turns if role == "user"]
            assert users == [f"client {i} first question", f"client {i} second question", f"client {i} third question"]
            assert [role for role, _ in turns] == ["user", "assistant"] * 2 + ["user"]
        assert "WebSocket /ws?resume=" not in (tmp_path / f"nginx-{port}" / "access.log").read_text()

        record(
            "nginx-failover",
            sessions=4,
            moved=len(moved),
            resumed_with_history=len(moved),
            reconnect_gap_s=[round(g, 3) for g in gaps],
            backend_exit_s=round(exited, 2),
        )


def _kinds(client: WsClient) -> list[tuple[str, Any]]:
    return [(m["type"], m.get("data")) for m in client.messages]


def _request_for(gm: Any, text: str) -> Any:
    return next(r for r in reversed(gm.requests) if r.chat.last_user_text == text)


# --- the container files -------------------------------------------------------------------------------------


def test_the_docker_image_honours_host_and_port_and_checks_health_on_that_port() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (.*)$", dockerfile, re.M)
    assert cmd is not None and "8000" not in cmd.group(1) and "--port" not in cmd.group(1)  # HOST/PORT from env
    check = dockerfile.split("HEALTHCHECK", 1)[1].split("\n\n", 1)[0]
    assert "PORT" in check and "/livez" in check and "127.0.0.1:8000" not in check
    assert 'pip install ".[local,openai,server]"' in dockerfile
    # The healthcheck command, run here against a real server on another port, passes.
    command = re.search(r'CMD python -c "(.*)"', check, re.S)
    assert command is not None


def test_the_healthcheck_command_follows_port(tmp_path: Path) -> None:
    import subprocess
    import sys

    dockerfile = (ROOT / "Dockerfile").read_text()
    check = dockerfile.split("HEALTHCHECK", 1)[1].split("\n\n", 1)[0]
    command = re.search(r'CMD python -c "(.*)"', check, re.S)
    assert command is not None
    code = command.group(1).replace('\\"', '"')
    env = agent_env(tmp_path, LLM_PROVIDER="echo")
    with served(tmp_path, env) as server:
        ok = subprocess.run([sys.executable, "-c", code], env={**env, "PORT": str(server.port)}, timeout=30)
        assert ok.returncode == 0
        wrong = subprocess.run([sys.executable, "-c", code], env={**env, "PORT": str(free_port())}, timeout=30)
        assert wrong.returncode != 0


def test_compose_runs_nginx_two_agents_and_redis_with_the_tested_config() -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    for service in ("nginx:", "agent1:", "agent2:", "redis:"):
        assert f"\n  {service}" in compose, service
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in compose
    assert compose.count("REDIS_URL: redis://redis:6379/0") == 2
    grace = re.findall(r"stop_grace_period: (\d+)s", compose)
    drain = re.findall(r"DRAIN_TIMEOUT: \"?(\d+)", compose)
    assert len(grace) == 2 and drain and all(int(g) > int(drain[0]) for g in grace)  # docker kills at the grace
