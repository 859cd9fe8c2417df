"""The provider registry: settings read from declarations, the provider choices and the `auto` rule derived from
them, aliases, problems worded for the user, and the registry's guards against a bad declaration."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from voxline.processor import Processor
from voxline.processors.registry import REGISTRY
from voxline.registry import Alias, ConfigError, Provider, Registry, Secret, Setting, Values
from voxline.registry.check import hint_for
from voxline.registry.settings import choice, integer, number, on_off, secret, settings_table, text, url


def _none(values: Values) -> list[Processor]:
    return []


KEY = Setting("ACME_API_KEY", secret(), None, "Acme key.", role="key")
VOICE = Setting("ACME_VOICE", text(), "robot", "Acme voice.", role="model", mentions=("voice",))
ENDPOINT = Setting("ACME_BASE_URL", url(), None, "Acme endpoint.", role="endpoint")
ACME = Provider(
    stage="tts", name="acme", title="Acme TTS", build=_none, settings=(KEY, VOICE, ENDPOINT), cloud=True, needs=(KEY,)
)


def test_settings_are_read_parsed_and_refused_by_name() -> None:
    values = Values.read([KEY, VOICE], {"ACME_API_KEY": " k-123 ", "ACME_VOICE": "  "})
    assert values[KEY] == Secret("k-123") and values[VOICE] == "robot"  # stripped; blank is the default
    assert "k-123" not in repr(values) and "k-123" not in f"{values[KEY]}" and str(values[KEY]) == "k-123"
    assert values.secrets() == ["k-123"]
    for parse, raw, message in (
        (integer(1, 5), "9", "N must be between 1 and 5, got 9"),
        (integer(1, 5), "x", "N must be an integer, got 'x'"),
        (number(0, 1), "nan", "N must be between 0 and 1, got nan"),
        (choice("a", "b"), "C", "N='c' is not one of: a, b"),
        (url(), "ftp://x", "N must be a http:// or https:// URL, got 'ftp://x'"),
        (on_off(), "maybe", "N='maybe' is not on or off"),
    ):
        with pytest.raises(ConfigError) as info:
            Values.read([Setting("N", parse, None, "")], {"N": raw})
        assert str(info.value) == message


def test_a_switch_reads_the_usual_words_for_on_and_off() -> None:
    switch = Setting("N", on_off(), True, "")
    for raw, value in (("on", True), ("TRUE", True), ("yes", True), ("1", True), ("Off", False), ("no", False)):
        assert Values.read([switch], {"N": raw})[switch] is value
    assert Values.read([switch], {"N": " "})[switch] is True  # blank: the default


def test_two_different_declarations_of_one_name_are_refused() -> None:
    other = Setting("ACME_VOICE", text(), "human", "Another voice.")
    with pytest.raises(ValueError, match="ACME_VOICE is declared twice"):
        Values.read([VOICE, other], {})


def test_the_provider_choices_and_auto_rule_come_from_the_declarations() -> None:
    registry = REGISTRY.extended(ACME)
    choices = registry.choice("tts")
    assert choices.name == "TTS_PROVIDER"
    with pytest.raises(ConfigError, match="'polly' is not one of: auto, deepgram, local, piper, espeak, acme"):
        registry.read({"TTS_PROVIDER": "polly"})
    assert "`acme` (Acme TTS)" in choices.doc and "`acme` when `ACME_API_KEY` is set" in choices.doc
    # auto: the first cloud provider whose key is set, in registry order; else the stage's local entry
    assert registry.plan(registry.read({})).engines["tts"] == "local"
    assert registry.plan(registry.read({"ACME_API_KEY": "k"})).engines["tts"] == "acme"
    both = registry.plan(registry.read({"ACME_API_KEY": "k", "DEEPGRAM_API_KEY": "d"}))
    assert both.engines["tts"] == "deepgram"  # earlier in the registry: preferred
    # ... and its settings join the table
    assert [s.name for s in registry.settings()][:4] == [
        "DEEPGRAM_API_KEY",
        "GEMINI_API_KEY",
        "OPENAI_API_KEY",
        "ACME_API_KEY",
    ]
    assert "| `ACME_VOICE` | `robot` | Acme voice. |" in settings_table(registry.settings())


def test_an_explicit_provider_without_its_key_is_a_problem_and_its_key_is_missing() -> None:
    registry = REGISTRY.extended(ACME)
    plan = registry.plan(registry.read({"TTS_PROVIDER": "acme"}))
    assert plan.problems == ("TTS_PROVIDER=acme needs ACME_API_KEY",)
    assert plan.missing == ("DEEPGRAM_API_KEY", "GEMINI_API_KEY", "ACME_API_KEY")


def test_any_of_several_settings_can_make_a_provider_available() -> None:
    for env, llm in (
        ({}, "echo"),
        ({"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}, "openai"),
        ({"OPENAI_API_KEY": "k"}, "openai"),
    ):
        assert REGISTRY.plan(REGISTRY.read(env)).engines["llm"] == llm
    plan = REGISTRY.plan(REGISTRY.read({"LLM_PROVIDER": "openai"}))
    assert plan.problems == (
        "LLM_PROVIDER=openai needs OPENAI_API_KEY (or OPENAI_BASE_URL for a keyless local server)",
    )


def test_an_alias_runs_what_it_picks() -> None:
    first = Provider(stage="stt", name="first", title="", build=_none)
    second = Provider(stage="stt", name="second", title="", build=_none)
    picked = ["second"]
    alias = Alias(stage="stt", name="best", title="the best", candidates=(first, second), pick=lambda: picked[0])
    registry = Registry([alias, first, second, *(e for e in REGISTRY.entries if e.stage != "stt")])
    plan = registry.plan(registry.read({}))
    assert plan.engines["stt"] == "best" and plan.provider("stt") is second
    picked[0] = "nobody"
    with pytest.raises(ValueError, match="picked 'nobody'"):
        registry.plan(registry.read({}))


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([ACME, ACME], "two tts providers share a name"),
        ([ACME], "the tts stage has no local provider"),
    ],
)
def test_a_registry_refuses_declarations_it_could_not_use(entries: list[Any], message: str) -> None:
    others = [e for e in REGISTRY.entries if e.stage != "tts"]
    local = [] if "local" in message else [e for e in REGISTRY.entries if e.stage == "tts"]
    with pytest.raises(ValueError, match=message):
        Registry([*others, *local, *entries])


def test_a_provider_must_declare_the_settings_it_needs() -> None:
    with pytest.raises(ValueError, match="needs settings it does not declare"):
        Provider(stage="tts", name="x", title="", build=_none, settings=(VOICE,), needs=(KEY,))


def test_hints_name_the_setting_to_fix() -> None:
    values = Values.read([KEY, VOICE, ENDPOINT], {"ACME_API_KEY": "k", "ACME_BASE_URL": "http://acme.test"})
    assert hint_for(ACME, values, "auth", "") == "check ACME_API_KEY: the service refused the key"
    assert hint_for(ACME, values, "model", "") == "check ACME_VOICE=robot: the service does not know this model"
    assert (
        hint_for(ACME, values, "refused", "no such voice")
        == "check ACME_VOICE=robot: the service does not know this model"
    )
    assert (
        hint_for(ACME, values, "unreachable", "")
        == "nothing answered at http://acme.test: check ACME_BASE_URL and the network"
    )
    assert hint_for(ACME, values, "server", "") == "the service failed on its side: try again later"
    no_key = Values.read([KEY, VOICE, ENDPOINT], {})
    assert hint_for(ACME, no_key, "auth", "") == "set ACME_API_KEY"


def test_importing_the_registry_loads_no_engine() -> None:
    code = (
        "import sys; from voxline.processors.registry import REGISTRY; REGISTRY.plan(REGISTRY.read({}));"
        "heavy = [m for m in ('numpy', 'deepgram', 'google.genai', 'openai', 'websockets', 'starlette', "
        "'faster_whisper', 'piper', 'pocketsphinx', 'onnxruntime') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
