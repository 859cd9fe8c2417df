"""Recording a session of the voice agent (``RECORD_DIR``): which processors play which provider stage, and the
recorder around the session's pipeline.

The session calls :func:`start_recording` with its transport and the pipeline's middle (``[*stt, *llm,
aggregator, *tts]`` from :func:`~voxline.apps.voice_agent.factory.build_processors`) and passes the recorder to
the task as an observer; :func:`finish_recording` closes the files off the event loop. With ``RECORD_DIR``
unset both do nothing and nothing is observed. The recorder itself is :mod:`voxline.recording`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from voxline.aggregation import SentenceAggregator
from voxline.apps.voice_agent.config import Settings
from voxline.llm import LLMProcessor
from voxline.processor import Processor
from voxline.recording.recorder import SessionRecorder
from voxline.recording.writer import RecordingWriter
from voxline.transports import WebSocketTransport

__all__ = ["finish_recording", "provider_stages", "start_recording"]

logger = logging.getLogger("voxline.apps.voice_agent.recording")


def provider_stages(processors: Sequence[Processor]) -> dict[str, list[Processor]]:
    """The pipeline's middle split by stage: what comes before the LLM is the STT stage (a VAD included), what
    comes after the sentence aggregator is the TTS stage."""
    llm_at = next(i for i, p in enumerate(processors) if isinstance(p, LLMProcessor))
    aggregator_at = next(i for i, p in enumerate(processors) if isinstance(p, SentenceAggregator))
    return {
        "stt": list(processors[:llm_at]),
        "llm": list(processors[llm_at:aggregator_at]),
        "tts": list(processors[aggregator_at + 1 :]),
    }


def start_recording(
    settings: Settings, session: str, transport: WebSocketTransport, processors: Sequence[Processor]
) -> SessionRecorder | None:
    """The session's recorder, or None when recording is off (or cannot start: said in the log, the session
    goes on)."""
    directory = settings.record_dir
    if directory is None:
        return None
    try:
        writer = RecordingWriter(directory, session, max_bytes=settings.record_max_bytes)
    except OSError as exc:
        logger.error("cannot record this session in %s: %s", directory, exc)
        return None
    params = transport.params
    info = {"audio_in_rate": params.audio_in_rate, "audio_out_rate": params.audio_out_rate}
    logger.info("recording the session to %s", writer.paths["wav"].with_suffix(".*"))
    return SessionRecorder(
        stages=provider_stages(processors),
        input=transport.input(),
        output=transport.output(),
        writer=writer,
        session=session,
        info=info,
    )


async def finish_recording(recorder: SessionRecorder | None, reason: str) -> None:
    """Write the last turn and close the files (in a thread)."""
    if recorder is not None:
        await recorder.aclose(reason)
