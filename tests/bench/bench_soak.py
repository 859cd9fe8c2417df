"""Soak benchmark of the voice agent: many sessions of every kind opened and closed against one server process.

Prints one JSON object per line (``{"bench": "soak", ...}``). For each mode — ``offline`` (local engines and
the echo LLM) and ``cloud`` (the official Deepgram and Gemini SDKs against the fake servers, which run in a
process of their own) — it runs N sessions of each kind (see ``tests/soak_helpers.py``: clean, dropped
mid-reply, dropped mid-speech, closed before the greeting, idle), C at a time, against the real app under
uvicorn in this process, and reports: RSS at the start, after the first 100 sessions and at the end; asyncio
tasks, threads and open fds after the first 100 and at the end (each with no session live); the longest
garbage collection of each generation during the run; and how long one full ``gc.collect()`` takes at the end.

``--quick``: 40 sessions per kind. ``--mode offline|cloud``, ``--per-kind N``, ``--concurrency C``.
``tests/test_soak.py`` asserts on the same driver (0 leaks, RSS growth < 50 MiB after the first 100).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from soak_helpers import KINDS, SoakResult, Turn, rss_mib, soak

FAKES = str(Path(__file__).resolve().parent.parent / "soak_fakes.py")
SOAK_LIMITS = {
    # Short limits, so an idle session ends quickly and the soak stays within minutes.
    "IDLE_TIMEOUT": "1.0",
    "MAX_SESSIONS": "64",
    "MAX_SESSIONS_PER_IP": "64",
}


def emit(name: str, **fields: Any) -> None:
    print(json.dumps({"bench": "soak", "name": name, **fields}), flush=True)


def make_turn(folder: Path) -> Turn:
    """Speech made with flite (as the local-engine tests make it), trimmed for the kinds that need it."""
    import shutil
    import wave

    if not shutil.which("flite") or not shutil.which("sox"):
        return Turn()
    raw, padded = folder / "u.wav", folder / "u-p.wav"
    subprocess.run(["flite", "-voice", "kal", "-t", "what is the weather like", "-o", str(raw)], check=True)
    sox = ["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(padded), "pad", "0.3", "1.0"]
    subprocess.run(sox, check=True)
    with wave.open(str(padded)) as w:
        pcm = w.readframes(w.getnframes())
    return Turn(speech=pcm, speech_start=pcm[: int(0.3 * 32000) + 16000])


async def run_mode(
    mode: str, per_kind: int, concurrency: int, turn: Turn, folder: Path, kinds: tuple[str, ...] = KINDS
) -> SoakResult:
    from app_helpers import serve_app
    from starlette.config import Config
    from voxline.apps.voice_agent import create_app

    # offline: pocketsphinx + espeak-ng, the engines of the figures in docs/performance.md ("Soak")
    env = {
        "LOG_DIR": "",
        "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "ERROR"),
        "STT_PROVIDER": "pocketsphinx",
        "TTS_PROVIDER": "espeak",
        **SOAK_LIMITS,
    }
    fakes: subprocess.Popen[str] | None = None
    if mode == "cloud":
        fakes = subprocess.Popen(  # noqa: ASYNC220 - once, before any session
            [sys.executable, FAKES], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert fakes.stdout is not None
        urls = json.loads(fakes.stdout.readline())
        env.update(
            DEEPGRAM_API_KEY="test-key",
            GEMINI_API_KEY="test-key",
            DEEPGRAM_BASE_URL=urls["deepgram"],
            GEMINI_BASE_URL=urls["gemini"],
        )
    try:
        app = create_app(Config(environ=env), static_dir=folder, preload=True, tune_gc=True)
        agent = app.state.agent
        async with serve_app(app) as url:
            await asyncio.sleep(2)  # the local engines preload

            async def progress(r: SoakResult) -> None:
                emit("progress", mode=mode, sessions=r.sessions, rss_mib=round(rss_mib(), 1), failures=r.failures)

            return await soak(
                url,
                turn,
                sessions_per_kind=per_kind,
                concurrency=concurrency,
                live_sessions=lambda: agent.sessions,
                kinds=kinds,
                progress=progress,
                settle=getattr(getattr(agent, "memory", None), "settle", None),  # older apps had no upkeep
                checkpoint=500,
            )
    finally:
        if fakes is not None:
            assert fakes.stdin is not None
            fakes.stdin.close()
            fakes.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--mode", choices=("offline", "cloud", "both"), default="both")
    parser.add_argument("--per-kind", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=3)
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated subset of the kinds")
    args = parser.parse_args()
    per_kind = args.per_kind or (40 if args.quick else 1000)
    modes = ("offline", "cloud") if args.mode == "both" else (args.mode,)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        turn = make_turn(folder)
        for mode in modes:
            import gc

            before = gc.get_threshold()
            result = asyncio.run(run_mode(mode, per_kind, args.concurrency, turn, folder, tuple(args.kinds.split(","))))
            gc.unfreeze()
            gc.set_threshold(*before)
            emit(mode, concurrency=args.concurrency, load=os.getloadavg()[0], **result.figures())


if __name__ == "__main__":
    main()
