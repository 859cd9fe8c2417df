"""The recording's files, written by one thread per session: the event loop only hands events over.

:class:`RecordingWriter` owns a session's three files — ``<id>.wav`` (stereo, :mod:`~voxline.recording.mixer`),
``<id>.jsonl`` (the turns) and ``<id>.replay.jsonl.gz`` (what a replay needs) — and a bounded queue. The
recorder calls :meth:`RecordingWriter.put` from the event loop; that never blocks: when the thread is so far
behind that the queue is full, the event is dropped and counted, and the count is written down at the end.

The files are bounded together by ``max_bytes``. The first write that would pass it stops the recording: a
``{"type": "limit", ...}`` line says so at the end of the turns file (and a warning in the log), the WAV is
closed with what it has, and nothing more is written for the session.
"""

from __future__ import annotations

import gzip
import json
import logging
import queue
import threading
import wave
from pathlib import Path
from typing import IO, Any

from voxline.recording.mixer import StereoMixer

__all__ = ["RecordingWriter"]

logger = logging.getLogger("voxline.recording")

_CLOSE = ("close",)


class RecordingWriter:
    """One session's recording files, written by a thread; see the module docstring."""

    def __init__(
        self, directory: Path, name: str, *, max_bytes: int, rate: int = 16000, queue_size: int = 2000
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.paths = {
            "wav": directory / f"{name}.wav",
            "turns": directory / f"{name}.jsonl",
            "replay": directory / f"{name}.replay.jsonl.gz",
        }
        self.max_bytes = max_bytes
        self.written = 0
        self.capped = False
        self.dropped = 0
        """Events dropped because the queue was full (the writer thread fell behind)."""
        self._queue: queue.Queue[tuple[Any, ...]] = queue.Queue(maxsize=queue_size)
        self._wav: wave.Wave_write | None = None
        self._turns: IO[str] | None = None
        self._replay: IO[str] | None = None
        self._rate = rate
        self._mixer = StereoMixer(self._wav_frames, rate=rate)
        self._thread = threading.Thread(target=self._run, name=f"recording-{name}", daemon=True)
        self._thread.start()

    # --- the event loop's side ---------------------------------------------------------------------------

    def put(self, *event: Any) -> None:
        """Hand an event to the thread: ``("user", t, pcm, rate)``, ``("agent", t, start, pcm, rate)``, ``("cut", t)``,
        ``("turns", line)`` or ``("replay", line)``. Never blocks; a full queue drops the event (counted)."""
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1

    def close(self) -> None:
        """Finish the files and stop the thread (blocking: call it with ``asyncio.to_thread``)."""
        self._queue.put(_CLOSE)
        self._thread.join()

    # --- the thread --------------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                event = self._queue.get()
                if event is _CLOSE:
                    break
                if not self.capped:
                    self._handle(event)
        except Exception:
            logger.exception("the recording failed; the session goes on without it")
            self.capped = True
        finally:
            self._finish()

    def _handle(self, event: tuple[Any, ...]) -> None:
        kind = event[0]
        if kind == "user":
            self._mixer.user(event[1], event[2], event[3])
        elif kind == "agent":
            self._mixer.agent(event[1], event[2], event[3], event[4])
        elif kind == "cut":
            self._mixer.cut(event[1])
        elif kind == "turns":
            self._line("turns", event[1])
        elif kind == "replay":
            self._line("replay", event[1])

    def _line(self, which: str, data: dict[str, Any]) -> None:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n"
        if not self._spend(len(text.encode())):
            return
        handle = self._turns if which == "turns" else self._replay
        if handle is None:
            path = self.paths[which]
            # Kept open for the session's life; closed in _finish.
            handle = gzip.open(path, "wt", encoding="utf-8") if which == "replay" else path.open("w", encoding="utf-8")  # noqa: SIM115
            if which == "turns":
                self._turns = handle
            else:
                self._replay = handle
        handle.write(text)

    def _wav_frames(self, frames: bytes) -> None:
        if self.capped or not self._spend(len(frames)):
            return
        if self._wav is None:
            self._wav = wave.open(str(self.paths["wav"]), "wb")  # noqa: SIM115 - closed in _finish
            self._wav.setnchannels(2)
            self._wav.setsampwidth(2)
            self._wav.setframerate(self._rate)
        self._wav.writeframes(frames)

    def _spend(self, size: int) -> bool:
        if self.written + size <= self.max_bytes:
            self.written += size
            return True
        self.capped = True
        message = (
            f"the recording stopped here: it reached the per-session cap of {self.max_bytes} bytes "
            "(RECORD_MAX_MB); the session went on unrecorded"
        )
        logger.warning("%s (%s)", message, self.paths["turns"].name)
        self._limit_line = {"type": "limit", "message": message, "bytes": self.written}
        return False

    def _finish(self) -> None:
        try:
            if not self.capped:
                self._mixer.close()
        except Exception:
            logger.exception("the recording's audio could not be finished")
        trailer = getattr(self, "_limit_line", None)
        if self.dropped:
            self._force_line({"type": "dropped", "events": self.dropped, "message": "the writer fell behind"})
        if trailer is not None:
            self._force_line(trailer)
        for handle in (self._turns, self._replay):
            if handle is not None:
                handle.close()
        if self._wav is not None:
            self._wav.close()

    def _force_line(self, data: dict[str, Any]) -> None:
        """A closing line past the cap: the file must say why it ends where it does."""
        if self._turns is None:
            self._turns = self.paths["turns"].open("w", encoding="utf-8")
        self._turns.write(json.dumps(data, separators=(",", ":")) + "\n")
