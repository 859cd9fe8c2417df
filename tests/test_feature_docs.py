"""The code in docs/tools.md, docs/fallback.md and docs/testing.md runs: each page's blocks are executed in order
and its checks called (as test_processor_docs.py does for the tutorial)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = {
    "tools.md": {
        "check_a_tool_is_still_a_function",
        "check_a_turn_with_a_tool_call",
        "check_parallel_calls_and_a_reply_function",
    },
    "fallback.md": {"check_a_failing_primary_hands_the_turn_to_the_secondary"},
    "testing.md": {
        "check_a_barge_in_drops_the_old_reply",
        "check_a_pipeline_fed_step_by_step",
        "check_steps_wait_for_the_output",
    },
}


def _namespace(page: str) -> dict[str, Any]:
    doc = DOCS / page
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(), flags=re.DOTALL)
    assert blocks, f"{page} lost its code"
    namespace: dict[str, Any] = {"__name__": page.removesuffix(".md")}
    exec(compile("\n".join(blocks), str(doc), "exec"), namespace)
    return namespace


CHECKS = [(page, name) for page in sorted(PAGES) for name in sorted(_namespace(page)) if name.startswith("check_")]


def test_every_page_has_its_checks() -> None:
    for page, names in PAGES.items():
        assert {name for p, name in CHECKS if p == page} == names, page


@pytest.mark.parametrize(("page", "name"), CHECKS)
async def test_doc_snippet_runs(page: str, name: str) -> None:
    await _namespace(page)[name]()
