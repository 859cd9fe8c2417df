"""The distribution maps three folders onto one `voxline` namespace; make sure nothing falls out of it."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROOTS = {"framework": "voxline", "processors": "voxline.processors", "apps": "voxline.apps"}


def _declared() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return set(config["tool"]["setuptools"]["packages"])


def test_every_package_folder_is_declared() -> None:
    found = set()
    for folder, namespace in ROOTS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([namespace, *rel.parts]))
    assert found == _declared()


def test_imports_point_one_way() -> None:
    """framework never imports processors or apps; processors never import apps."""
    offenders = []
    for folder, banned in (("framework", ("voxline.processors", "voxline.apps")), ("processors", ("voxline.apps",))):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            offenders += [
                f"{path.relative_to(ROOT)} imports {b}" for b in banned if f"import {b}" in text or f"from {b}" in text
            ]
    assert offenders == []


def test_import_voxline_is_lazy() -> None:
    """`import voxline` must not pull in provider SDKs, numpy or the web stack."""
    code = (
        "import sys, voxline, voxline.task, voxline.frames;"
        "heavy = [m for m in ('numpy', 'deepgram', 'google.genai', 'starlette', 'soxr', 'openai') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_the_version_is_written_once() -> None:
    import importlib.metadata

    import voxline

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in config["project"] and "version" in config["project"]["dynamic"]
    assert config["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "voxline.__version__"}
    assert importlib.metadata.version("voxline") == voxline.__version__
    changelog = (ROOT / "CHANGELOG.md").read_text()
    released = [line[3:] for line in changelog.splitlines() if line.startswith("## ") and line != "## Unreleased"]
    assert released[0] == voxline.__version__  # the newest release in the changelog is this one
