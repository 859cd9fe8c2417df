"""The processors' default requests pass the strict fakes: for every model the Gemini table lists, and for the
Deepgram and OpenAI-compatible stages as the voice agent builds them. Issue 8: with the default settings a turn
must complete against a fake that enforces the documented rules — no 400, no close, for every model name.

The processors' table (``voxline.processors.gemini.models``) and the fake's (``voxline.testing.fakes.rules.gemini``)
are written independently from the same documents; the cross-check below fails when they disagree.
"""

from __future__ import annotations

import numpy as np
import pytest
from google.genai import types
from voxline.frames import AudioFrame, Frame, SpeakTextFrame, TTSAudioFrame, UserTextFrame
from voxline.processors.deepgram import DeepgramRESTTTS, DeepgramSTT, DeepgramTTS
from voxline.processors.gemini import DEFAULT_MODEL, MODEL_RULES, GeminiLLM, thinking_config_for
from voxline.processors.openai_compat import OpenAILLM
from voxline.testing import Sleep, run_processor
from voxline.testing.fakes.deepgram import FakeDeepgram
from voxline.testing.fakes.gemini import FakeGemini
from voxline.testing.fakes.openai import FakeOpenAI
from voxline.testing.fakes.rules import Refusal
from voxline.testing.fakes.rules import gemini as fake_rules

pytestmark = pytest.mark.filterwarnings("ignore:websockets.exceptions.InvalidStatusCode is deprecated")

KEY = "AIzaFakeKey-abcdefghijklmnop"
RATE = 16000


@pytest.mark.parametrize("model", sorted(MODEL_RULES))
async def test_a_default_gemini_turn_completes_against_the_strict_fake(model: str) -> None:
    async with FakeGemini(api_key=KEY, replies="Fine, thanks.") as fake:
        llm = GeminiLLM(api_key=KEY, base_url=fake.url, model=model, system_prompt="Be brief.")
        result = await run_processor(llm, [UserTextFrame(text="How are you?")])
    assert result.errors == [] and result.text() == "Fine, thanks."
    [request] = fake.requests  # one request: nothing was refused and healed
    assert request.status == 200 and request.refusal is None and llm.dropped_fields == frozenset()
    assert fake.lookups == [f"/v1/models/{model}"]  # the warm-up lookup found the model too


def test_the_default_model_is_in_the_table_and_gets_low() -> None:
    assert thinking_config_for(DEFAULT_MODEL) == types.ThinkingConfig(thinking_level=types.ThinkingLevel.LOW)


def _fake_accepts(model: str, config: types.ThinkingConfig) -> bool:
    body = {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}], "generationConfig": {}}
    body["generationConfig"]["thinkingConfig"] = config.model_dump(exclude_none=True, mode="json")
    try:
        fake_rules.check_generate_content(fake_rules.normalise(body), fake_rules.MODELS[model])
    except Refusal:
        return False
    return True


@pytest.mark.parametrize("model", sorted(MODEL_RULES))
def test_the_processor_table_and_the_fakes_independent_table_agree(model: str) -> None:
    rule = MODEL_RULES[model]
    for level in ("MINIMAL", "LOW", "MEDIUM", "HIGH", "XHIGH"):
        config = types.ThinkingConfig(thinking_level=types.ThinkingLevel(level))
        assert _fake_accepts(model, config) == rule.accepts(config), (model, level)
    if rule.control == "budget":
        for budget in (-1, 0, rule.budget_min - 1, rule.budget_min, rule.budget_max, rule.budget_max + 1):
            config = types.ThinkingConfig(thinking_budget=budget)
            assert _fake_accepts(model, config) == rule.accepts(config), (model, budget)
    assert rule.accepts(rule.fastest) and _fake_accepts(model, rule.fastest)


def test_every_table_row_cites_a_source() -> None:
    assert all(rule.source for rule in MODEL_RULES.values())


async def test_a_default_openai_turn_passes_the_strict_fake() -> None:
    async with FakeOpenAI(api_key=None, replies="Hi.") as fake:
        llm = OpenAILLM(model="llama3.2", base_url=fake.base_url, system_prompt="Be brief.")
        result = await run_processor(llm, [UserTextFrame(text="Hello")])
    assert result.errors == [] and [r.status for r in fake.requests] == [200]


def speech(seconds: float) -> bytes:
    t = np.arange(int(seconds * RATE)) / RATE
    return (np.sin(2 * np.pi * 220 * t) * 5000).astype("<i2").tobytes()


def frames(pcm: bytes, chunk: float = 0.02) -> list[Frame | Sleep]:
    step = int(chunk * RATE) * 2
    return [AudioFrame(pcm=pcm[i : i + step], sample_rate=RATE) for i in range(0, len(pcm), step)]


