"""The fake Deepgram and Gemini servers in a process of their own, for the soak test and benchmark.

``python tests/soak_fakes.py`` prints one JSON line ``{"deepgram": URL, "gemini": URL}`` once both listen,
and serves until its stdin closes. In their own process the fakes' memory (they record what they receive)
does not count in the RSS of the server being soaked; the records are cleared every few seconds.
"""

from __future__ import annotations

import asyncio
import json
import sys


async def main() -> None:
    from voxline.testing.fakes.deepgram import FakeDeepgram
    from voxline.testing.fakes.gemini import FakeGemini

    reply = "Sure thing, here is the forecast. It will be sunny all day."
    async with FakeDeepgram(default_transcript="what is the weather") as dg, FakeGemini(replies=reply) as gm:
        print(json.dumps({"deepgram": dg.base_url, "gemini": gm.url}), flush=True)
        loop = asyncio.get_running_loop()
        stdin_closed = loop.run_in_executor(None, sys.stdin.read)
        while not stdin_closed.done():
            await asyncio.wait([stdin_closed], timeout=5)
            dg.connections[:] = [c for c in dg.connections if c.close_code is None]  # keep the open ones
            dg.rest_requests.clear()
            dg.attempts.clear()
            gm.requests.clear()


if __name__ == "__main__":
    asyncio.run(main())
