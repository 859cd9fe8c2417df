"""Benchmark of the voice agent server: what voxline adds to voice-to-voice latency, how fast an interrupt
silences the bot, and how many real-time sessions one process holds.

Prints one JSON object per line. ``--quick`` runs a short smoke version. ``--only NAME`` runs one part
(``v2v``, ``interrupt`` or ``sessions``).

1. ``v2v_overhead`` — the real app (``create_app``) under uvicorn on loopback, pointed at the fake Deepgram and
   Gemini servers with fixed delays: STT final 150 ms after the last voiced audio reaches the fake (fake
   endpointing 100 ms), LLM first token 400 ms after the request then 40 tokens/s, TTS first byte 250 ms
   after Flush. A WebSocket client streams a 0.5 s tone + 0.6 s silence in real-time 20 ms chunks and times
   from sending the last voiced chunk to receiving the first ``audio`` message. Subtracting the providers'
   own time — 150 + 400 + 250 ms, plus the token time the sentence aggregator must wait for the first
   speakable clause of the scripted reply (computed with the real ``SentenceSplitter``) — leaves what the
   whole server path adds: the client and provider WebSocket hops on loopback, the official SDKs, and every
   voxline stage. Target p95 <= 5 ms. The turn engine is off here (``TURN_ENGINE=off``): the STT's own
   endpointing ends the turn, so the providers' delays stay the fixed ones above (the engine's endpointing is
   measured by tests/bench/bench_turns_app.py).
   ``first_audio_after_providers`` is the same voice-to-voice minus only the providers' own holds (STT final,
   LLM first token, TTS first byte): what the user waits beyond them, i.e. the wait for the first speakable
   chunk of the reply plus the server path. Target p50 <= 120 ms. Beside it, what the early first chunk costs:
   gaps in playback at a client with an 80 ms jitter buffer (a short first chunk that runs out before the next
   one's audio arrives), TTS Flushes per reply, and the first chunk's words. ``--first-chunk sentence`` measures
   the splitter as it was before (three words at a clause, no break before a conjunction) for comparison.
1b. ``v2v_overhead_framework`` — the same app, transport, session code and client, but the session's stages
   are scripted on voxline's real bases (Processor, LLMProcessor, SentenceAggregator, TTSProcessor) with the
   same delays built in and no SDK or provider socket; each stage stamps when it actually acted, and those
   hold times are subtracted. What remains is voxline alone (plus the client's loopback hop in and out).
2. ``interrupt_to_last_audio_sent`` — same setup with a TTS that streams 50 ms of audio every 20 ms.
   Mid-reply the client sends ``interrupt``. Inside the server, a probe notes when the input read the
   interrupt and when the writer handed each message to the socket: the figure is the last ``audio`` sent
   before the ``interrupted`` status, minus the moment the interrupt was read (0 when none was in flight).
   The client checks that no audio arrives after the status, and its own round trip to the status is
   reported too. Target p95 <= 20 ms.
3. ``sessions`` — a server process (uvicorn, one worker, the voxline transport) whose session pipeline is
   ``WebSocketInput → LoopbackBot → WebSocketOutput``: each 20 ms of 16 kHz input (JSON + base64, as the seed
   client sends it) is parsed into an AudioFrame and every 100 ms the bot answers with 100 ms of 24 kHz audio
   (base64 JSON out). It does NOT include STT/LLM/TTS work or provider sockets: it measures the transport and
   the framework per session. A client process opens N sessions and streams real-time audio into all of
   them (sessions spread over ten 2 ms phase slots, as independent browsers would be, not all in the same
   instant); the server samples its event-loop lag (a 10 ms sleep's overshoot) and its CPU time is read from
   /proc. Reported per N; the result is the largest N with lag p99 <= 20 ms and >= 95 % of the expected audio
   delivered. Target >= 300. It runs twice: audio in as seed JSON, then as binary frames (``config``
   ``binary_audio``). A baseline level runs the same traffic through a bare Starlette endpoint (no voxline),
   which shows how much of the per-session CPU is the ASGI server's WebSocket stack. The server runs as
   ``voxline serve`` does: on uvloop when installed, with the app's garbage-collector tuning
   (``BENCH_LOOP=asyncio`` / ``BENCH_GC=off`` turn those off).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from app_fixtures import (
    LLM_FIRST,
    REPLY,
    STT_DELAY,
    TOKENS_PER_S,
    TTS_FIRST,
    Probe,
    Stamps,
    emit,
    first_clause_token,
    pct,
    scripted_stages,
)
from app_load import run_sessions


async def _agent(tmp: Path, **deepgram: Any) -> Any:
    from app_helpers import serve_app
    from starlette.config import Config
    from voxline.apps.voice_agent import create_app
    from voxline.testing.fakes._llm import Pacing
    from voxline.testing.fakes.deepgram import FakeDeepgram
    from voxline.testing.fakes.gemini import FakeGemini

    dg = FakeDeepgram(stt_final_delay=STT_DELAY, endpointing=0.1, tts_first_byte_delay=TTS_FIRST, **deepgram)
    gm = FakeGemini(replies=REPLY, pacing=Pacing(first_token_delay=LLM_FIRST, tokens_per_second=TOKENS_PER_S))
    env = {
        "DEEPGRAM_API_KEY": "test-key",
        "GEMINI_API_KEY": "test-key",
        "DEEPGRAM_BASE_URL": "",
        "GEMINI_BASE_URL": "",
        "TURN_ENGINE": "off",  # the STT's own endpointing ends the turn: the providers' delays stay fixed
        "LOG_LEVEL": "WARNING",
        "LOG_DIR": str(tmp),
    }
    await dg.start()
    _FAKES["deepgram"] = dg
    await gm.__aenter__()
    env["DEEPGRAM_BASE_URL"], env["GEMINI_BASE_URL"] = dg.base_url, gm.url
    app = create_app(Config(environ=env), static_dir=tmp, preload=False)
    serving = serve_app(app)
    url = await serving.__aenter__()

    async def close() -> None:
        await serving.__aexit__(None, None, None)
        await gm.__aexit__(None, None, None)
        await dg.stop()

    return url, close, gm


async def _speak(client: Any) -> float:
    """Stream 0.5 s of tone then 0.6 s of silence in real time; returns when the last voiced chunk was sent."""
    from app_helpers import silence, tone

    voiced, quiet = tone(0.5), silence(0.6)
    start = time.monotonic()
    sent = 0
    end_of_speech = 0.0
    for pcm, is_voice in ((voiced, True), (quiet, False)):
        for i in range(0, len(pcm), 640):
            await client.send({"type": "audio", "data": base64.b64encode(pcm[i : i + 640]).decode()})
            sent += 1
            if is_voice:
                end_of_speech = time.monotonic()
            await asyncio.sleep(max(0.0, start + sent * 0.02 - time.monotonic()))
    return end_of_speech


def playback_gaps(log: list[tuple[float, dict[str, Any]]], since: float, lead: float = 0.08) -> float:
    """Seconds of silence inside a reply at a client that plays each ``audio`` message on arrival, back to back,
    after an 80 ms jitter buffer (as the page does): time a chunk arrived after the previous one finished."""
    end: float | None = None
    gaps = 0.0
    for t, m in log:
        if t <= since or m["type"] != "audio":
            continue
        seconds = len(base64.b64decode(m["data"])) / 2 / 24000
        if end is None:
            end = t + lead
        elif t > end:
            gaps += t - end
            end = t
        end += seconds
    return gaps


async def bench_v2v(turns: int, tmp: Path, first_chunk: str = "early") -> None:
    from app_helpers import Client

    probe = Probe()
    url, close, gemini = await _agent(tmp)
    clause = first_clause_token()
    rows: list[dict[str, float]] = []
    reported: list[float] = []
    first_words: list[int] = []
    try:
        async with Client.connect(url) as client:
            for turn in range(1, turns + 2):  # the first turn warms connections and imports; not counted
                marks = (len(probe.final_sent), len(probe.synth_start))
                speak = _speak_connection()
                mark = len(speak.messages) if speak is not None else 0
                spoken = asyncio.create_task(_speak(client))
                await client.wait_message("status", "complete", count=turn, timeout=20)
                t0 = await spoken
                first_audio = next(t for t, m in client.log if m["type"] == "audio" and t > t0)
                request = gemini.requests[-1]
                tokens = probe.tokens[id(request)]
                voiced, final = probe.voiced_arrival[marks[0]], probe.final_sent[marks[0]]
                synth, first_byte = probe.synth_start[marks[1]], probe.first_byte[marks[1]]
                held = (final - voiced) + (tokens[clause] - request.received_at) + (first_byte - synth)
                own = (final - voiced) + (tokens[0] - request.received_at) + (first_byte - synth)
                await asyncio.sleep(1.0 + len(REPLY) * 0.05)  # let the reply play out at the client
                speak = _speak_connection()
                sent = speak.messages[mark:] if turn > 1 and speak is not None else []
                if turn > 1:
                    speaks = [str(m.get("text", "")) for m in sent if m.get("type") == "Speak"]
                    first_words.append(len(speaks[0].split()) if speaks else 0)
                    rows.append(
                        {
                            "v2v": (first_audio - t0) * 1000,
                            "held": held * 1000,
                            "after_providers": (first_audio - t0 - own) * 1000,
                            "gaps": playback_gaps(client.log, t0) * 1000,
                            "flushes": sum(m.get("type") == "Flush" for m in sent),
                            "overhead": (first_audio - t0 - held) * 1000,
                            "audio_in": (voiced - t0) * 1000,
                            "final_to_llm": (request.received_at - final) * 1000,
                            "token_to_tts": (synth - tokens[clause]) * 1000,
                            "audio_out": (first_audio - first_byte) * 1000,
                        }
                    )
                    metrics = client.of_type("metrics")[-1]
                    if metrics.get("voice_to_voice_ms") is not None:
                        reported.append(metrics["voice_to_voice_ms"])
                await asyncio.sleep(0.1)
    finally:
        await close()

    def col(name: str, q: float) -> float:
        return round(pct([r[name] for r in rows], q), 2)

    emit(
        "v2v_overhead",
        unit="ms",
        p50=col("overhead", 50),
        p95=col("overhead", 95),
        max=round(max(r["overhead"] for r in rows), 2),
        target_p95=5.0,
        turns=len(rows),
        legs_p50={k: col(k, 50) for k in ("audio_in", "final_to_llm", "token_to_tts", "audio_out")},
        v2v_p50_ms=col("v2v", 50),
        providers_held_p50_ms=col("held", 50),
        providers_nominal_ms=round((STT_DELAY + LLM_FIRST + clause / TOKENS_PER_S + TTS_FIRST) * 1000, 1),
        server_reported_v2v_p50_ms=round(pct(reported, 50), 1) if reported else None,
        loop="asyncio",
        load_avg_1m=os.getloadavg()[0],
    )
    emit(
        "first_audio_after_providers",
        unit="ms",
        first_chunk=first_chunk,
        p50=col("after_providers", 50),
        p95=col("after_providers", 95),
        target_p50=120.0,
        turns=len(rows),
        first_chunk_words=sorted(set(first_words)),
        playback_gap_ms_max=round(max(r["gaps"] for r in rows), 1),
        playback_gap_ms_p50=col("gaps", 50),
        tts_flushes_per_reply=sorted({int(r["flushes"]) for r in rows}),
        load_avg_1m=os.getloadavg()[0],
    )


_FAKES: dict[str, Any] = {}


def _speak_connection() -> Any:
    """The fake Deepgram's speak socket of the session (the bench runs one)."""
    fake = _FAKES.get("deepgram")
    return fake.speak_connections[-1] if fake is not None and fake.speak_connections else None


