"""Shared helpers for transport tests: an in-memory server WebSocket and a scripted voice bot."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from typing import Any

from voxline.frames import (
    AudioFrame,
    Frame,
    LLMResponseEndFrame,
    LLMResponseStartFrame,
    MetricsFrame,
    TextFrame,
    TranscriptFrame,
    TTSAudioFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    UserTextFrame,
)
from voxline.processor import Direction, Processor


class MemorySocket:
    """A server-side WebSocket in memory: the test plays the client."""

    def __init__(self, *, send_delay: float = 0.0) -> None:
        self.inbound: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.times: list[float] = []
        self.send_delay = send_delay
        self.closed = False
        self._changed = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        return await self.inbound.get()

    async def send_text(self, data: str) -> None:
        if self.closed:
            raise RuntimeError("socket closed")
        if self.send_delay:
            await asyncio.sleep(self.send_delay)
        self.sent.append(json.loads(data))
        self.times.append(time.monotonic())
        self._changed.set()

    # --- the client's side ----------------------------------------------------------------------------

    def send(self, message: Any) -> None:
        text = message if isinstance(message, str) else json.dumps(message)
        self.inbound.put_nowait({"type": "websocket.receive", "text": text})

    def send_bytes(self, data: bytes) -> None:
        self.inbound.put_nowait({"type": "websocket.receive", "bytes": data})

    def send_audio(self, pcm: bytes) -> None:
        self.send({"type": "audio", "data": base64.b64encode(pcm).decode()})

    def disconnect(self) -> None:
        self.closed = True
        self.inbound.put_nowait({"type": "websocket.disconnect", "code": 1000})

    def of_type(self, kind: str) -> list[Any]:
        return [m["data"] for m in self.sent if m["type"] == kind]

    async def wait_for(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 3.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self.sent):
                self._changed.clear()
                await self._changed.wait()

    async def wait_message(self, kind: str, data: Any = None, timeout: float = 3.0) -> None:
        def seen(sent: list[dict[str, Any]]) -> bool:
            return any(m["type"] == kind and (data is None or m.get("data") == data) for m in sent)

        await self.wait_for(seen, timeout)


class ScriptedBot(Processor):
    """STT+LLM+TTS in one scripted stage.

    Every ``bytes_per_turn`` bytes of user audio (or a typed UserTextFrame) make one turn: a final transcript,
    then a reply of ``chunks`` pieces of text and audio, ``chunk_delay`` seconds apart, in an epoch-bound
    task (cancelled by an interruption, as a real LLM's is).
    """

    def __init__(self, *, bytes_per_turn: int = 3200, chunks: int = 3, chunk_delay: float = 0.01) -> None:
        super().__init__(name="ScriptedBot")
        self.bytes_per_turn = bytes_per_turn
        self.chunks = chunks
        self.chunk_delay = chunk_delay
        self.heard = 0
        self.turns: list[str] = []
        self.stopped = False

    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, AudioFrame) and direction is Direction.DOWNSTREAM:
            self.heard += len(frame.pcm)
            if self.heard >= self.bytes_per_turn:
                self.heard = 0
                await self.push(UserStartedSpeakingFrame())
                await self.push(UserStoppedSpeakingFrame(audio_time=None))
                await self.push(TranscriptFrame(text=f"turn {len(self.turns) + 1}", is_final=True))
                self._reply(f"turn {len(self.turns) + 1}")
            return
        if isinstance(frame, UserTextFrame):
            self._reply(frame.text)
            return
        await self.push(frame, direction)

    def _reply(self, text: str) -> None:
        self.turns.append(text)
        self.create_task(self._speak(self.epoch))

    async def _speak(self, epoch: int) -> None:
        await self.push(MetricsFrame(name="stt.latency", value=0.15))
        await self.push(LLMResponseStartFrame(epoch=epoch))
        await self.push(MetricsFrame(name="llm.ttft", value=0.4))
        for i in range(self.chunks):
            await asyncio.sleep(self.chunk_delay)
            await self.push(TextFrame(text=f"chunk {i} "))
            await self.push(TTSAudioFrame(pcm=bytes([i % 256, 0]) * 480, sample_rate=24000))
        await self.push(LLMResponseEndFrame(epoch=epoch))

    async def on_stop(self) -> None:
        self.stopped = True
