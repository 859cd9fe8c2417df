"""What the process-wide local engines (whisper, piper) share: one model, loaded once, on a shared pool.

A model that many sessions use at once (CTranslate2 and onnxruntime run calls of one model in parallel) is
loaded once per engine, in a worker thread (the event loop never waits on a load), under a lock so that two
sessions starting together load it only once. :class:`LoadedOnce` holds that logic and the counters tests and
benchmarks read; a subclass says how to load its model in :meth:`LoadedOnce._load_model`.

Models that hold per-stream state (pocketsphinx, Silero VAD) cannot be shared: they use
:class:`~voxline.processors.local.pool.ModelPool` instead, one instance per session.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any, ClassVar, Generic, Self, TypeVar

from voxline.processors.local.workers import WorkerPool

__all__ = ["LoadedOnce"]

logger = logging.getLogger("voxline.local")

M = TypeVar("M")

_shared: dict[type[Any], Any] = {}
_shared_lock = threading.Lock()


class LoadedOnce(Generic[M]):
    """A model of type ``M`` loaded once (:meth:`load`), and a :class:`WorkerPool` named ``name`` to run it on.

    :meth:`shared` is the process-wide default instance of each subclass (made on first use).
    """

    what: ClassVar[str] = "model"
    """Names the model in the log line of a load."""

    def __init__(self, name: str, workers: int) -> None:
        self.pool = WorkerPool(name, workers)
        self._model: M | None = None
        self._load_lock = threading.Lock()
        self.loads = 0
        """How many times a model was loaded (1 for the life of the process), for tests."""
        self.load_seconds = 0.0

    @classmethod
    def shared(cls) -> Self:
        """The instance every stage of this engine without an ``engine=`` uses (made on first use)."""
        with _shared_lock:
            engine: Self | None = _shared.get(cls)
            if engine is None:
                engine = _shared[cls] = cls()  # type: ignore[call-arg]  # subclasses take keywords with defaults
            return engine

    @property
    def loaded(self) -> bool:
        return self._model is not None

    async def load(self) -> None:
        """Load the model (once; later calls return at once) in a worker thread."""
        if self._model is None:
            await asyncio.to_thread(self._load)

    def _load(self) -> M:
        with self._load_lock:
            if self._model is not None:
                return self._model
            started = time.perf_counter()
            model, source = self._load_model()
            self._model = model
            self.loads += 1
            self.load_seconds = time.perf_counter() - started
            logger.info("%s loaded in %.2f s (%s)", self.what, self.load_seconds, source)
            return model

    def _loaded_model(self) -> M:
        """The model, loaded first in the calling thread if no one has yet."""
        return self._model if self._model is not None else self._load()

    def _load_model(self) -> tuple[M, object]:
        """Load, check and warm up the model (in a worker thread); return it and where it came from (logged)."""
        raise NotImplementedError