async def bench_v2v_framework(turns: int, tmp: Path) -> None:
    """Part 1b: the real app and transport, with scripted stages instead of SDKs and provider sockets."""
    from app_helpers import Client, serve_app
    from starlette.config import Config
    from voxline.apps.voice_agent import create_app
    from voxline.apps.voice_agent import session as session_module

    stamps = Stamps()
    session_module.build_processors = lambda settings, plan: scripted_stages(stamps)  # type: ignore[assignment]
    app = create_app(Config(environ={"LOG_LEVEL": "WARNING", "LOG_DIR": str(tmp)}), static_dir=tmp, preload=False)
    rows: list[float] = []
    async with serve_app(app) as url, Client.connect(url) as client:
        for turn in range(1, turns + 2):
            n = len(stamps.final_emitted)
            spoken = asyncio.create_task(_speak(client))
            await client.wait_message("status", "complete", count=turn, timeout=20)
            t0 = await spoken
            first_audio = next(t for t, m in client.log if m["type"] == "audio" and t > t0)
            synth = next(i for i, t in enumerate(stamps.synth_started) if t > stamps.clause_token[n])
            held = (
                (stamps.final_emitted[n] - stamps.voiced_arrival[n])
                + (stamps.clause_token[n] - stamps.llm_started[n])
                + (stamps.first_chunk[synth] - stamps.synth_started[synth])
            )
            if turn > 1:
                rows.append((first_audio - t0 - held) * 1000)
            await asyncio.sleep(0.1)
    emit(
        "v2v_overhead_framework",
        unit="ms",
        p50=round(pct(rows, 50), 2),
        p95=round(pct(rows, 95), 2),
        max=round(max(rows), 2),
        target_p95=5.0,
        turns=len(rows),
        includes="client WS hop in and out (loopback, same process), uvicorn, the transport, every voxline stage base",
        loop="asyncio",
        load_avg_1m=os.getloadavg()[0],
    )


