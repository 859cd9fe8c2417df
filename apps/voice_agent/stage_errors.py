"""The last provider error of each stage: on ``/health`` for the operator, as a ``stage_error`` message for the page.

When a provider fails — a refused key, an unknown voice, a dropped socket — its stage pushes an ``ErrorFrame``
up the pipeline and the client gets an ``error`` message (a sentence). That says what went wrong, not
where: this module keeps, per stage, the last such error of any session in the process (for ``/health``) and
tells the session's client in an additive message, ``{"type": "stage_error", "data": {"stage", "provider",
"message", "at"}}``, which the page shows next to the providers. Messages go through the secret redactor again:
no key, ever.

Which stage an error belongs to is read from the pipeline: the stages before the first LLM stage are the STT
side (a VAD, the STT, a turn detector), the LLM stage(s) the LLM, and everything after the LLM the TTS side; the
members of a fallback stage count as the stage they back up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from voxline.frames import ErrorFrame, Frame
from voxline.providers.redaction import redact

if TYPE_CHECKING:
    from voxline.processor import Processor
    from voxline.registry import Plan

__all__ = ["StageErrors", "stages_of"]


class StageErrors:
    """Per stage, the last provider error the process saw (see the module docstring)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self._last: dict[str, dict[str, Any]] = {}

    def record(self, stage: str, message: str, *, provider: str | None = None) -> dict[str, Any]:
        """Remember ``message`` as ``stage``'s last error; the entry (as sent to the page) is returned."""
        if provider is None:
            step = self.plan.stages.get(stage)  # type: ignore[call-overload]
            provider = step.provider.name if step is not None else ""
        entry = {"stage": stage, "provider": provider, "message": redact(message), "at": round(time.time(), 3)}
        self._last[stage] = entry
        return entry

    def last(self, stage: str) -> dict[str, Any] | None:
        """``{"provider", "message", "at"}`` of the stage's last error (``at``: Unix seconds), or None."""
        entry = self._last.get(stage)
        return None if entry is None else {k: v for k, v in entry.items() if k != "stage"}

    def watch(self, processors: Sequence[Processor], tell: Callable[[dict[str, Any]], None]) -> Callable[[Frame], None]:
        """A handler for ``PipelineTask.on_upstream``: records each stage's errors and ``tell``\\ s the client."""
        names = stages_of(processors)

        def on_upstream(frame: Frame) -> None:
            if isinstance(frame, ErrorFrame) and frame.source in names:
                tell(self.record(names[frame.source], frame.message))

        return on_upstream


def stages_of(processors: Sequence[Processor]) -> dict[str, str]:
    """Processor name → ``stt`` / ``llm`` / ``tts`` (see the module docstring)."""
    from voxline.llm import LLMProcessor

    names: dict[str, str] = {}
    side = "stt"
    for processor in processors:
        if isinstance(processor, LLMProcessor):
            side = "llm"
        elif side == "llm":
            side = "tts"
        names[processor.name] = side
        for member in getattr(processor, "members", ()):
            names[member.name] = side
    return names
