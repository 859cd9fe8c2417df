"""The voice agent app: configuration, engine choice, /health, the page, logging, and the CLI."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

import pytest
import voxline
from starlette.config import Config
from starlette.testclient import TestClient
from voxline.apps.cli import main as cli_main
from voxline.apps.voice_agent import create_app, factory
from voxline.apps.voice_agent.config import ConfigError, Settings, default_registry
from voxline.apps.voice_agent.logs import LOG_FILE_NAME, configure_logging, session_id
from voxline.processor import Processor
from voxline.processors.deepgram.provider import TTS_VOICE
from voxline.registry import Provider, Registry, Values

DG, GM = "dg-secret-key-123", "gm-secret-key-456"


def settings(**env: str) -> Settings:
    return Settings.from_config(Config(environ=env))


def app_for(tmp_path: Path, static: Path | None = None, **env: str) -> TestClient:
    env.setdefault("LOG_DIR", str(tmp_path / "logs"))
    return TestClient(create_app(Config(environ=env), static_dir=static or tmp_path / "static", preload=False))


# --- engine choice -----------------------------------------------------------------------------------------


def test_auto_picks_cloud_providers_when_keys_are_set() -> None:
    plan = settings(DEEPGRAM_API_KEY=DG, GEMINI_API_KEY=GM).plan()
    assert plan.engines == {"stt": "deepgram", "llm": "gemini", "tts": "deepgram"}
    assert not plan.offline_demo
    assert plan.missing == ()
    assert plan.problems == ()


def test_auto_without_keys_is_the_offline_demo_and_names_the_missing_keys() -> None:
    plan = settings().plan()
    assert plan.engines == {"stt": "local", "llm": "echo", "tts": "local"}
    assert plan.offline_demo
    assert plan.missing == ("DEEPGRAM_API_KEY", "GEMINI_API_KEY")


def test_auto_with_one_key_mixes_engines() -> None:
    plan = settings(GEMINI_API_KEY=GM).plan()
    assert plan.engines == {"stt": "local", "llm": "gemini", "tts": "local"}
    assert plan.offline_demo and plan.missing == ("DEEPGRAM_API_KEY",)
    plan = settings(DEEPGRAM_API_KEY=DG, OPENAI_BASE_URL="http://127.0.0.1:9/v1").plan()
    assert plan.engines == {"stt": "deepgram", "llm": "openai", "tts": "deepgram"}
    assert not plan.offline_demo and plan.missing == ()


def test_explicit_engines_win_and_missing_keys_are_problems() -> None:
    plan = settings(DEEPGRAM_API_KEY=DG, GEMINI_API_KEY=GM, STT_PROVIDER="local", LLM_PROVIDER="echo").plan()
    assert plan.engines == {"stt": "local", "llm": "echo", "tts": "deepgram"}
    assert plan.offline_demo and plan.problems == ()
    plan = settings(STT_PROVIDER="deepgram", LLM_PROVIDER="gemini", TTS_PROVIDER="Deepgram").plan()
    assert plan.engines == {"stt": "deepgram", "llm": "gemini", "tts": "deepgram"}
    assert plan.problems == (
        "STT_PROVIDER=deepgram needs DEEPGRAM_API_KEY",
        "LLM_PROVIDER=gemini needs GEMINI_API_KEY",
        "TTS_PROVIDER=deepgram needs DEEPGRAM_API_KEY",
    )


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"STT_PROVIDER": "sphinx3"}, "STT_PROVIDER='sphinx3' is not one of: auto, deepgram, local, whisper"),
        ({"LLM_PROVIDER": "claude"}, "LLM_PROVIDER='claude'"),
        ({"PORT": "http"}, "PORT must be an integer"),
        ({"PORT": "70000"}, "PORT must be between"),
        ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL='CHATTY'"),
        ({"DEEPGRAM_TTS_TRANSPORT": "grpc"}, "DEEPGRAM_TTS_TRANSPORT='grpc' is not one of: websocket, rest"),
        ({"DEEPGRAM_BASE_URL": "api.deepgram.com"}, "DEEPGRAM_BASE_URL must be a http:// or https:// URL"),
        ({"GEMINI_THINKING": "lots"}, "GEMINI_THINKING='lots' is not a thinking level"),
        ({"TTS_FALLBACK": "auto"}, "TTS_FALLBACK='auto' is not one of: deepgram, local, piper, espeak"),
        ({"TURN_ENGINE": "sometimes"}, "TURN_ENGINE='sometimes' is not on or off"),
        ({"TURN_MIN_INTERRUPTION_WORDS": "12"}, "TURN_MIN_INTERRUPTION_WORDS must be between 0 and 9, got 12"),
        ({"TURN_SMART_TURN": "maybe"}, "TURN_SMART_TURN='maybe' is not one of: auto, on, off"),
        ({"TURN_ECHO_THRESHOLD": "1"}, "TURN_ECHO_THRESHOLD must be between 0.05 and 0.95, got 1"),
        ({"TURN_SMART_TURN_DOUBT": "often"}, "TURN_SMART_TURN_DOUBT must be auto, always or a number of seconds"),
        ({"TURN_SMART_TURN_DOUBT": "4"}, "TURN_SMART_TURN_DOUBT must be between 0 and 3 seconds, got 4"),
        (
            {"TURN_MIN_ENDPOINTING_SECS": "3", "TURN_MAX_ENDPOINTING_SECS": "2"},
            "TURN_MIN_ENDPOINTING_SECS (3) must not exceed TURN_MAX_ENDPOINTING_SECS (2)",
        ),
    ],
)
def test_bad_settings_are_refused_by_name(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        settings(**env)
    assert needle in str(info.value)


def test_the_turn_settings_are_read_with_the_rest() -> None:
    from voxline.apps.voice_agent.turn_settings import TurnSettings

    assert settings().turns == TurnSettings()  # the declarations' defaults
    s = settings(
        TURN_ENGINE="off",
        TURN_MIN_INTERRUPTION_SECS="0.8",
        TURN_MIN_INTERRUPTION_WORDS="0",
        TURN_BACKCHANNELS=" Yeah, uh-huh ,, ",
        TURN_FALSE_INTERRUPTION_TIMEOUT="2",
        TURN_MIN_ENDPOINTING_SECS="0.5",
        TURN_MAX_ENDPOINTING_SECS="0.5",
        TURN_SMART_TURN="OFF",
        TURN_SMART_TURN_DOUBT="0.25",
        TURN_ECHO_THRESHOLD="0.3",
    )
    assert s.turns == TurnSettings(
        enabled=False,
        min_interruption_secs=0.8,
        min_interruption_words=0,
        backchannels=("yeah", "uh-huh"),
        false_interruption_timeout=2.0,
        min_endpointing_secs=0.5,
        max_endpointing_secs=0.5,
        smart_turn="off",
        smart_turn_doubt="0.25",
        echo_threshold=0.3,
    )


@pytest.mark.parametrize(
    ("doubt", "deepgram", "expected"),
    [("auto", True, 0.6), ("auto", False, None), ("always", True, None), ("0", True, 0.0), ("1.5", False, 1.5)],
)
def test_smart_turn_is_asked_only_in_doubt_on_deepgram_by_default(
    doubt: str, deepgram: bool, expected: float | None
) -> None:
    from voxline.apps.voice_agent.turn_wiring import with_turn_engine
    from voxline.processors.deepgram.stt import DeepgramSTT
    from voxline.stt import STTProcessor
    from voxline.turns import TurnProcessor

    class Local(STTProcessor):
        async def on_audio(self, frame: object) -> None:  # never run here
            raise NotImplementedError

    stage = DeepgramSTT(api_key="test-key") if deepgram else Local()
    stages = with_turn_engine([stage], settings(TURN_SMART_TURN="off", TURN_SMART_TURN_DOUBT=doubt))
    (engine,) = [s for s in stages if isinstance(s, TurnProcessor)]
    assert engine.params.model_doubt == expected


def test_settings_never_show_keys() -> None:
    s = settings(DEEPGRAM_API_KEY=DG, GEMINI_API_KEY=GM, CORS_ORIGINS="https://a.example, https://b.example")
    assert DG not in repr(s) and GM not in repr(s)
    assert s.cors_origins == ("https://a.example", "https://b.example")
    assert sorted(s.secrets()) == sorted([DG, GM])


# --- HTTP ----------------------------------------------------------------------------------------------------


def test_health_says_which_engine_runs_each_stage_and_never_shows_keys(tmp_path: Path) -> None:
    with app_for(tmp_path, DEEPGRAM_API_KEY=DG, GEMINI_API_KEY=GM, GEMINI_MODEL="gemini-test-model") as client:
        response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["version"] == voxline.__version__
    assert body["engines"] == {"stt": "deepgram", "llm": "gemini", "tts": "deepgram"}
    assert body["stages"]["llm"] == {
        "engine": "gemini",
        "provider": "gemini",
        "model": "gemini-test-model",
        "last_error": None,
    }
    assert body["stages"]["stt"]["model"] == "nova-3"
    assert body["stages"]["tts"]["model"] == "aura-asteria-en"  # the default voice
    assert body["stages"]["tts"]["transport"] == "websocket"
    assert body["offline_demo"] is False and body["missing"] == []
    assert body["keys"] == {"deepgram_api_key_set": True, "gemini_api_key_set": True, "openai_api_key_set": False}
    assert DG not in response.text and GM not in response.text


def test_health_of_a_misconfigured_agent_is_degraded(tmp_path: Path) -> None:
    with app_for(tmp_path, STT_PROVIDER="deepgram") as client:
        body = client.get("/health").json()
    assert body["status"] == "degraded"
    assert body["problems"] == ["STT_PROVIDER=deepgram needs DEEPGRAM_API_KEY"]
    assert body["stages"]["llm"]["engine"] == "echo"


def test_page_is_served_from_the_static_dir_or_a_placeholder(tmp_path: Path) -> None:
    static = tmp_path / "static"
    with app_for(tmp_path, static) as client:
        response = client.get("/")
        assert response.status_code == 200
        assert "browser client" in response.text and "/ws" in response.text
    static.mkdir()
    (static / "index.html").write_text("<html>the page</html>")
    (static / "app.js").write_text("console.log('hi')")
    with app_for(tmp_path, static) as client:
        assert client.get("/").text == "<html>the page</html>"
        js = client.get("/app.js")
        assert js.status_code == 200 and "javascript" in js.headers["content-type"]
        assert client.get("/missing.js").status_code == 404


def test_the_bundled_page_is_served(tmp_path: Path) -> None:
    from voxline.apps.voice_agent.app import STATIC_DIR

    if not (STATIC_DIR / "index.html").is_file():
        pytest.skip("the browser client is not in this checkout")
    with TestClient(create_app(Config(environ={"LOG_DIR": str(tmp_path)}), preload=False)) as client:
        page = client.get("/")
    assert page.status_code == 200 and "<html" in page.text.lower()


def test_cors_origins_are_applied(tmp_path: Path) -> None:
    with app_for(tmp_path, CORS_ORIGINS="https://ok.example") as client:
        ok = client.get("/health", headers={"Origin": "https://ok.example"})
        bad = client.get("/health", headers={"Origin": "https://evil.example"})
    assert ok.headers.get("access-control-allow-origin") == "https://ok.example"
    assert "access-control-allow-origin" not in bad.headers


def test_cors_origins_also_guard_the_websocket(tmp_path: Path) -> None:
    from starlette.websockets import WebSocketDisconnect

    with app_for(tmp_path, CORS_ORIGINS="https://ok.example") as client:
        for origin in ("https://ok.example", "http://testserver"):  # an allowed site, and the agent's own page
            with client.websocket_connect("/ws", headers={"origin": origin}) as ws:
                assert ws.receive_json() == {"type": "status", "data": "connected"}
        with client.websocket_connect("/ws", headers={"origin": "https://evil.example"}) as ws:
            error = ws.receive_json()
            assert error["type"] == "error" and "https://evil.example" in error["data"]
            with pytest.raises(WebSocketDisconnect) as info:
                ws.receive_json()
            assert info.value.code == 1008


def test_the_served_app_tunes_the_garbage_collector(tmp_path: Path) -> None:
    import gc

    before = gc.get_threshold()
    try:
        app = create_app(Config(environ={"LOG_DIR": str(tmp_path)}), static_dir=tmp_path, preload=False, tune_gc=True)
        with TestClient(app):
            assert gc.get_threshold() == (20_000, 50, 100)
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
    with app_for(tmp_path):  # tests and embedders keep their own settings
        assert gc.get_threshold() == before


# --- sessions that cannot start ------------------------------------------------------------------------------


def test_a_session_whose_engine_cannot_be_built_is_told_what_is_missing(tmp_path: Path) -> None:
    with app_for(tmp_path, STT_PROVIDER="deepgram") as client, client.websocket_connect("/ws") as ws:
        assert ws.receive_json() == {"type": "status", "data": "connected"}
        session = ws.receive_json()
        assert session["type"] == "session"
        data = session["data"]
        assert data["engines"] == {"stt": "deepgram", "llm": "echo", "tts": "local"}
        assert data["offline_demo"] is True
        assert data["missing"] == ["DEEPGRAM_API_KEY", "GEMINI_API_KEY"]
        assert data["audio_in_rate"] == 16000 and data["audio_out_rate"] == 24000
        assert len(data["id"]) == 12
        assert data["ready"] is False and data["problems"] == ["STT_PROVIDER=deepgram needs DEEPGRAM_API_KEY"]
        assert data["features"] == ["played", "playback", "binary_audio"]  # no turn engine: no server barge-in
        error = ws.receive_json()
        assert error["type"] == "error"
        assert "DEEPGRAM_API_KEY" in error["data"]
        ws.send_json({"type": "interrupt"})  # the socket stays open until the client leaves


def test_a_session_that_can_run_says_ready_with_no_problems(tmp_path: Path) -> None:
    with app_for(tmp_path, LLM_PROVIDER="echo", STT_PROVIDER="local", TTS_PROVIDER="local") as client:
        pytest.importorskip("pocketsphinx")
        with client.websocket_connect("/ws") as ws:
            assert ws.receive_json() == {"type": "status", "data": "connected"}
            data = ws.receive_json()["data"]
            assert data["ready"] is True and data["problems"] == []
            assert data["features"] == ["played", "playback", "binary_audio", "server_barge_in"]


def _unbuildable(exc: Exception) -> Registry:
    """The built-in registry plus an STT provider whose build fails with ``exc``."""

    def build(values: Values) -> list[Processor]:
        raise exc

    broken = Provider(stage="stt", name="broken", title="fails to build", build=build, extra="local")
    return default_registry().extended(broken)


def test_an_engine_that_fails_to_build_is_a_problem_in_the_session_message(tmp_path: Path) -> None:
    registry = _unbuildable(ImportError("No module named 'sphinxbase'"))
    app = create_app(
        Config(environ={"STT_PROVIDER": "broken", "LOG_DIR": str(tmp_path)}), preload=False, registry=registry
    )
    with TestClient(app) as client, client.websocket_connect("/ws") as ws:
        assert ws.receive_json() == {"type": "status", "data": "connected"}
        data = ws.receive_json()["data"]
        assert data["ready"] is False and data["engines"]["stt"] == "broken"
        (problem,) = data["problems"]
        assert problem == (
            "the broken speech-to-text provider is not installed (No module named 'sphinxbase'); "
            "pip install 'voxline[local]'"
        )
        error = ws.receive_json()
        assert error == {"type": "error", "data": f"The voice pipeline cannot start: {problem}"}
        last = client.get("/health").json()["stages"]["stt"]["last_error"]
        assert last["provider"] == "broken" and last["message"] == problem and last["at"] > 0


def test_a_model_that_fails_to_load_at_startup_is_its_stage_last_error(tmp_path: Path) -> None:
    import time

    async def preload(values: Values) -> None:
        raise RuntimeError("model file model.bin has sha256 0bad, expected 1a5a")

    def build(values: Values) -> list[Processor]:
        return []

    checked = Provider(stage="stt", name="checked", title="a model with a pin", build=build, preload=preload)
    config = Config(environ={"STT_PROVIDER": "checked", "LOG_DIR": str(tmp_path)})
    app = create_app(config, static_dir=tmp_path, registry=default_registry().extended(checked))
    with TestClient(app) as client:
        deadline = time.monotonic() + 5
        while (last := client.get("/health").json()["stages"]["stt"]["last_error"]) is None:
            assert time.monotonic() < deadline, "the preload's failure never reached /health"
            time.sleep(0.02)
    assert last["provider"] == "checked"
    assert last["message"] == "checked could not be loaded: model file model.bin has sha256 0bad, expected 1a5a"


def test_errors_are_told_apart_by_stage() -> None:
    from voxline.apps.voice_agent.stage_errors import stages_of
    from voxline.llm import LLMProcessor

    class Stage(Processor):
        pass

    class Model(LLMProcessor):
        pass

    pipeline = [
        Stage(name="vad"),
        Stage(name="stt"),
        Model(name="llm", warm_up=False),
        Stage(name="agg"),
        Stage(name="tts"),
    ]
    assert stages_of(pipeline) == {"vad": "stt", "stt": "stt", "llm": "llm", "agg": "tts", "tts": "tts"}


async def test_session_log_lines_carry_the_session_id(tmp_path: Path) -> None:
    from app_helpers import Client, serve_app

    app = create_app(Config(environ={"LOG_DIR": str(tmp_path), "STT_PROVIDER": "deepgram"}), preload=False)
    async with serve_app(app) as url:
        async with Client.connect(url) as client:
            await client.wait_message("error")
            sid = client.of_type("session")[0]["id"]
        async with asyncio.timeout(3):  # the last line is written once the server has seen the close
            while app.state.agent.sessions:  # noqa: ASYNC110 - polling the app from outside
                await asyncio.sleep(0.01)
    for handler in logging.getLogger().handlers:
        handler.flush()
    lines = (tmp_path / LOG_FILE_NAME).read_text().splitlines()
    tagged = [line for line in lines if f"[{sid}]" in line]
    assert any("client connected" in line for line in tagged)
    assert any("cannot build the pipeline" in line and "DEEPGRAM_API_KEY" in line for line in tagged)
    assert any("session closed" in line for line in tagged)


# --- logging -------------------------------------------------------------------------------------------------


def test_log_lines_carry_the_session_id_and_never_a_key(tmp_path: Path) -> None:
    configure_logging("INFO", tmp_path, secrets=[DG])
    log = logging.getLogger("voxline.test")
    token = session_id.set("abc123")
    try:
        log.info("connecting with key %s", DG)
    finally:
        session_id.reset(token)
    log.info("outside any session")
    for handler in logging.getLogger().handlers:
        handler.flush()
    lines = (tmp_path / LOG_FILE_NAME).read_text().splitlines()
    mine = [line for line in lines if "voxline.test" in line]
    assert len(mine) == 2
    assert "- INFO - [abc123] voxline.test - connecting with key ***" in mine[0]
    assert mine[0][:4].isdigit() and mine[0][10] == " "  # a timestamp first
    assert "[-]" in mine[1]
    assert DG not in "\n".join(lines)
    configure_logging("INFO", None)


# --- CLI -----------------------------------------------------------------------------------------------------


def test_cli_refuses_a_bad_configuration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = tmp_path / "bad.env"
    env.write_text("LLM_PROVIDER=telepathy\n")
    assert cli_main(["serve", "--env-file", str(env)]) == 2
    assert "LLM_PROVIDER='telepathy'" in capsys.readouterr().err


@pytest.mark.parametrize(("given", "expected"), [(None, "1"), ("4", "4")])
def test_serve_keeps_blas_to_one_thread_unless_the_operator_says_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: str | None, expected: str
) -> None:
    from voxline.apps import cli

    seen: list[str | None] = []
    monkeypatch.setattr(cli, "_run", lambda args, settings, workers: seen.append(os.environ.get(cli.BLAS_THREADS)))
    monkeypatch.setenv("VOXLINE_ENV_FILE", "")  # serve sets these; monkeypatch restores them
    monkeypatch.setenv("VOXLINE_WORKERS", "")
    monkeypatch.setenv(cli.BLAS_THREADS, given or "")  # recorded, so the test leaves the environment as it was
    if given is None:
        monkeypatch.delenv(cli.BLAS_THREADS)
    assert cli_main(["serve", "--env-file", str(tmp_path / "none")]) == 0
    assert seen == [expected]


def test_cli_help_lists_the_serve_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli_main(["serve", "--help"])
    out = capsys.readouterr().out
    for flag in ("--host", "--port", "--workers", "--reload"):
        assert flag in out


def test_health_json_is_plain_json(tmp_path: Path) -> None:
    with app_for(tmp_path) as client:
        text = client.get("/health").text
    assert json.loads(text)["engines"] == {"stt": "local", "llm": "echo", "tts": "local"}


def test_a_stage_that_fails_to_start_is_reported_and_the_socket_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from starlette.websockets import WebSocketDisconnect
    from voxline.apps.voice_agent import session as session_module
    from voxline.processor import Processor

    class Unreachable(Processor):
        async def on_start(self) -> None:
            raise ConnectionError("provider refused the connection (HTTP 401)")

    monkeypatch.setattr(session_module, "build_processors", lambda settings, plan: [Unreachable()])
    with app_for(tmp_path) as client, client.websocket_connect("/ws") as ws:
        assert ws.receive_json()["data"] == "connected"
        assert ws.receive_json()["type"] == "session"
        error = ws.receive_json()
        assert error["type"] == "error"
        assert "HTTP 401" in error["data"] and "stopped" in error["data"]
        stage_error = ws.receive_json()  # the additive detail: which stage, which provider
        assert stage_error["type"] == "stage_error"
        assert stage_error["data"]["stage"] == "stt" and "HTTP 401" in stage_error["data"]["message"]
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_json()
        assert info.value.code == 1011


def test_voxline_serve_runs_the_agent(tmp_path: Path) -> None:
    """The CLI end to end: a real uvicorn process serving /health, stopped with SIGTERM."""
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "LOG_DIR": str(tmp_path / "logs"), "STT_PROVIDER": "local", "LLM_PROVIDER": "echo"}
    env.pop("DEEPGRAM_API_KEY", None)
    env.pop("GEMINI_API_KEY", None)
    cmd = [sys.executable, "-m", "voxline.apps.cli", "serve", "--port", str(port), "--env-file", str(tmp_path / "none")]
    server = subprocess.Popen(cmd, env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    body = json.loads(response.read())
                break
            except OSError:
                assert server.poll() is None, server.communicate()[1]
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.1)
        assert body["engines"] == {"stt": "local", "llm": "echo", "tts": "local"}
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=10)
    assert "Uvicorn running on" in stderr and " - INFO - [-] " in stderr
    assert (tmp_path / "logs" / LOG_FILE_NAME).is_file()


def test_a_provider_that_raises_while_building_is_named_with_its_error() -> None:
    s = Settings.from_config(Config(environ={"STT_PROVIDER": "broken"}), _unbuildable(ValueError("bad model file")))
    with pytest.raises(factory.ProviderUnavailable) as info:
        factory.build_processors(s, s.plan())
    assert str(info.value) == "the broken speech-to-text provider could not be built: bad model file"
    assert info.value.stage == "stt"


def test_an_explicit_local_engine_without_its_packages_is_a_clear_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    from voxline.processors.local import choose

    real = choose.missing_packages
    monkeypatch.setattr(choose, "missing_packages", lambda e: ["faster-whisper"] if e == "whisper" else real(e))
    plan = settings(STT_PROVIDER="whisper").plan()
    assert plan.problems == (
        "STT_PROVIDER=whisper needs faster-whisper (not installed); install with: pip install 'voxline[local]'",
    )
    plan = settings(STT_PROVIDER="local").plan()  # the alias falls back instead
    assert plan.problems == () and plan.engines["stt"] == "local" and plan.provider("stt").name == "pocketsphinx"


def test_the_offline_pipeline_is_built_from_the_local_engines() -> None:
    pytest.importorskip("pocketsphinx")
    pytest.importorskip("espeakng_loader")

    s = settings(STT_PROVIDER="pocketsphinx", TTS_PROVIDER="espeak")
    names = [type(p).__name__ for p in factory.build_processors(s, s.plan())]
    assert names == [
        "SileroVAD",
        "TurnAudioTap",
        "PocketsphinxSTT",
        "TurnProcessor",
        "EchoLLM",
        "SentenceAggregator",
        "EspeakTTS",
    ]
    vad = factory.build_processors(s, s.plan())[0]
    assert vad.params.stop_secs == 0.2 and vad.barge_in == "off"  # type: ignore[attr-defined]
    off = settings(STT_PROVIDER="pocketsphinx", TTS_PROVIDER="espeak", TURN_ENGINE="off")
    names = [type(p).__name__ for p in factory.build_processors(off, off.plan())]
    assert names == [
        "SileroVAD",
        "PocketsphinxSTT",
        "EchoLLM",
        "SentenceAggregator",
        "EspeakTTS",
    ]


def test_local_is_the_best_installed_engine(tmp_path: Path) -> None:
    from voxline.processors.local.choose import missing_packages

    if missing_packages("whisper") or missing_packages("piper"):
        pytest.skip("whisper and piper are not both installed")
    s = settings()
    names = [type(p).__name__ for p in factory.build_processors(s, s.plan())]
    assert names == [
        "SileroVAD",
        "TurnAudioTap",
        "WhisperSTT",
        "TurnProcessor",
        "EchoLLM",
        "SentenceAggregator",
        "PiperTTS",
    ]
    with app_for(tmp_path) as client:
        body = client.get("/health").json()
    assert body["engines"] == {"stt": "local", "llm": "echo", "tts": "local"}
    assert body["stages"]["stt"]["provider"] == "whisper"
    assert body["stages"]["stt"]["model"] == "silero-vad + whisper tiny.en (pocketsphinx interims)"
    assert body["stages"]["tts"] == {
        "engine": "local",
        "provider": "piper",
        "model": "piper en_US-joe-medium",
        "last_error": None,
    }


def test_the_cloud_pipeline_is_built_from_the_provider_processors() -> None:
    from voxline.apps.voice_agent.factory import build_processors

    try:
        from voxline.processors.deepgram import DeepgramTTS  # noqa: F401
    except ImportError:
        pytest.skip("the Deepgram TTS processor is not in this checkout")

    s = settings(DEEPGRAM_API_KEY=DG, GEMINI_API_KEY=GM, GEMINI_MODEL="gemini-test")
    stages = build_processors(s, s.plan())
    assert [type(p).__name__ for p in stages] == [
        "SileroVAD",
        "TurnAudioTap",
        "DeepgramSTT",
        "TurnProcessor",
        "GeminiLLM",
        "SentenceAggregator",
        "DeepgramTTS",
    ]
    stt, turns = stages[2], stages[3]
    # The VAD owns the speaking events; the engine finalises Deepgram and reads its fillers.
    assert not stt.speaking_frames and not stt.vad_events  # type: ignore[attr-defined]
    assert stt.quiet_message_seconds == 0.1  # type: ignore[attr-defined]  # while the VAD says quiet
    assert stt.speech_message_seconds == 0.06  # type: ignore[attr-defined]  # while the user speaks, the bot silent
    query = stt.connect_options()["request_options"]["additional_query_parameters"]  # type: ignore[attr-defined]
    assert query == {"filler_words": "true"}
    assert turns.stt is stt and turns.echo is not None  # type: ignore[attr-defined]
    off = settings(DEEPGRAM_API_KEY=DG, GEMINI_API_KEY=GM, TURN_ENGINE="off")
    stages = build_processors(off, off.plan())
    assert [type(p).__name__ for p in stages] == ["DeepgramSTT", "GeminiLLM", "SentenceAggregator", "DeepgramTTS"]
    assert stages[0].speaking_frames and stages[0].vad_events  # type: ignore[attr-defined]
    assert stages[0].quiet_message_seconds == 0  # type: ignore[attr-defined]  # no VAD: every frame as it comes
    assert stages[0].speech_message_seconds == 0  # type: ignore[attr-defined]


def test_the_tts_voice_defaults_to_asteria_and_takes_any_aura_voice() -> None:
    from voxline.apps.voice_agent.factory import build_processors

    pytest.importorskip("voxline.processors.deepgram")
    for env, voice in (({}, "aura-asteria-en"), ({"DEEPGRAM_TTS_VOICE": "aura-2-thalia-en"}, "aura-2-thalia-en")):
        s = settings(DEEPGRAM_API_KEY=DG, GEMINI_API_KEY=GM, **env)
        assert s[TTS_VOICE] == voice
        tts = build_processors(s, s.plan())[-1]
        assert type(tts).__name__ == "DeepgramTTS" and tts.voice == voice


def test_the_tts_transport_picks_the_deepgram_processor(tmp_path: Path) -> None:
    from voxline.apps.voice_agent.factory import build_processors

    pytest.importorskip("voxline.processors.deepgram")
    for transport, name in (("", "DeepgramTTS"), ("websocket", "DeepgramTTS"), ("REST", "DeepgramRESTTTS")):
        s = settings(DEEPGRAM_API_KEY=DG, GEMINI_API_KEY=GM, DEEPGRAM_TTS_TRANSPORT=transport)
        assert type(build_processors(s, s.plan())[-1]).__name__ == name
    with app_for(tmp_path, DEEPGRAM_API_KEY=DG, DEEPGRAM_TTS_TRANSPORT="rest") as client:
        assert client.get("/health").json()["stages"]["tts"]["transport"] == "rest"


def test_the_uvicorn_form_finds_a_module_level_app(tmp_path: Path) -> None:
    """`uvicorn voxline.apps.voice_agent:app` — the seed's way to run the server."""
    import os
    import subprocess
    import sys

    code = (
        "import voxline.apps.voice_agent as m, starlette.applications as s;"
        "print(isinstance(m.app, s.Starlette), m.app is m.app)"
    )
    env = {**os.environ, "LOG_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True"]
