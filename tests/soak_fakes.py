"""The fake Deepgram and Gemini servers in a process of their own, for the soak test and benchmarks.

``python tests/soak_fakes.py`` prints one JSON line ``{"deepgram": URL, "gemini": URL}`` once both listen,
and serves until its stdin closes. In their own process the fakes' memory (they record what they receive)
does not count in the RSS of the server being soaked, and their CPU not in the server's; the records are
cleared every few seconds (the audio of open connections too: at real time a session sends 32 kB a second).

``--realistic`` gives the providers the app benchmark's delays (tests/bench/app_fixtures.py): STT final
150 ms after the last voiced audio (endpointing 100 ms), Gemini's first token after 400 ms then 40 tokens/s,
Aura's first byte 250 ms after Flush. Without it they answer at once (the soak test). With ``BENCH_AUDIO=speech``
(bench_capacity's spoken question) the fake STT writes that question as Deepgram's smart_format does. With
``BENCH_FAKES_STATS=PATH`` it appends to PATH, every 0.5 s, (monotonic time, audio messages the fake STT has
received so far) as two doubles: bench_capacity's messages toward Deepgram per session-second.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from array import array
from typing import Any


async def main(realistic: bool) -> None:
    from voxline.testing.fakes.deepgram import FakeDeepgram
    from voxline.testing.fakes.gemini import FakeGemini

    reply = "Sure thing, here is the forecast. It will be sunny all day."
    deepgram: dict[str, Any] = {"default_transcript": "what is the weather"}
    gemini: dict[str, Any] = {"replies": reply}
    if realistic:
        from voxline.testing.fakes._llm import Pacing

        deepgram.update(stt_final_delay=0.15, endpointing=0.1, tts_first_byte_delay=0.25)
        if os.environ.get("BENCH_AUDIO") == "speech":  # bench_capacity's spoken question, as Deepgram writes it
            # smart_format adds punctuation and capitalisation: developers.deepgram.com/docs/smart-format
            deepgram["default_transcript"] = "What is the capital of France?"
        gemini.update(pacing=Pacing.realistic())
    stats = os.environ.get("BENCH_FAKES_STATS")
    messages = 0
    async with FakeDeepgram(**deepgram) as dg, FakeGemini(**gemini) as gm:
        print(json.dumps({"deepgram": dg.base_url, "gemini": gm.url}), flush=True)
        loop = asyncio.get_running_loop()
        stdin_closed = loop.run_in_executor(None, sys.stdin.read)
        ticks = 0
        while not stdin_closed.done():
            await asyncio.wait([stdin_closed], timeout=0.5 if stats else 5)
            ticks += 1
            if stats:
                for connection in dg.connections:
                    messages += len(connection.audio_sizes)
                    connection.audio_sizes.clear()
                _append(stats, time.monotonic(), messages)
            if stats and ticks % 10:
                continue
            dg.connections[:] = [c for c in dg.connections if c.close_code is None]  # keep the open ones
            for connection in dg.connections:
                connection.audio.clear()
                connection.audio_sizes.clear()
            dg.rest_requests.clear()
            dg.attempts.clear()
            gm.requests.clear()


def _append(path: str, *values: float) -> None:
    """One tick of ``BENCH_FAKES_STATS`` (16 bytes: not worth a thread)."""
    with open(path, "ab") as f:
        array("d", values).tofile(f)


if __name__ == "__main__":
    asyncio.run(main("--realistic" in sys.argv[1:]))
