"""Recorded sessions replayed through the voice agent's pipeline code on virtual time: the turn decisions and
latencies must be the recording's. The sessions (tests/data/sessions) come from scripts/record_sessions.py: the
real app against the fake Deepgram and Gemini, flite speech in real time."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import attrs
import pytest
from voxline.apps.cli import main
from voxline.recording import format_timeline, load_session, replay_file, replay_session
from voxline.recording.replay import decisions

SESSIONS = Path(__file__).parent / "data" / "sessions"
NAMES = ("barge_in", "pause_mid_sentence", "provider_drop")


def _path(name: str) -> Path:
    return SESSIONS / f"{name}.replay.jsonl.gz"


@pytest.mark.parametrize("name", NAMES)
def test_a_replay_makes_the_recorded_decisions_with_the_recorded_latencies(name: str) -> None:
    result = replay_file(_path(name))
    assert result.turns and result.differences() == []
    for turn in result.turns:
        assert {"llm_ttft_ms", "tts_ttfb_ms", "response_ms"} <= set(turn["latencies"])
    assert result.virtual_seconds == pytest.approx(load_session(_path(name)).end, abs=0.5)


def test_the_barge_in_cuts_the_first_reply_where_the_user_heard_it() -> None:
    first, second = replay_file(_path("barge_in")).turns
    assert first["interrupted"] and first["interruption"]["reason"] == "client interrupt"
    assert first["heard"] and first["reply"].startswith(first["heard"].strip()) and first["heard"] != first["reply"]
    assert not second["interrupted"] and second["heard"] is None and second["user"] == "sorry i meant porto"


def test_a_pause_mid_sentence_is_two_turns_with_todays_pipeline() -> None:
    # Without a turn engine the pause ends the turn: the first half is answered, then the second.
    turns = replay_file(_path("pause_mid_sentence")).turns
    assert [t["user"] for t in turns] == ["i would like to book a table", "for two people tonight"]


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
    result = replay_session(attrs.evolve(session, turns=[first, second]))
    found = result.differences()
    assert any(d.startswith("turn 1: heard") for d in found) and any(d.startswith("turn 2: llm_ttft_ms") for d in found)
    assert decisions(result.turns[0])["heard"] == "Lisbon is sunny today, "


def test_replays_are_deterministic() -> None:
    # Virtual time: the same figures every run, whatever the machine's load (the speed: tests/bench/bench_replay.py).
    a, b = replay_file(_path("provider_drop")), replay_file(_path("provider_drop"))
    assert a.turns == b.turns and a.virtual_seconds == b.virtual_seconds


def test_voxline_replay_prints_the_timeline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(_path("barge_in"))]) == 0
    out = capsys.readouterr().out
    assert "turn 1  user: 'what is the weather like in lisbon'" in out
    assert "cut at" in out and "(client interrupt); heard: 'Lisbon is sunny today, '" in out
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
