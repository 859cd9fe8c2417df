"""RECORD_DIR in the whole agent: uvicorn, the app, the SDKs and the fake Deepgram and Gemini servers; a client
talks, barges in, and leaves. The session's files: a stereo WAV (the agent's channel cut at the barge-in), the
turn log, and a replay file whose replay makes the same decisions. No key in any of them."""

from __future__ import annotations

import asyncio
import base64
import json
import wave
from pathlib import Path

import numpy as np
import pytest
from app_helpers import Client, cloud_env, serve_app, silence, tone
from starlette.config import Config
from voxline.apps.voice_agent import create_app
from voxline.apps.voice_agent.replay import replay_recording

fakes_deepgram = pytest.importorskip("voxline.testing.fakes.deepgram")
fakes_gemini = pytest.importorskip("voxline.testing.fakes.gemini")
from voxline.testing.fakes._llm import Pacing  # noqa: E402

LONG_REPLY = "First sentence of a long answer. " * 6


def test_a_recorded_session_has_its_wav_its_turns_and_a_replay_that_agrees(tmp_path: Path) -> None:
    record_dir = tmp_path / "recordings"
    sid, sent_audio = asyncio.run(_talk(tmp_path, record_dir))  # then replayed, outside any running loop
    _check(record_dir, sid, sent_audio)


async def _talk(tmp_path: Path, record_dir: Path) -> tuple[str, int]:
    dg = fakes_deepgram.FakeDeepgram(transcripts=["tell me a story", "stop"], tts_chunk_interval=0.01)
    gm = fakes_gemini.FakeGemini(replies=[LONG_REPLY, "Stopped."], pacing=Pacing(0.05, 200.0))
    async with dg, gm:
        environ = {
            **cloud_env(dg, gm),
            "LOG_DIR": "",
            "RECORD_DIR": str(record_dir),
        }
        app = create_app(Config(environ=environ), static_dir=tmp_path, preload=False)
        async with serve_app(app) as url, Client.connect(url) as client:
            await client.wait_message("session")
            await client.send_audio(tone(0.4) + silence(0.6), pause=0.02)
            await client.wait_message("audio", timeout=15)
            await client.send_audio(silence(0.5), pause=0.02)
            await client.send({"type": "interrupt"})
            await client.send_audio(tone(0.3) + silence(0.6), pause=0.02)
            await client.wait_message("status", "complete", timeout=15)
            await client.send_audio(silence(0.3), pause=0.02)
            sent_audio = sum(len(base64.b64decode(a)) for a in client.of_type("audio"))
            sid = client.of_type("session")[0]["id"]
    return sid, sent_audio


def _check(record_dir: Path, sid: str, sent_audio: int) -> None:
    wav_path, turns_path = record_dir / f"{sid}.wav", record_dir / f"{sid}.jsonl"
    replay_path = record_dir / f"{sid}.replay.jsonl.gz"
    for path in (wav_path, turns_path, replay_path):
        assert path.exists(), path
        assert b"test-key" not in (path.read_bytes() if path.suffix != ".gz" else _gunzip(path))

    lines = [json.loads(line) for line in turns_path.read_text().splitlines()]
    assert lines[0]["type"] == "session" and lines[-1]["type"] == "end"
    turns = [line for line in lines if line["type"] == "turn"]
    assert [t["user"] for t in turns] == ["tell me a story", "stop"]
    assert turns[0]["interrupted"] and turns[0]["interruption"]["reason"] == "client interrupt"
    assert turns[0]["heard"] is not None and LONG_REPLY.startswith(turns[0]["heard"])
    assert not turns[1]["interrupted"] and turns[1]["reply"] == "Stopped."
    assert {"stt_ms", "llm_ttft_ms", "tts_ttfb_ms", "response_ms"} <= set(turns[1]["latencies"])

    with wave.open(str(wav_path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, 16000)
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    user, agent = frames[:, 0], frames[:, 1]
    assert np.abs(user).max() > 4000  # the tones
    # The agent's channel: the fake TTS's audio, less what the barge-in cut (the client got more than it heard).
    agent_seconds = np.count_nonzero(agent) / 16000
    assert 0.3 < agent_seconds < sent_audio / 2 / 24000
    cut_at = round(turns[0]["interruption"]["t"] * 16000)
    assert not np.any(agent[cut_at + 160 : round(turns[1]["t"] * 16000)])  # silence from the cut to turn 2

    result = replay_recording(replay_path)
    assert [t["user"] for t in result.turns] == ["tell me a story", "stop"]
    assert result.differences() == []


def _gunzip(path: Path) -> bytes:
    import gzip

    return gzip.decompress(path.read_bytes())
