"""One live-STT connection of the fake Deepgram: utterances found from audio energy, results on a script.

Audio is cut into 10 ms frames; a frame is voiced when its RMS exceeds the fake's ``energy_threshold``. An
utterance starts at the first voiced frame and ends after ``endpointing`` seconds of silence, all on the audio
clock of this connection (like Deepgram, timestamps restart at 0 on every connection). Messages leave through
one FIFO with due times, so a delayed final never overtakes an earlier interim and nothing overtakes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from typing import TYPE_CHECKING, Any

import numpy as np
from voxline.testing.fakes._deepgram_speak import while_stalled
from voxline.testing.fakes.rules import Close, deepgram_listen
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

if TYPE_CHECKING:
    from voxline.testing.fakes.deepgram import DeepgramConnection, FakeDeepgram

_FRAME = 0.01
_PUNCT = ".,!?;:\"'"


class ListenSession:
    def __init__(self, fake: FakeDeepgram, connection: ServerConnection, record: DeepgramConnection) -> None:
        self.fake, self.conn, self.record = fake, connection, record
        query = record.query
        self.rate = int(query.get("sample_rate", "16000"))
        self.channels = int(query.get("channels", "1"))
        self.interim = query.get("interim_results") == "true"
        self.vad_events = query.get("vad_events") == "true"
        endpointing = fake.endpointing
        if endpointing is None:
            raw = query.get("endpointing", "10")
            endpointing = None if raw == "false" else float(raw) / 1000
        self.endpointing = endpointing
        raw_ue = query.get("utterance_end_ms")
        self.utterance_end = float(raw_ue) / 1000 if raw_ue and self.interim else None
        self.frame_bytes = round(self.rate * _FRAME) * 2 * self.channels
        self.request_id = str(uuid.uuid4())
        self.pending = b""
        self.t = 0.0
        self.in_speech = False
        self.pieces: list[str] = []
        self.piece = 0
        self.seg_start = 0.0
        self.last_interim = 0.0
        self.last_voiced_end = 0.0
        self.voiced_wall = 0.0
        self.word_end_for_ue: float | None = None
        self.out: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()
        self.sender: asyncio.Task[None] | None = None

    # --- connection loop ----------------------------------------------------------------------------------

    async def run(self) -> None:
        self.sender = asyncio.get_running_loop().create_task(self._send_loop())
        faults = self.fake.faults
        opened = last_frame = time.monotonic()
        first_audio: float | None = None
        while True:
            deadline = deepgram_listen.idle_deadline(opened, first_audio, last_frame, self.fake.idle_timeout)
            try:
                message = await asyncio.wait_for(self.conn.recv(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                await self.conn.close(1011, "NET-0001")
                return
            except ConnectionClosed:
                return
            last_frame = time.monotonic()
            if isinstance(message, bytes):
                try:
                    deepgram_listen.check_audio(message, self.record.query, first=first_audio is None)
                except Close as close:
                    await self.conn.close(close.code, close.reason)
                    return
                first_audio = first_audio or last_frame
                self.record.audio += message
                self.record.audio_sizes.append(len(message))
                seconds = self.record.audio_seconds
                if faults.stt_drop_after_audio is not None and seconds >= faults.stt_drop_after_audio:
                    faults.stt_drop_after_audio = None
                    self.conn.transport.abort()
                    return
                if faults.stt_error_after_audio is not None and seconds >= faults.stt_error_after_audio:
                    faults.stt_error_after_audio = None
                    await self._send_now({"type": "Error", "variant": "InternalError", "description": "Injected."})
                    await self.conn.close(1011, "NET-0000")
                    return
                self._feed(message, time.monotonic())
                continue
            try:
                data = json.loads(message)
            except ValueError:
                data = {"raw": message}
            self.record.messages.append(data)
            self.record.audio_before.append(len(self.record.audio))
            self.record.message_times.append(time.monotonic())
            kind = data.get("type")
            if kind == "Finalize":
                self._finalize()
            elif kind == "CloseStream":
                if self.in_speech:
                    self._end_utterance(speech_final=True, from_finalize=False)
                await self.out.join()
                await self._send_now(self._metadata())
                await self.conn.close(1000)
                return
            elif kind != "KeepAlive":
                error = {"type": "Error", "variant": "SchemaError", "description": f"Unknown message: {kind!r}"}
                self._emit(error)

    def inject(self, payload: dict[str, Any] | str) -> None:
        """Queue an arbitrary message (a dict is sent as JSON, a str as is) after what is already queued."""
        self._emit(payload if isinstance(payload, dict) else {"__raw__": payload})

    async def shutdown(self) -> None:
        if self.sender is not None:
            self.sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.sender

    async def _send_loop(self) -> None:
        while True:
            due, payload = await self.out.get()
            try:
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await self._send_now(payload)
            except ConnectionClosed:
                return
            finally:
                self.out.task_done()

    async def _send_now(self, payload: dict[str, Any]) -> None:
        await while_stalled(self.fake)
        raw = payload.get("__raw__")
        await self.conn.send(raw if isinstance(raw, str) else json.dumps(payload))
        self.record.sent.append(payload)

    def _emit(self, payload: dict[str, Any], due: float | None = None) -> None:
        self.out.put_nowait((time.monotonic() if due is None else due, payload))

    # --- utterances from energy ---------------------------------------------------------------------------

    def _feed(self, data: bytes, wall: float) -> None:
        buf = self.pending + data
        usable = len(buf) // self.frame_bytes * self.frame_bytes
        self.pending = buf[usable:]
        if not usable:
            return
        samples = np.frombuffer(buf[:usable], dtype="<i2").astype(np.float32).reshape(-1, self.frame_bytes // 2)
        voiced = np.sqrt(np.mean(samples * samples, axis=1)) > self.fake.energy_threshold
        for is_voiced in voiced.tolist():
            start = self.t
            self.t = end = start + _FRAME
            self._step(bool(is_voiced), start, end, wall)

    def _step(self, voiced: bool, start: float, end: float, wall: float) -> None:
        if voiced:
            if not self.in_speech:
                self._begin_utterance(start)
            self.last_voiced_end, self.voiced_wall = end, wall
            if self.piece < len(self.pieces) - 1 and end - self.seg_start >= self.fake.segment_seconds:
                self._emit(self._results(self.pieces[self.piece], self.seg_start, end, is_final=True))
                self.piece += 1
                self.seg_start = self.last_interim = end
            elif self.interim and end - self.last_interim >= self.fake.stt_interim_interval:
                self.last_interim = end
                words = self.pieces[self.piece].split()
                count = min(len(words), 1 + int((end - self.seg_start) / 0.3))
                self._emit(self._results(" ".join(words[:count]), self.seg_start, end, is_final=False))
        elif self.in_speech:
            silence = end - self.last_voiced_end + 1e-9
            if self.endpointing is not None and silence >= self.endpointing:
                self._end_utterance(speech_final=True, from_finalize=False)
            elif self.endpointing is None and self.utterance_end is not None and silence >= self.utterance_end:
                # Endpointing off: Deepgram still finalises the words, but only UtteranceEnd marks the gap.
                self._end_utterance(speech_final=False, from_finalize=False)
                self._emit({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": round(self.last_voiced_end, 3)})
                self.word_end_for_ue = None
        elif self._utterance_end_due(end):
            ue = {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": round(self.word_end_for_ue or 0.0, 3)}
            self._emit(ue)
            self.word_end_for_ue = None

    def _utterance_end_due(self, end: float) -> bool:
        if self.word_end_for_ue is None or self.utterance_end is None:
            return False
        return end - self.word_end_for_ue >= self.utterance_end - 1e-9

    def _begin_utterance(self, start: float) -> None:
        self.in_speech = True
        self.pieces = self.fake.utterance()
        self.piece = 0
        self.seg_start = self.last_interim = start
        self.word_end_for_ue = None
        if self.vad_events:
            self._emit({"type": "SpeechStarted", "channel": [0, 1], "timestamp": round(start, 3)})

    def _end_utterance(self, *, speech_final: bool, from_finalize: bool) -> None:
        text = " ".join(self.pieces[self.piece :])
        due = time.monotonic()
        if self.fake.stt_final_delay is not None:
            due = max(due, self.voiced_wall + self.fake.stt_final_delay)
        result = self._results(text, self.seg_start, self.last_voiced_end, is_final=True, speech_final=speech_final)
        result["from_finalize"] = from_finalize
        self._emit(result, due)
        self.in_speech = False
        self.fake.utterance_done()
        if self.utterance_end is not None:
            self.word_end_for_ue = self.last_voiced_end

    def _finalize(self) -> None:
        if self.in_speech:
            self._end_utterance(speech_final=False, from_finalize=True)
            return
        empty = self._results("", self.t, self.t, is_final=True)
        empty["from_finalize"] = True
        self._emit(empty)

    # --- message shapes -----------------------------------------------------------------------------------

    def _results(
        self, text: str, start: float, end: float, *, is_final: bool, speech_final: bool = False
    ) -> dict[str, Any]:
        words = text.split()
        step = (end - start) / len(words) if words else 0.0
        confidence = 0.99 if is_final else 0.9
        word_list = [
            {
                "word": w.strip(_PUNCT).lower(),
                "start": round(start + i * step, 3),
                "end": round(start + (i + 1) * step, 3),
                "confidence": confidence,
                "punctuated_word": w,
            }
            for i, w in enumerate(words)
        ]
        return {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": round(end - start, 3),
            "start": round(start, 3),
            "is_final": is_final,
            "speech_final": speech_final,
            "from_finalize": False,
            "channel": {"alternatives": [{"transcript": text, "confidence": confidence, "words": word_list}]},
            "metadata": {
                "request_id": self.request_id,
                "model_info": {"name": "general-nova-3", "version": "fake", "arch": "nova-3"},
                "model_uuid": "00000000-0000-0000-0000-000000000003",
            },
        }

    def _metadata(self) -> dict[str, Any]:
        return {
            "type": "Metadata",
            "transaction_key": "deprecated",
            "request_id": self.request_id,
            "sha256": "0" * 64,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "duration": round(self.record.audio_seconds, 3),
            "channels": self.channels,
        }
