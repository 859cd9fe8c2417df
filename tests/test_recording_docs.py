"""docs/recording.md's example runs (as tests/test_feature_docs.py does for tools and fallback; a replay runs its
own event loop, so the checks are called outside any)."""

from __future__ import annotations

from pathlib import Path

import pytest
from doc_code import checks_in, run_blocks

DOC = Path(__file__).resolve().parent.parent / "docs" / "recording.md"
NAMESPACE = run_blocks(DOC, "recording_doc", at_least=1)


@pytest.mark.parametrize("name", checks_in(NAMESPACE, "recording_doc"))
def test_the_example_runs(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DOC.parent.parent)
    NAMESPACE[name]()


def test_the_page_has_its_check() -> None:
    assert checks_in(NAMESPACE, "recording_doc") == ["check_a_recorded_barge_in_replays_with_the_same_decisions"]