class WireLog:
    """Bench-only probe inside the server: when the input read each interrupt, and when the writer handed
    each message to the socket (so "interrupt received -> last old audio sent" is timed where it happens)."""

    def __init__(self) -> None:
        from voxline.transports.input import WebSocketInput
        from voxline.transports.protocol import InterruptIn
        from voxline.transports.writer import SocketWriter

        self.interrupts: list[float] = []
        self.sent: list[tuple[float, str]] = []
        log = self
        handle = WebSocketInput._handle

        async def timed_handle(proc: Any, item: Any) -> None:
            if type(item) is InterruptIn:
                log.interrupts.append(time.monotonic())
            await handle(proc, item)

        init = SocketWriter.__init__

        def timed_init(writer: Any, send_text: Any, **kwargs: Any) -> None:
            async def timed_send(message: str) -> None:
                await send_text(message)
                log.sent.append((time.monotonic(), message[:40]))

            init(writer, timed_send, **kwargs)

        WebSocketInput._handle = timed_handle  # type: ignore[method-assign]
        SocketWriter.__init__ = timed_init  # type: ignore[method-assign]


async def bench_interrupt(trials: int, tmp: Path) -> None:
    from app_helpers import Client

    wire = WireLog()
    url, close, _ = await _agent(tmp, tts_chunk_bytes=2400, tts_chunk_interval=0.02, tts_seconds_per_char=0.08)
    delays: list[float] = []
    last_audio: list[float] = []
    gaps: list[float] = []  # interrupt read - last audio sent before it: shows the probe saw audio flowing
    late_audio = 0
    try:
        async with Client.connect(url) as client:
            for trial in range(1, trials + 2):
                await _speak(client)
                before = len(client.of_type("audio"))
                await client.wait_for(lambda ms, n=before: sum(m["type"] == "audio" for m in ms) >= n + 3, 20)
                t0 = time.monotonic()
                await client.send({"type": "interrupt"})
                await client.wait_message("status", "interrupted", timeout=5)
                t1 = [t for t, m in client.log if m == {"type": "status", "data": "interrupted"}][-1]
                await asyncio.sleep(0.3)
                if trial > 1:
                    delays.append((t1 - t0) * 1000)
                    received = wire.interrupts[-1]
                    status_sent = next(t for t, m in wire.sent if t >= received and '"interrupted"' in m)
                    audio = [t for t, m in wire.sent if m.startswith('{"type":"audio"') and t <= status_sent]
                    last_audio.append(max(0.0, (audio[-1] - received) * 1000) if audio else 0.0)
                    gaps.append((received - audio[-1]) * 1000 if audio else float("nan"))
                after = [m for t, m in client.log if t > t1 and m["type"] == "audio"]
                late_audio += len(after)
                client.log.clear()
    finally:
        await close()
    emit(
        "interrupt_to_last_audio_sent",
        unit="ms",
        p50=round(pct(last_audio, 50), 2),
        p95=round(pct(last_audio, 95), 2),
        max=round(max(last_audio), 2),
        target_p95=20.0,
        trials=len(last_audio),
        old_audio_after_status=late_audio,
        last_audio_before_interrupt_p50_ms=round(pct(gaps, 50), 2),
        client_interrupt_to_status_p50_ms=round(pct(delays, 50), 2),
        client_interrupt_to_status_p95_ms=round(pct(delays, 95), 2),
        loop="asyncio",
        load_avg_1m=os.getloadavg()[0],
    )


