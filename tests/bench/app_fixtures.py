"""Shared parts of the app benchmark (tests/bench/bench_app.py): the scripted reply and the providers' delays,
timestamps taken inside the fake providers, and stages with those delays built in on voxline's own bases."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

REPLY = "Sure thing, here is the forecast. It will be sunny all day, with a light breeze in the afternoon."
STT_DELAY, LLM_FIRST, TOKENS_PER_S, TTS_FIRST = 0.15, 0.4, 40.0, 0.25
PHASES = 10  # part 3: client sessions send in 10 phase slots of 2 ms


def emit(name: str, **fields: Any) -> None:
    print(json.dumps({"bench": "app", "name": name, **fields}), flush=True)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def first_clause_token() -> int:
    """Index of the LLM token whose arrival lets the sentence aggregator release the first chunk to speak."""
    from voxline.aggregation.splitter import SentenceSplitter
    from voxline.testing.fakes._llm import split_tokens

    splitter = SentenceSplitter()
    tokens = split_tokens(REPLY)
    for i, token in enumerate(tokens):
        if splitter.push(token):
            return i
    return len(tokens) - 1


class Probe:
    """Timestamps of what the fake providers did, taken inside them (same process, same monotonic clock).

    Bench-only instrumentation: it wraps the fakes' own send paths to note *when* they acted, so the
    providers' hold times can be subtracted exactly (timer overshoot and token pacing drift included) and
    what remains is the path through voxline, the SDKs and loopback sockets.
    """

    def __init__(self) -> None:
        from voxline.testing.fakes import _deepgram_listen, _deepgram_speak
        from voxline.testing.fakes.gemini import FakeGemini

        self.voiced_arrival: list[float] = []  # last voiced audio reached the fake STT
        self.final_sent: list[float] = []  # the fake STT sent the final result
        self.tokens: dict[int, list[float]] = {}  # per Gemini request: when each token was sent
        self.synth_start: list[float] = []  # the fake TTS began a Flush (its first-byte delay starts)
        self.first_byte: list[float] = []  # ... and sent that Flush's first audio
        probe = self

        listen_send = _deepgram_listen.ListenSession._send_now
        end_utterance = _deepgram_listen.ListenSession._end_utterance

        async def send_now(session: Any, payload: dict[str, Any]) -> None:
            await listen_send(session, payload)
            if payload.get("type") == "Results" and payload.get("is_final"):
                probe.final_sent.append(time.monotonic())

        def end(session: Any, **kwargs: Any) -> None:
            probe.voiced_arrival.append(session.voiced_wall)
            end_utterance(session, **kwargs)

        synthesise = _deepgram_speak.SpeakSession._synthesise

        async def synth(session: Any, text: str) -> bool:
            probe.synth_start.append(time.monotonic())
            send = session.conn.send
            first = [True]

            async def timed_send(message: Any) -> None:
                await send(message)
                if first[0] and isinstance(message, bytes):
                    first[0] = False
                    probe.first_byte.append(time.monotonic())

            session.conn.send = timed_send
            try:
                return bool(await synthesise(session, text))
            finally:
                session.conn.send = send

        token_event = FakeGemini.token_event

        def token(fake: Any, record: Any, text: str, last: bool) -> bytes:
            probe.tokens.setdefault(id(record), []).append(time.monotonic())
            return bytes(token_event(fake, record, text, last))

        _deepgram_listen.ListenSession._send_now = send_now  # type: ignore[method-assign]
        _deepgram_listen.ListenSession._end_utterance = end  # type: ignore[method-assign]
        _deepgram_speak.SpeakSession._synthesise = synth  # type: ignore[method-assign]
        FakeGemini.token_event = token  # type: ignore[method-assign]


# --- 1 and 2: the real app on the fake providers ---------------------------------------------------------


class Stamps:
    """When the scripted stages of ``v2v_framework`` actually acted (their own hold times, measured)."""

    def __init__(self) -> None:
        self.voiced_arrival: list[float] = []
        self.final_emitted: list[float] = []
        self.llm_started: list[float] = []
        self.clause_token: list[float] = []
        self.synth_started: list[float] = []
        self.first_chunk: list[float] = []


def scripted_stages(stamps: Stamps) -> list[Any]:
    """STT, LLM and TTS stages with the providers' fixed delays built in, on voxline's real bases
    (Processor, LLMProcessor, SentenceAggregator, TTSProcessor) and without any SDK or provider socket."""
    from voxline.aggregation import SentenceAggregator
    from voxline.context import Context
    from voxline.frames import AudioFrame, Frame, TranscriptFrame, UserTextFrame
    from voxline.llm import LLMProcessor
    from voxline.processor import Direction, Processor
    from voxline.testing.fakes._llm import split_tokens
    from voxline.tts import TTSProcessor

    clause = first_clause_token()

    class TimedSTT(Processor):
        """Final transcript 150 ms after the last voiced chunk arrived (silence is all-zero PCM here)."""

        def __init__(self) -> None:
            super().__init__(name="TimedSTT")
            self.last_voiced: float | None = None
            self.pending = False

        async def process(self, frame: Frame, direction: Direction) -> None:
            if isinstance(frame, AudioFrame) and direction is Direction.DOWNSTREAM:
                if frame.pcm.strip(b"\x00"):
                    self.last_voiced = time.monotonic()
                elif self.last_voiced is not None and not self.pending:
                    self.pending = True
                    self.create_task(self._final(self.last_voiced), epoch_bound=False)
                return
            await self.push(frame, direction)

        async def _final(self, voiced: float) -> None:
            await asyncio.sleep(max(0.0, voiced + STT_DELAY - time.monotonic()))
            stamps.voiced_arrival.append(voiced)
            stamps.final_emitted.append(time.monotonic())
            self.last_voiced, self.pending = None, False
            await self.push(TranscriptFrame(text="what is the weather", is_final=True))
            await self.push(UserTextFrame(text="what is the weather"))

    class TimedLLM(LLMProcessor):
        async def stream(self, context: Context) -> Any:
            start = time.monotonic()
            stamps.llm_started.append(start)
            for i, token in enumerate(split_tokens(REPLY)):
                await asyncio.sleep(max(0.0, start + LLM_FIRST + i / TOKENS_PER_S - time.monotonic()))
                if i == clause:
                    stamps.clause_token.append(time.monotonic())
                yield token

    class TimedTTS(TTSProcessor):
        async def synthesize(self, text: str) -> Any:
            start = time.monotonic()
            first = True
            for _ in range(3):
                await asyncio.sleep(max(0.0, start + TTS_FIRST - time.monotonic()))
                if first:
                    first = False
                    stamps.synth_started.append(start)
                    stamps.first_chunk.append(time.monotonic())
                yield b"\x01\x00" * 2400

    return [TimedSTT(), TimedLLM(), SentenceAggregator(), TimedTTS()]
