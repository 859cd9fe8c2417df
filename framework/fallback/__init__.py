"""Provider fallback: a stage over several providers of the same kind, switching when one fails.

* :class:`FallbackLLM` — ``FallbackLLM([GeminiLLM(...), OpenAILLM(...)])``: an LLM stage whose failed step goes
  to the next provider at once (:mod:`voxline.fallback.llm`).
* :class:`FallbackTTS` and :class:`FallbackSTT` — the same for speech (:mod:`voxline.fallback.stages`).
* :class:`Roster` — who serves, who is down, cooldown and health probes, the log line and metric of every
  switch (:mod:`voxline.fallback.roster`).

docs/fallback.md has the rules and an example.
"""

from __future__ import annotations

from voxline.fallback.llm import FALLBACK_RETRY, FallbackLLM
from voxline.fallback.roster import Roster, Switch
from voxline.fallback.stages import FallbackSTT, FallbackTTS

__all__ = ["FALLBACK_RETRY", "FallbackLLM", "FallbackSTT", "FallbackTTS", "Roster", "Switch"]
