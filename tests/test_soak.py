"""Soak: many sessions of every kind — clean, dropped mid-reply, dropped mid-speech, closed before the greeting,
idle — opened and closed against one real server (uvicorn, the served app's GC tuning and memory upkeep), then
asserted: every session ended the way its kind should, and nothing leaked — the same asyncio tasks, threads and
open file descriptors as after the first 100 sessions, and RSS within 50 MiB of it.

Sized for ./test.sh: ``VOXLINE_SOAK_PER_KIND`` sessions of each kind (default 100: 500 sessions, 400 of them
after the warm-up; one to three minutes per mode on a busy 2-core machine). What that size still catches: a
leaked task, thread or fd is compared exactly, so one per session of any kind fails (80 sessions of each kind run
after the warm-up); RSS growth under 50 MiB over 400 sessions fails any leak above ~128 KiB a session (the leaks
this test was written for were 1.2-1.9 MiB a session). ``tests/bench/bench_soak.py`` runs the same driver with
1,000 of each kind, for the slow native creep a test-sized run cannot see (docs/performance.md, "Soak").

Both modes run: offline (pocketsphinx + espeak-ng) and cloud (the official SDKs against the fake Deepgram and
Gemini in a child process).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from audio.speech import Speech, local, speech
from soak_helpers import KINDS, SoakResult, Turn, soak

pytestmark = pytest.mark.soak
__all__ = ["speech"]  # the fixture

OFFLINE = {"STT_PROVIDER": "pocketsphinx", "TTS_PROVIDER": "espeak"}
PER_KIND = int(os.environ.get("VOXLINE_SOAK_PER_KIND", "100"))
# IDLE_TIMEOUT: short, so the idle sessions end quickly, but not so short that a loaded machine (the event loop
# held up by a GIL-holding decoder) reads a live microphone as idle: 0.5 s failed 1 session in 1,000 at load 7.
LIMITS = {"IDLE_TIMEOUT": "1.0", "MAX_SESSIONS": "64", "MAX_SESSIONS_PER_IP": "64"}
RSS_BUDGET_MIB = 50.0
CONCURRENCY = 3


def _assert_no_leaks(result: SoakResult, providers: tuple[str, ...] = ()) -> None:
    """``providers``: the ``host:port`` of each provider server the agent talks to (none offline)."""
    figures = result.figures()
    print(json.dumps(figures))
    assert result.sessions == PER_KIND * len(KINDS)
    assert result.failures == {}, result.failures
    warm, end = result.warm, result.end
    assert end.tasks == warm.tasks, figures
    assert end.new_threads(warm) == [], figures

    # Open fds: exactly those of the warm-up, except keep-alive connections to the providers (the shared Gemini
    # client keeps a connection open for each request that was in flight at once: at most one per concurrent
    # session). Measured, not guessed: fd_kinds names each TCP socket by its endpoints; 300 cloud sessions ended
    # with 2 such connections to the Gemini fake (the warm-up's one replaced) and nothing else new. A leak grows
    # with the sessions instead (900 after the warm-up).
    def pooled(kind: str) -> bool:
        return kind.startswith("tcp ") and kind.endswith(" ESTABLISHED") and kind.split("->")[1].split()[0] in providers

    kept_alive = [k for k in end.fd_kinds if pooled(k)]
    others = [k for k in end.fd_kinds if not pooled(k)], [k for k in warm.fd_kinds if not pooled(k)]
    assert others[0] == others[1], (sorted(set(others[0]) ^ set(others[1])), figures)
    assert len(kept_alive) <= CONCURRENCY, (kept_alive, figures)
    assert end.rss_mib - warm.rss_mib < RSS_BUDGET_MIB, figures


async def _run(env: dict[str, str], turn: Turn, tmp_path: Path) -> SoakResult:
    import gc

    from app_helpers import serve_app
    from starlette.config import Config
    from voxline.apps.voice_agent import create_app

    threshold = gc.get_threshold()
    app = create_app(
        Config(environ={"LOG_DIR": "", "LOG_LEVEL": "ERROR", **LIMITS, **env}), static_dir=tmp_path, tune_gc=True
    )
    agent = app.state.agent
    try:
        async with serve_app(app) as url:
            for _ in range(200):  # the local models preload in the background
                await asyncio.sleep(0.05)
            return await soak(
                url,
                turn,
                sessions_per_kind=PER_KIND,
                concurrency=CONCURRENCY,
                live_sessions=lambda: agent.sessions,
                settle=agent.memory.settle,
            )
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def _turn(speech: Speech) -> Turn:
    """A spoken question with silence after it; a client dropped mid-speech sends its first 0.8 s."""
    pcm = speech.pcm("what is the weather like", before=0.3, after=1.0)
    return Turn(speech=pcm, speech_start=pcm[: int(0.8 * 32000)])


@pytest.mark.timeout(1800)
@local[0]
@local[1]
def test_soak_offline(tmp_path: Path, speech: Speech) -> None:
    # pocketsphinx + espeak-ng, the engines the soak's figures (docs/performance.md, "Soak") were taken with
    _assert_no_leaks(asyncio.run(_run(OFFLINE, _turn(speech), tmp_path)))


@pytest.mark.timeout(1800)
def test_soak_cloud(tmp_path: Path, speech: Speech) -> None:
    fakes = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("soak_fakes.py"))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert fakes.stdout is not None
        urls = json.loads(fakes.stdout.readline())
        env = {
            "DEEPGRAM_API_KEY": "test-key",
            "GEMINI_API_KEY": "test-key",
            "DEEPGRAM_BASE_URL": urls["deepgram"],
            "GEMINI_BASE_URL": urls["gemini"],
        }
        providers = tuple(url.removeprefix("http://") for url in urls.values())
        _assert_no_leaks(asyncio.run(_run(env, _turn(speech), tmp_path)), providers)
    finally:
        assert fakes.stdin is not None
        fakes.stdin.close()
        fakes.wait(10)
