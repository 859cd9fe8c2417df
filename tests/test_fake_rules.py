"""One test per rule the fakes enforce: the pure rule modules refuse exactly what the providers refuse.

The fakes' plumbing (that a refusal becomes the provider's HTTP error or WebSocket close) is tested through the
real SDKs in test_fake_rules_wire.py; which rule cites which document is in the rule modules themselves.
"""

from __future__ import annotations

from typing import Any

import pytest
from voxline.testing.fakes.rules import Close, Refusal, deepgram_listen, deepgram_speak
from voxline.testing.fakes.rules import gemini as gemini_rules
from voxline.testing.fakes.rules import openai as openai_rules

# --- Gemini ------------------------------------------------------------------------------------------------


def user(text: str = "Hi") -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": text}]}


def gemini_body(**generation: Any) -> dict[str, Any]:
    return {"contents": [user()], "generationConfig": generation} if generation else {"contents": [user()]}


def refuse_gemini(body: dict[str, Any], model: str = "gemini-3.8-flash") -> Refusal:
    rules = gemini_rules.check_model(model, "v1", gemini_rules.MODELS)
    with pytest.raises(Refusal) as info:
        gemini_rules.check_generate_content(gemini_rules.normalise(body), rules)
    return info.value


def accept_gemini(body: dict[str, Any], model: str) -> None:
    rules = gemini_rules.check_model(model, "v1", gemini_rules.MODELS)
    gemini_rules.check_generate_content(gemini_rules.normalise(body), rules)


def test_gemini_unknown_model_is_404_and_models_none_serves_any_name() -> None:
    with pytest.raises(Refusal) as info:
        gemini_rules.check_model("gemini-9-ultra", "v1", gemini_rules.MODELS)
    assert info.value.status == 404 and "models/gemini-9-ultra is not found for API version v1" in info.value.message
    assert gemini_rules.check_model("anything", "v1", None) is None


@pytest.mark.parametrize("model", ["gemini-3.7-flash", "gemini-3.8-flash", "gemini-3.1-pro-preview", "gemini-4-argon"])
def test_gemini_minimal_is_refused_where_the_docs_list_no_minimal(model: str) -> None:
    refusal = refuse_gemini(gemini_body(thinkingConfig={"thinking_level": "MINIMAL"}), model)
    assert refusal.status == 400 and refusal.message.startswith("Thinking level MINIMAL is not supported")


@pytest.mark.parametrize(
    "model", ["gemini-3-flash-preview", "gemini-3.5-flash", "gemini-3.6-flash", "gemini-3.1-flash-lite"]
)
def test_gemini_minimal_is_accepted_up_to_36_flash(model: str) -> None:
    accept_gemini(gemini_body(thinkingConfig={"thinking_level": "MINIMAL"}), model)


def test_gemini_3_pro_takes_only_low_and_high() -> None:
    accept_gemini(gemini_body(thinkingConfig={"thinkingLevel": "LOW"}), "gemini-3-pro-preview")
    refusal = refuse_gemini(gemini_body(thinkingConfig={"thinkingLevel": "MEDIUM"}), "gemini-3-pro-preview")
    assert "MEDIUM is not supported" in refusal.message


def test_gemini_xhigh_only_on_hydrogen() -> None:
    accept_gemini(gemini_body(thinkingConfig={"thinking_level": "XHIGH"}), "gemini-4-hydrogen")
    refuse_gemini(gemini_body(thinkingConfig={"thinking_level": "XHIGH"}), "gemini-4-argon")


def test_gemini_level_on_a_25_model_is_refused() -> None:
    refusal = refuse_gemini(gemini_body(thinkingConfig={"thinking_level": "LOW"}), "gemini-2.5-flash")
    assert refusal.message == "Thinking level is not supported for this model."


def test_gemini_25_pro_refuses_a_zero_budget_and_takes_128_and_dynamic() -> None:
    refusal = refuse_gemini(gemini_body(thinkingConfig={"thinking_budget": 0}), "gemini-2.5-pro")
    assert "only works in thinking mode" in refusal.message
    for budget in (128, 32768, -1):
        accept_gemini(gemini_body(thinkingConfig={"thinking_budget": budget}), "gemini-2.5-pro")


