"""The browser page's JavaScript unit tests (tests/js/*.test.js) under Node's built-in test runner.

They drive the page's protocol state machine, codec and uplink with plain objects, no browser. Running them from
pytest puts them in ./test.sh; `npm test` runs the same files directly.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
JS_TESTS = sorted((ROOT / "tests" / "js").glob("*.test.js"))


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
