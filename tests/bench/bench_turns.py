"""Conversation benchmark of turn-taking: today's behaviour vs the turn engine, per scenario family and voice.

Prints one JSON object per line. Each scenario of the corpus (tests/bench/turns_corpus.py) runs in real time
through a fresh offline pipeline — Silero VAD, pocketsphinx, the echo LLM, the sentence aggregator, espeak TTS —
whose tail is a simulated seed client (tests/bench/turns_sim.py: plays the bot in real time, never sends
``interrupt``, ignores ``playback``) and whose head is a microphone that hears the user, the bot's own voice
(echo family) and noise. Configurations:

* ``baseline`` — today: ``SileroVAD()`` (0.5 s stop, no barge-in), the STT's turn goes straight to the LLM.
* ``engine`` — ``SileroVAD(stop_secs=0.2)`` + :class:`voxline.turns.TurnProcessor` (its audio tap before
  the STT) with an :class:`~voxline.turns.EchoDetector` the client reports playback to.
* ``engine+smart-turn`` — the same plus the smart-turn v3.2 end-of-turn model.

Metrics (times from the script's ground truth, ``time.monotonic()``): false cut-off rate (pause and filler
families: a turn committed during the pause), endpointing delay (end of the user's speech → the turn reaching
the LLM, and → ``generating``) p50/p95, false barge-in rate (backchannel, echo, noise: an interrupt or a new
turn answered), missed barge-ins and barge-in latency (speech start → interrupt) p50/p95, stale audio (seconds
of an interrupted reply's audio reaching the client after the interrupt), heard-text error (words between what
the context keeps after a barge-in and what had played). Real time on a shared 2-core machine: figures are
noisy under load (the load average is printed).

Run: ``python tests/bench/bench_turns.py [--quick] [--configs baseline,engine] [--voices slt,rms]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).parent))

from mic_sim import SimulatedMic
from turns_corpus import Scenario, Voices, scenarios
from turns_sim import Client, Mic
from voxline.frames import BotHeardTextFrame, Frame, UserTextFrame
from voxline.pipeline import Pipeline
from voxline.processor import Processor
from voxline.task import PipelineTask

if TYPE_CHECKING:
    from turns_app_client import Listener

CONFIGS = ("baseline", "engine", "engine+smart-turn", "deepgram-baseline", "deepgram-engine")


def emit(name: str, **fields: Any) -> None:
    print(json.dumps({"bench": "turns", "name": name, **fields}), flush=True)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))] * 1000, 1)


class Recorder:
    """Observer: user turns as they reach the LLM, and the heard text the TTS stage fills in."""

    def __init__(self, llm: Processor) -> None:
        self.llm = llm
        self.turns: list[tuple[float, str]] = []
        self.heard: list[str] = []

    def on_push(self, source: Any, destination: Any, frame: Frame, direction: Any) -> None:
        if destination is self.llm and isinstance(frame, UserTextFrame):
            self.turns.append((time.monotonic(), frame.text))
        elif isinstance(frame, BotHeardTextFrame) and frame.text is not None:
            self.heard.append(frame.text)


def build(config: str, deepgram_url: str | None = None) -> tuple[Pipeline, Client, Processor, Any]:
    from voxline.aggregation import SentenceAggregator
    from voxline.processors.local import EchoLLM, EspeakTTS, PocketsphinxSTT
    from voxline.processors.vad import SileroVAD, VADParams

    llm, tts = EchoLLM(), EspeakTTS()
    stt: Processor = PocketsphinxSTT()
    if deepgram_url is not None:
        from voxline.processors.deepgram import DeepgramSTT

        # As the app builds it today (no local VAD: Deepgram's results drive the speaking events), or, with the
        # engine, plain: the engine finalises it at the local VAD's stop.
        plain = config != "deepgram-baseline"
        # deepgram-sdk 7 has no filler_words keyword: it rides as an extra query parameter.
        extra = {"additional_query_parameters": {"filler_words": "true"}}
        options = {"request_options": extra} if plain else {}
        stt = DeepgramSTT(
            api_key="test-key",
            base_url=deepgram_url,
            vad_events=not plain,
            speaking_frames=not plain,
            options=options,
        )
    if config in ("baseline", "deepgram-baseline"):
        client = Client(tts=tts)
        head: list[Processor] = [] if deepgram_url is not None else [SileroVAD()]
        stages: list[Processor] = [*head, stt, llm, SentenceAggregator(), tts, client]
        return Pipeline(stages), client, llm, None
    from voxline.turns import EchoDetector, TurnParams, TurnProcessor

    echo = EchoDetector()
    model = None
    if config.endswith("+smart-turn"):
        from voxline.processors.turns import SmartTurnModel

        model = SmartTurnModel()
    params = TurnParams()
    turns = TurnProcessor(params=params, echo=echo, model=model, stt=stt if deepgram_url is not None else None)  # type: ignore[arg-type]
    client = Client(echo=echo, tts=tts)
    vad = SileroVAD(params=VADParams(stop_secs=params.vad_stop_secs, start_secs=params.vad_start_secs))
    stages = [vad, turns.tap, stt, turns, llm, SentenceAggregator(), tts, client]
    return Pipeline(stages), client, llm, turns


DEEPGRAM_FAMILIES = ("complete", "pause", "filler", "backchannel", "barge_in")
"""The fake Deepgram transcribes from a script, not from the audio: echo and noise would get scripted words."""


def deepgram_script(scenario: Scenario, *, fillers: bool) -> list[str]:
    """What Deepgram would write for each part: punctuated; "um" and "uh" only with ``filler_words=true``
    (https://developers.deepgram.com/docs/filler-words: without it, the two are stripped)."""
    import re

    texts = [p.text for p in scenario.parts if p.clip is not None]
    return texts if fillers else [re.sub(r",? (um|uh),", "", t).rstrip(",") for t in texts]


async def run(scenario: Scenario, config: str) -> dict[str, Any]:
    if not config.startswith("deepgram"):
        return await run_on(scenario, config, None)
    from voxline.testing.fakes.deepgram import FakeDeepgram

    # A final 150 ms after the last voiced audio, as in the app benchmark; Deepgram's own endpointing (300 ms).
    # The agent today does not ask for filler words; with the engine it should (a trailing "um" is its best cue).
    script = deepgram_script(scenario, fillers=config != "deepgram-baseline")
    async with FakeDeepgram(transcripts=script, default_transcript="", stt_final_delay=0.15) as fake:
        return await run_on(scenario, config, fake.base_url)


async def run_on(scenario: Scenario, config: str, deepgram_url: str | None) -> dict[str, Any]:
    pipeline, client, llm, turns = build(config, deepgram_url)
    recorder = Recorder(llm)
    task = PipelineTask(pipeline, name="bench-turns", observers=[recorder])
    runner = asyncio.create_task(task.run())
    await task.wait_until_running()
    mic = Mic(task, client, echo_db=scenario.echo_db, background_db=scenario.background_db)
    feeder = asyncio.create_task(mic.run())
    spoken: list[tuple[float, float]] = []
    note = ""
    try:
        note = await say_parts(scenario, mic, client, spoken)
        await play_out(scenario, client, note)
    finally:
        mic.running = False
        await feeder
        await task.cancel("bench scenario over")
        await runner
    return score(scenario, config, spoken, client, recorder, turns, note)


async def say_parts(
    scenario: Scenario, mic: SimulatedMic, client: Client | Listener, spoken: list[tuple[float, float]]
) -> str:
    """Say the scenario's parts into ``mic``, each after its wait or once the bot has been audible at ``client``
    long enough, appending (start, end) of each to ``spoken`` — start at the part's speech onset, not at the
    clip's first sample; a note when the bot never spoke, else ""."""
    for part in scenario.parts:
        if part.after_bot is not None:
            if not await wait_audible(client, part.after_bot, timeout=15.0):
                return "the bot never spoke"
        else:
            await asyncio.sleep(part.wait)
        if part.clip is not None:
            start, end = await mic.say(part.clip)
            spoken.append((start + part.onset, end))
    return ""


async def play_out(scenario: Scenario, client: Client | Listener, note: str) -> None:
    """After the parts: echo and noise let the whole reply play into the mic (at most ``scenario.tail``), then
    2.8 s more; the rest wait ``scenario.tail``."""
    if scenario.family in ("echo", "noise") and not note:
        deadline = time.monotonic() + scenario.tail
        while time.monotonic() < deadline and (client.audible_since is not None or client.first_audio is None):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await asyncio.sleep(2.8)
    else:
        await asyncio.sleep(scenario.tail)


async def wait_audible(client: Client | Listener, seconds: float, timeout: float) -> bool:
    """Wait until the bot has been audible at ``client`` for ``seconds`` (False after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        since = client.audible_since
        if since is not None and time.monotonic() - since >= seconds:
            return True
        await asyncio.sleep(0.01)
    return False


def score(
    sc: Scenario, config: str, spoken: list[tuple[float, float]], client: Client, rec: Recorder, turns: Any, note: str
) -> dict[str, Any]:
    out: dict[str, Any] = {"config": config, "family": sc.family, "voice": sc.voice, "scenario": sc.name}
    out["turns"] = [text for _, text in rec.turns]
    if note or not spoken:
        out["error"] = note or "nothing spoken"
        return out
    interrupts = client.times("interrupt")
    generating = client.times("generating")
    out["pauses"] = len(client.times("pause"))
    if sc.family in ("complete", "pause", "filler"):
        last_start, last_end = spoken[-1]
        out["cut_off"] = any(t < last_start for t, _ in rec.turns)
        after = [t for t, _ in rec.turns if t >= last_end]
        out["endpointing_s"] = round(after[0] - last_end, 4) if after else None
        gen = [t for t in generating if t >= last_end]
        out["generating_s"] = round(gen[0] - last_end, 4) if gen else None
        out["missed_turn"] = not after
    elif sc.family in ("backchannel", "barge_in") or (sc.family == "noise" and len(spoken) > 1):
        start, end = spoken[-1]
        window = [t for t in interrupts if start - 0.05 <= t <= end + 2.0]
        answered = [t for t, _ in rec.turns if t >= start]
        if sc.family == "barge_in":
            out["missed"] = not window
            out["latency_s"] = round(window[0] - start, 4) if window else None
            out["stale_s"] = round(client.stale_seconds, 4)
            heard = client.heard[0] if client.heard else None
            if heard is not None and heard.get("truth_words") is not None and rec.heard:
                out["heard_error_words"] = abs(len(rec.heard[0].split()) - heard["truth_words"])
        else:
            out["false_barge_in"] = bool(window)
            out["answered_as_turn"] = bool(answered)
    else:  # echo / background noise: the bot's answer plays; nothing after the question is a user turn
        first = rec.turns[0][0] if rec.turns else spoken[-1][1]
        out["false_barge_in"] = any(t > first for t in interrupts)
        out["answered_as_turn"] = len(rec.turns) > 1
        out["question_answered"] = bool(rec.turns)
    if turns is not None:
        out["decisions"] = dict(turns.counts)
    return out


def summarise(results: list[dict[str, Any]], emit: Any = emit) -> None:
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        if "error" in r:
            emit("error", **{k: r[k] for k in ("config", "family", "voice", "scenario", "error")})
            continue
        for voice in (r["voice"], "all"):
            groups[(r["config"], r["family"], voice)].append(r)
    for (config, family, voice), rs in sorted(groups.items()):
        row: dict[str, Any] = {"config": config, "family": family, "voice": voice, "n": len(rs)}
        if family in ("complete", "pause", "filler"):
            delays = [r["endpointing_s"] for r in rs if r.get("endpointing_s") is not None]
            gens = [r["generating_s"] for r in rs if r.get("generating_s") is not None]
            row.update(
                false_cut_off=sum(r["cut_off"] for r in rs),
                endpointing_p50_ms=pct(delays, 50),
                endpointing_p95_ms=pct(delays, 95),
                generating_p50_ms=pct(gens, 50),
                generating_p95_ms=pct(gens, 95),
                missed_turns=sum(r["missed_turn"] for r in rs),
            )
        elif family == "barge_in":
            lat = [r["latency_s"] for r in rs if r.get("latency_s") is not None]
            errs = [r["heard_error_words"] for r in rs if r.get("heard_error_words") is not None]
            row.update(
                missed=sum(r["missed"] for r in rs),
                latency_p50_ms=pct(lat, 50),
                latency_p95_ms=pct(lat, 95),
                stale_ms=round(1000 * sum(r["stale_s"] for r in rs), 1),
                heard_error_words_max=max(errs) if errs else None,
            )
        else:
            row.update(
                false_barge_in=sum(r.get("false_barge_in", False) for r in rs),
                answered_as_turn=sum(r.get("answered_as_turn", False) for r in rs),
                false_any=sum(r.get("false_barge_in", False) or r.get("answered_as_turn", False) for r in rs),
                pauses=sum(r.get("pauses", 0) for r in rs),
            )
        emit("summary", **row)


async def building_blocks(voices: Voices) -> None:
    """CPU per call of the parts the engine adds: the smart-turn model (features + ONNX) and the echo check."""
    import numpy as np
    from voxline.turns import EchoDetector

    audio = np.concatenate([voices.say(q, "slt") for q in ("What is the weather like today?", "Turn it on.")])
    detector = EchoDetector()
    pcm = (audio * 32767).astype("<i2").tobytes()
    detector.played(pcm, 16000, 100.0)
    window = audio[16000:20800]
    times = []
    for i in range(200):
        started = time.perf_counter()
        detector.echo_share(window, 100.3 + i * 1e-3)
        times.append(time.perf_counter() - started)
    emit("echo_check", p50_ms=pct(times, 50), p95_ms=pct(times, 95), window_ms=300, delays_searched_ms=450)
    try:
        from voxline.processors.turns.smart_turn import SmartTurnModel
    except ImportError:
        return
    model = SmartTurnModel()
    started = time.perf_counter()
    model.load()
    load = time.perf_counter() - started
    times = []
    for i in range(20):
        clip = audio[: 16000 + i * 4000]
        started = time.perf_counter()
        await model.analyze(clip)
        times.append(time.perf_counter() - started)
    emit("smart_turn_call", p50_ms=pct(times, 50), p95_ms=pct(times, 95), load_ms=round(load * 1000, 1), threads=1)


def report(paths: list[str]) -> None:
    """Markdown tables (per family, then per voice) from the ``scenario`` lines of earlier runs."""
    results = []
    for path in paths:
        for line in Path(path).read_text().splitlines():
            row = json.loads(line)
            if row.get("name") == "scenario" and "error" not in row:
                results.append(row)
    configs = list(dict.fromkeys(r["config"] for r in results))
    voices = list(dict.fromkeys(r["voice"] for r in results))

    def cell(rs: list[dict[str, Any]], family: str) -> str:
        if not rs:
            return "n/a"
        if family in ("complete", "pause", "filler"):
            delays = [r["endpointing_s"] for r in rs if r.get("endpointing_s") is not None]
            cut = sum(r["cut_off"] for r in rs)
            return f"{cut}/{len(rs)} cut; {pct(delays, 50)} / {pct(delays, 95)} ms"
        if family == "barge_in":
            lat = [r["latency_s"] for r in rs if r.get("latency_s") is not None]
            stale = round(1000 * sum(r["stale_s"] for r in rs))
            missed = sum(r["missed"] for r in rs)
            return f"{missed}/{len(rs)} missed; {pct(lat, 50)} / {pct(lat, 95)} ms; stale {stale} ms"
        false = sum(bool(r.get("false_barge_in") or r.get("answered_as_turn")) for r in rs)
        interrupts = sum(bool(r.get("false_barge_in")) for r in rs)
        return f"{false}/{len(rs)} false ({interrupts} interrupts)"

    families = ["complete", "pause", "filler", "backchannel", "barge_in", "echo", "noise"]
    print("| family | " + " | ".join(configs) + " |")
    print("|---|" + "---|" * len(configs))
    for family in families:
        cells = [cell([r for r in results if r["config"] == c and r["family"] == family], family) for c in configs]
        print(f"| {family} | " + " | ".join(cells) + " |")
    for config in configs:
        print(f"\n{config}, per voice:\n")
        print("| family | " + " | ".join(voices) + " |")
        print("|---|" + "---|" * len(voices))
        for family in families:
            rs = [r for r in results if r["config"] == config and r["family"] == family]
            cells = [cell([r for r in rs if r["voice"] == v], family) for v in voices]
            print(f"| {family} | " + " | ".join(cells) + " |")


def corpus_arguments(description: str, configs: str) -> argparse.ArgumentParser:
    """The command line both turn benchmarks take (this one and bench_turns_app.py); ``configs``: the default."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="one scenario per family and voice")
    parser.add_argument("--configs", default=configs)
    parser.add_argument("--voices", default="")
    parser.add_argument("--families", default="")
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "voxline-turn-corpus"))
    parser.add_argument("--report", nargs="+", metavar="JSONL", help="print Markdown tables of earlier runs")
    return parser


