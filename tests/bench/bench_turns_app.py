"""The turn benchmark through the real app: the conversation corpus spoken into the served voice agent over a
WebSocket, by a client that never sends ``interrupt``.

Prints one JSON object per line, in the shape of tests/bench/bench_turns.py (``--report`` prints its tables).
Each scenario of the corpus (tests/bench/turns_corpus.py) gets a fresh app (``create_app`` under uvicorn on
loopback, as ``voxline serve`` runs it) and a fresh session. The client (tests/bench/turns_app_client.py) sends
the microphone in real time — the user's speech, the bot's own played audio fed back at -6/-12 dB 80 ms late
(echo family), background noise — and plays the bot's audio in real time after an 80 ms jitter buffer, flushing
it on ``status: interrupted``. Paths:

* ``cloud`` — the fake Deepgram (STT + TTS) and Gemini. The fake STT finds utterances by energy and writes the
  scenario's script: the user's words; for echo, the bot's words (what Deepgram would hear); nothing for noise.
  Fillers ("um") only when the agent asks for them (``filler_words=true``, which the turn engine does). The
  fake TTS's 440 Hz tone is no voice (a VAD rightly ignores it, so echo would test nothing): here it speaks
  with espeak-ng instead, whose word timings are the truth the heard text is scored against (the agent itself
  gets no timings from Deepgram and places words by their characters).
* ``offline`` — no keys: Silero VAD + pocketsphinx (``offline``) or whisper tiny.en with pocketsphinx interims
  (``offline-whisper``) + the echo LLM + espeak-ng; ``offline-whisper-piper`` speaks with piper (the default
  local engines, for issue 12's end of speech → first reply audio).

Configurations: ``<path>-baseline`` (``TURN_ENGINE=off``: the agent before turn-taking), ``<path>-engine``
(``TURN_SMART_TURN=off``), ``<path>-smart`` (with smart-turn), and ``+page`` variants in which the client also
honours ``playback`` and reports ``played`` like voxline's page.

Scored from the client's ground truth (``time.monotonic()``, same process): false cut-off (pause and filler
families: ``generating`` before the user's last word, or the turn answered in more than one piece), endpointing
delay (end of the last part's speech → the first ``generating``), false barge-ins (backchannel, echo, noise:
``interrupted``, or a second ``generating``), missed barge-ins and their latency (speech start → ``interrupted``
received), stale audio (seconds of audio received after ``interrupted`` and before the next reply), heard-text error
(words between what the model is told of the cut reply — read from the session's context — and what the client had
played when it flushed, placed by the same word timings: espeak-ng's own on the offline path, the fake's characters
on the cloud path), end of speech → the first reply ``audio`` message (``reply_audio_s``) and where that wait
went (``vad_stop_s``, ``stt_text_s``, ``model_s``, ``turn_ended_s``, from the engine's debug lines). Each
scenario also records what was heard: the finals the client was shown, the last interim, and the engine's own
lines (each turn's verdict, score and text, the model's probability) timed from the end of speech — what tells
an STT's misreading from a rule's mistake. Real time on a shared 2-core machine: figures are noisy under load
(the load average is printed). ``--whisper-speculate S`` sets when whisper's speculative pass starts (an A/B).

Run: ``python tests/bench/bench_turns_app.py [--quick] [--configs cloud-engine,offline-smart] [--voices slt]``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sys
import tempfile
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_turns import corpus_arguments, corpus_of, pct, play_out, report, run_if_installed, say_parts, summarise
from turns_app_client import Listener, Microphone
from turns_corpus import Scenario

CONFIGS = (
    "cloud-baseline",
    "cloud-engine",
    "cloud-smart",
    "offline-baseline",
    "offline-engine",
    "offline-smart",
    "offline-whisper-smart",
    "offline-whisper-piper-smart",
    "cloud-smart+page",
    "offline-smart+page",
)
CLOUD_REPLY = (
    "It will be sunny all day, with a light breeze in the afternoon and a clear sky in the evening. "
    "Tomorrow looks much the same."
)


def emit(name: str, **fields: Any) -> None:
    print(json.dumps({"bench": "turns_app", "name": name, **fields}), flush=True)


def cloud_script(scenario: Scenario, *, fillers: bool) -> tuple[list[str], str]:
    """What the fake Deepgram writes for each utterance it finds, and for any beyond the script."""
    texts = [p.text for p in scenario.parts if p.clip is not None and not p.text.startswith("(")]
    if not fillers:  # https://developers.deepgram.com/docs/filler-words: stripped unless asked for
        texts = [re.sub(r",? (um|uh),", "", t).rstrip(",") for t in texts]
    default = CLOUD_REPLY.split(". ")[0] if scenario.family == "echo" else ""
    return texts, default


@asynccontextmanager
async def served(config: str, scenario: Scenario, tmp: Path) -> Any:
    from app_helpers import serve_app
    from starlette.config import Config
    from voxline.apps.voice_agent import create_app

    env = {"LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"), "LOG_DIR": str(tmp)}
    if "TURN_SMART_TURN_DOUBT" in os.environ:  # when smart-turn is asked (before/after runs)
        env["TURN_SMART_TURN_DOUBT"] = os.environ["TURN_SMART_TURN_DOUBT"]
    if config.endswith("-baseline"):
        env["TURN_ENGINE"] = "off"
    elif "-engine" in config:
        env["TURN_SMART_TURN"] = "off"
    if not config.startswith("cloud"):
        # offline-whisper-*: whisper tiny.en with pocketsphinx interims; the other offline configs: pocketsphinx.
        # *-piper-*: piper's voice (with whisper: the default local engines); the others speak with espeak-ng.
        env.update(
            STT_PROVIDER="whisper" if "whisper" in config else "pocketsphinx",
            TTS_PROVIDER="piper" if "piper" in config else "espeak",
        )
        app = create_app(Config(environ=env), static_dir=tmp, preload=False)
        async with serve_app(app) as url:
            yield app, url
        return
    from voxline.testing.fakes._llm import Pacing
    from voxline.testing.fakes.deepgram import FakeDeepgram
    from voxline.testing.fakes.gemini import FakeGemini

    script, default = cloud_script(scenario, fillers=not config.endswith("-baseline"))
    dg = FakeDeepgram(transcripts=script, default_transcript=default, stt_final_delay=0.15, tts_first_byte_delay=0.1)
    gm = FakeGemini(replies=[CLOUD_REPLY] * 4, pacing=Pacing(first_token_delay=0.3, tokens_per_second=40.0))
    async with dg, gm:
        env.update(DEEPGRAM_API_KEY="test-key", GEMINI_API_KEY="test-key")
        env.update(DEEPGRAM_BASE_URL=dg.base_url, GEMINI_BASE_URL=gm.url)
        app = create_app(Config(environ=env), static_dir=tmp, preload=False)
        async with serve_app(app) as url:
            yield app, url


SPOKEN: dict[tuple[str, int], tuple[bytes, list[tuple[float, int, int]]]] = {}
"""What the fake TTS said for each text (at each rate): its audio and espeak-ng's word timings."""


