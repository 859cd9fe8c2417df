"""The built-in providers, in preference order: the one list the voice agent derives its settings from.

Order is meaning: ``auto`` takes the first cloud provider of a stage whose key is set, else the stage's first
local entry; the docs' settings table follows it too. To add a provider, write its package with a
``provider.py`` declaration and add it here (``CONTRIBUTING.md``).
"""

from __future__ import annotations

from voxline.processors.deepgram.provider import DEEPGRAM_STT, DEEPGRAM_TTS
from voxline.processors.gemini.provider import GEMINI
from voxline.processors.local.provider import ECHO, ESPEAK, LOCAL_STT, LOCAL_TTS, PIPER, POCKETSPHINX, WHISPER
from voxline.processors.openai_compat.provider import OPENAI
from voxline.registry import Registry
from voxline.registry.common import SYSTEM_PROMPT

__all__ = ["REGISTRY"]

REGISTRY = Registry(
    [
        DEEPGRAM_STT,
        LOCAL_STT,
        WHISPER,
        POCKETSPHINX,
        GEMINI,
        OPENAI,
        ECHO,
        DEEPGRAM_TTS,
        LOCAL_TTS,
        PIPER,
        ESPEAK,
    ],
    shared=(SYSTEM_PROMPT,),
)
