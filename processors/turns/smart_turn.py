"""smart-turn v3.2: an audio end-of-turn model (Whisper-tiny encoder + classifier, 8.7 MB int8 ONNX, BSD-2).

The model file ships inside the ``pipecat-ai`` 1.14.0 wheel (``pipecat/audio/turn/smart_turn/data/``). That
wheel is installed **without its dependencies** (``python -m voxline.processors.turns.install``, which pins
the version and the wheel's hash; ``scripts/bootstrap.sh`` runs it): voxline only reads the ONNX file from
it and never imports ``pipecat``. Inference needs ``onnxruntime`` (in the ``local`` and ``turns`` extras)
and the numpy Whisper front end in :mod:`voxline.processors.turns.features`.

Cost and sharing: one ONNX session per process (8.7 MB model, ~45 ms to load), shared by every session
(``InferenceSession.run`` is thread-safe); calls run on one process-wide worker thread, so sessions queue
rather than fight for the 2 cores, and the event loop never waits. About 55-65 ms of CPU per call on one thread:
the ONNX encoder ~50 ms, the features 4-15 ms (docs/performance.md "Capacity").

It implements :class:`voxline.turns.EndOfTurnModel`: hand a :class:`SmartTurnModel` to
``TurnProcessor(model=...)``.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from voxline.processors.turns.features import RATE, WINDOW_SECONDS, log_mel

__all__ = ["INSTALL_HINT", "SmartTurnModel", "model_path"]

DISTRIBUTION = "pipecat-ai"
VERSION = "1.14.0"
MODEL_FILE = "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
INSTALL_HINT = (
    "the smart-turn model ships in the pipecat-ai 1.14.0 wheel, installed without its dependencies: "
    "python -m voxline.processors.turns.install (and pip install onnxruntime)"
)

_LOCK = threading.Lock()
_SESSIONS: dict[tuple[str, int], Any] = {}
_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smart-turn")


def model_path() -> Path:
    """Where the installed wheel put the ONNX file (found through the package metadata, without importing)."""
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise ImportError(INSTALL_HINT) from None
    path = Path(str(dist.locate_file(MODEL_FILE)))
    if not path.is_file():
        raise ImportError(f"{DISTRIBUTION} {dist.version} has no {MODEL_FILE}; {INSTALL_HINT}")
    return path


def _session(path: Path, threads: int) -> Any:
    """The process's ONNX session for ``path`` (loaded on first use; call off the event loop)."""
    key = (str(path), threads)
    with _LOCK:
        session = _SESSIONS.get(key)
        if session is None:
            try:
                import onnxruntime as ort
            except ImportError as exc:
                raise ImportError(f"smart-turn needs onnxruntime: pip install onnxruntime ({exc})") from exc
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            session = _SESSIONS[key] = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        return session


class SmartTurnModel:
    """The smart-turn v3.2 end-of-turn model. Cheap to construct; the ONNX session is loaded once per process.

    ``threads``: onnxruntime intra-op threads per call (1 leaves the other core to the STT and the loop).
    """

    sample_rate = RATE
    max_seconds = float(WINDOW_SECONDS)

    def __init__(self, path: str | Path | None = None, *, threads: int = 1) -> None:
        if threads < 1:
            raise ValueError(f"SmartTurnModel.threads must be >= 1, got {threads}")
        self.path = Path(path) if path is not None else model_path()
        if not self.path.is_file():
            raise FileNotFoundError(f"no smart-turn model at {self.path}")
        self.threads = threads

    def load(self) -> None:
        """Load the ONNX session now (blocking; done on first use otherwise)."""
        _session(self.path, self.threads)

    async def warm_up(self) -> None:
        """Load the session and run one call on the worker thread, so the first turn pays for neither."""
        await asyncio.get_running_loop().run_in_executor(_EXECUTOR, self.predict, np.zeros(RATE, np.float32))

    def predict(self, audio: np.ndarray) -> float:
        """Probability that the turn is complete, from float32 16 kHz mono ``audio`` (blocking)."""
        features = log_mel(audio)[None, :, :]
        session = _session(self.path, self.threads)
        (output,) = session.run(None, {"input_features": features})
        value = float(np.asarray(output).reshape(-1)[0])
        return value if 0.0 <= value <= 1.0 else float(1.0 / (1.0 + np.exp(-value)))

    async def analyze(self, audio: np.ndarray) -> float:
        """:meth:`predict` on the process-wide model thread."""
        return await asyncio.get_running_loop().run_in_executor(_EXECUTOR, self.predict, audio)
