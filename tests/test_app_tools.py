"""The voice agent's AGENT_TOOLS and LLM_FALLBACK / TTS_FALLBACK: settings, the pipeline built, and a whole
session over real sockets (client → uvicorn → the app → the SDKs → the fakes) that calls a tool and then
survives its LLM failing."""

from __future__ import annotations

import logging
import sys
import textwrap
from pathlib import Path

import pytest
from app_helpers import Client, cloud_env, serve_app, silence, tone
from starlette.config import Config
from voxline.apps.voice_agent import create_app
from voxline.apps.voice_agent.config import ConfigError, Settings
from voxline.apps.voice_agent.factory import ProviderUnavailable, build_processors
from voxline.apps.voice_agent.tools import AgentToolsError, load_agent_tools
from voxline.fallback import FallbackLLM, FallbackTTS
from voxline.llm import LLMProcessor

DG, GM = "dg-secret-key-123", "gm-secret-key-456"

TOOLS_MODULE = '''
"""Tools for the test agent."""
from voxline.tools import tool


@tool
async def get_secret_number() -> int:
    """The secret number of the day."""
    return 42


@tool
async def shout(text: str) -> str:
    """Upper-cases a text."""
    return text.upper()


def not_a_tool() -> None:
    """A helper."""
'''


@pytest.fixture
def tools_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"agent_tools_{abs(hash(tmp_path)) % 10**8}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(TOOLS_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def settings(**env: str) -> Settings:
    return Settings.from_config(Config(environ=env))


def test_agent_tools_are_every_tool_of_the_named_module(tools_module: str) -> None:
    assert [t.name for t in load_agent_tools(tools_module)] == ["get_secret_number", "shout"]
    assert load_agent_tools(None) == [] and load_agent_tools("") == []
    with pytest.raises(AgentToolsError, match="cannot be imported"):
        load_agent_tools("no_such_module_for_agent_tools")
    with pytest.raises(AgentToolsError, match="defines no @tool"):
        load_agent_tools("json")


def test_the_llm_stage_gets_the_tools_and_a_bad_module_is_named_to_the_session(tools_module: str) -> None:
    s = settings(GEMINI_API_KEY=GM, AGENT_TOOLS=tools_module)
    llm = next(p for p in build_processors(s, s.plan()) if isinstance(p, LLMProcessor))
    assert llm.toolbox is not None and list(llm.toolbox.tools) == ["get_secret_number", "shout"]
    s = settings(GEMINI_API_KEY=GM, AGENT_TOOLS="no_such_module_for_agent_tools")
    with pytest.raises(ProviderUnavailable, match="AGENT_TOOLS='no_such_module_for_agent_tools'"):
        build_processors(s, s.plan())


def test_llm_fallback_wraps_the_chosen_engine_and_the_fallback_engine(tools_module: str) -> None:
    s = settings(GEMINI_API_KEY=GM, OPENAI_API_KEY="sk-x", LLM_FALLBACK="openai", AGENT_TOOLS=tools_module)
    [llm] = [p for p in build_processors(s, s.plan()) if isinstance(p, LLMProcessor)]
    assert isinstance(llm, FallbackLLM)
    assert [type(p).__name__ for p in llm.members] == ["GeminiLLM", "OpenAILLM"]
    assert llm.toolbox is not None and len(llm.toolbox) == 2
    same = settings(GEMINI_API_KEY=GM, LLM_FALLBACK="gemini")  # the fallback is the engine itself: no wrapper
    assert not any(isinstance(p, FallbackLLM) for p in build_processors(same, same.plan()))


def test_a_fallback_that_cannot_be_built_is_left_out_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    s = settings(OPENAI_API_KEY="sk-x", LLM_PROVIDER="openai", LLM_FALLBACK="gemini")  # no GEMINI_API_KEY
    with caplog.at_level(logging.WARNING):
        stages = build_processors(s, s.plan())
    assert [type(p).__name__ for p in stages if isinstance(p, LLMProcessor)] == ["OpenAILLM"]
    assert "the llm fallback is left out" in caplog.text and "GEMINI_API_KEY" in caplog.text


def test_tts_fallback_local_behind_deepgram() -> None:
    pytest.importorskip("voxline.processors.local")
    pytest.importorskip("espeakng_loader")
    s = settings(DEEPGRAM_API_KEY=DG, GEMINI_API_KEY=GM, TTS_FALLBACK="espeak")
    tts = build_processors(s, s.plan())[-1]
    assert isinstance(tts, FallbackTTS)
    assert [type(m).__name__ for m in tts.members] == ["DeepgramTTS", "EspeakTTS"]


def test_fallback_settings_are_checked() -> None:
    assert settings(LLM_FALLBACK="OpenAI").fallback("llm") == "openai"
    assert settings().fallback("llm") is None and settings().fallback("tts") is None and settings().agent_tools is None
    for env in ({"LLM_FALLBACK": "auto"}, {"LLM_FALLBACK": "claude"}, {"TTS_FALLBACK": "elevenlabs"}):
        with pytest.raises(ConfigError):
            settings(**env)


async def test_a_session_calls_a_tool_then_survives_its_llm_failing(tmp_path: Path, tools_module: str) -> None:
    deepgram = pytest.importorskip("voxline.testing.fakes.deepgram")
    from voxline.testing.fakes.gemini import Call, CallTools, FakeGemini
    from voxline.testing.fakes.openai import FakeOpenAI

    utterance = tone(0.4) + silence(0.6)
    dg = deepgram.FakeDeepgram(transcripts=["what is the secret number", "thanks"])
    gemini = FakeGemini(replies=[CallTools(Call("get_secret_number")), "It is 42."])
    backup = FakeOpenAI(api_key=None, replies="You are welcome.")
    async with dg, gemini, backup:
        environ = {
            **cloud_env(dg, gemini),
            "OPENAI_BASE_URL": backup.base_url,
            "LLM_FALLBACK": "openai",
            "AGENT_TOOLS": tools_module,
            "LOG_DIR": str(tmp_path / "logs"),
        }
        app = create_app(Config(environ=environ), static_dir=tmp_path, preload=False)
        async with serve_app(app) as url, Client.connect(url) as client:
            await client.send_audio(utterance, pause=0.002)
            await client.wait_message("status", "complete", timeout=15)
            assert "".join(client.of_type("text_chunk")) == "It is 42."
            gemini.fail(503, times=100)  # Gemini goes down between the turns
            await client.send_audio(utterance, pause=0.002)
            await client.wait_message("status", "complete", count=2, timeout=15)
            assert "".join(client.of_type("text_chunk")).endswith("You are welcome.")
            assert client.of_type("error") == []
    assert gemini.requests[1].chat is not None and gemini.requests[1].chat.tool_results[0].response == {"output": 42}
    [asked] = backup.requests
    roles = [m["role"] for m in asked.body["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "user"]  # the whole history, tools too