@pytest.mark.parametrize(
    ("model", "low", "high"), [("gemini-2.5-pro", 128, 32768), ("gemini-2.5-flash-lite", 512, 24576)]
)
def test_gemini_budget_outside_the_models_range_is_refused(model: str, low: int, high: int) -> None:
    for budget in (low - 1, high + 1):
        refusal = refuse_gemini(gemini_body(thinkingConfig={"thinking_budget": budget}), model)
        assert f"between {low} and {high}" in refusal.message
    accept_gemini(gemini_body(thinkingConfig={"thinking_budget": 0}), "gemini-2.5-flash-lite")


def test_gemini_both_thinking_fields_are_refused_even_for_an_alias() -> None:
    config = {"thinking_budget": 0, "thinking_level": "LOW"}
    for model in ("gemini-3.8-flash", "gemini-flash-latest"):
        assert (
            "only one of thinking budget and thinking level"
            in refuse_gemini(gemini_body(thinkingConfig=config), model).message
        )
    accept_gemini(
        gemini_body(thinkingConfig={"thinking_level": "MINIMAL"}), "gemini-flash-latest"
    )  # alias: rules unknown


@pytest.mark.parametrize(
    ("contents", "expected"),
    [
        ([], "contents is not specified"),
        ([{"role": "assistant", "parts": [{"text": "x"}]}, user()], "contents[0].role: Please use a valid role"),
        ([{"role": "system", "parts": [{"text": "x"}]}, user()], "Please use a valid role: user, model."),
        ([{"role": "user", "parts": []}], "contents[0].parts: contents.parts must not be empty."),
        ([{"role": "user", "parts": [{}]}], "parts[0].data: required oneof field 'data'"),
        ([{"role": "user", "parts": [{"text": ""}]}], "empty text parameter"),
        ([user(), {"role": "model", "parts": [{"text": "x"}]}], "end with a user role"),
    ],
)
def test_gemini_contents_shape(contents: list[Any], expected: str) -> None:
    assert expected in refuse_gemini({"contents": contents}).message


def test_gemini_system_instruction_needs_text() -> None:
    empty = {"contents": [user()], "systemInstruction": {"parts": []}}
    assert "system_instruction.parts: contents.parts must not be empty" in refuse_gemini(empty).message
    no_data = {"contents": [user()], "systemInstruction": {"parts": [{}]}}
    assert "system_instruction.parts[0].data" in refuse_gemini(no_data).message


def test_gemini_a_field_sent_in_both_spellings_is_refused() -> None:
    body = {"contents": [user()], "systemInstruction": {"parts": [{"text": "a"}]}, "system_instruction": {}}
    with pytest.raises(Refusal, match="already set"):
        gemini_rules.normalise(body)


def test_gemini_temperature_and_output_limit_ranges() -> None:
    assert "temperature" in refuse_gemini(gemini_body(temperature=2.5)).message
    assert "max_output_tokens" in refuse_gemini(gemini_body(maxOutputTokens=0)).message
    accept_gemini(gemini_body(temperature=0.7, maxOutputTokens=200), "gemini-3.8-flash")


# --- OpenAI-compatible ----------------------------------------------------------------------------------------


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "llama3.2", "messages": [{"role": "user", "content": "Hi"}], "stream": True, **fields}


def refuse_chat(body: Any) -> Refusal:
    with pytest.raises(Refusal) as info:
        openai_rules.check_chat_request(body)
    assert info.value.status == 400
    return info.value


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "Hi"}]}, "model"),
        (chat(messages=[]), "messages"),
        (chat(messages=[{"role": "bot", "content": "x"}, {"role": "user", "content": "Hi"}]), "messages[0].role"),
        (chat(messages=[{"role": "user"}]), "messages[0].content"),
        (chat(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
        (chat(messages=[{"role": "user", "content": [{"text": "no type"}]}]), "messages[0].content"),
        (chat(temperature=3), "temperature"),
        (chat(max_tokens=0), "max_tokens"),
        (chat(model="o3-mini", max_tokens=100), "max_tokens"),
        (chat(model="gpt-5.1", temperature=0.5), "temperature"),
    ],
)
def test_openai_refusals_name_the_param(body: dict[str, Any], param: str) -> None:
    assert refuse_chat(body).param == param


def test_openai_last_message_must_be_user_and_good_requests_pass() -> None:
    assert (
        "last message must be a user message"
        in refuse_chat(chat(messages=[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])).message
    )
    openai_rules.check_chat_request(chat(temperature=0.7, max_tokens=50))  # an ordinary model takes both
    openai_rules.check_chat_request(chat(model="o3-mini", temperature=1))  # the default temperature is fine
    parts = [{"type": "text", "text": "Hi"}]
    openai_rules.check_chat_request(
        chat(messages=[{"role": "system", "content": "s"}, {"role": "user", "content": parts}])
    )