def corpus_of(args: argparse.Namespace) -> tuple[Voices, list[Scenario]]:
    """The voices and the scenarios ``--quick``, ``--families`` and ``--voices`` select."""
    voices = Voices(Path(args.cache))
    families = set(args.families.split(",")) if args.families else None
    corpus = scenarios(voices, quick=args.quick, families=families)
    if args.voices:
        corpus = [s for s in corpus if s.voice in args.voices.split(",")]
    return voices, corpus


def run_if_installed(main: Callable[[], Coroutine[Any, Any, None]], emit: Callable[..., None]) -> None:
    """Run ``main``, or emit ``skipped`` (and exit 0) when flite, sox or the local engines are missing."""
    missing = [tool for tool in ("flite", "sox") if shutil.which(tool) is None]
    try:
        import pocketsphinx  # noqa: F401
    except ImportError:
        missing.append("voxline[local]")
    if missing:
        emit("skipped", reason=f"needs {', '.join(missing)}")
        sys.exit(0)
    asyncio.run(main())


async def main() -> None:
    args = corpus_arguments(__doc__.splitlines()[0], ",".join(CONFIGS)).parse_args()
    if args.report:
        report(args.report)
        return
    logging.basicConfig(level=logging.WARNING)
    voices, corpus = corpus_of(args)
    configs = [c for c in args.configs.split(",") if c]
    if any(c.endswith("+smart-turn") for c in configs):
        try:
            from voxline.processors.turns.smart_turn import SmartTurnModel

            await SmartTurnModel().warm_up()
        except ImportError as exc:
            emit("skipped", config="+smart-turn", reason=str(exc))
            configs = [c for c in configs if not c.endswith("+smart-turn")]
    from voxline.processors.local import preload

    await preload()
    emit("start", scenarios=len(corpus), configs=configs, load_average_1min=round(os.getloadavg()[0], 2))
    await building_blocks(voices)
    results = []
    for config in configs:
        for scenario in corpus:
            if config.startswith("deepgram") and scenario.family not in DEEPGRAM_FAMILIES:
                continue
            result = await run(scenario, config)
            emit("scenario", **result)
            results.append(result)
    summarise(results)
    emit("load_average_1min", value=round(os.getloadavg()[0], 2), cores=os.cpu_count())


if __name__ == "__main__":
    run_if_installed(main, emit)
