"""Recorded sessions replayed through the voice agent's pipeline code on virtual time: the turn decisions and
latencies must be the recording's. The sessions (tests/data/sessions) come from scripts/record_sessions.py: the
real app (its turn engine on, without the smart-turn model) against the fake Deepgram and Gemini, flite speech in
real time. The replay rebuilds the turn engine and runs it again: its decisions are recomputed, not replayed."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import attrs
import pytest
from voxline.apps.cli import main
from voxline.apps.voice_agent.replay import replay_middle, replay_recording
from voxline.recording import ReplayResult, format_timeline, load_session, replay_session
from voxline.recording.replay import decisions
from voxline.recording.session_file import RecordedSession

SESSIONS = Path(__file__).parent / "data" / "sessions"
NAMES = ("barge_in", "pause_mid_sentence", "provider_drop")


def _path(name: str) -> Path:
    return SESSIONS / f"{name}.replay.jsonl.gz"


def replay_file(path: Path) -> ReplayResult:
    return replay_recording(path)


def _replay_with_turns(session: RecordedSession, **changes: object) -> ReplayResult:
    """``session`` replayed with its turn engine built from changed params."""
    turns = dict(session.header["turns"])
    turns["params"] = {**turns["params"], **changes}
    changed = attrs.evolve(session, header={**session.header, "turns": turns})
    return replay_session(changed, middle=replay_middle(changed))


@pytest.mark.parametrize("name", NAMES)
def test_a_replay_makes_the_recorded_decisions_with_the_recorded_latencies(name: str) -> None:
    result = replay_file(_path(name))
    assert result.turns and result.differences() == []
    for turn in result.turns:
        assert {"llm_ttft_ms", "tts_ttfb_ms", "response_ms"} <= set(turn["latencies"])
    assert result.virtual_seconds == pytest.approx(load_session(_path(name)).end, abs=0.5)


def test_the_recordings_hold_the_providers_not_the_turn_engine() -> None:
    for name in NAMES:
        session = load_session(_path(name))
        assert session.header["stages"]["stt"] == ["DeepgramSTT"]  # not the VAD, the tap, the TurnProcessor
        assert session.header["turns"]["smart_turn"] is False and session.header["turns"]["vad"]
        made = {line["frame"]["frame"] for line in session.stt}
        assert "TranscriptFrame" in made and not made & {"UserStartedSpeakingFrame", "UserStoppedSpeakingFrame"}
        assert not any(line.get("interrupt") for line in session.client)  # no client interrupt: the server's own


def test_the_barge_in_is_by_voice_and_cuts_the_first_reply_where_the_user_heard_it() -> None:
    first, second = replay_file(_path("barge_in")).turns
    assert first["interrupted"] and first["interruption"]["reason"] == "barge-in"
    assert first["heard"] and first["reply"].startswith(first["heard"].strip()) and first["heard"] != first["reply"]
    assert not second["interrupted"] and second["heard"] is None and second["user"] == "sorry i meant porto"
    assert second["latencies"]["turn.barge_in_latency"] > 0


def test_the_replayed_engine_decides_the_barge_in_again() -> None:
    # Ask the engine for ten words before it interrupts, and for no interruption on wordless speech: the same
    # recording is no barge-in any more (the reply plays on), and the comparison says so.
    result = _replay_with_turns(
        load_session(_path("barge_in")), min_interruption_words=10, interrupt_without_words_after=None
    )
    assert not result.turns[0]["interrupted"]
    assert any(d.startswith("turn 1: interrupted") for d in result.differences())


def test_a_pause_mid_sentence_is_one_turn_with_the_turn_engine() -> None:
    # "... a table for" reads as unfinished: the engine waits through the pause and answers one turn.
    (turn,) = replay_file(_path("pause_mid_sentence")).turns
    assert turn["user"] == "i would like to book a table for two people tonight" and not turn["interrupted"]


def test_without_its_turn_engine_the_same_recording_is_two_turns() -> None:
    # The recorded STT finals, without the engine to join them: the pause ends the first half's turn. So the
    # single turn above is the replayed engine's decision, not something the recording holds.
    session = load_session(_path("pause_mid_sentence"))
    header = {k: v for k, v in session.header.items() if k != "turns"}
    result = replay_session(attrs.evolve(session, header=header))
    assert [t["user"] for t in result.turns] == ["i would like to book a table for", "two people tonight"]
    assert result.differences()


def test_an_endpointing_delay_longer_than_the_pause_is_replayed_as_such() -> None:
    # The engine's endpointing timer runs on the virtual clock: a 2 s minimum delay answers 1.65 s later.
    session = load_session(_path("pause_mid_sentence"))
    base = replay_file(_path("pause_mid_sentence")).turns[0]
    slow = _replay_with_turns(session, min_endpointing_delay=2.0, unsure_endpointing_delay=2.0).turns[0]
    assert slow["user"] == base["user"]
    assert slow["latencies"]["turn.endpointing_delay"] == pytest.approx(2000, abs=30)
    assert slow["t"] - base["t"] == pytest.approx(1.65, abs=0.05)


def test_a_provider_drop_fails_one_turn_and_the_next_is_answered() -> None:
    first, dropped, third = replay_file(_path("provider_drop")).turns
    assert not first.get("errors") and first["reply"].endswith("field.")
    assert dropped["errors"] and "connection" in dropped["errors"][0]["message"].lower()
    assert third["reply"] == "Yes, I am here. Sorry, I lost my train of thought." and not third.get("errors")


def test_a_changed_decision_or_latency_is_reported() -> None:
    session = load_session(_path("barge_in"))
    first, second = (dict(t) for t in session.turns)
    first["heard"] = "something else"
    second["latencies"] = {**second["latencies"], "llm_ttft_ms": second["latencies"]["llm_ttft_ms"] + 300}
    result = replay_session(attrs.evolve(session, turns=[first, second]), middle=replay_middle(session))
    found = result.differences()
    assert any(d.startswith("turn 1: heard") for d in found) and any(d.startswith("turn 2: llm_ttft_ms") for d in found)
    assert decisions(result.turns[0])["heard"] == "Lisbon is sunny today, with a"


def test_the_word_at_the_cut_may_differ_if_the_cut_is_within_the_tolerance() -> None:
    # A word whose middle played a few ms either side of the cut: the live session spent them processing.
    session = load_session(_path("barge_in"))
    first, second = (dict(t) for t in session.turns)
    replayed = replay_recording(_path("barge_in")).turns[0]
    near = {**first, "heard": replayed["heard"] + " light", "played_seconds": replayed["played_seconds"] + 0.005}
    far = {**near, "played_seconds": replayed["played_seconds"] + 0.2}
    words = {**near, "heard": replayed["heard"] + " light breeze"}
    middle = replay_middle(session)
    assert replay_session(attrs.evolve(session, turns=[near, second]), middle=middle).differences() == []
    for changed in (far, words):
        found = replay_session(attrs.evolve(session, turns=[changed, second]), middle=middle).differences()
        assert any(d.startswith("turn 1: heard") for d in found)


def test_replays_are_deterministic() -> None:
    # Virtual time: the same figures every run, whatever the machine's load (the speed: tests/bench/bench_replay.py).
    a, b = replay_file(_path("provider_drop")), replay_file(_path("provider_drop"))
    assert a.turns == b.turns and a.virtual_seconds == b.virtual_seconds


def test_voxline_replay_prints_the_timeline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(_path("barge_in"))]) == 0
    out = capsys.readouterr().out
    assert "turn 1  user: 'what is the weather like in lisbon'" in out
    assert "cut at" in out and "(barge-in); heard: 'Lisbon is sunny today, with a'" in out
    assert "the turn decisions and latencies match the recording" in out
    timeline = format_timeline(replay_file(_path("barge_in")))
    assert out.splitlines()[:7] == timeline.splitlines()[:7]  # the same turns; only the wall time differs


def test_voxline_replay_refuses_what_is_not_a_recording(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.replay.jsonl.gz"
    with gzip.open(bad, "wt") as handle:
        handle.write(json.dumps({"type": "turn"}) + "\n")
    assert main(["replay", str(bad)]) == 2
    assert "not a voxline session recording" in capsys.readouterr().err


def test_the_shipped_recordings_hold_no_key() -> None:
    for name in NAMES:
        with gzip.open(_path(name), "rt") as handle:
            assert "test-key" not in handle.read()


def test_the_recorded_endpointing_strategies_are_the_replayed_ones() -> None:
    # The agent builds its strategies per STT (whisper's are not the defaults): a replay must use the recorded
    # ones. Here one that always votes "more is coming" holds the turn for the maximum delay; the recording
    # itself (made before strategies were recorded) replays with the defaults, as it ran.
    session = load_session(_path("pause_mid_sentence"))
    turns = {**session.header["turns"], "endpointing": [{"strategy": "STTEndOfSpeech", "vote_for": -5.0}]}
    changed = attrs.evolve(session, header={**session.header, "turns": turns})
    held = replay_session(changed, middle=replay_middle(changed)).turns[0]
    base = replay_file(_path("pause_mid_sentence")).turns[0]
    maximum = session.header["turns"]["params"]["max_endpointing_delay"] * 1000
    assert base["latencies"]["turn.endpointing_delay"] < maximum - 500
    assert held["user"] == base["user"]
    assert held["latencies"]["turn.endpointing_delay"] == pytest.approx(maximum, abs=30)


def test_the_endpointing_strategies_go_into_the_recording_and_come_back_equal() -> None:
    from voxline.apps.voice_agent.recording import turn_engine_info
    from voxline.recording.stand_ins import ReplayLLM, ReplaySTT, ReplayTTS
    from voxline.turns import TurnProcessor
    from voxline.turns.strategies import ModelVerdict, TranscriptCompleteness

    strategies = [TranscriptCompleteness(full_stop=False, doubtful_below=0.5, second_opinion=True), ModelVerdict()]
    engine = TurnProcessor(endpointing=strategies)
    info = json.loads(json.dumps(turn_engine_info([engine.tap, engine])))
    session = load_session(_path("pause_mid_sentence"))
    changed = attrs.evolve(session, header={**session.header, "turns": info})
    built = replay_middle(changed)(ReplaySTT(changed), ReplayLLM(changed), ReplayTTS(changed))
    rebuilt = next(p for p in built if isinstance(p, TurnProcessor))
    assert rebuilt.engine.endpointing == strategies


def test_a_recording_naming_an_unknown_strategy_is_refused() -> None:
    from voxline.recording.stand_ins import ReplayLLM, ReplaySTT, ReplayTTS

    session = load_session(_path("pause_mid_sentence"))
    turns = {**session.header["turns"], "endpointing": [{"strategy": "endpointing_delay"}]}
    changed = attrs.evolve(session, header={**session.header, "turns": turns})
    with pytest.raises(ValueError, match="endpointing_delay"):
        replay_middle(changed)(ReplaySTT(changed), ReplayLLM(changed), ReplayTTS(changed))
