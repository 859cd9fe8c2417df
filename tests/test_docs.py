"""README and docs stay true to the code: the quick start, and the settings table the app actually reads."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _settings_table(text: str) -> str:
    start = text.index("| Variable |")
    return text[start : text.index("\n\n", start)]


def test_quick_start_is_exactly_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("```", 2)[1]
    commands = [line.split("#")[0].strip() for line in section.splitlines()[1:] if line.strip()]
    assert commands == ["./start.sh", "./test.sh"]
    assert "./test.sh" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("doc", ["README.md", "docs/configuration.md"])
def test_the_settings_table_is_the_registry(doc: str) -> None:
    """Both tables are derived from the declarations: `voxline settings --write README.md docs/configuration.md`."""
    from voxline.apps.voice_agent.config import agent_settings
    from voxline.registry.settings import settings_table

    assert _settings_table((ROOT / doc).read_text()) == settings_table(agent_settings())


def test_every_setting_the_app_reads_is_in_the_table() -> None:
    from starlette.config import Config
    from voxline.apps.voice_agent.config import Settings

    read: list[str] = []

    class Recording(Config):
        def __call__(self, key: str, cast: object = None, default: object = None) -> object:  # type: ignore[override]
            read.append(key)
            return default

    Settings.from_config(Recording(environ={}))
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)`", _settings_table((ROOT / "README.md").read_text()), re.M))
    assert len(read) > 25 and set(read) == documented


def test_readme_example_runs_and_prints_what_it_says() -> None:
    readme = (ROOT / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    print_line = next(line for line in code.splitlines() if "print(" in line)
    expected = print_line.split("# ", 1)[1].strip()  # the README shows the output as a comment
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == expected
