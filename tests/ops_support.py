"""Helpers for the operations tests: real `voxline serve` processes, Debian's redis-server and nginx started on
free ports in temporary directories, the fake providers, and a WebSocket client that keeps its close code."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
from app_helpers import Client, cloud_env
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parent.parent
NGINX_CONF = ROOT / "deploy" / "nginx.conf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def binary(name: str) -> str | None:
    """A Debian binary, also where a non-root PATH does not look (nginx lives in /usr/sbin)."""
    found = shutil.which(name)
    if found is None and Path(f"/usr/sbin/{name}").is_file():
        found = f"/usr/sbin/{name}"
    return found


def need(name: str) -> str:
    found = binary(name)
    if found is None:
        pytest.skip(f"needs Debian's {name} (scripts/bootstrap.sh dev installs it)")
    return found


def http(url: str, *, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """Status and body (JSON when it is JSON) of one request; HTTP errors are answers, not exceptions."""
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


async def ahttp(url: str, **kwargs: Any) -> tuple[int, Any]:
    return await asyncio.to_thread(http, url, **kwargs)


# --- voxline serve ------------------------------------------------------------------------------------------


@attrs.define
class Served:
    """A `voxline serve` process."""

    port: int
    process: subprocess.Popen[str]
    log_dir: Path
    out: Path
    """Where its stdout and stderr go."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def sigterm(self) -> float:
        self.process.send_signal(signal.SIGTERM)
        return time.monotonic()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("voice-backend*.log")))

    def output(self) -> str:
        """What `voxline serve` printed (stdout and stderr)."""
        return self.out.read_text(errors="replace")


def agent_env(tmp_path: Path, **env: str) -> dict[str, str]:
    """The environment of a served agent: no keys from the machine, logs in ``tmp_path``."""
    base = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "PROMETHEUS_MULTIPROC_DIR"}
    return {**base, "LOG_DIR": str(tmp_path / "logs"), "MAX_SESSIONS_PER_IP": "100", **env}


@contextmanager
def served(tmp_path: Path, env: dict[str, str], *, workers: int = 1, timeout: float = 60) -> Iterator[Served]:
    """`voxline serve` on a free port, up (``/livez`` answers) before this yields; killed if still running after."""
    port = free_port()
    cmd = [sys.executable, "-m", "voxline.apps.cli", "serve", "--port", str(port), "--env-file", str(tmp_path / "none")]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    out_path = tmp_path / f"serve-{port}.out"
    out = out_path.open("w")
    process = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, text=True)
    server = Served(port, process, Path(env["LOG_DIR"]), out_path)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                status, _ = http(f"{server.url}/livez")
                if status == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None, server.output()
            assert time.monotonic() < deadline, "voxline serve did not come up"
            time.sleep(0.1)
        while server.logs().count("Application startup complete") < workers:  # every worker, not just one
            assert process.poll() is None and time.monotonic() < deadline, "not every worker came up"
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        out.close()


# --- fakes ---------------------------------------------------------------------------------------------------


@asynccontextmanager
async def cloud_fakes(reply: str | list[str], *, tokens_per_second: float = 12.0) -> AsyncIterator[tuple[Any, Any]]:
    """The fake Deepgram and Gemini servers on 127.0.0.1, in this event loop. Replies stream at a speaking pace,
    and the fake's speech is short (20 ms a character), so a reply is in flight for a few seconds."""
    from voxline.testing.fakes._script import Pacing
    from voxline.testing.fakes.deepgram import FakeDeepgram
    from voxline.testing.fakes.gemini import FakeGemini

    pacing = Pacing(first_token_delay=0.2, tokens_per_second=tokens_per_second)
    async with (
        FakeDeepgram(transcripts=["what is the weather"], tts_seconds_per_char=0.02) as dg,
        FakeGemini(replies=reply, pacing=pacing) as gm,
    ):
        yield dg, gm


# --- a client that keeps its close code ----------------------------------------------------------------------


class WsClient(Client):
    """:class:`app_helpers.Client` that also notes when and how the socket closed."""

    closed_at: float | None = None

    async def _read(self) -> None:
        await super()._read()
        self.closed_at = time.monotonic()

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code

    def text(self) -> str:
        return "".join(self.of_type("text_chunk"))

    def session(self) -> dict[str, Any]:
        return dict(self.of_type("session")[-1])

    async def closed(self, timeout: float = 30) -> int | None:
        await self.wait_for(lambda _: self._reader.done(), timeout=timeout)
        return self.close_code


