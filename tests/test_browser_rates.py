"""The page takes its sample rates from the `session` message (`audio_in_rate`, `audio_out_rate`), in real headless
Chromium against a scripted socket: the microphone is captured at the announced rate (and switches when a new
session message says so), and the agent's audio is played at its announced rate, not the seed's 24 kHz."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from browser_support import ServerThread, browser_page, record, write_wav
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from starlette.config import Config
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from voxline.apps.voice_agent.app import create_app

pytestmark = pytest.mark.browser

OUT_RATE = 16000  # the agent's audio, announced instead of 24000
SWITCH_AFTER = 100  # frames at the first rate (2 s) before a second session message changes it
AT_12K = 50  # frames at the second rate (1 s) the test waits for
# Each wait is for an event that comes after ~1 s of real-time audio (the reply played out; 2 s, then 1 s, of
# capture): ~1-1.2 s each at load 5-7, the whole test 8-11 s with the browser's start. A 10 s wall-clock
# timeout on them was a speed threshold; the timeout is a hang detector only, generous, and a hang says which
# counters stopped. Checked every 50 ms on a timer, not on animation frames (Playwright's default), so the check
# does not depend on the renderer painting.
POLL_MS, HANG_MS = 50, 60_000


class ScriptedAgent:
    """A /ws endpoint announcing 8 kHz in / 16 kHz out. On the first microphone frame it replies with one second of
    a 440 Hz tone at 16 kHz; after SWITCH_AFTER frames a new `session` message asks for 12 kHz input.

    It offers binary audio (as the voice agent does) and keeps the page's `config` messages and the binary frames
    that came before the first of them."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.configs: list[dict[str, Any]] = []
        self.before_config = 0  # binary frames before the page's config

    def session(self, audio_in_rate: int) -> dict[str, Any]:
        data = {"id": "rates0000001", "engines": {"stt": "local", "llm": "echo", "tts": "local"}, "ready": True}
        data.update(problems=[], offline_demo=True, missing=[], audio_in_rate=audio_in_rate, audio_out_rate=OUT_RATE)
        data["features"] = ["binary_audio"]
        return {"type": "session", "data": data}

    async def endpoint(self, ws: WebSocket) -> None:
        await ws.accept()
        send = ws.send_text
        await send(json.dumps({"type": "status", "data": "connected"}))
        await send(json.dumps(self.session(8000)))
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("bytes") is None:
                    text = json.loads(message["text"])
                    if text.get("type") == "config":
                        self.configs.append(text)
                    continue
                self.before_config += not self.configs
                self.frames.append(message["bytes"])
                if len(self.frames) == 1:
                    await self.reply(ws)
                elif len(self.frames) == SWITCH_AFTER:
                    await send(json.dumps(self.session(12000)))
        except WebSocketDisconnect:
            return

    async def reply(self, ws: WebSocket) -> None:
        t = np.arange(OUT_RATE) / OUT_RATE
        tone = (0.3 * 32767 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()
        await ws.send_text(json.dumps({"type": "status", "data": "generating"}))
        for i in range(0, len(tone), 3200):  # 100 ms chunks
            await ws.send_text(json.dumps({"type": "audio", "data": base64.b64encode(tone[i : i + 3200]).decode()}))
            await asyncio.sleep(0.02)
        await ws.send_text(json.dumps({"type": "status", "data": "complete"}))


def wait_for(page: Any, expression: str) -> None:
    """Wait for ``expression`` (see POLL_MS, HANG_MS); a hang fails with the page's counters, to say where."""
    try:
        page.wait_for_function(expression, polling=POLL_MS, timeout=HANG_MS)
    except PlaywrightTimeout:
        counters = page.evaluate("window.voxline ? JSON.stringify(window.voxline.counters) : null")
        raise AssertionError(f"{expression!r} not reached in {HANG_MS} ms; counters: {counters}") from None


def peak_hz(pcm: np.ndarray, rate: int) -> float:
    loud = np.flatnonzero(np.abs(pcm) > 1000)
    segment = pcm[loud[0] + rate // 10 : loud[0] + rate // 10 + rate // 2].astype(np.float64)  # 0.5 s
    spectrum = np.abs(np.fft.rfft(segment * np.hanning(len(segment))))
    return float(np.fft.rfftfreq(len(segment), 1 / rate)[np.argmax(spectrum)])


def test_sample_rates_come_from_the_session_message(tmp_path: Path) -> None:
    rate = 44100
    t = np.arange(8 * rate) / rate
    wav = tmp_path / "tone.wav"
    write_wav(wav, (0.3 * 32767 * np.sin(2 * np.pi * 1000 * t)).astype("<i2"), rate)
    agent = ScriptedAgent()
    app = create_app(Config(environ={"LOG_DIR": ""}), setup_logging=False, preload=False)
    app.router.routes.insert(0, WebSocketRoute("/ws-rates", agent.endpoint))
    with ServerThread(app) as server, browser_page(wav) as page:
        page.goto(f"{server.url}/?raw=1&ws=ws://127.0.0.1:{server.port}/ws-rates")
        wait_for(page, "window.voxline && window.voxline.session !== null")
        assert page.evaluate("window.voxline.rates") == {"in": 8000, "out": OUT_RATE}
        page.click("#talk")
        wait_for(page, "window.voxline.counters.chunksEnded >= 10")
        played = page.evaluate("window.voxline.meterLog")
        scheduled = page.evaluate("window.voxline.counters.samplesScheduled")
        wait_for(page, "window.voxline.rates.in === 12000")
        deadline = time.monotonic() + HANG_MS / 1000
        while sum(len(f) == 480 for f in agent.frames) < AT_12K and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sum(len(f) == 480 for f in agent.frames) >= AT_12K, "the microphone stopped sending at 12 kHz"
        assert page.errors == []

    # The wire: one opt-in (the second session message, on the same socket, asks for none), then binary frames.
    assert agent.configs == [{"type": "config", "data": {"binary_audio": True}}]
    assert agent.before_config == 0

    # Playback: 16000 samples, heard for one second on the audio clock (at 24 kHz it would last 0.67 s).
    assert scheduled == OUT_RATE
    loud = [at for at, rms in played if rms > 0.05]
    heard = loud[-1] - loud[0]
    assert 0.9 < heard < 1.1, heard

    # Capture: 20 ms frames of 160 samples at 8 kHz, then 240 at 12 kHz, never a mix; the tone stays at 1 kHz.
    sizes = [len(f) // 2 for f in agent.frames]
    switch = sizes.index(240)
    assert set(sizes[:switch]) == {160} and set(sizes[switch:]) == {240}, sorted(set(sizes))
    assert switch >= SWITCH_AFTER
    before = np.frombuffer(b"".join(agent.frames[:switch]), "<i2")
    after = np.frombuffer(b"".join(agent.frames[switch:]), "<i2")
    tones = peak_hz(before, 8000), peak_hz(after, 12000)
    record("session_rates", heard_s=round(heard, 3), tone_hz_8k=tones[0], tone_hz_12k=tones[1])
    assert abs(tones[0] - 1000) <= 4 and abs(tones[1] - 1000) <= 4, tones
