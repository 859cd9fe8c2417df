"""``voxline check``: one real round trip per configured stage, against the strict fakes, through the CLI.

Passes with the right settings; fails with a clear line per stage (and a non-zero exit) for a wrong key, a
model the service does not know, a thinking level the model refuses and an unreachable base URL.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from voxline.apps.cli import main as cli_main
from voxline.testing.fakes.deepgram import FakeDeepgram
from voxline.testing.fakes.gemini import FakeGemini

KEY = "check-key-0123456789"


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeDeepgram, FakeGemini]]:
    deepgram = FakeDeepgram(api_key=KEY, transcripts=["hello there"])
    gemini = FakeGemini(api_key=KEY, replies="Everything works.")
    deepgram.start_in_thread()
    gemini.start_in_thread()
    try:
        yield deepgram, gemini
    finally:
        deepgram.stop_thread()
        gemini.stop_thread()


def _env(tmp_path: Path, fakes: tuple[FakeDeepgram, FakeGemini], **overrides: str) -> Path:
    deepgram, gemini = fakes
    settings = {
        "DEEPGRAM_API_KEY": KEY,
        "GEMINI_API_KEY": KEY,
        "DEEPGRAM_BASE_URL": deepgram.base_url,
        "GEMINI_BASE_URL": gemini.url,
        **overrides,
    }
    path = tmp_path / "check.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    return path


def _check(capsys: pytest.CaptureFixture[str], env: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    status = cli_main(["check", "--env-file", str(env), "--json", "--timeout", "20", *extra])
    out = capsys.readouterr().out
    assert KEY not in out
    return status, json.loads(out), out


def _stage(report: dict[str, Any], stage: str) -> dict[str, Any]:
    return next(line for line in report["stages"] if line["stage"] == stage)


def test_every_stage_passes_with_the_right_settings(tmp_path: Path, fakes: Any, capsys: Any) -> None:
    status, report, _ = _check(capsys, _env(tmp_path, fakes))
    assert status == 0 and report["ok"] is True
    assert [(s["stage"], s["provider"], s["model"]) for s in report["stages"]] == [
        ("stt", "deepgram", "nova-3"),
        ("llm", "gemini", "gemini-3.8-flash"),
        ("tts", "deepgram", "aura-asteria-en"),
    ]
    assert all(s["ok"] and s["latency_ms"] > 0 for s in report["stages"])
    assert _stage(report, "stt")["message"] == "heard 'hello there'"
    assert "Everything works." in _stage(report, "llm")["message"]
    deepgram, gemini = fakes
    listen = deepgram.listen_connections[-1]
    # the agent's exact options: the same query a session opens its socket with
    assert listen.query["model"] == "nova-3" and listen.query["vad_events"] == "true"
    assert listen.query["encoding"] == "linear16" and listen.query["sample_rate"] == "16000"
    assert {"Finalize", "CloseStream"} <= set(listen.message_types())
    request = gemini.requests[-1]
    assert request.chat.system and "voice assistant" in request.chat.system  # the agent's system prompt
    assert request.body["generationConfig"]["thinkingConfig"] == {"thinking_level": "LOW"}  # the table's


def test_the_text_output_is_one_line_per_stage(tmp_path: Path, fakes: Any, capsys: Any) -> None:
    assert cli_main(["check", "--env-file", str(_env(tmp_path, fakes))]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [["stt", "deepgram"], ["llm", "gemini"], ["tts", "deepgram"]]
    assert all(" OK " in line and " ms " in line for line in lines)


def test_a_wrong_key_fails_each_stage_with_a_hint(tmp_path: Path, fakes: Any, capsys: Any) -> None:
    env = _env(tmp_path, fakes, DEEPGRAM_API_KEY="wrong-key-1", GEMINI_API_KEY="wrong-key-2")
    status, report, out = _check(capsys, env)
    assert status == 1 and report["ok"] is False
    stt, llm, tts = (_stage(report, s) for s in ("stt", "llm", "tts"))
    assert not stt["ok"] and "HTTP 401" in stt["message"] and "Invalid credentials" in stt["message"]
    assert stt["hint"] == "check DEEPGRAM_API_KEY: the service refused the key"
    assert not tts["ok"] and tts["hint"] == stt["hint"]
    assert not llm["ok"] and "401" in llm["message"] and llm["hint"].startswith("check GEMINI_API_KEY")
    assert "wrong-key" not in out


def test_a_model_the_service_does_not_know(tmp_path: Path, fakes: Any, capsys: Any) -> None:
    env = _env(tmp_path, fakes, DEEPGRAM_STT_MODEL="nova-17", GEMINI_MODEL="gemini-0-nonexistent")
    status, report, _ = _check(capsys, env)
    assert status == 1
    stt, llm, tts = (_stage(report, s) for s in ("stt", "llm", "tts"))
    assert "HTTP 400" in stt["message"] and "No such model" in stt["message"]
    assert stt["hint"].startswith("check DEEPGRAM_STT_MODEL=nova-17")
    assert "404" in llm["message"] and "not found" in llm["message"]
    assert llm["hint"] == "check GEMINI_MODEL=gemini-0-nonexistent: the service does not know this model"
    assert tts["ok"]  # only the stages that are wrong fail


def test_a_thinking_level_the_model_refuses(tmp_path: Path, fakes: Any, capsys: Any) -> None:
    status, report, _ = _check(capsys, _env(tmp_path, fakes, GEMINI_THINKING="minimal"))
    assert status == 1
    llm = _stage(report, "llm")
    assert not llm["ok"] and "400" in llm["message"] and "thinking level" in llm["message"]
    assert llm["hint"] == "check GEMINI_THINKING=minimal: the service refused it"
    assert _stage(report, "stt")["ok"] and _stage(report, "tts")["ok"]


def test_an_unreachable_base_url(tmp_path: Path, fakes: Any, capsys: Any) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    status, report, _ = _check(capsys, _env(tmp_path, fakes, DEEPGRAM_BASE_URL=dead, GEMINI_BASE_URL=dead))
    assert status == 1
    for stage, setting in (("stt", "DEEPGRAM_BASE_URL"), ("llm", "GEMINI_BASE_URL"), ("tts", "DEEPGRAM_BASE_URL")):
        line = _stage(report, stage)
        assert not line["ok"], line
        assert line["hint"] == f"nothing answered at {dead}: check {setting} and the network", line


def test_the_rest_transport_is_checked_with_its_own_request(tmp_path: Path, fakes: Any, capsys: Any) -> None:
    deepgram, _ = fakes
    before = len(deepgram.rest_requests)
    status, report, _ = _check(capsys, _env(tmp_path, fakes, DEEPGRAM_TTS_TRANSPORT="rest"))
    assert status == 0, report
    assert len(deepgram.rest_requests) == before + 1
    assert deepgram.rest_requests[-1].query["container"] == "none"
    rest_with_a_bad_voice = _env(tmp_path, fakes, DEEPGRAM_TTS_TRANSPORT="rest", DEEPGRAM_TTS_VOICE="aura-x")
    status, report, _ = _check(capsys, rest_with_a_bad_voice)
    assert status == 1 and "HTTP 400" in _stage(report, "tts")["message"]
    assert _stage(report, "tts")["hint"].startswith("check DEEPGRAM_TTS_VOICE=aura-x")


def test_a_missing_key_for_an_explicit_provider_fails_without_a_request(tmp_path: Path, capsys: Any) -> None:
    env = tmp_path / "check.env"
    env.write_text("STT_PROVIDER=deepgram\nLLM_PROVIDER=echo\nTTS_PROVIDER=espeak\n")
    status, report, _ = _check(capsys, env)
    assert status == 1
    stt = _stage(report, "stt")
    assert stt["message"] == "STT_PROVIDER=deepgram needs DEEPGRAM_API_KEY" and stt["hint"] == "set DEEPGRAM_API_KEY"
    assert stt["latency_ms"] is None


def test_a_configured_fallback_is_checked_too(tmp_path: Path, fakes: Any, capsys: Any) -> None:
    pytest.importorskip("espeakng_loader")
    status, report, _ = _check(capsys, _env(tmp_path, fakes, LLM_FALLBACK="echo", TTS_FALLBACK="espeak"))
    assert status == 0, report
    assert [s["stage"] for s in report["stages"]] == ["stt", "llm", "tts", "llm fallback", "tts fallback"]
    assert _stage(report, "tts fallback")["provider"] == "espeak"


def test_a_bad_setting_is_refused_before_any_check(tmp_path: Path, capsys: Any) -> None:
    env = tmp_path / "bad.env"
    env.write_text("GEMINI_THINKING=lots\n")
    assert cli_main(["check", "--env-file", str(env)]) == 2
    assert "GEMINI_THINKING='lots' is not a thinking level" in capsys.readouterr().err


@pytest.mark.local
def test_the_offline_engines_load_and_run_once(tmp_path: Path, capsys: Any) -> None:
    pytest.importorskip("pocketsphinx")
    pytest.importorskip("espeakng_loader")
    env = tmp_path / "offline.env"
    env.write_text("STT_PROVIDER=pocketsphinx\nLLM_PROVIDER=echo\nTTS_PROVIDER=espeak\n")
    status, report, _ = _check(capsys, env)
    assert status == 0, report
    assert [(s["provider"], s["model"]) for s in report["stages"]] == [
        ("pocketsphinx", "silero-vad + pocketsphinx"),
        ("echo", "echo"),
        ("espeak", "espeak-ng"),
    ]
    assert "s of audio at 24 kHz" in _stage(report, "tts")["message"]