def test_openai_reasoning_model_message_is_openais() -> None:
    refusal = refuse_chat(chat(model="o1", max_tokens=5))
    assert refusal.code == "unsupported_parameter"
    assert refusal.message.startswith("Unsupported parameter: 'max_tokens' is not supported with this model.")


# --- Deepgram listen ------------------------------------------------------------------------------------------

GOOD_LISTEN = {
    "model": "nova-3",
    "encoding": "linear16",
    "sample_rate": "16000",
    "channels": "1",
    "interim_results": "true",
    "endpointing": "300",
    "utterance_end_ms": "1000",
    "vad_events": "true",
    "smart_format": "true",
    "punctuate": "true",
    "language": "en",
}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"model": "nova-4-turbo"}, "No such model/language/tier combination found"),
        ({"encoding": "pcm16"}, "unsupported encoding"),
        ({"sample_rate": None}, "sample_rate is required when encoding is set"),
        ({"sample_rate": "16k"}, "sample_rate must be a positive integer"),
        ({"encoding": "amr-nb", "sample_rate": "16000"}, "requires sample_rate=8000"),
        ({"encoding": "amr-wb", "sample_rate": "8000"}, "requires sample_rate=16000"),
        ({"channels": "0"}, "channels must be a positive integer"),
        ({"interim_results": "yes"}, "interim_results must be true or false"),
        ({"endpointing": "-5"}, "endpointing must be a number of milliseconds or false"),
        ({"endpointing": "0.3"}, "endpointing must be a number of milliseconds or false"),
        ({"utterance_end_ms": "soon"}, "utterance_end_ms must be a number of milliseconds"),
        ({"interim_results": "false"}, "utterance_end_ms requires interim_results=true"),
        ({"interim_results": None}, "utterance_end_ms requires interim_results=true"),
    ],
)
def test_listen_handshake_refusals(change: dict[str, str | None], expected: str) -> None:
    query = {k: v for k, v in {**GOOD_LISTEN, **change}.items() if v is not None}
    with pytest.raises(Refusal) as info:
        deepgram_listen.check_listen_query(query)
    assert info.value.status == 400 and expected in info.value.message


def test_listen_handshake_accepts_what_the_docs_allow() -> None:
    deepgram_listen.check_listen_query(GOOD_LISTEN)
    deepgram_listen.check_listen_query({**GOOD_LISTEN, "endpointing": "false", "model": "nova-2-phonecall"})
    deepgram_listen.check_listen_query({"model": "nova-3"})  # containerised audio: no encoding, no sample rate
    deepgram_listen.check_listen_query({"model": "0b8dcb3b-7d2e-4a7f-9f3e-1c2d3e4f5a6b"})  # a custom model's id


def test_listen_audio_empty_or_undecodable_closes_1008_data_0000() -> None:
    raw = {"model": "nova-3", "encoding": "linear16", "sample_rate": "16000"}
    with pytest.raises(Close) as info:
        deepgram_listen.check_audio(b"", raw, first=False)
    assert (info.value.code, info.value.reason) == (1008, "DATA-0000")
    with pytest.raises(Close, match="cannot be decoded"):
        deepgram_listen.check_audio(b"\x01\x02" * 100, {"model": "nova-3"}, first=True)  # raw PCM, no encoding
    deepgram_listen.check_audio(b"RIFF....WAVEfmt ", {"model": "nova-3"}, first=True)  # a WAV header is fine
    deepgram_listen.check_audio(b"\x01\x02" * 100, raw, first=True)


def test_listen_idle_deadline_keepalive_counts_only_after_the_first_audio() -> None:
    # No audio yet: 10 s after opening, however many KeepAlives came.
    assert deepgram_listen.idle_deadline(100.0, None, 108.0, 10.0) == 110.0
    # After audio: 10 s after the last frame of any kind (a KeepAlive extends it).
    assert deepgram_listen.idle_deadline(100.0, 101.0, 108.0, 10.0) == 118.0
    assert deepgram_listen.IDLE_TIMEOUT == 10.0


