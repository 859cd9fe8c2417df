"""Recording a session and replaying it: the stereo WAV, the turn log, and replays on virtual time.

* :class:`SessionRecorder` — an observer that records one session (docs/recording.md); :class:`RecordingWriter`
  writes its files from a thread, bounded in size.
* :func:`replay_file` — runs a recorded session again through the pipeline's code, the providers and the client
  replaced by the recording, on a :class:`VirtualClockLoop` (no real waiting).

The names are imported lazily: ``import voxline.recording`` loads no numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from voxline.lazy import lazy_exports

_EXPORTS = {
    "RecordedSession": "voxline.recording.session_file",
    "load_session": "voxline.recording.session_file",
    "RecordingWriter": "voxline.recording.writer",
    "SessionRecorder": "voxline.recording.recorder",
    "ReplayResult": "voxline.recording.replay",
    "format_timeline": "voxline.recording.replay",
    "replay_file": "voxline.recording.replay",
    "replay_session": "voxline.recording.replay",
    "VirtualClockLoop": "voxline.recording.virtual_time",
    "run_virtual": "voxline.recording.virtual_time",
}
__all__ = [
    "RecordedSession",
    "RecordingWriter",
    "ReplayResult",
    "SessionRecorder",
    "VirtualClockLoop",
    "format_timeline",
    "load_session",
    "replay_file",
    "replay_session",
    "run_virtual",
]

if TYPE_CHECKING:
    from voxline.recording.recorder import SessionRecorder
    from voxline.recording.replay import ReplayResult, format_timeline, replay_file, replay_session
    from voxline.recording.session_file import RecordedSession, load_session
    from voxline.recording.virtual_time import VirtualClockLoop, run_virtual
    from voxline.recording.writer import RecordingWriter

__getattr__ = lazy_exports(__name__, _EXPORTS)
