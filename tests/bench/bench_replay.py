"""Replay speed: how much faster than real time a recorded session runs on virtual time.

Replays each recorded session of tests/data/sessions (barge-in, pause mid-sentence, provider drop) through the
voice agent's pipeline code on a :class:`voxline.recording.VirtualClockLoop` and prints, per session, one JSON
object: the session's length (virtual seconds), the wall time of the replay (median of ``--repeat`` runs, each a
fresh pipeline and event loop) and the ratio. Target: at least 20x real time (docs/performance.md). Wall time on a
shared 2-core machine is noisy under load (the load average is printed).

Run: ``python tests/bench/bench_replay.py [--quick] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
from pathlib import Path

from voxline.apps.voice_agent.replay import replay_middle
from voxline.recording import load_session, replay_session

SESSIONS = Path(__file__).resolve().parent.parent / "data" / "sessions"
TARGET = 20.0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="one run per session")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    logging.disable(logging.CRITICAL)  # the provider-drop session logs its recorded failure
    repeat = 1 if args.quick else max(1, args.repeat)
    for path in sorted(SESSIONS.glob("*.replay.jsonl.gz")):
        session = load_session(path)
        runs = [replay_session(session, middle=replay_middle(session)) for _ in range(repeat)]
        wall = statistics.median(r.wall_seconds for r in runs)
        virtual = runs[0].virtual_seconds
        print(
            json.dumps(
                {
                    "bench": "replay",
                    "session": path.name.removesuffix(".replay.jsonl.gz"),
                    "session_seconds": round(virtual, 2),
                    "replay_wall_ms": round(wall * 1000, 1),
                    "times_real_time": round(virtual / wall, 1),
                    "target": TARGET,
                    "turns": len(runs[0].turns),
                    "matches_recording": not runs[0].differences(),
                    "runs": repeat,
                    "load_average": round(os.getloadavg()[0], 2),
                }
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
