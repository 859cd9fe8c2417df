"""The core benchmark runs (``--quick``) and prints the JSON lines nox -s bench and docs rely on.

Nothing here asserts speed: targets live in the benchmark output, not in tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent / "bench" / "bench_core.py"
EXPECTED = {
    "w1_throughput",
    "w1_throughput_with_observer",
    "w1_throughput_queued_stages",
    "w2_latency_p99",
    "w2_latency_queue_frame_p99",
    "w3_interrupt_p95",
    "w3_stale_frames",
    "w4_memory_per_pipeline",
    "w4_tasks_per_pipeline",
    "w4_start_100_pipelines",
    "import_voxline",
    "import_voxline_task",
}


def test_quick_run_prints_one_valid_json_object_per_line() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH), "--quick"], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert {line["name"] for line in lines} == EXPECTED
    for line in lines:
        assert line["bench"] == "core"
        assert isinstance(line["value"], (int, float)) and line["value"] >= 0
        assert isinstance(line["unit"], str) and line["unit"]
        assert line["target"] is None or isinstance(line["target"], (int, float))
        assert line["ok"] in (True, False, None)
        assert (line["ok"] is None) == (line["target"] is None)
    by_name = {line["name"]: line for line in lines}
    assert by_name["w3_interrupt_p95"]["stale_frames"] == by_name["w3_stale_frames"]["value"]
