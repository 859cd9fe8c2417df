"""A whole TTS provider in one file: a stage that speaks in beeps, and its registry declaration.

CONTRIBUTING.md ("Add a provider") walks through it. The stage, :class:`ToneTTS`, is a request/response
``TTSProcessor``: ``synthesize()`` yields PCM for one sentence — here one short tone per syllable, falling in
pitch at the end of the sentence, so you can hear the rhythm of a reply with no model and no network. The
declaration, :data:`TONE`, is everything the voice agent needs to offer it as ``TTS_PROVIDER=tone``: its
setting (``TONE_PITCH``), how to build it, what ``/health`` says about it. ``voxline check`` round-trips it
with the generic TTS check (one sentence, audio back); the settings table, the ``TTS_PROVIDER`` choices and
``TTS_FALLBACK`` pick it up from the declaration.

Run it to see the registry take it in:

    .venv/bin/python examples/tone_provider.py            # the settings row, the plan, a check
    .venv/bin/python examples/tone_provider.py --serve    # the voice agent with TTS_PROVIDER=tone

In the tree it would be ``processors/tone.py`` plus one line in ``processors/registry.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import re
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from voxline.processor import Processor
from voxline.registry import Provider, Values
from voxline.registry.settings import Setting, number
from voxline.tts import TTSProcessor

__all__ = ["PITCH", "TONE", "ToneTTS"]

SYLLABLE = 0.12  # seconds of tone per syllable
GAP = 0.04  # seconds of silence after each one


class ToneTTS(TTSProcessor):
    """Speaks each sentence as beeps, one per syllable (a vowel group), at ``pitch`` Hz; the last falls a fifth."""

    def __init__(self, *, pitch: float = 440.0, sample_rate: int = 24000, name: str | None = None) -> None:
        super().__init__(sample_rate=sample_rate, name=name)
        self.pitch = pitch

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        syllables = max(1, len(re.findall(r"[aeiouy]+", text.lower())))
        for i in range(syllables):
            last = i == syllables - 1 and text.rstrip().endswith((".", "!", "?"))
            yield self._beep(self.pitch * (2 / 3 if last else 1))
            await asyncio.sleep(0)  # one beep at a time: an interrupt stops the sentence between two

    def _beep(self, hz: float) -> bytes:
        rate = self.sample_rate
        t = np.arange(int(SYLLABLE * rate)) / rate
        fade = np.minimum(1.0, np.minimum(t, SYLLABLE - t) / 0.01)  # 10 ms ramps: no clicks
        tone = 0.3 * np.sin(2 * math.pi * hz * t) * fade
        pcm = np.concatenate([tone, np.zeros(int(GAP * rate))])
        return (pcm * 32767).astype("<i2").tobytes()


# --- the declaration: what the voice agent needs to know ----------------------------------------------------

PITCH = Setting("TONE_PITCH", number(50, 2000), 440.0, "Pitch of the `tone` TTS's beeps, in Hz.")


def build(values: Values) -> list[Processor]:
    return [ToneTTS(pitch=values[PITCH])]


def describe(values: Values) -> dict[str, Any]:
    return {"model": f"sine {values[PITCH]:g} Hz"}


TONE = Provider(
    stage="tts",
    name="tone",
    title="beeps, one per syllable (examples/tone_provider.py)",
    build=build,
    settings=(PITCH,),
    describe=describe,
)


# --- the demonstration ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", action="store_true", help="run the voice agent with TTS_PROVIDER=tone")
    parser.add_argument("--port", type=int, default=8000, help="port for --serve (default 8000)")
    args = parser.parse_args()

    from voxline.apps.voice_agent.config import Settings, agent_settings, default_registry
    from voxline.registry.check import check_provider, format_lines
    from voxline.registry.settings import settings_table

    registry = default_registry().extended(TONE)
    config = {"TTS_PROVIDER": "tone", "LLM_PROVIDER": "echo", "LOG_DIR": ""}
    if args.serve:
        import uvicorn
        from starlette.config import Config
        from voxline.apps.voice_agent import create_app

        uvicorn.run(create_app(Config(environ=config), registry=registry), port=args.port, log_config=None)
        return

    print("tts providers:", ", ".join(e.name for e in registry.of("tts")))
    row = next(line for line in settings_table(agent_settings(registry)).splitlines() if "TONE_PITCH" in line)
    print("settings table:", row)
    settings = Settings.from_config(config, registry)
    plan = settings.plan()
    print("plan: TTS_PROVIDER=tone ->", plan.provider("tts").name, describe(settings.values))
    line = asyncio.run(check_provider("tts", plan.provider("tts"), settings.values))
    print("voxline check:", format_lines([line]))


if __name__ == "__main__":
    main()