@asynccontextmanager
async def ws_client(url: str) -> AsyncIterator[WsClient]:
    """A client of ``url`` (a full ``ws://host:port/ws?...`` address)."""
    async with connect(url, max_size=None, ping_interval=None, open_timeout=10) as ws:
        client = WsClient(ws)
        try:
            yield client
        finally:
            client._reader.cancel()


async def open_clients(url: str, n: int, stack: contextlib.AsyncExitStack) -> list[WsClient]:
    clients = [await stack.enter_async_context(ws_client(url)) for _ in range(n)]
    for client in clients:
        await client.wait_message("session")
    return clients


# --- redis-server and nginx ----------------------------------------------------------------------------------


@contextmanager
def redis_server(tmp_path: Path) -> Iterator[str]:
    """Debian's redis-server on a free loopback port, no persistence, in ``tmp_path``; yields its URL."""
    exe = need("redis-server")
    port = free_port()
    folder = tmp_path / f"redis-{port}"
    folder.mkdir()
    args = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen([*args, "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
            assert process.poll() is None and time.monotonic() < deadline, "redis-server did not come up"
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


def nginx_config(backends: list[int], port: int, folder: Path) -> str:
    """``deploy/nginx.conf`` — the file docs/deploy.md and docker-compose.yml use — pointed at ``backends`` on
    loopback and listening on ``port``, its paths in ``folder`` (the one thing a test changes: where)."""
    text = NGINX_CONF.read_text()
    servers = "".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=10s;\n" for p in backends)
    text, n = re.subn(r"(?m)^\s*server agent\d:8000[^\n]*\n", "", text)
    assert n == 2, "deploy/nginx.conf should name its two agents as `server agentN:8000 ...;`"
    text = text.replace("    # backends\n", "    # backends\n" + servers, 1)
    text = re.sub(r"(?m)^(\s*)listen 80;", rf"\g<1>listen 127.0.0.1:{port};", text)
    text = text.replace("/var/log/nginx/", f"{folder}/")
    paths = "".join(
        f"    {kind}_temp_path {folder}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return text.replace("http {\n", "http {\n" + paths, 1)


@contextmanager
def nginx(tmp_path: Path, backends: list[int], port: int | None = None) -> Iterator[int]:
    """Debian's nginx with ``deploy/nginx.conf`` in front of ``backends``; yields its port."""
    exe = need("nginx")
    port = port or free_port()
    folder = tmp_path / f"nginx-{port}"
    folder.mkdir()
    conf = folder / "nginx.conf"
    conf.write_text(nginx_config(backends, port, folder))
    user = "user root;" if os.geteuid() == 0 else ""
    directives = f"daemon off; pid {folder}/nginx.pid; error_log {folder}/error.log info; {user}"
    cmd = [exe, "-p", str(folder), "-c", str(conf), "-g", directives]
    check = subprocess.run([*cmd, "-t"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            assert process.poll() is None and time.monotonic() < deadline, "nginx did not come up"
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def record(name: str, **figures: Any) -> None:
    """Figures for docs/deploy.md, appended to artifacts/ops-measurements.jsonl (for people, not for asserts)."""
    folder = ROOT / "artifacts"
    folder.mkdir(exist_ok=True)
    with (folder / "ops-measurements.jsonl").open("a") as f:
        f.write(json.dumps({"test": name, "at": time.strftime("%Y-%m-%dT%H:%M:%S"), **figures}) + "\n")


@contextmanager
def deploy_stack(tmp_path: Path, dg: Any, gm: Any) -> Iterator[tuple[int, list[Served]]]:
    """docs/deploy.md's setup: redis-server, two agents sharing it, nginx in front; yields nginx's port and the
    agents."""
    with redis_server(tmp_path) as redis_url, contextlib.ExitStack() as exits:
        port = free_port()
        env = agent_env(
            tmp_path,
            REDIS_URL=redis_url,
            DRAIN_TIMEOUT="15",
            CORS_ORIGINS=f"http://127.0.0.1:{port}",  # the page's origin is the proxy's
            **cloud_env(dg, gm),
        )
        agents = []
        for i in (1, 2):
            folder = tmp_path / f"agent{i}"
            folder.mkdir()
            agents.append(exits.enter_context(served(folder, {**env, "LOG_DIR": str(folder / "logs")})))
        exits.enter_context(nginx(tmp_path, [a.port for a in agents], port))
        yield port, agents
