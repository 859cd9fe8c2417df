"""Recording a session of the voice agent (``RECORD_DIR``): which processors play which provider stage, and the
recorder around the session's pipeline.

The session calls :func:`start_recording` with its transport and the pipeline's middle (``[*stt, *llm,
aggregator, *tts]`` from :func:`~voxline.apps.voice_agent.factory.build_processors`) and passes the recorder to
the task as an observer; :func:`finish_recording` closes the files off the event loop. With ``RECORD_DIR`` unset
both do nothing and nothing is observed. The recorder itself is :mod:`voxline.recording`.

The turn engine is no provider stage: the recording's header says how it was built (:func:`turn_engine_info`),
and :mod:`~voxline.apps.voice_agent.replay` builds it again, so that a replay recomputes its decisions.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import attrs
from voxline.aggregation import SentenceAggregator
from voxline.apps.voice_agent.config import Settings
from voxline.llm import LLMProcessor
from voxline.processor import Processor
from voxline.recording.recorder import SessionRecorder
from voxline.recording.writer import RecordingWriter
from voxline.transports import WebSocketTransport
from voxline.turns import TurnProcessor

__all__ = ["finish_recording", "provider_stages", "start_recording", "turn_engine_info"]

logger = logging.getLogger("voxline.apps.voice_agent.recording")


def provider_stages(processors: Sequence[Processor]) -> dict[str, list[Processor]]:
    """The pipeline's middle split by provider stage: what comes after the sentence aggregator is the TTS stage,
    the LLM's stages come before it. With the turn engine (``SileroVAD → tap → <STT> → TurnProcessor``), the STT
    stage is what is between the tap and the ``TurnProcessor``: the engine is no provider, a replay rebuilds it
    and recomputes its decisions. Without it, what comes before the LLM is the STT stage (its own VAD included)."""
    llm_at = next(i for i, p in enumerate(processors) if isinstance(p, LLMProcessor))
    aggregator_at = next(i for i, p in enumerate(processors) if isinstance(p, SentenceAggregator))
    stt = list(processors[:llm_at])
    engine = _turn_engine(stt)
    if engine is not None:
        stt = stt[stt.index(engine.tap) + 1 : stt.index(engine)]
    return {
        "stt": stt,
        "llm": list(processors[llm_at:aggregator_at]),
        "tts": list(processors[aggregator_at + 1 :]),
    }


def turn_engine_info(processors: Sequence[Processor]) -> dict[str, Any] | None:
    """How the session's turn engine was built (its params, the VAD's, the echo threshold, whether the
    smart-turn model ran), for the replay to build it the same; None without one."""
    from voxline.processors.vad import SileroVAD

    engine = _turn_engine(processors)
    if engine is None:
        return None
    before = processors[: list(processors).index(engine.tap)]
    vad = next((p for p in before if isinstance(p, SileroVAD)), None)
    params = attrs.asdict(engine.params)
    if params.get("backchannels") is not None:
        params["backchannels"] = sorted(params["backchannels"])
    return {
        "params": params,
        "vad": attrs.asdict(vad.params) if vad is not None else None,
        "echo_threshold": engine.echo.threshold if engine.echo is not None else None,
        "smart_turn": engine.model is not None,
        "endpointing": endpointing_info(engine.engine.endpointing),
    }


def endpointing_info(strategies: Sequence[Any]) -> list[dict[str, Any]] | None:
    """The endpointing strategies by name and fields, when all are voxline's own (``voxline.turns.strategies``,
    attrs values) — the voice agent builds them per STT (whisper's differ: ``turn_wiring``), so a replay must not
    assume the defaults. None when one is not (a replay then builds the defaults and says so)."""
    from voxline.turns import strategies as own

    out: list[dict[str, Any]] = []
    for strategy in strategies:
        kind = type(strategy)
        if getattr(own, kind.__name__, None) is not kind or not attrs.has(kind):
            return None
        out.append({"strategy": kind.__name__, **attrs.asdict(strategy)})
    return out


def _turn_engine(processors: Sequence[Processor]) -> TurnProcessor | None:
    engine = next((p for p in processors if isinstance(p, TurnProcessor)), None)
    return engine if engine is not None and engine.tap in processors else None


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
    info: dict[str, Any] = {"audio_in_rate": params.audio_in_rate, "audio_out_rate": params.audio_out_rate}
    turns = turn_engine_info(processors)
    if turns is not None:
        info["turns"] = turns
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
