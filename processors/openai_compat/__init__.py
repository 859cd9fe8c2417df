"""OpenAI-compatible chat completions (the official ``openai`` SDK): :class:`OpenAILLM`.

The package is ``openai_compat`` because a package named ``openai`` would shadow the SDK. Imported lazily:
importing this package loads neither the SDK nor the stage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from voxline.lazy import lazy_exports

__all__ = ["NO_KEY", "OpenAILLM"]

if TYPE_CHECKING:
    from voxline.processors.openai_compat.llm import NO_KEY, OpenAILLM

__getattr__ = lazy_exports(
    __name__, {"NO_KEY": "voxline.processors.openai_compat.llm", "OpenAILLM": "voxline.processors.openai_compat.llm"}
)