# --- 3: sessions per process ----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=["v2v", "interrupt", "sessions"])
    parser.add_argument("--ws", default="websockets-sansio", help="uvicorn WebSocket implementation (part 3)")
    parser.add_argument(
        "--first-chunk", choices=["early", "sentence"], default="early", help="the splitter's first chunk (part 1)"
    )
    args = parser.parse_args()
    if args.first_chunk == "sentence":  # as before: three words at a clause, no natural break
        import functools

        from voxline.aggregation import processor, splitter

        old = {"min_first_words": 3, "first_break_words": 1000}
        for cls in (splitter.SentenceSplitter, processor.SentenceAggregator):
            cls.__init__ = functools.partialmethod(cls.__init__, **old)  # type: ignore[method-assign]
    import tempfile

    # Parts 1 and 2 run the server, the fakes and the client in one asyncio loop: the fakes' HTTP server does
    # not run on uvloop (the app does: checked by hand with the fakes in a thread), so these figures are on
    # the slower default loop.
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "v2v"):
            asyncio.run(bench_v2v(3 if args.quick else 20, Path(tmp), args.first_chunk))
            asyncio.run(bench_v2v_framework(3 if args.quick else 20, Path(tmp)))
        if args.only in (None, "interrupt"):
            asyncio.run(bench_interrupt(3 if args.quick else 20, Path(tmp)))
    if args.only in (None, "sessions"):
        levels = [50, 150] if args.quick else [50, 100, 200, 300, 400, 500, 600, 800]
        for binary in (False, True):
            run_sessions(levels, 2.0 if args.quick else 5.0, args.ws, binary)


if __name__ == "__main__":
    main()
