"""What this machine charges a process for working in short bursts: the capacity benchmark's calibration.

A server with few sessions does a little work at every event (a 20 ms audio message, a lag-probe tick) and
sleeps in between. On the shared 2-vCPU VM the team measures on (a Firecracker guest on a host shared with
other guests), such a burst costs several times the CPU the same work costs back to back: its code and data
are no longer in the caches when it runs, and what that costs depends on what else the host and the guest ran
meanwhile — not on the guest's load average. :func:`measure` times one fixed unit of Python work (JSON parsing
and a small numpy product, like an audio message's) back to back and then once every 20 ms, sleeping between,
and reports both. The benchmark emits them beside its levels, so a single session's figure — which is mostly
this tax — can be read against the machine it was measured on.

``python tests/bench/wake_tax.py [SECONDS]`` prints the JSON line alone.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import numpy as np

INTERVAL = 0.02
_DATA = np.linspace(-1.0, 1.0, 64 * 64, dtype=np.float32).reshape(64, 64)
_MESSAGE = json.dumps({"type": "audio", "data": "A" * 856})  # a 20 ms chunk of 16 kHz PCM, base64


def _unit() -> float:
    for _ in range(20):
        json.loads(_MESSAGE)
    return float((_DATA @ _DATA).sum())


def _cpu_per_unit(interval: float, seconds: float) -> float:
    """Mean CPU seconds per unit, one unit every ``interval`` s (0: back to back) for ``seconds``."""
    count, start, end = 0, time.process_time(), time.monotonic() + seconds
    while time.monotonic() < end:
        _unit()
        count += 1
        if interval:
            time.sleep(interval)
    return (time.process_time() - start) / count


def measure(seconds: float = 4.0) -> dict[str, Any]:
    """CPU per unit back to back and every 20 ms (µs), their ratio, and the load average."""
    _cpu_per_unit(0.0, 0.2)  # warm up: imports, numpy's first call
    tight = _cpu_per_unit(0.0, seconds / 2)
    bursts = _cpu_per_unit(INTERVAL, seconds / 2)
    return {
        "unit_cpu_us_back_to_back": round(tight * 1e6, 1),
        "unit_cpu_us_every_20ms": round(bursts * 1e6, 1),
        "burst_tax": round(bursts / tight, 1),
        "load_avg_1m": os.getloadavg()[0],
    }


if __name__ == "__main__":
    print(json.dumps({"bench": "wake_tax", **measure(float(sys.argv[1]) if len(sys.argv) > 1 else 4.0)}))
