"""Replaying a recording of the voice agent: its turn engine rebuilt around the recorded providers.

A recording made with the turn engine on holds what the STT, LLM and TTS emitted, not what the engine decided
(:func:`~voxline.apps.voice_agent.recording.provider_stages`), and its header says how the engine was built
(:func:`~voxline.apps.voice_agent.recording.turn_engine_info`). :func:`replay_middle` builds the same
``SileroVAD → tap → <recorded STT> → TurnProcessor`` around the stand-ins, so the replay runs the engine's code on
the recorded audio and transcripts: the VAD dates the speech again, the engine decides again when a turn ends
and when the user barges in, and the comparison with the recording checks those decisions.

The engine reads the process's monotonic clock and arms loop timers: on the replay's virtual-time loop both are
virtual. Silero runs inline (a few ms per second of audio). The smart-turn model, when the session ran it, runs
in its thread as in the session; the virtual clock stands still while it works, so its verdicts arrive at the
same virtual instant on any machine (``smart_turn=False`` leaves it out: faster, but the decisions may differ).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import attrs
from voxline.processor import Processor
from voxline.recording import ReplayResult
from voxline.recording.replay import Middle, agent_middle, replay_session
from voxline.recording.session_file import RecordedSession, load_session
from voxline.recording.stand_ins import ReplayLLM, ReplaySTT, ReplayTTS

logger = logging.getLogger(__name__)

__all__ = ["replay_middle", "replay_recording"]


def replay_middle(session: RecordedSession, *, smart_turn: bool = True) -> Middle:
    """The voice agent's pipeline middle for replaying ``session``: with its turn engine when it ran one."""
    turns: dict[str, Any] | None = session.header.get("turns")
    if turns is None:
        return agent_middle

    def middle(stt: ReplaySTT, llm: ReplayLLM, tts: ReplayTTS) -> list[Processor]:
        from voxline.processors.vad import SileroVAD, VADParams
        from voxline.turns import EchoDetector, TurnParams, TurnProcessor

        threshold = turns.get("echo_threshold")
        engine = TurnProcessor(
            params=TurnParams(**turns["params"]),
            endpointing=_endpointing(turns),
            model=_model() if smart_turn and turns.get("smart_turn") else None,
            echo=EchoDetector(threshold=threshold) if threshold is not None else None,
        )
        vad = SileroVAD(params=VADParams(**(turns.get("vad") or {})))
        return [vad, engine.tap, stt, engine, *agent_middle(stt, llm, tts)[1:]]

    return middle


def _endpointing(turns: dict[str, Any]) -> list[Any] | None:
    """The recorded session's endpointing strategies (``recording.endpointing_info``); None: the defaults
    (recordings made before they were recorded, or with a strategy of the application's own)."""
    from voxline.turns import strategies as own

    recorded = turns.get("endpointing")
    if recorded is None:
        if "endpointing" in turns:
            logger.warning("the session ran endpointing strategies of its own: replaying with the defaults")
        return None
    built = []
    for fields in (dict(r) for r in recorded):
        name = fields.pop("strategy")
        kind = getattr(own, name, None)
        if not (isinstance(kind, type) and attrs.has(kind)):
            raise ValueError(f"the recording names an endpointing strategy voxline does not have: {name!r}")
        built.append(kind(**fields))
    return built


def _model() -> Any:
    try:
        from voxline.processors.turns import SmartTurnModel
    except ImportError as exc:
        raise RuntimeError(
            f"the recorded session ran the smart-turn model, which is not installed here: {exc}"
        ) from exc
    return SmartTurnModel()


def replay_recording(path: str | Path, *, smart_turn: bool = True) -> ReplayResult:
    """Replay the voice agent's recording at ``path`` (:func:`voxline.recording.replay_session`), its turn engine
    rebuilt (:func:`replay_middle`)."""
    session = load_session(path)
    return replay_session(session, middle=replay_middle(session, smart_turn=smart_turn))
