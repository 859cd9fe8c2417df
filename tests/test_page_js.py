"""The browser page's JavaScript unit tests (tests/js/*.test.js) under Node's built-in test runner, and the page's
module map in docs/browser-client.md kept true to apps/voice_agent/static/.

The Node tests drive the page's protocol state machine, codec and uplink with plain objects, no browser. Running
them from pytest puts them in ./test.sh; `npm test` runs the same files directly.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
JS_TESTS = sorted((ROOT / "tests" / "js").glob("*.test.js"))
STATIC = ROOT / "apps" / "voice_agent" / "static"


def test_page_modules_pass_their_node_tests() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("needs Node.js >= 20.19 (run scripts/bootstrap.sh dev)")
    assert JS_TESTS, "no tests/js/*.test.js found"
    done = subprocess.run(
        [node, "--test", "--test-reporter=tap", *map(str, JS_TESTS)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = done.stdout + done.stderr
    counts = {k: int(v) for k, v in re.findall(r"^# (tests|pass|fail) (\d+)$", done.stdout, re.M)}
    assert done.returncode == 0 and counts.get("fail") == 0, report
    assert counts.get("pass", 0) == counts.get("tests", -1) > 0, report  # every test ran and passed


def test_module_map_names_every_page_file_and_every_module_is_type_checked() -> None:
    doc = (ROOT / "docs" / "browser-client.md").read_text()
    table = doc[doc.index("| file | job |") : doc.index("\n\n", doc.index("| file | job |"))]
    mapped = set(re.findall(r"`([\w.-]+\.(?:js|html|css))`", table))
    assert mapped == {p.name for p in STATIC.iterdir() if p.is_file()}
    unchecked = [p.name for p in sorted(STATIC.glob("*.js")) if not p.read_text().startswith("// @ts-check\n")]
    assert unchecked == []
