"""Records the sessions the replay tests play back (tests/data/sessions/*.replay.jsonl.gz).

Each scenario runs the real voice agent (uvicorn, the app, the official SDKs) against the fake Deepgram and
Gemini servers on 127.0.0.1, with ``RECORD_DIR`` set, and talks to it over a WebSocket in real time with flite
speech (several voices). The recorder writes the session's replay file, which is copied here under the scenario's
name. Run it again after a change to the recording format:

    .venv/bin/python scripts/record_sessions.py            # all scenarios, ~30 s
    .venv/bin/python scripts/record_sessions.py barge_in   # one

Scenarios: ``barge_in`` (the user speaks over the first reply while it plays; the server's turn engine cuts it,
the client sends no ``interrupt``), ``pause_mid_sentence`` (the user stops for a second in the middle of a
sentence; the turn engine waits for the rest and answers one turn), ``provider_drop`` (the LLM provider drops the
connection in the middle of the second reply; the third turn is answered).

The agent runs with its defaults (the turn engine on) but ``TURN_SMART_TURN=off``: the engine decides on the VAD
and the words, so the replays need no smart-turn model and stay fast (a replay of a session that ran the model
runs it too; see docs/recording.md).
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvicorn
from starlette.config import Config
from voxline.apps.voice_agent import create_app
from voxline.audio.resample import resample
from voxline.audio.wav import read_wav
from voxline.testing.fakes._llm import Pacing
from voxline.testing.fakes.deepgram import FakeDeepgram
from voxline.testing.fakes.gemini import FakeGemini
from websockets.asyncio.client import ClientConnection, connect

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "sessions"
CHUNK = 0.02  # seconds of audio per message, as the page sends it


def speech(text: str, voice: str) -> bytes:
    """``text`` spoken by flite's ``voice``, as 16 kHz mono Int16."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.wav"
        subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(path)], check=True)
        wav = read_wav(path, mono=True)
    return resample(wav.pcm, wav.sample_rate, 16000)


def silence(seconds: float) -> bytes:
    return bytes(2 * round(seconds * 16000))