def fake_tts_speaks() -> None:
    """The fake Deepgram TTS speaks with espeak-ng instead of its tone (bench only)."""
    from voxline.audio.resample import resample
    from voxline.processors.local.espeak import ENGINE
    from voxline.testing.fakes import _deepgram_speak

    def speak(text: str, seconds_per_char: float, rate: int) -> bytes:
        if (text, rate) not in SPOKEN:
            chunks: list[bytes] = []
            words: list[tuple[float, int, int]] = []

            def sink(pcm: bytes) -> bool:
                chunks.append(pcm)
                return True

            def on_word(sample: int, start: int, end: int) -> None:
                words.append((sample / ENGINE.sample_rate, start, end))

            job = (ENGINE.synth, (text, "en-us", 175, 50, sink, on_word))
            ENGINE._executor.submit(ENGINE._call, *job).result()  # a few ms, on espeak's own thread
            SPOKEN[(text, rate)] = (resample(b"".join(chunks), ENGINE.sample_rate, rate), words)
        return SPOKEN[(text, rate)][0]

    _deepgram_speak.tone = speak


async def run(scenario: Scenario, config: str, tmp: Path) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    async with served(config, scenario, tmp) as (app, url), connect(url + "/ws", max_size=None) as ws:
        engine_log = EngineLog()  # after the app's own logging set-up
        client = Listener(ws, page=config.endswith("+page"))
        reader = asyncio.create_task(client.read())
        while not client.session:
            await asyncio.wait_for(client.changed.wait(), 10)
            client.changed.clear()
        mic = Microphone(ws, client, echo_db=scenario.echo_db, background_db=scenario.background_db)
        feeder = asyncio.create_task(mic.run())
        spoken: list[tuple[float, float]] = []
        note, heard = "", None
        try:
            note = await say_parts(scenario, mic, client, spoken)
            if scenario.family == "barge_in" and not note:
                heard = await heard_text(app, client)
            await play_out(scenario, client, note)
        finally:
            mic.running = False
            await feeder
            reader.cancel()
            engine_log.close()
    result = score(scenario, config, spoken, client, heard, note)
    if spoken:
        end = spoken[-1][1]  # the engine's lines timed from the end of the user's last speech
        result.update(what_was_heard(client, end), engine=[f"{t - end:+.2f} {line}" for t, line in engine_log.lines])
        result.update(reply_parts(engine_log.lines, end))
    return result


