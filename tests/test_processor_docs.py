"""The code in docs/writing-a-processor.md runs: its blocks are executed in order and its checks called."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "writing-a-processor.md"


def _namespace() -> dict[str, Any]:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert len(blocks) >= 4, "the tutorial lost its code"
    namespace: dict[str, Any] = {"__name__": "tutorial"}
    exec(compile("\n".join(blocks), str(DOC), "exec"), namespace)
    return namespace


CHECKS = sorted(name for name in _namespace() if name.startswith("check_"))


def test_the_tutorial_has_checks() -> None:
    assert CHECKS == [
        "check_clap_counter",
        "check_counter",
        "check_parse_number",
        "check_save_transcripts",
        "check_shout",
    ]


@pytest.mark.parametrize("name", CHECKS)
async def test_tutorial_snippet_runs(name: str) -> None:
    await _namespace()[name]()