class Talker:
    """The client side: sends audio in real time, keeps what the server says."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            self.messages.append(json.loads(raw))

    async def say(self, pcm: bytes) -> None:
        step = round(CHUNK * 16000) * 2
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i, offset in enumerate(range(0, len(pcm), step)):
            await self.ws.send(
                json.dumps({"type": "audio", "data": base64.b64encode(pcm[offset : offset + step]).decode()})
            )
            await asyncio.sleep(max(0.0, start + (i + 1) * CHUNK - loop.time()))

    async def wait_for(self, kind: str, data: Any = None, count: int = 1, timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout):
            while sum(1 for m in self.messages if m["type"] == kind and data in (None, m.get("data"))) < count:  # noqa: ASYNC110 - a script's poll
                await asyncio.sleep(0.01)


async def barge_in(talk: Talker, gemini: FakeGemini) -> None:
    await talk.say(speech("What is the weather like in Lisbon?", "slt") + silence(0.6))
    await talk.wait_for("audio")
    await talk.say(silence(1.2))  # the first sentences of the reply play
    await talk.say(speech("Sorry, I meant Porto.", "rms") + silence(0.6))  # over the reply: a barge-in by voice
    await talk.wait_for("status", "complete")
    await talk.say(silence(2.5))


async def pause_mid_sentence(talk: Talker, gemini: FakeGemini) -> None:
    await talk.say(speech("I would like to book a table for", "awb") + silence(1.0))
    await talk.say(speech("two people tonight.", "awb") + silence(0.6))
    await talk.wait_for("status", "complete")
    await talk.say(silence(3.0))


async def provider_drop(talk: Talker, gemini: FakeGemini) -> None:
    await talk.say(speech("Tell me a joke.", "kal") + silence(0.6))
    await talk.wait_for("status", "complete")
    await talk.say(silence(4.0))  # the reply plays to its end (speaking sooner would barge in)
    gemini.drop_mid_stream(after_tokens=4)
    await talk.say(speech("Another one please.", "kal") + silence(0.6))
    await talk.wait_for("error")
    await talk.say(silence(2.0))
    await talk.say(speech("Are you still there?", "slt") + silence(0.6))
    await talk.wait_for("status", "complete", count=2)
    await talk.say(silence(2.0))


SCENARIOS: dict[str, tuple[list[str], list[str], Callable[[Talker, FakeGemini], Awaitable[None]]]] = {
    "barge_in": (
        ["what is the weather like in lisbon", "sorry i meant porto"],
        [
            "Lisbon is sunny today, with a light breeze from the sea. Expect about twenty-four degrees in the "
            "afternoon. In the evening it cools down to around seventeen, so bring a light jacket.",
            "Porto is cloudier. About nineteen degrees, with a chance of rain later.",
        ],
        barge_in,
    ),
    "pause_mid_sentence": (
        ["i would like to book a table for", "two people tonight"],
        ["A table for two tonight. What time suits you?", "Anything else?"],
        pause_mid_sentence,
    ),
    "provider_drop": (
        ["tell me a joke", "another one please", "are you still there"],
        [
            "Why did the scarecrow win an award? Because he was outstanding in his field.",
            "What do you call a fish without eyes? A fsh.",
            "Yes, I am here. Sorry, I lost my train of thought.",
        ],
        provider_drop,
    ),
}


async def record(name: str, out: Path) -> Path:
    transcripts, replies, script = SCENARIOS[name]
    deepgram = FakeDeepgram(transcripts=transcripts, tts_first_byte_delay=0.12, tts_chunk_interval=0.02)
    gemini = FakeGemini(replies=replies, pacing=Pacing.realistic())
    with tempfile.TemporaryDirectory() as tmp:
        record_dir = Path(tmp) / "recordings"
        async with deepgram, gemini:
            environ = {
                "DEEPGRAM_API_KEY": "test-key",
                "GEMINI_API_KEY": "test-key",
                "DEEPGRAM_BASE_URL": deepgram.base_url,
                "GEMINI_BASE_URL": gemini.url,
                "LOG_DIR": "",
                "RECORD_DIR": str(record_dir),
                "TURN_SMART_TURN": "off",
            }
            app = create_app(Config(environ=environ), static_dir=Path(tmp), preload=False)
            config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, ws_per_message_deflate=False)
            server = uvicorn.Server(config)
            serving = asyncio.create_task(server.serve())
            while not server.started:  # noqa: ASYNC110 - uvicorn offers no event
                await asyncio.sleep(0.01)
            port = server.servers[0].sockets[0].getsockname()[1]
            try:
                async with connect(f"ws://127.0.0.1:{port}/ws", max_size=None) as ws:
                    talk = Talker(ws)
                    await talk.wait_for("session")
                    await script(talk, gemini)
                async with asyncio.timeout(10):  # the server closes the session, then the recording
                    while not _finished(record_dir):  # noqa: ASYNC110 - files, not an event
                        await asyncio.sleep(0.05)
            finally:
                server.should_exit = True
                await serving
        (recorded,) = record_dir.glob("*.replay.jsonl.gz")
        target = out / f"{name}.replay.jsonl.gz"
        shutil.copyfile(recorded, target)
    return target


def _finished(record_dir: Path) -> bool:
    try:
        (path,) = record_dir.glob("*.replay.jsonl.gz")
        with gzip.open(path, "rt") as handle:
            return json.loads(handle.readlines()[-1])["type"] == "end"
    except (ValueError, OSError, EOFError, IndexError):
        return False


def main(argv: list[str]) -> int:
    names = argv or list(SCENARIOS)
    OUT.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = asyncio.run(record(name, OUT))
        print(f"{name}: {path.relative_to(OUT.parent.parent.parent)} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