class EngineLog(logging.Handler):
    """The turn engine's own account of the scenario (its debug lines: each turn's verdict, score and text, the
    model's probability), for telling an STT's misreading from a rule's mistake."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[float, str]] = []
        self.logger = logging.getLogger("voxline.turns")
        self.level_before = self.logger.level
        self.logger.setLevel(logging.DEBUG)
        self.logger.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.created - time.time() + time.monotonic(), record.getMessage()))

    def close(self) -> None:
        self.logger.removeHandler(self)
        self.logger.setLevel(self.level_before)
        super().close()


def reply_parts(lines: list[tuple[float, str]], speech_end: float) -> dict[str, float | None]:
    """Where the wait after the last speech went, from the engine's lines: the VAD's stop, the STT's text (the
    final, e.g. whisper's), the end-of-turn verdict's arrival and the turn's end, each from the end of speech."""

    def first(marker: str) -> float | None:
        times = [t for t, line in lines if marker in line and t >= speech_end - 0.05]
        return round(times[0] - speech_end, 4) if times else None

    return {
        "vad_stop_s": first("the VAD's stop"),
        "stt_text_s": first("the STT's text"),
        "model_s": first("end-of-turn model"),
        "turn_ended_s": first("turn ended"),
    }


def what_was_heard(client: Listener, speech_end: float) -> dict[str, Any]:
    """The STT's final transcripts as the client got them, the last interim, and the first reply audio after the
    end of the user's (last) speech: issue 12's "end of speech → first reply audio", through the whole app."""
    finals = [m["data"]["text"] for _, m in client.log if m["type"] == "transcript" and m["data"]["is_final"]]
    interims = [m["data"]["text"] for _, m in client.log if m["type"] == "transcript" and not m["data"]["is_final"]]
    audio = [t for t in client.times("audio") if t >= speech_end]
    return {
        "finals": finals,
        "last_interim": interims[-1] if interims else None,
        "reply_audio_s": round(audio[0] - speech_end, 4) if audio else None,
    }


async def heard_text(app: Any, client: Listener) -> dict[str, Any] | None:
    """After a barge-in: what the model is told of the cut reply, and what the client had played of it."""
    deadline = time.monotonic() + 4.0
    while not client.flushed and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    if not client.flushed:
        return None
    await asyncio.sleep(0.05)
    from voxline.llm import LLMProcessor
    from voxline.tts import TTSProcessor

    flushed = client.flushed[0]
    (task,) = app.state.agent.tasks
    llm = next(p for p in task.processors if isinstance(p, LLMProcessor))
    tts = next(p for p in task.processors if isinstance(p, TTSProcessor))
    cut = [t.text for t in llm.context.turns if t.role == "assistant" and t.interrupted]
    timeline = tts._timelines.get(flushed["epoch"]) if flushed["epoch"] is not None else None
    truth = None
    if timeline is not None:
        for piece in timeline.pieces:  # the cloud path: the words as the fake TTS actually spoke them
            spoken = SPOKEN.get((piece.text, tts.sample_rate))
            if spoken is not None and not piece.words:
                piece.words = spoken[1]
        truth = timeline.heard(flushed["played"], tts._seconds_per_char)
    told = cut[0] if cut else ""
    return {"told": told, "truth": truth, "played": round(flushed["played"], 3)}


