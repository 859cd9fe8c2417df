"""One Aura speak WebSocket of the fake Deepgram: Speak/Flush/Clear/Close in, tone audio and events out.

Operations run in order through one worker: each Flush synthesises the text spoken since the previous Flush (a
tone whose length is proportional to the text), after ``tts_first_byte_delay``, then sends ``Flushed``. Past
Deepgram's Flush limit (20 per 60 s on the fake's ``clock``) a Flush is refused: a ``Warning``, nothing spoken,
and its text waits for the next Flush that is processed (``rules/deepgram_speak.py`` [flush]). A
Clear drops queued text, stops the audio in progress (after ``faults.tts_audio_after_clear`` seconds, to play a
server that keeps talking for a moment) and answers ``Cleared``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any

import numpy as np
from voxline.testing.fakes.rules import Close, deepgram_speak
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

if TYPE_CHECKING:
    from voxline.testing.fakes.deepgram import DeepgramConnection, FakeDeepgram


async def while_stalled(fake: FakeDeepgram) -> None:
    """Hold a send while ``faults.stall`` is set (a flag tests flip from outside, so it is polled)."""
    while fake.faults.stall:  # noqa: ASYNC110
        await asyncio.sleep(0.02)


def tone(text: str, seconds_per_char: float, sample_rate: int) -> bytes:
    """Int16 PCM of a 440 Hz tone lasting ``len(text) * seconds_per_char`` seconds: the fake's 'speech'."""
    n = round(len(text) * seconds_per_char * sample_rate)
    t = np.arange(n, dtype=np.float32) / sample_rate
    return (np.sin(2 * np.pi * 440.0 * t) * 6000).astype("<i2").tobytes()


class SpeakSession:
    def __init__(self, fake: FakeDeepgram, connection: ServerConnection, record: DeepgramConnection) -> None:
        self.fake, self.conn, self.record = fake, connection, record
        self.rate = int(record.query.get("sample_rate", "24000"))
        self.model = record.query.get("model", "aura-asteria-en")
        self.text: list[str] = []
        self.ops: deque[tuple[str, int, str]] = deque()
        self.wakeup = asyncio.Event()
        self.sequence = 0
        self.clear_deadline: float | None = None
        self.flushes: deque[float] = deque()
        self.worker: asyncio.Task[None] | None = None

    async def run(self) -> None:
        await self._send_json(
            {
                "type": "Metadata",
                "request_id": str(uuid.uuid4()),
                "model_name": self.model,
                "model_version": "fake",
                "model_uuid": "00000000-0000-0000-0000-000000000024",
            }
        )
        self.worker = asyncio.get_running_loop().create_task(self._work())
        while True:
            try:
                message = await asyncio.wait_for(self.conn.recv(), self.fake.tts_idle_timeout)
            except TimeoutError:
                await self.conn.close(1011, "NET-0001")
                return
            except ConnectionClosed:
                return
            try:
                data = deepgram_speak.check_message(message)
            except Close as close:
                if isinstance(message, str):
                    self.record.messages.append(_decoded(message))
                await self.conn.close(close.code, close.reason)
                return
            self.record.messages.append(data)
            self.record.message_times.append(time.monotonic())
            kind = data.get("type")
            if kind == "Speak":
                self.text.append(str(data.get("text", "")))
            elif kind == "Flush":
                await self._flush()
            elif kind == "Clear":
                self.text.clear()
                self.ops = deque(op for op in self.ops if op[0] != "flush")
                if self.clear_deadline is None:
                    self.clear_deadline = time.monotonic() + self.fake.faults.tts_audio_after_clear
                self._queue(("clear", self.sequence, ""))
            elif kind == "Close":
                await self.conn.close(1000)
                return

    async def shutdown(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.worker

    async def _flush(self) -> None:
        now = self.fake.clock()
        if deepgram_speak.flush_refused(self.flushes, now):
            self.record.refused_flushes += 1  # [flush] not processed: the text stays for the next Flush
            await self._send_json(dict(deepgram_speak.FLUSH_LIMIT_WARNING))
            return
        self.flushes.append(now)
        self._queue(("flush", self.sequence, "".join(self.text)))
        self.sequence += 1
        self.text.clear()

    def _queue(self, op: tuple[str, int, str]) -> None:
        self.ops.append(op)
        self.wakeup.set()

    async def _work(self) -> None:
        try:
            while True:
                if not self.ops:
                    self.wakeup.clear()
                    await self.wakeup.wait()
                    continue
                kind, sequence, text = self.ops.popleft()
                if kind == "flush":
                    if await self._synthesise(text):
                        await self._send_json({"type": "Flushed", "sequence_id": sequence})
                else:
                    deadline = self.clear_deadline or 0.0
                    if deadline > time.monotonic():
                        await asyncio.sleep(deadline - time.monotonic())
                    self.clear_deadline = None
                    await self._send_json({"type": "Cleared", "sequence_id": max(0, sequence - 1)})
        except ConnectionClosed:
            return

    def _cleared(self) -> bool:
        return self.clear_deadline is not None and time.monotonic() >= self.clear_deadline

    async def _synthesise(self, text: str) -> bool:
        """Send the audio for ``text``; False when a Clear cut it short."""
        audio = tone(text, self.fake.tts_seconds_per_char, self.rate)
        await asyncio.sleep(self.fake.tts_first_byte_delay)
        step = self.fake.tts_chunk_bytes
        for i in range(0, len(audio), step):
            if self._cleared():
                return False
            await while_stalled(self.fake)
            limit = self.fake.faults.tts_drop_after_bytes
            if limit is not None and self.record.audio_bytes_sent >= limit:
                self.fake.faults.tts_drop_after_bytes = None
                self.conn.transport.abort()
                return False
            limit = self.fake.faults.tts_error_after_bytes
            if limit is not None and self.record.audio_bytes_sent >= limit:
                self.fake.faults.tts_error_after_bytes = None
                await self._send_json({"type": "Warning", "description": "Injected error.", "code": "INJECTED"})
                await self.conn.close(1011, "NET-0000")
                return False
            chunk = audio[i : i + step]
            await self.conn.send(chunk)
            self.record.audio_bytes_sent += len(chunk)
            if self.fake.tts_chunk_interval:
                await asyncio.sleep(self.fake.tts_chunk_interval)
        return not self._cleared()

    async def _send_json(self, payload: dict[str, Any]) -> None:
        await while_stalled(self.fake)
        await self.conn.send(json.dumps(payload))
        self.record.sent.append(payload)


def _decoded(message: str) -> dict[str, Any]:
    """A refused text message as recorded: its JSON object, or ``{"raw": text}``."""
    try:
        data = json.loads(message)
    except ValueError:
        return {"raw": message}
    return data if isinstance(data, dict) else {"raw": message}
