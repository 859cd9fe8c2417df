"""Replaying a recorded session through the pipeline's own code, on virtual time.

:func:`replay_session` rebuilds the voice agent's pipeline — the WebSocket transport's input and output, the
sentence aggregator, the LLM and TTS bases — with the recording standing in for the client and the providers
(:mod:`~voxline.recording.stand_ins`), and runs it on a :class:`~voxline.recording.virtual_time.VirtualClockLoop`:
no real waiting, the same timings every time. What is no provider runs for real: ``middle=`` builds it around the
stand-ins. The voice agent's turn engine (VAD, audio tap, ``TurnProcessor``) is rebuilt there by
:func:`voxline.apps.voice_agent.replay.replay_middle`, so a replay recomputes the turn decisions rather than
playing them back; a ``TurnProcessor`` in the middle gets the transport's echo feed, as in a session.

A recorder observes the replay as it observes a live session, so the replay's turn log can be set beside the
original's: the turn decisions (what the user said, whether and why a reply was cut, what the user heard of it)
must be the same, the latencies the same within a tolerance.

``voxline replay FILE`` prints the timeline (:func:`format_timeline`) and the differences.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
from voxline.pipeline import Pipeline
from voxline.processor import Processor
from voxline.recording.recorder import SessionRecorder
from voxline.recording.session_file import RecordedSession, load_session
from voxline.recording.stand_ins import ReplayLLM, ReplaySocket, ReplaySTT, ReplayTTS
from voxline.recording.virtual_time import run_virtual
from voxline.task import PipelineTask

__all__ = [
    "DECISIONS",
    "LATENCY_TOLERANCE_MS",
    "Middle",
    "ReplayResult",
    "agent_middle",
    "format_timeline",
    "replay_file",
    "replay_session",
]

DECISIONS = ("user", "interrupted", "interruption_reason", "heard", "failed")
"""What must be the same in a replay as in the recording, per turn."""
LATENCY_TOLERANCE_MS = 50.0
"""How far a replayed latency may be from the recorded one. The recording measured real processing time too
(a few ms per hop on a busy machine, more when the machine stalled); a replay spends none."""

Middle = Callable[[ReplaySTT, ReplayLLM, ReplayTTS], Sequence[Processor]]


def agent_middle(stt: ReplaySTT, llm: ReplayLLM, tts: ReplayTTS) -> list[Processor]:
    """The voice agent's pipeline between the transport's input and output, providers replaced."""
    from voxline.aggregation import SentenceAggregator, clean_for_speech

    return [stt, llm, SentenceAggregator(speech_filter=clean_for_speech), tts]


@attrs.frozen(kw_only=True)
class ReplayResult:
    """A replay's turn log beside the recording's, and how long it took."""

    turns: list[dict[str, Any]]
    recorded: list[dict[str, Any]]
    virtual_seconds: float
    wall_seconds: float
    messages: list[str]
    """What the server sent the (replayed) client."""

    @property
    def speed(self) -> float:
        """Times faster than real time."""
        return self.virtual_seconds / self.wall_seconds if self.wall_seconds > 0 else float("inf")

    def differences(self, tolerance_ms: float = LATENCY_TOLERANCE_MS) -> list[str]:
        """Every way the replay's turns differ from the recording's; empty when they agree."""
        out: list[str] = []
        if len(self.turns) != len(self.recorded):
            out.append(f"{len(self.turns)} turns replayed, {len(self.recorded)} recorded")
        for replayed, recorded in zip(self.turns, self.recorded, strict=False):
            n = recorded.get("turn")
            a, b = decisions(replayed), decisions(recorded)
            for key in DECISIONS:
                if a[key] != b[key] and not (key == "heard" and _same_cut(replayed, recorded, tolerance_ms)):
                    out.append(f"turn {n}: {key} {a[key]!r} replayed, {b[key]!r} recorded")
            mine, theirs = replayed.get("latencies", {}), recorded.get("latencies", {})
            for key in sorted(set(theirs) & set(mine)):
                if abs(float(mine[key]) - float(theirs[key])) > tolerance_ms:
                    out.append(f"turn {n}: {key} {mine[key]} ms replayed, {theirs[key]} ms recorded")
            for key in sorted(set(theirs) ^ set(mine)):
                out.append(f"turn {n}: {key} only {'recorded' if key in theirs else 'replayed'}")
        return out


def _same_cut(replayed: dict[str, Any], recorded: dict[str, Any], tolerance_ms: float) -> bool:
    """The heard text differs by the words at the cut only, and the cut by at most the latency tolerance: a word
    whose middle played a few ms either side of the cut (the live session spent them processing) is no other
    decision."""
    a, b = replayed.get("heard"), recorded.get("heard")
    x, y = replayed.get("played_seconds"), recorded.get("played_seconds")
    if a is None or b is None or x is None or y is None or abs(float(x) - float(y)) * 1000 > tolerance_ms:
        return False
    short, long = sorted((a.strip(), b.strip()), key=len)
    return long.startswith(short) and len(long[len(short) :].split()) <= 1


def decisions(turn: dict[str, Any]) -> dict[str, Any]:
    """The turn decisions of one turn record."""
    interruption = turn.get("interruption") or {}
    return {
        "user": turn.get("user"),
        "interrupted": bool(turn.get("interrupted")),
        "interruption_reason": interruption.get("reason"),
        "heard": turn.get("heard"),
        "failed": bool(turn.get("errors")),
    }


def replay_session(session: RecordedSession, *, middle: Middle = agent_middle) -> ReplayResult:
    """Replay ``session`` on virtual time (not from inside a running event loop)."""
    started = time.perf_counter()
    (turns, messages), virtual = run_virtual(_run(session, middle))
    wall = time.perf_counter() - started
    return ReplayResult(
        turns=turns, recorded=session.turns, virtual_seconds=virtual, wall_seconds=wall, messages=messages
    )


def replay_file(path: str | Path, *, middle: Middle = agent_middle) -> ReplayResult:
    """:func:`replay_session` of the recording at ``path``."""
    return replay_session(load_session(path), middle=middle)


async def _run(session: RecordedSession, middle: Middle) -> tuple[list[dict[str, Any]], list[str]]:
    from voxline.transports import TransportParams, WebSocketTransport

    socket = ReplaySocket(session)
    params = TransportParams(
        session_id="replay",
        clock=time.monotonic,  # the virtual clock's (read now, inside the virtual run)
        max_messages_per_second=None,
        max_audio_speed=None,
        audio_in_rate=session.audio_in_rate,
        audio_out_rate=session.audio_out_rate,
    )
    transport = WebSocketTransport(socket, params)
    stt, llm, tts = ReplaySTT(session), ReplayLLM(session), ReplayTTS(session)
    recorder = SessionRecorder(
        stages={"stt": [stt], "llm": [llm], "tts": [tts]}, input=transport.input(), output=transport.output()
    )
    inner = list(middle(stt, llm, tts))
    _attach_echo(transport, inner)
    processors = [transport.input(), *inner, transport.output()]
    task = PipelineTask(Pipeline(processors), name="replay", observers=[recorder])
    socket.begin(time.monotonic() - recorder.now)
    transport.start()
    try:
        await task.run()
    finally:
        recorder.close("replay ended")
        await transport.aclose(flush_timeout=0)
    return recorder.turns.turns, socket.sent


def _attach_echo(transport: Any, processors: Sequence[Processor]) -> None:
    """A turn engine in the middle hears what the replayed client plays, as in the session (``connect_turns``)."""
    from voxline.turns import TurnProcessor

    for processor in processors:
        if isinstance(processor, TurnProcessor) and processor.echo is not None:
            transport.attach_echo(processor.echo)


def format_timeline(result: ReplayResult) -> str:
    """The replayed turns, one block each, then the differences from the recording (or that there are none)."""
    lines = []
    for turn in result.turns:
        lat = turn.get("latencies", {})
        figures = ", ".join(f"{k.removesuffix('_ms')} {v:g} ms" for k, v in lat.items() if isinstance(v, (int, float)))
        lines.append(f"{turn['t']:8.2f} s  turn {turn['turn']}  user: {turn['user']!r}")
        reply = turn.get("reply", "")
        lines.append(f"{'':12}agent: {reply!r}")
        interruption = turn.get("interruption")
        if interruption:
            heard = turn.get("heard")
            lines.append(
                f"{'':12}cut at {interruption['t']:.2f} s ({interruption['reason']}); heard: "
                + (repr(heard) if heard is not None else "(not known)")
            )
        elif turn.get("interrupted"):
            lines.append(f"{'':12}reply cut before it was spoken")
        for error in turn.get("errors", ()):
            lines.append(f"{'':12}error at {error['t']:.2f} s: {error['message']}")
        if figures:
            lines.append(f"{'':12}{figures}")
    differences = result.differences()
    lines.append(
        f"{len(result.turns)} turns; {result.virtual_seconds:.1f} s of session replayed in "
        f"{result.wall_seconds:.2f} s ({result.speed:.0f}x real time)"
    )
    if differences:
        lines.append("differs from the recording:")
        lines.extend(f"  {d}" for d in differences)
    else:
        lines.append("the turn decisions and latencies match the recording")
    return "\n".join(lines)