def score(
    sc: Scenario, config: str, spoken: list[tuple[float, float]], client: Listener, heard: Any, note: str
) -> dict[str, Any]:
    out: dict[str, Any] = {"config": config, "family": sc.family, "voice": sc.voice, "scenario": sc.name}
    if note or not spoken:
        out["error"] = note or "nothing spoken"
        return out
    interrupts = client.times("status", "interrupted")
    generating = client.times("status", "generating")
    out["turns"] = len(generating)
    out["pauses"] = len(client.times("playback", {"action": "pause"}))
    out["reports"] = client.reports
    if sc.family in ("complete", "pause", "filler"):
        _, last_end = spoken[-1]
        # The turn was answered before the user had finished it (even if they had started its last part), or in
        # more than one piece: the user was cut off.
        out["cut_off"] = any(t < last_end for t in generating) or len(generating) > 1
        after = [t for t in generating if t >= last_end]
        out["endpointing_s"] = out["generating_s"] = round(after[0] - last_end, 4) if after else None
        out["missed_turn"] = not after
    elif sc.family in ("backchannel", "barge_in") or (sc.family == "noise" and len(spoken) > 1):
        start, end = spoken[-1]
        window = [t for t in interrupts if start - 0.05 <= t <= end + 2.0]
        if sc.family == "barge_in":
            out["missed"] = not window
            out["latency_s"] = round(window[0] - start, 4) if window else None
            out["stale_s"] = round(client.stale_seconds, 4)
            words = [t for t in client.times("transcript") if t >= start]
            paused = [t for t in client.times("playback", {"action": "pause"}) if t >= start]
            out["first_words_s"] = round(words[0] - start, 4) if words else None
            out["paused_s"] = round(paused[0] - start, 4) if paused else None
            if heard is not None and heard["truth"] is not None:
                out["heard_error_words"] = abs(len(heard["told"].split()) - len(heard["truth"].split()))
                out["heard"] = heard
        else:
            out["false_barge_in"] = bool(window)
            out["answered_as_turn"] = any(t >= start for t in generating)
    else:  # echo / background noise: the bot's answer plays; nothing after the question is a user turn
        out["false_barge_in"] = bool(interrupts)
        out["answered_as_turn"] = len(generating) > 1
        out["question_answered"] = bool(generating)
    return out


async def main() -> None:
    parser = corpus_arguments(__doc__.splitlines()[0], "cloud-baseline,cloud-smart,offline-baseline,offline-smart")
    parser.add_argument(
        "--whisper-speculate", type=float, default=None, help="WhisperSTT's speculate_secs (default: its own)"
    )
    args = parser.parse_args()
    if args.whisper_speculate is not None:  # an A/B of when whisper's speculative pass starts
        from voxline.processors.local.whisper import WhisperSTT

        assert WhisperSTT.__init__.__kwdefaults__ is not None
        WhisperSTT.__init__.__kwdefaults__["speculate_secs"] = args.whisper_speculate
    if args.report:
        report(args.report)
        return
    logging.basicConfig(level=logging.WARNING)
    configs = [c for c in args.configs.split(",") if c]
    if unknown := [c for c in configs if c not in CONFIGS]:
        parser.error(f"unknown configs {unknown}; choose from {', '.join(CONFIGS)}")
    _, corpus = corpus_of(args)
    from voxline.processors.local import preload

    await preload(
        stt="whisper" if any("whisper" in c for c in configs) else True,
        tts="piper" if any("piper" in c for c in configs) else True,
    )
    fake_tts_speaks()
    if any("smart" in c for c in configs):
        from voxline.processors.turns import SmartTurnModel

        await SmartTurnModel().warm_up()
    emit("start", scenarios=len(corpus), configs=configs, load_average_1min=round(os.getloadavg()[0], 2))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for config in configs:
            for scenario in corpus:
                result = await run(scenario, config, Path(tmp))
                emit("scenario", **result)
                results.append(result)
    summarise(results, emit)
    for config in configs:  # end of speech → first reply audio (issue 12): finished questions; all turns answered once
        for families in (("complete",), ("complete", "pause", "filler")):
            replies = [
                r["reply_audio_s"]
                for r in results
                if r["config"] == config and r["family"] in families and not r.get("cut_off")
                if r.get("reply_audio_s") is not None
            ]
            parts = {
                key: pct(
                    [r[key] for r in results if r["config"] == config and r["family"] in families and r.get(key)], 50
                )
                for key in ("vad_stop_s", "stt_text_s", "model_s", "turn_ended_s", "generating_s")
            }
            emit(
                "reply_audio",
                p50_parts_ms=parts,
                config=config,
                families=list(families),
                n=len(replies),
                p50_ms=pct(replies, 50),
                p95_ms=pct(replies, 95),
            )
    lat = [r["latency_s"] for r in results if r.get("latency_s") is not None]
    emit("barge_in_latency_all", p50_ms=pct(lat, 50), p95_ms=pct(lat, 95))
    emit("load_average_1min", value=round(os.getloadavg()[0], 2), cores=os.cpu_count())


if __name__ == "__main__":
    run_if_installed(main, emit)
