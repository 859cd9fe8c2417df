"""The reply-path benchmark runs (``--quick``) and prints the JSON lines docs/performance.md records.

Nothing here asserts speed: the figures live in the benchmark's output.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent / "bench" / "bench_reply_path.py"


def test_quick_run_prints_each_figure_for_both_detectors() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH), "--quick"], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    lines = {line["name"]: line for line in map(json.loads, out.splitlines())}
    assert set(lines) == {"reply_chunk", "echo_played", "echo_check_in_reply", "echo_realign"}
    assert set(lines["reply_chunk"]["per_chunk"]) == {"no_listener", "lazy", "eager"}
    for name in ("echo_check_in_reply", "echo_realign"):
        assert set(lines[name]["per_call"]) == {"lazy", "eager"}
        assert all(value > 0 for value in lines[name]["per_call"].values())
