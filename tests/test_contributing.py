"""CONTRIBUTING.md's "Add a provider" recipe runs: its blocks are executed in order and its checks called."""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "CONTRIBUTING.md"


def _namespace() -> dict[str, Any]:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert len(blocks) >= 4, "the recipe lost its code"
    if str(ROOT / "examples") not in sys.path:
        sys.path.insert(0, str(ROOT / "examples"))  # the recipe imports the example provider
    namespace: dict[str, Any] = {"__name__": "contributing"}
    exec(compile("\n".join(blocks), str(DOC), "exec"), namespace)
    return namespace


CHECKS = sorted(
    name
    for name, value in _namespace().items()
    if name.startswith("check_") and getattr(value, "__module__", None) == "contributing"
)


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
