"""CONTRIBUTING.md's "Add a provider" recipe runs: its blocks are executed in order and its checks called."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

import pytest
from doc_code import checks_in, run_blocks

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "CONTRIBUTING.md"


def _namespace() -> dict[str, Any]:
    if str(ROOT / "examples") not in sys.path:
        sys.path.insert(0, str(ROOT / "examples"))  # the recipe imports the example provider
    return run_blocks(DOC, "contributing", at_least=4)


CHECKS = checks_in(_namespace(), "contributing")


def test_the_recipe_has_checks() -> None:
    assert CHECKS == [
        "check_health",
        "check_the_plan_and_the_pipeline",
        "check_the_settings_and_the_choices",
        "check_the_stage_speaks",
        "check_voxline_check",
    ]


@pytest.mark.parametrize("name", CHECKS)
async def test_recipe_step_runs(name: str) -> None:
    check = _namespace()[name]
    if inspect.iscoroutinefunction(check):
        await check()
    else:
        check()


def test_the_recipe_declares_what_the_example_declares() -> None:
    import tone_provider

    recipe = _namespace()["TONE"]
    example = tone_provider.TONE
    for field in ("stage", "name", "title", "cloud", "extra"):
        assert getattr(recipe, field) == getattr(example, field), field
    assert [s.name for s in recipe.settings] == [s.name for s in example.settings]
