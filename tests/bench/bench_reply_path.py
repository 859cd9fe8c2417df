"""The reply's audio path in the server, per chunk of TTS audio. One JSON object per line on stdout.

Run: ``python tests/bench/bench_reply_path.py`` (``--quick``: a smoke run; ``--chunk-bytes N``: Aura's chunk
size, 4800 as the fake Deepgram sends — Deepgram does not document the real one). Each figure is CPU time
(``process_time``) of the same operation repeated back to back, median of 5 runs, with the session's echo
detector as it is (``lazy``) and as it was before it kept the played audio lazily (``eager``:
``tests/echo_eager.py``), alternating, so that the two compare on a shared machine:

* ``reply_chunk`` — one Aura chunk from ``DeepgramTTS._on_audio`` through ``push_audio``, the
  ``TTSAudioFrame``, ``WebSocketOutput._audio`` (the ``audio`` message's base64, the writer, the playback clock
  and the echo detector it tells) to the writer's task handing the message to a socket that does nothing.
  ``no_listener``: the same without an echo detector.
* ``echo_played`` — ``EchoDetector.played`` alone.
* ``echo_check_in_reply`` — the first ``echo_share`` (0.3 s of microphone) 1.5 s into a 3 s reply that was sent
  at once: the turn engine's check at a VAD start while the bot talks (lazily, it resamples the stretch it
  searches first). ``echo_realign``: the page's first ``played`` report moving the whole run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from voxline.processor import link
from voxline.processors.deepgram.tts import DeepgramTTS, _Segment
from voxline.transports import WebSocketTransport
from voxline.turns import EchoDetector

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from echo_eager import EagerEchoDetector  # tests/, not a package

DETECTORS: dict[str, Callable[[], Any]] = {"lazy": EchoDetector, "eager": EagerEchoDetector}


def emit(name: str, **fields: Any) -> None:
    print(json.dumps({"bench": "reply_path", "name": name, **fields}), flush=True)


def median_of(runs: int, measure: Callable[[], float]) -> float:
    return round(statistics.median(measure() for _ in range(runs)), 2)


class NullSocket:
    async def send_text(self, data: str) -> None:
        pass


async def reply_chunks(chunks: list[bytes], detector: Callable[[], Any] | None) -> float:
    """µs of CPU per chunk through the server's reply path (see the module docstring)."""
    transport = WebSocketTransport(NullSocket())  # type: ignore[arg-type]
    transport.writer.max_pending = len(chunks) + 8
    if detector is not None:
        transport.playback.listener = detector()
    output = transport.output()
    tts = DeepgramTTS(api_key="bench", base_url="http://127.0.0.1:9")
    link([tts, output])
    transport.writer.start()
    tts._segments.append(_Segment(epoch=0, text="A reply.", sent_at=time.monotonic()))
    await tts._on_audio(chunks[0])  # the reply's start (TTFB metric, started frames) is not per chunk
    await asyncio.sleep(0.01)
    started = time.process_time()
    for chunk in chunks[1:]:
        await tts._on_audio(chunk)
    await transport.writer.aclose(flush_timeout=30.0)  # returns once the writer's task has sent everything
    cpu = time.process_time() - started
    await output.on_stop()
    return cpu / (len(chunks) - 1) * 1e6


def played(chunks: list[bytes], detector: Callable[[], Any]) -> float:
    d, at = detector(), 10.0
    started = time.process_time()
    for chunk in chunks:
        d.played(chunk, 24000, at)
        at += len(chunk) / 48000
    return (time.process_time() - started) / len(chunks) * 1e6


def one_call(reply: list[bytes], detector: Callable[[], Any], call: str) -> float:
    d, at = detector(), 10.0
    for chunk in reply:
        d.played(chunk, 24000, at)
        at += len(chunk) / 48000
    mic = (np.random.default_rng(2).standard_normal(4800) * 0.1).astype(np.float32)
    started = time.process_time()
    if call == "check":
        d.echo_share(mic, 11.5)
    else:
        d.realign(10.3, 0.08, 10.0)
    return (time.process_time() - started) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--chunk-bytes", type=int, default=4800)
    args = parser.parse_args()
    size, runs = args.chunk_bytes, 2 if args.quick else 5
    count = 50 if args.quick else 600
    rng = np.random.default_rng(1)
    audio = (rng.standard_normal(count * size // 2 + 24000 * 3) * 3000).astype("<i2").tobytes()
    chunks = [audio[i : i + size] for i in range(0, count * size, size)]
    reply = [audio[i : i + size] for i in range(0, 24000 * 3 * 2, size)]
    common = {"chunk_bytes": size, "chunk_ms": round(size / 48, 1), "unit": "us", "runs": runs}
    path: dict[str, list[float]] = {"no_listener": [], "lazy": [], "eager": []}
    for _ in range(runs):  # alternating, so that all three see the same moments of a shared machine
        for kind, detector in (("no_listener", None), *DETECTORS.items()):
            path[kind].append(asyncio.run(reply_chunks(chunks, detector)))
    emit("reply_chunk", per_chunk={k: round(statistics.median(v), 2) for k, v in path.items()}, **common)
    per_chunk = {k: median_of(runs, lambda d=d: played(chunks, d)) for k, d in DETECTORS.items()}
    emit("echo_played", per_chunk=per_chunk, **common)
    for call, name in (("check", "echo_check_in_reply"), ("realign", "echo_realign")):
        per_call = {k: median_of(3 * runs, lambda d=d, c=call: one_call(reply, d, c)) for k, d in DETECTORS.items()}
        emit(name, per_call=per_call, **common)


if __name__ == "__main__":
    main()
