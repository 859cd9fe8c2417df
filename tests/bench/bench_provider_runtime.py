"""Benchmark of the provider runtime: what a cloud session costs, what a dropped one leaves, how long a stall lasts.

Prints one JSON object per line. ``--quick`` runs fewer sessions (a smoke run).

* ``provider_runtime.sessions``: N sessions of ``DeepgramSTT → GeminiLLM → DeepgramTTS`` opened one after the
  other against the fakes (run in a child process, so their memory is not counted) and kept open, then closed.
  Reported per session: RSS growth while open and after closing (``/proc/self/statm``, after ``gc.collect()``),
  SSL contexts built (``ssl.SSLContext.__new__`` counted) and CPU time to build and start the pipeline. Ten
  sessions are opened and closed first, so one-time costs (imports, the shared clients) are not counted.
* ``provider_runtime.dropped``: N sessions whose client goes away in the middle of a Deepgram TTS reply (the
  output stuck, the provider still streaming), each cancelled: asyncio tasks, ``PipelineTask`` and
  ``AsyncDeepgramClient`` objects left afterwards, and the longest cancel.
* ``provider_runtime.first_token_stall``: a Gemini request (fake: first token after 0.4 s) that stalls before its
  first token, then a retry that answers: time from the user's turn to the first token, with the old fixed 15 s
  timeout and with the TTFT-following deadline, cold (no TTFT known) and after five timed turns.

Run: ``python tests/bench/bench_provider_runtime.py [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import multiprocessing as mp
import os
import ssl
import sys
import time
from multiprocessing.connection import Connection
from typing import Any

from voxline.frames import AudioFrame, Frame, MetricsFrame, SpeakTextFrame, TTSAudioFrame, UserTextFrame
from voxline.pipeline import Pipeline
from voxline.processor import Direction, Processor
from voxline.processors.deepgram import DeepgramSTT, DeepgramTTS
from voxline.processors.gemini import GeminiLLM
from voxline.providers.backoff import Backoff
from voxline.providers.clients import aclose_shared
from voxline.task import PipelineTask

LONG = "This sentence is long enough that the fake is still streaming its audio when the client goes away. " * 3
_SSL_BUILT = [0]


def emit(name: str, **values: Any) -> None:
    print(json.dumps({"bench": f"provider_runtime.{name}", **values, "load": round(os.getloadavg()[0], 2)}))


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def count_ssl_contexts() -> None:
    original = ssl.SSLContext.__new__

    def counting(cls: type[ssl.SSLContext], *args: Any, **kwargs: Any) -> ssl.SSLContext:
        _SSL_BUILT[0] += 1
        return original(cls, *args, **kwargs)

    ssl.SSLContext.__new__ = counting  # type: ignore[method-assign, assignment]


def serve_fakes(conn: Connection) -> None:
    """Child process: the fakes, until the parent says stop."""
    from voxline.testing.fakes.deepgram import FakeDeepgram
    from voxline.testing.fakes.gemini import FakeGemini

    deepgram = FakeDeepgram(api_key="d-key", transcripts=["Hello."]).start_in_thread()
    gemini = FakeGemini(api_key="g-key", replies="Hi there.").start_in_thread()
    conn.send((deepgram.base_url, gemini.url))
    conn.recv()


async def sessions(n: int) -> None:
    parent, child = mp.Pipe()
    fakes = mp.get_context("spawn").Process(target=serve_fakes, args=(child,), daemon=True)
    fakes.start()
    deepgram_url, gemini_url = parent.recv()
    audio = AudioFrame(pcm=b"\x00\x00" * 1600, sample_rate=16000)

    async def open_one() -> tuple[PipelineTask, asyncio.Task[None], DeepgramSTT, DeepgramTTS]:
        stt = DeepgramSTT(api_key="d-key", base_url=deepgram_url)
        tts = DeepgramTTS(api_key="d-key", base_url=deepgram_url)
        task = PipelineTask(Pipeline([stt, GeminiLLM(api_key="g-key", base_url=gemini_url), tts]))
        runner = asyncio.create_task(task.run())
        await task.wait_until_running()
        await task.queue_frame(audio)  # the listen socket opens with the first audio
        return task, runner, stt, tts

    async def connected(items: list[Any]) -> None:
        async with asyncio.timeout(60):
            while not all(stt.connections and tts.connections for _, _, stt, tts in items):  # noqa: ASYNC110
                await asyncio.sleep(0.01)

    async def close(items: list[Any]) -> None:
        for task, runner, *_ in items:
            await task.cancel()
            await runner

    warm = [await open_one() for _ in range(10)]
    await connected(warm)
    await close(warm)
    del warm
    gc.collect()
    await asyncio.sleep(0.5)
    base, ssl_before = rss_mib(), _SSL_BUILT[0]
    cpu = time.process_time()
    items = [await open_one() for _ in range(n)]
    cpu = time.process_time() - cpu
    await connected(items)
    gc.collect()
    await asyncio.sleep(0.5)
    open_rss, ssl_built = rss_mib(), _SSL_BUILT[0] - ssl_before
    await close(items)
    del items
    gc.collect()
    await asyncio.sleep(1.0)
    emit(
        "sessions",
        sessions=n,
        rss_per_open_session_mib=round((open_rss - base) / n, 3),
        rss_retained_per_closed_session_mib=round((rss_mib() - base) / n, 3),
        ssl_contexts_per_session=round(ssl_built / n, 2),
        cpu_ms_per_session_start=round(cpu / n * 1000, 2),
    )
    await aclose_shared()
    parent.send("stop")
    fakes.join(5)


class StuckOutput(Processor):
    """The output of a session whose client went away: pushing audio waits for ever."""

    def __init__(self) -> None:
        super().__init__()
        self.stuck = asyncio.Event()

    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, TTSAudioFrame):
            self.stuck.set()
            await asyncio.Event().wait()
        await self.push(frame, direction)


async def dropped(n: int) -> None:
    from voxline.testing.fakes.deepgram import FakeDeepgram

    logging.getLogger("voxline.processor").setLevel(logging.CRITICAL)  # "ignored cancellation" lines, if any
    async with FakeDeepgram(api_key="d-key", tts_seconds_per_char=0.02, tts_chunk_bytes=960) as fake:
        baseline = len(asyncio.all_tasks())
        longest = 0.0
        for _ in range(n):
            out = StuckOutput()
            task = PipelineTask(Pipeline([DeepgramTTS(api_key="d-key", base_url=fake.base_url), out]))
            runner = asyncio.create_task(task.run())
            await task.wait_until_running()
            await task.queue_frame(SpeakTextFrame(text=LONG))
            await asyncio.wait_for(out.stuck.wait(), 10)
            await asyncio.sleep(0.05)
            started = time.monotonic()
            await task.cancel("client gone")
            await runner
            longest = max(longest, time.monotonic() - started)
            del task, runner, out
        await asyncio.sleep(0.5)
        gc.collect()
        kinds = [type(o).__name__ for o in gc.get_objects()]
        emit(
            "dropped",
            sessions=n,
            tasks_before=baseline,
            tasks_after=len(asyncio.all_tasks()),
            pipeline_tasks_alive=kinds.count("PipelineTask"),
            deepgram_clients_alive=kinds.count("AsyncDeepgramClient"),
            longest_cancel_s=round(longest, 3),
        )
        await aclose_shared()


async def first_token_stall() -> None:
    from voxline.llm_retry import TTFT_HISTORY
    from voxline.testing.fakes.gemini import FakeGemini, Pacing

    async def stalled_turn(llm: GeminiLLM, fake: FakeGemini) -> float:
        fake.stall(after_tokens=0)
        task = PipelineTask(llm)
        first: list[float] = []
        task.on_downstream(lambda f: first.append(f.value) if isinstance(f, MetricsFrame) else None)
        runner = asyncio.create_task(task.run())
        await task.wait_until_running()
        await task.queue_frame(UserTextFrame(text="Are you there?"))
        async with asyncio.timeout(30):
            while not first:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        await task.cancel()
        await runner
        return first[0]

    async def timed_turns(llm: GeminiLLM, count: int) -> None:
        task = PipelineTask(llm)
        seen: list[Frame] = []
        task.on_downstream(seen.append)
        runner = asyncio.create_task(task.run())
        await task.wait_until_running()
        for i in range(count):
            await task.queue_frame(UserTextFrame(text=f"Question {i}"))
            while sum(isinstance(f, MetricsFrame) for f in seen) <= i:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        await task.cancel()
        await runner

    retry = Backoff(initial=0.2, maximum=2.0, attempts=3)
    async with FakeGemini(api_key="g-key", replies="Yes.", pacing=Pacing(first_token_delay=0.4)) as fake:
        old = GeminiLLM(api_key="g-key", base_url=fake.url, first_token_timeout=15.0, retry=retry)
        before = await stalled_turn(old, fake)
        TTFT_HISTORY.forget()
        cold = await stalled_turn(GeminiLLM(api_key="g-key", base_url=fake.url, retry=retry), fake)
        TTFT_HISTORY.forget()
        llm = GeminiLLM(api_key="g-key", base_url=fake.url, retry=retry)
        await timed_turns(llm, 5)
        deadline = llm.first_token_deadline()
        warm = await stalled_turn(llm, fake)
    emit(
        "first_token_stall",
        provider_ttft_s=0.4,
        fixed_15s_timeout_s=round(before, 2),
        ttft_following_cold_s=round(cold, 2),
        ttft_following_after_5_turns_s=round(warm, 2),
        learned_deadline_s=round(deadline, 2),
    )
    await aclose_shared()


async def main(quick: bool) -> None:
    await sessions(30 if quick else 300)
    await dropped(10 if quick else 100)
    await first_token_stall()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer sessions (a smoke run)")
    count_ssl_contexts()
    asyncio.run(main(parser.parse_args().quick))
    sys.exit(0)
