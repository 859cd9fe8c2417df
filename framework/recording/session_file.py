"""Reading a recorded session (``<id>.replay.jsonl.gz``): the lines the recorder wrote, sorted by kind.

One JSON object a line, gzip-compressed. ``header`` first (format version, the stages' processors, audio rates);
then, in time order: ``client`` (``audio`` base64 PCM, ``text``, or ``interrupt``), ``stt`` / ``llm`` / ``tts`` (what
that stage emitted and when, relative to its input; see :mod:`~voxline.recording.recorder`), ``turn`` (the turn
log, for comparing a replay with the original) and ``end``. Times are seconds since the recording started.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import attrs
from voxline.recording.recorder import FORMAT_VERSION

__all__ = ["RecordedSession", "load_session"]


@attrs.frozen(kw_only=True)
class RecordedSession:
    """A recorded session, ready to replay."""

    header: dict[str, Any]
    client: list[dict[str, Any]]
    stt: list[dict[str, Any]]
    llm: list[dict[str, Any]]
    tts: list[dict[str, Any]]
    turns: list[dict[str, Any]]
    end: float
    """Seconds from the start of the recording to its end."""

    @classmethod
    def from_lines(cls, lines: list[dict[str, Any]], source: str = "the recording") -> RecordedSession:
        if not lines or lines[0].get("type") != "header":
            raise ValueError(f"{source}: not a voxline session recording (no header line)")
        version = lines[0].get("version")
        if version != FORMAT_VERSION:
            raise ValueError(f"{source}: recording format {version!r}; this voxline reads format {FORMAT_VERSION}")
        kinds: dict[str, list[dict[str, Any]]] = {k: [] for k in ("client", "stt", "llm", "tts", "turn", "end")}
        for line in lines[1:]:
            kinds.setdefault(str(line.get("type")), []).append(line)
        ends = kinds["end"]
        last = max((float(line.get("t", 0.0)) for line in lines[1:]), default=0.0)
        return cls(
            header=lines[0],
            client=kinds["client"],
            stt=kinds["stt"],
            llm=kinds["llm"],
            tts=kinds["tts"],
            turns=kinds["turn"],
            end=float(ends[-1]["t"]) if ends else last,
        )

    @property
    def audio_in_rate(self) -> int:
        return int(self.header.get("audio_in_rate", 16000))

    @property
    def audio_out_rate(self) -> int:
        return int(self.header.get("audio_out_rate", 24000))


def load_session(path: str | Path) -> RecordedSession:
    """Read a ``.replay.jsonl.gz`` (or an uncompressed ``.jsonl``) recording; ValueError if it is not one."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            lines = [json.loads(line) for line in handle if line.strip()]
    except (OSError, json.JSONDecodeError, EOFError) as exc:
        raise ValueError(f"{path}: cannot read the recording: {exc}") from exc
    return RecordedSession.from_lines(lines, str(path))