async def test_the_agents_stt_request_passes_the_strict_fake() -> None:
    """As the voice agent builds it (factory.py): VAD events and speaking frames on, every other option default."""
    async with FakeDeepgram(transcripts=["Hello there."], stt_final_delay=0.05) as fake:
        stt = DeepgramSTT(api_key="test-key", base_url=fake.base_url, vad_events=True, speaking_frames=True)
        audio = b"\x00\x00" * int(0.2 * RATE) + speech(1.0) + b"\x00\x00" * int(0.6 * RATE)
        result = await run_processor(stt, [*frames(audio), Sleep(0.4)])
        await fake.listen_connections[0].closed.wait()
    assert [f.text for f in result.downstream_of(UserTextFrame)] == ["Hello there."]
    assert fake.attempts == [("/v1/listen", 101)] and fake.listen_connections[0].close_code == 1000
    query = fake.listen_connections[0].query
    assert query["utterance_end_ms"] == "1000" and query["interim_results"] == "true"


async def test_an_empty_audio_frame_is_not_sent_deepgram_would_close_1008() -> None:
    async with FakeDeepgram(transcripts=["Still here."], stt_final_delay=0.05) as fake:
        stt = DeepgramSTT(api_key="test-key", base_url=fake.base_url)
        steps: list[Frame | Sleep] = [Sleep(0.3), AudioFrame(pcm=b"", sample_rate=RATE)]
        result = await run_processor(stt, [*steps, *frames(speech(1.0) + b"\x00\x00" * int(0.6 * RATE)), Sleep(0.4)])
        await fake.listen_connections[0].closed.wait()
    assert len(fake.listen_connections) == 1 and fake.listen_connections[0].close_code == 1000
    assert [f.text for f in result.downstream_of(UserTextFrame)] == ["Still here."]


@pytest.mark.parametrize("sample_rate", [8000, 16000, 24000, 32000, 48000])
async def test_the_tts_socket_request_passes_the_strict_fake(sample_rate: int) -> None:
    async with FakeDeepgram(tts_seconds_per_char=0.01) as fake:
        tts = DeepgramTTS(api_key="test-key", base_url=fake.base_url, sample_rate=sample_rate)
        result = await run_processor(tts, [SpeakTextFrame(text="Hello there."), Sleep(0.3)])
        await fake.speak_connections[0].closed.wait()
    assert fake.attempts == [("/v1/speak", 101)] and fake.speak_connections[0].close_code == 1000
    assert sum(len(f.pcm) for f in result.downstream_of(TTSAudioFrame)) == fake.tts_audio_bytes(
        "Hello there.", sample_rate
    )


async def test_the_tts_rest_request_passes_the_strict_fake() -> None:
    async with FakeDeepgram(tts_seconds_per_char=0.01) as fake:
        tts = DeepgramRESTTTS(api_key="test-key", base_url=fake.base_url, voice="aura-2-thalia-en")
        result = await run_processor(tts, [SpeakTextFrame(text="Hello there."), Sleep(0.3)])
    assert result.errors == []
    assert sum(len(f.pcm) for f in result.downstream_of(TTSAudioFrame)) == fake.tts_audio_bytes("Hello there.")
    assert fake.rest_requests[0].query == {
        "container": "none",
        "encoding": "linear16",
        "model": "aura-2-thalia-en",
        "sample_rate": "24000",
    }


LONG = " ".join(["word"] * 900)  # 4499 characters without a sentence end: one SpeakTextFrame from the aggregator


async def test_text_over_2000_characters_is_spoken_in_pieces_on_the_socket() -> None:
    async with FakeDeepgram(tts_seconds_per_char=0.001) as fake:
        tts = DeepgramTTS(api_key="test-key", base_url=fake.base_url)
        result = await run_processor(tts, [SpeakTextFrame(text=LONG), Sleep(0.5)])
        await fake.speak_connections[0].closed.wait()
    connection = fake.speak_connections[0]
    speaks = [m["text"] for m in connection.messages if m["type"] == "Speak"]
    assert len(speaks) == 3 and max(map(len, speaks)) <= 2000 and "".join(speaks) == LONG
    assert connection.close_code == 1000 and len(fake.speak_connections) == 1  # never closed 1009 BIG-0001
    assert sum(len(f.pcm) for f in result.downstream_of(TTSAudioFrame)) == fake.tts_audio_bytes(LONG)


async def test_text_over_2000_characters_takes_several_rest_requests() -> None:
    async with FakeDeepgram(tts_seconds_per_char=0.001) as fake:
        tts = DeepgramRESTTTS(api_key="test-key", base_url=fake.base_url)
        result = await run_processor(tts, [SpeakTextFrame(text=LONG), Sleep(0.5)])
    assert result.errors == [] and len(fake.rest_requests) == 3
    assert sum(len(f.pcm) for f in result.downstream_of(TTSAudioFrame)) == fake.tts_audio_bytes(LONG)


def test_speak_pieces_cut_at_whitespace_and_join_back() -> None:
    from voxline.processors.deepgram._common import speak_pieces

    assert speak_pieces("") == [] and speak_pieces("short") == ["short"]
    pieces = speak_pieces(LONG)
    assert "".join(pieces) == LONG and all(len(p) <= 2000 and p.endswith(" ") for p in pieces[:-1])
    assert speak_pieces("x" * 4001) == ["x" * 2000, "x" * 2000, "x"]  # no whitespace: a hard cut
