"""Turn-taking through the whole agent: real sockets, the fake Deepgram and Gemini, flite speech in real time, and
a seed client that never sends ``interrupt`` and ignores ``playback`` (it only speaks and listens).

The server alone decides: the user's voice over the reply interrupts it (and the model hears only what was
played of it, to the word), a backchannel neither interrupts nor is answered, and a wordless burst pauses the bot,
which then resumes."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from app_helpers import Client, cloud_env, serve_app
from starlette.config import Config
from voxline.apps.voice_agent import create_app

pytestmark = pytest.mark.skipif(
    shutil.which("flite") is None or shutil.which("sox") is None, reason="needs flite and sox (the test speech)"
)
fakes_deepgram = pytest.importorskip("voxline.testing.fakes.deepgram")
fakes_gemini = pytest.importorskip("voxline.testing.fakes.gemini")

REPLY = "It will be sunny all day, with a light breeze in the afternoon and a clear sky all evening long."
SECOND = "Tomorrow looks the same."


def say(folder: Path, text: str, *, name: str, seconds: float | None = None) -> bytes:
    """flite slt speaking ``text`` as 16 kHz mono Int16 (cut to ``seconds`` with a fade, when given)."""
    raw, out = folder / f"{name}.wav", folder / f"{name}-16k.wav"
    subprocess.run(["flite", "-voice", "slt", "-t", text, "-o", str(raw)], check=True, capture_output=True)
    subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(out)], check=True, capture_output=True)
    with wave.open(str(out)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32)
    if seconds is not None:
        voiced = np.flatnonzero(np.abs(pcm) > 300)
        pcm = pcm[voiced[0] : voiced[0] + int(seconds * 16000)].copy()
        fade = min(len(pcm), 1600)
        pcm[-fade:] *= np.linspace(1, 0, fade)
    return pcm.astype("<i2").tobytes()


async def speak(client: Client, pcm: bytes, *, after: float = 0.6) -> float:
    """Stream ``pcm`` then ``after`` s of silence in real time (20 ms chunks); returns when speech started."""
    silence = b"\x00\x00" * int(after * 16000)
    start = time.monotonic()
    chunks = [(pcm + silence)[i : i + 640] for i in range(0, len(pcm) + len(silence), 640)]
    for n, chunk in enumerate(chunks):
        await client.send_audio(chunk)
        await asyncio.sleep(max(0.0, start + (n + 1) * 0.02 - time.monotonic()))
    return start


class Agent:
    def __init__(self, url: str, deepgram: Any, gemini: Any) -> None:
        self.url, self.deepgram, self.gemini = url, deepgram, gemini


def agent(tmp_path: Path, transcripts: list[str]) -> Any:
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def run() -> AsyncIterator[Agent]:
        # A final 150 ms after the last voiced audio unless finalised; a long reply (0.05 s of audio a character).
        dg = fakes_deepgram.FakeDeepgram(transcripts=transcripts, default_transcript="", stt_final_delay=0.15)
        gm = fakes_gemini.FakeGemini(replies=[REPLY, SECOND])
        async with dg, gm:
            environ = {
                **cloud_env(dg, gm),
                "LOG_DIR": str(tmp_path / "logs"),
                "TURN_SMART_TURN": "off",  # the words decide here; the model has tests of its own
            }
            app = create_app(Config(environ=environ), static_dir=tmp_path, preload=False)
            async with serve_app(app) as url:
                yield Agent(url, dg, gm)

    return run()


def first_time(client: Client, kind: str, data: Any = None) -> float | None:
    return next((t for t, m in client.log if m["type"] == kind and (data is None or m["data"] == data)), None)


async def test_a_seed_client_barges_in_by_voice_and_the_model_hears_what_was_played(tmp_path: Path) -> None:
    question = say(tmp_path, "What is the weather like today?", name="q")
    stop = say(tmp_path, "Wait, stop. What about tomorrow?", name="stop")
    script = ["What is the weather like today?", "Wait, stop. What about tomorrow?"]
    async with agent(tmp_path, script) as a, Client.connect(a.url) as client:
        await client.wait_message("session")
        assert "server_barge_in" in client.of_type("session")[0]["features"]
        await speak(client, question)
        await client.wait_message("audio", timeout=10)
        first_audio = first_time(client, "audio")
        assert first_audio is not None
        await asyncio.sleep(max(0.0, first_audio + 1.5 - time.monotonic()))  # 1.5 s of the reply played
        started = await speak(client, stop)
        await client.wait_message("status", "interrupted", timeout=5)
        interrupted = first_time(client, "status", "interrupted")
        assert interrupted is not None and interrupted - started < 1.5
        await client.wait_message("status", "complete", timeout=10)
    assert len(a.gemini.requests) == 2
    _, (role, heard), again = a.gemini.requests[1].chat.turns
    assert role == "assistant" and heard.endswith(" [interrupted]") and "Wait, stop" in again[1]
    words = heard.removesuffix(" [interrupted]").split()
    # 1.5 s played at 0.05 s a character is ~30 characters, "It will be sunny all day, with a": 6-8 words by
    # the time the barge-in was decided (0.5-1 s later): the words of a half-played sentence, not none of it.
    assert REPLY.startswith(" ".join(words)) and 5 <= len(words) <= 14, heard


async def test_a_backchannel_neither_interrupts_nor_is_answered(tmp_path: Path) -> None:
    question = say(tmp_path, "What is the weather like today?", name="q")
    backchannel = say(tmp_path, "Uh-huh.", name="bc")
    async with agent(tmp_path, ["What is the weather like today?", "Uh-huh."]) as a, Client.connect(a.url) as client:
        await speak(client, question)
        await client.wait_message("audio", timeout=10)
        await asyncio.sleep(1.2)
        await speak(client, backchannel)
        await client.wait_message("status", "complete", timeout=15)
        await asyncio.sleep(1.0)
        statuses = [str(s) for s in client.of_type("status")]
    assert "interrupted" not in statuses and statuses.count("generating") == 1
    assert len(a.gemini.requests) == 1


async def test_a_wordless_burst_pauses_the_bot_which_then_resumes(tmp_path: Path) -> None:
    question = say(tmp_path, "What is the weather like today?", name="q")
    burst = say(tmp_path, "hmmmmmm", name="hum", seconds=0.65)  # voiced, no words: a throat-clearing hum
    async with agent(tmp_path, ["What is the weather like today?"]) as a, Client.connect(a.url) as client:
        await speak(client, question)
        await client.wait_message("audio", timeout=10)
        await asyncio.sleep(1.0)
        await speak(client, burst)
        await client.wait_message("playback", {"action": "resume"}, timeout=5)
        await client.wait_message("status", "complete", timeout=15)
        await client.wait_for(lambda ms: {"type": "speaking", "data": {"who": "bot", "state": "stopped"}} in ms, 10)
        playback = [m["data"]["action"] for _, m in client.log if m["type"] == "playback"]
        statuses = [str(s) for s in client.of_type("status")]
    assert playback == ["start", "pause", "resume"]
    assert "interrupted" not in statuses and len(a.gemini.requests) == 1
