"""What a replay puts where the providers and the client were: each plays back what was recorded, on time.

* :class:`ReplaySocket` — the client: sends the recorded messages at their times, then disconnects.
* :class:`ReplaySTT` — the STT stage: emits the frames the STT stage emitted, each once the replayed audio has
  reached the point it was emitted at, and as long after that audio as it was then.
* :class:`ReplayLLM` — an :class:`~voxline.llm.LLMProcessor` whose provider streams the recorded reply to the
  same user turn, chunk by chunk at the recorded delays (or fails where it failed). The base does the rest, as it
  does for every provider: the reply task, interruption, the context, ``llm.ttft``.
* :class:`ReplayTTS` — a :class:`~voxline.tts.TTSProcessor` whose synthesis yields, for each piece of text, audio
  of the recorded lengths at the recorded delays (silence: a replay needs timing, not sound).

Recorded responses are found by their request's text: the n-th request with a text gets the n-th recording for
that text. A request the recording has no response for gets none (an empty reply, a piece with no audio): that
happens when a replay takes another turn than the recording, or when the replay's TTS starts a piece the recorded
one never began before a barge-in cut the reply.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import Any

from voxline.context import Context
from voxline.frames import AudioFrame, Frame, StartFrame, UserTextFrame
from voxline.llm import LLMProcessor
from voxline.processor import DOWNSTREAM, UPSTREAM, Direction, Processor
from voxline.recording.codec import decode_frame
from voxline.recording.session_file import RecordedSession
from voxline.tts import TTSProcessor

__all__ = ["RecordedFailure", "ReplayLLM", "ReplaySTT", "ReplaySocket", "ReplayTTS"]


class RecordedFailure(Exception):
    """A provider failure the recording holds; its message is the one the stage reported then."""


class ReplaySocket:
    """A server WebSocket (:class:`~voxline.transports.ServerWebSocket`) whose client is a recording."""

    def __init__(self, session: RecordedSession) -> None:
        self._session = session
        self._queue = deque(session.client)
        self._t0: float | None = None
        self.sent: list[str] = []
        """Every message the server sent, in order."""

    def begin(self, t0: float) -> None:
        """Session time 0 is loop time ``t0`` (the moment the replay's recorder started)."""
        self._t0 = t0

    async def receive(self) -> Mapping[str, Any]:
        loop = asyncio.get_running_loop()
        if self._t0 is None:
            self._t0 = loop.time()
        if self._queue:
            line = self._queue.popleft()
            await asyncio.sleep(max(0.0, self._t0 + float(line["t"]) - loop.time()))
            return {"type": "websocket.receive", "text": _message(line)}
        await asyncio.sleep(max(0.0, self._t0 + self._session.end - loop.time()))
        return {"type": "websocket.disconnect", "code": 1000}

    async def send_text(self, data: str) -> None:
        self.sent.append(data)


def _message(line: dict[str, Any]) -> str:
    if "audio" in line:
        return '{"type":"audio","data":"' + str(line["audio"]) + '"}'
    if "text" in line:
        return json.dumps({"type": "text", "data": line["text"]})
    return '{"type":"interrupt"}'


class ReplaySTT(Processor):
    """The recorded STT stage (see the module docstring). Consumes input audio; forwards everything else."""

    def __init__(self, session: RecordedSession, *, name: str = "ReplaySTT") -> None:
        super().__init__(name=name)
        self._outputs = list(session.stt)
        self._samples = 0
        self._arrivals: deque[tuple[int, float]] = deque()
        self._more = asyncio.Event()

    async def process(self, frame: Frame, direction: Direction) -> None:
        if direction is DOWNSTREAM and type(frame) is AudioFrame:
            self._samples += frame.num_samples
            self._arrivals.append((self._samples, asyncio.get_running_loop().time()))
            self._more.set()
            return
        await self.push(frame, direction)
        if isinstance(frame, StartFrame):
            self.create_task(self._emit(), name=f"{self.name}-emit", epoch_bound=False)

    async def _emit(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for line in self._outputs:
            needed = int(line.get("audio", 0))
            while self._samples < needed:
                self._more.clear()
                await self._more.wait()
            arrived = start
            while self._arrivals and self._arrivals[0][0] < needed:
                self._arrivals.popleft()
            if needed and self._arrivals:
                arrived = self._arrivals[0][1]
            await asyncio.sleep(max(0.0, arrived + float(line.get("after", 0.0)) - loop.time()))
            await self.push(decode_frame(line["frame"]), UPSTREAM if line.get("dir") == "up" else DOWNSTREAM)


class _Responses:
    """Recorded responses by request text, each a list of lines, taken in order."""

    def __init__(self, lines: list[dict[str, Any]]) -> None:
        self._by_text: dict[str, deque[list[dict[str, Any]]]] = {}
        current: list[dict[str, Any]] | None = None
        for line in lines:
            if current is None or line.get("first") or line["request"] != current[0]["request"]:
                current = []
                self._by_text.setdefault(line["request"], deque()).append(current)
            current.append(line)

    def take(self, text: str) -> list[dict[str, Any]]:
        """The next recording for ``text``; none (nothing emitted) when the recording has no more for it."""
        same = self._by_text.get(text)
        return same.popleft() if same else []


class ReplayLLM(LLMProcessor):
    """The recorded LLM stage: the base's reply logic around a provider that streams the recording."""

    def __init__(self, session: RecordedSession, *, name: str = "ReplayLLM") -> None:
        super().__init__(warm_up=False, first_token_timeout=3600.0, stall_timeout=3600.0, name=name)
        self._responses = _Responses(session.llm)
        self._request = ""

    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, UserTextFrame) and direction is DOWNSTREAM:
            self._request = frame.text
        await super().process(frame, direction)

    async def stream(self, context: Context) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for line in self._responses.take(self._request):
            await asyncio.sleep(max(0.0, start + float(line["after"]) - loop.time()))
            if "error" in line:
                raise RecordedFailure(line["error"])
            yield str(line.get("text", ""))

    def describe_error(self, exc: BaseException) -> str:
        return str(exc) if isinstance(exc, RecordedFailure) else super().describe_error(exc)

    async def health_check(self) -> None:
        return None


class ReplayTTS(TTSProcessor):
    """The recorded TTS stage: for each piece of text, silence of the recorded lengths at the recorded delays."""

    def __init__(self, session: RecordedSession, *, name: str = "ReplayTTS") -> None:
        super().__init__(sample_rate=session.audio_out_rate, name=name)
        self._responses = _Responses(session.tts)

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for line in self._responses.take(text):
            await asyncio.sleep(max(0.0, start + float(line["after"]) - loop.time()))
            if "error" in line:
                raise RecordedFailure(line["error"])
            yield bytes(2 * int(line.get("samples", 0)))

    async def health_check(self) -> None:
        return None
