"""README and docs stay true to the code: the quick start, and the settings table the app actually reads."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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


def test_readme_settings_table_is_the_configuration_docs_table() -> None:
    readme = (ROOT / "README.md").read_text()
    docs = (ROOT / "docs" / "configuration.md").read_text()
    assert _settings_table(readme) == _settings_table(docs)


def test_every_setting_the_app_reads_is_documented() -> None:
    source = (ROOT / "apps" / "voice_agent" / "config.py").read_text()
    read = set(re.findall(r'(?:config\(|\(config, )\s*"([A-Z][A-Z0-9_]+)"', source))
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)`", _settings_table((ROOT / "README.md").read_text()), re.M))
    assert len(read) > 20, f"found only {sorted(read)}: did config.py change how it reads settings?"
    assert read - documented == set()


def test_readme_example_runs_and_prints_what_it_says() -> None:
    readme = (ROOT / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    print_line = next(line for line in code.splitlines() if "print(" in line)
    expected = print_line.split("# ", 1)[1].strip()  # the README shows the output as a comment
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == expected
