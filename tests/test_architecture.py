"""docs/architecture.md's "Where things live" covers every module of the tree, and names none that is gone."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _rows() -> dict[str, str]:
    text = (ROOT / "docs" / "architecture.md").read_text().split("## Where things live", 1)[1]
    return {m.group(1): m.group(2) for m in re.finditer(r"^\| `([^`]+)` \| (.*) \|$", text, re.M)}


def _modules() -> list[str]:
    files = subprocess.run(
        ["git", "ls-files", "framework", "processors", "apps"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    untracked = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard", "framework", "processors", "apps"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return sorted(f for f in {*files, *untracked} if f.endswith(".py") and (ROOT / f).exists())


def _covered(module: str, rows: dict[str, str]) -> bool:
    if module in rows:
        return True
    folder, name = module.rsplit("/", 1)
    row = rows.get(folder + "/")
    return row is not None and (name == "__init__.py" or f"`{name}`" in row)


def test_every_module_is_in_the_map() -> None:
    rows = _rows()
    assert [m for m in _modules() if not _covered(m, rows)] == []


def test_the_map_names_only_what_exists() -> None:
    rows = _rows()
    missing = [path for path in rows if not (ROOT / path).exists()]
    named = [
        f"{folder}{name}"
        for folder, row in rows.items()
        if folder.endswith("/") and not folder.endswith("static/")
        for name in re.findall(r"`([a-z_]+\.py)`", row)
        if not (ROOT / folder / name).exists()
    ]
    assert missing == [] and named == []
