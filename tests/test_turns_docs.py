"""docs/turn-taking.md's code runs: every ```python block, in order, in one namespace."""

from __future__ import annotations

from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "turn-taking.md"


def test_the_turn_taking_doc_examples_run() -> None:
    pytest.importorskip("pocketsphinx")
    blocks = [part.split("```", 1)[0] for part in DOC.read_text().split("```python\n")[1:]]
    assert len(blocks) >= 3
    namespace: dict[str, object] = {"__name__": "turn_taking_doc"}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)
    assert "pipeline" in namespace and "engine" in namespace
