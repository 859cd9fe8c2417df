"""The code in docs/writing-a-processor.md runs: its blocks are executed in order and its checks called."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from doc_code import checks_in, run_blocks

DOC = Path(__file__).resolve().parent.parent / "docs" / "writing-a-processor.md"


def _namespace() -> dict[str, Any]:
    return run_blocks(DOC, "tutorial", at_least=4)


CHECKS = checks_in(_namespace(), "tutorial")


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