# --- Deepgram speak -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"model": "aura-3-nobody-en"}, "No such model/version combination found"),
        ({"model": "aura-asteria-en", "encoding": "mp3"}, "not supported for streaming"),
        ({"model": "aura-asteria-en", "encoding": "linear16", "sample_rate": "44100"}, "sample_rate=44100 is invalid"),
        ({"model": "aura-asteria-en", "encoding": "mulaw", "sample_rate": "24000"}, "sample_rate=24000 is invalid"),
        ({"model": "aura-asteria-en", "encoding": "linear16", "container": "wav"}, "not applicable to streaming"),
    ],
)
def test_speak_handshake_refusals(query: dict[str, str], expected: str) -> None:
    with pytest.raises(Refusal) as info:
        deepgram_speak.check_speak_query(query)
    assert info.value.status == 400 and expected in info.value.message


def test_speak_handshake_accepts_documented_combinations() -> None:
    for voice in ("aura-asteria-en", "aura-2-thalia-en", "aura-2-celeste-es", "aura-2-fujin-ja"):
        deepgram_speak.check_speak_query({"model": voice, "encoding": "linear16", "sample_rate": "24000"})
    deepgram_speak.check_speak_query({"model": "aura-2-thalia-en", "encoding": "mulaw", "sample_rate": "8000"})
    deepgram_speak.check_speak_query({})  # every default is valid


@pytest.mark.parametrize(
    ("message", "code", "reason"),
    [
        (b"\x00\x01", 1003, "MESSAGE-0000"),
        ("not json", 1008, "DATA-0000"),
        ('{"type": "Shout", "text": "hi"}', 1008, "DATA-0000"),
        ('{"type": "Speak"}', 1008, "DATA-0000"),
        ('{"type": "Speak", "text": "' + "a" * 2001 + '"}', 1009, "BIG-0001"),
    ],
)
def test_speak_message_refusals_close_the_socket(message: str | bytes, code: int, reason: str) -> None:
    with pytest.raises(Close) as info:
        deepgram_speak.check_message(message)
    assert (info.value.code, info.value.reason) == (code, reason)


def test_speak_commands_pass_and_the_flush_limit_is_documented() -> None:
    for kind in ("Flush", "Clear", "Close"):
        assert deepgram_speak.check_message(f'{{"type": "{kind}"}}')["type"] == kind
    assert deepgram_speak.check_message('{"type": "Speak", "text": "' + "a" * 2000 + '"}')["type"] == "Speak"
    assert (deepgram_speak.FLUSH_LIMIT, deepgram_speak.FLUSH_WINDOW) == (20, 60.0)


@pytest.mark.parametrize(
    ("query", "body", "status", "expected"),
    [
        ({"model": "aura-nobody-en"}, {"text": "Hi"}, 400, "No such model/version combination found"),
        ({"encoding": "wav"}, {"text": "Hi"}, 400, "Unsupported audio format"),
        ({"encoding": "mp3", "container": "wav"}, {"text": "Hi"}, 400, "`container` is not applicable"),
        ({"encoding": "opus", "container": "none"}, {"text": "Hi"}, 400, "`container=none` is invalid"),
        ({"encoding": "linear16", "container": "ogg"}, {"text": "Hi"}, 400, "`container=ogg` is invalid"),
        ({"encoding": "mp3", "sample_rate": "24000"}, {"text": "Hi"}, 400, "`sample_rate=24000` is invalid"),
        ({"encoding": "linear16", "sample_rate": "22050"}, {"text": "Hi"}, 400, "`sample_rate=22050` is invalid"),
        ({}, {"words": "Hi"}, 400, "missing field `text`"),
        ({}, {"text": "   "}, 400, "Input text contains no characters."),
        ({}, {"text": "a" * 2001}, 413, "Input text exceeds maximum character limit of 2000."),
    ],
)
def test_speak_rest_refusals(query: dict[str, str], body: Any, status: int, expected: str) -> None:
    with pytest.raises(Refusal) as info:
        deepgram_speak.check_rest(query, body)
    assert info.value.status == status and expected in info.value.message


def test_speak_rest_accepts_the_documented_combinations() -> None:
    query = {"model": "aura-asteria-en", "encoding": "linear16", "sample_rate": "24000", "container": "none"}
    assert deepgram_speak.check_rest(query, {"text": "Hello."}) == "Hello."
    assert deepgram_speak.check_rest({"encoding": "opus", "container": "ogg"}, {"text": "Hi"}) == "Hi"
    assert deepgram_speak.check_rest({"encoding": "flac", "sample_rate": "22050"}, {"text": "Hi"}) == "Hi"
