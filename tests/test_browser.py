"""The browser client in real headless Chromium against the real app.

The microphone is a flite-spoken WAV (Chromium's fake capture device), the app runs in a uvicorn thread, and
the providers are voxline's fake Deepgram and Gemini servers in their own threads. The tests assert on what the
servers received, on what the page shows, and on Web Audio itself (scheduled/ended sources, the playback meter
on the audio clock). Screenshots land in artifacts/.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from browser_support import (
    ServerThread,
    browser_page,
    counters,
    envelope_match,
    free_port,
    read_wav,
    record,
    require_tools,
    screenshot,
    segment_correlation,
    speech_wav,
    write_wav,
)
from starlette.config import Config
from voxline.apps.voice_agent.app import create_app

pytestmark = pytest.mark.browser

QUESTION = "What is the weather like in Paris today?"
REPLY = "It is sunny in Paris today, with a light breeze and about twenty degrees."
LONG_REPLY = " ".join(
    [
        "Once upon a time a small boat sailed out across the quiet grey sea before the sun came up.",
        "The fisherman on board sang an old song about the wind, the waves and the long road home.",
        "By noon the boat was far from land, and the water all around was blue and calm and deep.",
    ]
)


@pytest.fixture(scope="module")
def wavs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    require_tools("flite", "sox")
    d = tmp_path_factory.mktemp("speech")
    question = speech_wav(d, QUESTION, "question")
    story = speech_wav(d, "Please tell me a long story about the sea.", "story", pad=(0.5, 0.0))
    stop = speech_wav(d, "Stop, stop, wait a moment please.", "stop", pad=(0.0, 1.5))
    # First utterance, then 5 s of silence (the reply starts playing), then the user talks over it. The reply must
    # be playing when the user talks again: it started 1.2-1.8 s after the end of the utterance, under two CPU
    # hogs; 5 s leaves room for a far slower machine, and the long reply (13 s) still plays on.
    long_gap = d / "barge-long-gap.wav"
    subprocess.run(["sox", str(story), str(long_gap), "pad", "0", "5.0"], check=True, capture_output=True)
    joined = d / "barge-in.wav"
    subprocess.run(["sox", str(long_gap), str(stop), str(joined)], check=True, capture_output=True)
    # The question, 4 s (the reply plays), a wordless hum like clearing one's throat, 2.5 s, then "Stop, stop". The
    # hum must land inside the reply, past its first 400 ms: the reply started 1.1-1.5 s after the question, once
    # 3.4 s under two CPU hogs (with 3 s here the hum then came with the reply's first sound and paused nothing).
    barge = d / "barge.wav"
    subprocess.run(["sox", str(story), str(barge), "pad", "0", "4.0"], check=True, capture_output=True)
    hum = d / "hum.wav"
    write_wav(hum, _hum(d), 16000)
    gap = d / "gap.wav"
    subprocess.run(["sox", str(hum), str(gap), "pad", "0", "2.5"], check=True, capture_output=True)
    voice_only = d / "voice-only.wav"
    subprocess.run(["sox", str(barge), str(gap), str(stop), str(voice_only)], check=True, capture_output=True)
    return {"question": question, "barge": joined, "voice_only": voice_only}


def _hum(directory: Path) -> np.ndarray:
    """0.65 s of flite humming "hmmmm", faded out: voiced (the VAD hears speech) but no words."""
    raw, out = directory / "hum.raw.wav", directory / "hum16.wav"
    subprocess.run(["flite", "-voice", "slt", "-t", "hmmmmmm", "-o", str(raw)], check=True, capture_output=True)
    subprocess.run(["sox", str(raw), "-r", "16000", str(out)], check=True, capture_output=True)
    pcm, _ = read_wav(out)
    start = int(np.flatnonzero(np.abs(pcm) > 300)[0])
    cut = pcm[start : start + int(0.65 * 16000)].astype(np.float32)
    cut[-1600:] *= np.linspace(1, 0, 1600)
    return cut.astype("<i2")


@contextmanager
def agent_on_fakes(
    *,
    transcripts: list[str],
    replies: str | list[str],
    tts_seconds_per_char: float = 0.05,
    port: int = 0,
    env: dict[str, str] | None = None,
    **fake: Any,
) -> Iterator[tuple[ServerThread, Any, Any]]:
    """The real app with Deepgram (STT + TTS) and Gemini pointed at the fakes, served on a free port."""
    from voxline.testing.fakes.deepgram import FakeDeepgram
    from voxline.testing.fakes.gemini import FakeGemini

    deepgram = FakeDeepgram(transcripts=transcripts, tts_seconds_per_char=tts_seconds_per_char, **fake)
    deepgram.start_in_thread()
    gemini = FakeGemini(replies=replies)
    try:
        with gemini.running_in_thread():
            settings = {
                "DEEPGRAM_API_KEY": "test-key",
                "GEMINI_API_KEY": "test-key",
                "DEEPGRAM_BASE_URL": deepgram.base_url,
                "GEMINI_BASE_URL": gemini.url,
                "LOG_DIR": "",
                **(env or {}),
            }
            with ServerThread(create_app(Config(environ=settings), setup_logging=False), port=port) as server:
                yield server, deepgram, gemini
    finally:
        deepgram.stop_thread()


def open_page(page: Any, server: ServerThread, query: str = "?raw=1") -> None:
    page.goto(server.url + "/" + query)
    page.wait_for_function("window.voxline && window.voxline.state.connection === 'open'", timeout=10000)
    page.wait_for_function("window.voxline.session !== null", timeout=10000)


def log_text(page: Any) -> str:
    return str(page.inner_text("#log"))


def played_rms(page: Any, since: float = 0.0) -> float:
    """Loudest 20 ms block the playback meter saw (after audio time ``since``)."""
    log = page.evaluate("window.voxline.meterLog")
    return max((rms for t, rms in log if t >= since), default=0.0)


# ------------------------------------------------------------------------------------------------------- tests


def test_spoken_turn_on_fake_providers(wavs: dict[str, Path]) -> None:
    """Speech reaches the STT in real time and intact; the transcript, reply and its audio reach the user.

    The page's default wire: the server offers ``binary_audio``, so the microphone goes out as raw binary frames.
    """
    reference, rate = read_wav(wavs["question"])
    assert rate == 16000
    with agent_on_fakes(transcripts=["what is the weather like in paris today"], replies=REPLY) as (server, dg, _):
        with browser_page(wavs["question"]) as page:
            open_page(page, server)
            engines = page.evaluate("window.voxline.session.engines")
            assert engines == {"stt": "deepgram", "llm": "gemini", "tts": "deepgram"}
            assert page.is_hidden("#demo")  # the full agent: no offline-demo notice
            page.click("#talk")
            page.wait_for_function("window.voxline.counters.framesSent > 0", timeout=5000)
            assert page.get_attribute("#talk", "aria-pressed") == "true"
            assert page.evaluate("window.voxline.binaryAudio") is True

            page.wait_for_function("document.querySelector('#log').innerText.includes('paris today')", timeout=15000)
            listen = dg.listen_connections[0]
            t0, a0 = time.monotonic(), listen.audio_seconds
            page.wait_for_function("document.querySelector('#log').innerText.includes('light breeze')", timeout=10000)
            page.wait_for_function("window.voxline.counters.chunksEnded >= 3", timeout=10000)
            c = counters(page)
            assert c["audioChunksReceived"] >= c["chunksScheduled"] >= c["chunksEnded"] >= 3
            assert c["audioChunksDropped"] == 0 and c["underruns"] == 0
            assert played_rms(page) > 0.05, "the reply's audio was scheduled but never rendered"

            # Real time: the mic keeps streaming (silence after the WAV); ~1 s of audio per wall-clock second.
            time.sleep(max(0.0, 2.0 - (time.monotonic() - t0)))
            t1, a1 = time.monotonic(), listen.audio_seconds
            realtime = (a1 - a0) / (t1 - t0)
            assert 0.85 < realtime < 1.15

            # The per-turn waterfall: server figures plus the client's own voice-to-voice.
            page.wait_for_function(
                "window.voxline.turns.length > 0 && window.voxline.turns[0].metrics.turn", timeout=10000
            )
            turn = page.evaluate("window.voxline.turns[0]")
            assert turn["metrics"]["voice_to_voice_ms"] is not None
            assert 0 < turn["clientV2v"] < 5000
            page_rate = page.evaluate("window.voxline.sampleRate")
            screenshot(page, "fake-providers")
            assert page.errors == [] and page.console_errors == []

        received = np.frombuffer(bytes(listen.audio), "<i2")
        assert np.abs(received).max() > 1000, "the server received only silence (is the fake-capture path right?)"
        env_corr, lag = envelope_match(reference, received)
        seg_corr = segment_correlation(reference, received, lag)
        record(
            "spoken_turn",
            audio_per_wall_second=round(realtime, 3),
            envelope_corr=round(env_corr, 4),
            segment_corr=round(seg_corr, 4),
            lag_ms=lag / 16,
            server_metrics=turn["metrics"],
            client_v2v_ms=round(turn["clientV2v"]),
            sample_rate=page_rate,
        )
        assert env_corr > 0.95, env_corr
        assert seg_corr > 0.9, seg_corr


def test_capture_resamples_44100_to_16000_without_aliasing(tmp_path: Path) -> None:
    """Headless Chromium captures at 44.1 kHz: a 1 kHz tone must arrive at exactly 1 kHz (no 48 kHz assumption,
    which would put it at 919 Hz) and a 12 kHz tone must be filtered out, not folded down to 4 kHz."""
    rate = 44100
    t = np.arange(int(1.6 * rate)) / rate
    tones = 0.3 * np.sin(2 * np.pi * 1000 * t) + 0.3 * np.sin(2 * np.pi * 12000 * t)
    wav = tmp_path / "tones.wav"
    write_wav(wav, (tones * 32767).astype("<i2"), rate)
    with agent_on_fakes(transcripts=[], replies=REPLY) as (server, dg, _), browser_page(wav) as page:
        open_page(page, server)
        page.click("#talk")
        assert page.evaluate("window.voxline.sampleRate") == rate  # the case this test is about
        page.wait_for_function("window.voxline.counters.framesSent >= 100", timeout=10000)
        deadline = time.monotonic() + 5
        while dg.listen_connections[0].audio_seconds < 2.0 and time.monotonic() < deadline:
            time.sleep(0.1)
    received = np.frombuffer(bytes(dg.listen_connections[0].audio), "<i2").astype(np.float64) / 32768
    loud = np.flatnonzero(np.abs(received) > 0.05)
    assert len(loud) > 16000, "the tones never arrived"
    segment = received[loud[0] + 1600 : loud[0] + 1600 + 16000]  # 1 s, away from the onset
    spectrum = np.abs(np.fft.rfft(segment * np.hanning(len(segment))))
    freqs = np.fft.rfftfreq(len(segment), 1 / 16000)
    peak = freqs[np.argmax(spectrum)]
    assert abs(peak - 1000) <= 2, f"the 1 kHz tone arrived at {peak} Hz"
    alias = spectrum[(freqs > 3950) & (freqs < 4050)].max()
    alias_db = 20 * np.log10(alias / spectrum.max())
    record("resampler", tone_hz=float(peak), alias_of_12k_db=round(float(alias_db), 1))
    assert alias_db < -35, f"12 kHz folded down to 4 kHz at {alias_db:.1f} dB"


def test_interrupt_flushes_playback_within_300_ms() -> None:
    """Interrupt while the reply plays: silence on the audio clock within 300 ms, the server stops, and the
    next turn plays again."""
    with agent_on_fakes(transcripts=[], replies=[LONG_REPLY, REPLY]) as (server, _, gemini):
        with browser_page(None) as page:
            open_page(page, server)
            page.fill("#typed-input", "Tell me a story about the sea")
            page.press("#typed-input", "Enter")  # a trusted gesture: the AudioContext may start
            assert "Tell me a story about the sea" in log_text(page)
            page.wait_for_function(
                "window.voxline.counters.activeSources > 0 && window.voxline.playbackRms > 0.05", timeout=10000
            )
            page.wait_for_function("window.voxline.counters.queuedSeconds > 1.0", timeout=10000)

            page.click("#interrupt")
            at = page.evaluate("window.voxline.lastInterrupt.time")
            c = counters(page)
            assert c["activeSources"] == 0 and c["queuedSeconds"] == 0 and c["interruptsSent"] == 1
            page.wait_for_function(f"window.voxline.meterLog.some(([t, rms]) => t > {at} && rms === 0)", timeout=2000)
            silent_at = min(t for t, rms in page.evaluate("window.voxline.meterLog") if t > at and rms == 0)
            record("interrupt", silent_after_ms=round(1000 * (silent_at - at), 1))
            assert silent_at - at < 0.3, f"playback went silent {1000 * (silent_at - at):.0f} ms after the interrupt"

            # The server confirms, and sends nothing more of the interrupted reply.
            page.wait_for_function("window.voxline.counters.interruptsReceived >= 1", timeout=3000)
            received = counters(page)["audioChunksReceived"]
            time.sleep(0.8)
            after = counters(page)
            assert after["audioChunksReceived"] == received
            assert after["activeSources"] == 0
            assert played_rms(page, since=silent_at) == 0.0
            assert "interrupted" in page.get_attribute("#log li.bot", "class")
            turn = page.evaluate("window.voxline.turns[0]")
            assert turn["interrupted"] and 0 < turn["clientV2v"] < 5000  # typed turn: from send to first sound
            screenshot(page, "interrupted")

            # The next turn plays normally.
            scheduled = after["chunksScheduled"]
            page.fill("#typed-input", "How is the weather?")
            page.click("#typed button[type=submit]")
            page.wait_for_function(f"window.voxline.counters.chunksScheduled > {scheduled}", timeout=10000)
            page.wait_for_function("window.voxline.playbackRms > 0.05", timeout=5000)
            assert "light breeze" in log_text(page)
            assert page.errors == []
        assert len(gemini.requests) == 2


def test_barge_in_by_voice(wavs: dict[str, Path]) -> None:
    """The user talks over the reply: with ``?bargein=client`` the page interrupts by itself (client-side speech
    detection), as it does for a server that does not barge in on its own.

    The microphone goes out as the seed's base64 JSON here (``?binary=0``), so that path is covered end to end too
    (the page's default is binary frames).

    The server is one that does not barge in by itself (``TURN_ENGINE=off``): with its turn engine on, it also
    hears the user over the reply and pauses it, and whichever of the two noticed first decided whether the page
    interrupted at all (on a loaded machine the server's pause won, the page then saw no reply playing).
    """
    transcripts = ["please tell me a long story about the sea", "stop stop wait a moment please"]
    env = {"TURN_ENGINE": "off"}
    fakes = agent_on_fakes(transcripts=transcripts, replies=[LONG_REPLY, REPLY], env=env)
    with fakes as (server, dg, _g), browser_page(wavs["barge"]) as page:
        open_page(page, server, "?raw=1&binary=0&bargein=client")
        assert "server_barge_in" not in page.evaluate("window.voxline.session.features")
        assert page.evaluate("window.voxline.binaryAudio") is False
        page.click("#talk")
        page.wait_for_function("window.voxline.counters.activeSources > 0", timeout=15000)
        page.wait_for_function("window.voxline.counters.bargeIns >= 1", timeout=10000)
        c = counters(page)
        assert c["interruptsSent"] >= 1
        page.wait_for_function("window.voxline.counters.interruptsReceived >= 1", timeout=3000)
        # The long reply never finished: it was cut, and its bubble says so.
        assert page.evaluate("window.voxline.turns[0].interrupted")
        assert "interrupted" in page.get_attribute("#log li.bot", "class")
        # ...and the words that interrupted it are the user's next turn.
        page.wait_for_function("document.querySelector('#log').innerText.includes('stop stop')", timeout=5000)
        assert page.errors == []
        speech = page.evaluate("window.voxline.speech")
        record("barge_in", interrupt_audio_time=page.evaluate("window.voxline.lastInterrupt.time"), **speech)
    assert dg.listen_connections[0].audio_seconds > 5


def test_server_barge_in_by_voice_alone_and_resume_after_a_burst(wavs: dict[str, Path]) -> None:
    """The page never sends ``interrupt`` (the server says it barges in by itself): a wordless hum over the reply
    pauses it and it resumes where it stopped; then "Stop, stop" interrupts it, from the server alone."""
    transcripts = ["please tell me a long story about the sea", "", "stop stop wait a moment please"]
    fakes = agent_on_fakes(transcripts=transcripts, replies=[LONG_REPLY, REPLY], default_transcript="")
    with fakes as (server, _dg, gemini), browser_page(wavs["voice_only"]) as page:
        open_page(page, server)
        assert "server_barge_in" in page.evaluate("window.voxline.session.features")
        page.click("#talk")
        page.wait_for_function("window.voxline.counters.activeSources > 0", timeout=15000)
        page.wait_for_function("window.voxline.counters.pauses >= 1", timeout=10000)
        paused_at = page.evaluate("window.voxline.audioTime()")
        page.wait_for_function("window.voxline.counters.resumes >= 1", timeout=5000)
        resumed_at = page.evaluate("window.voxline.audioTime()")
        # Held, not dropped: after the resume the same reply plays on.
        page.wait_for_function(f"window.voxline.meterLog.some(([t, rms]) => t > {resumed_at} + 0.1 && rms > 0.01)")
        assert counters(page)["interruptsReceived"] == 0
        page.wait_for_function("window.voxline.counters.interruptsReceived >= 1", timeout=10000)
        c = counters(page)
        assert c["interruptsSent"] == 0 and c["bargeIns"] == 0 and c["speechOverBot"] >= 1, c
        assert c["playedSent"] > 5, c  # the page told the server where its playback was, every 100 ms
        page.wait_for_function("window.voxline.counters.activeSources === 0", timeout=2000)
        log = page.evaluate("window.voxline.meterLog")
        last_sound = max(t for t, rms in log if rms > 0.001)
        # "Stop, stop" as the microphone captured it: the first loud frame after the hum and the resume.
        mic = page.evaluate("window.voxline.micLog")
        start = min(t - 0.02 for t, rms in mic if t > resumed_at + 0.5 and rms > 0.02)
        assert page.evaluate("window.voxline.turns[0].interrupted")
        page.wait_for_function("document.querySelector('#log').innerText.includes('stop stop')", timeout=5000)
        page.wait_for_function("window.voxline.turns.length >= 2", timeout=10000)  # the answer to "stop stop"
        assert page.errors == []
        record(
            "server_barge_in",
            paused_for_s=round(resumed_at - paused_at, 3),
            speech_start_to_silence_s=round(last_sound - start, 3),
            played_reports=c["playedSent"],
        )
        # The page counts a turn on its first metrics message, which can come before the LLM request: wait for the
        # request itself (a second turn on the page once passed this point with the fake's list still one long).
        deadline = time.monotonic() + 10
        while (len(gemini.requests) < 2 or gemini.requests[1].chat is None) and time.monotonic() < deadline:
            time.sleep(0.02)
    heard = gemini.requests[1].chat.turns[1][1]
    assert heard.endswith(" [interrupted]") and LONG_REPLY.startswith(heard.removesuffix(" [interrupted]")), heard


DETECTOR_SCENARIOS = """async () => {
  const { SpeechDetector } = await import("/speech.js");
  // frames: [seconds, mic rms, bot playing level or 0]; each scenario runs from t = 0 in 20 ms steps.
  const run = (segments) => {
    const events = [];
    const d = new SpeechDetector({
      onStart: (t, bot) => events.push(["start", +t.toFixed(2), bot]),
      onEnd: (t) => events.push(["end", +t.toFixed(2)]),
    });
    let t = 0;
    for (const [seconds, rms, level] of segments) {
      for (let i = 0; i < Math.round(seconds / 0.02); i++) {
        t += 0.02;
        const playing = level > 0;
        d.push(rms, t, { playing, level, onset: playing && t - segments.botStart < 0.4 });
      }
    }
    return { events, coupling: d.coupling };
  };
  const quiet = 0.001;
  const withBot = (segments, botStart) => Object.assign(segments, { botStart });
  return {
    plain: run(withBot([[1, quiet, 0], [0.5, 0.1, 0], [1, quiet, 0]], 99)),
    echoOnly: run(withBot([[3, 0.15, 0.3]], 0)),
    userOverEcho: run(withBot([[2, 0.15, 0.3], [0.5, 0.45, 0.3]], 0)),
    headphones: run(withBot([[2, quiet, 0.3], [0.5, 0.05, 0.3]], 0)),
  };
}"""


def test_speech_detector_ignores_echo_but_not_the_user() -> None:
    """The barge-in detector (the page's own module): speech start/end, and while the agent plays, its measured
    echo does not trigger a barge-in but the user talking over it does — at normal sensitivity with headphones."""
    app = create_app(Config(environ={"LOG_DIR": "", "STT_PROVIDER": "deepgram"}), setup_logging=False)
    with ServerThread(app) as server, browser_page(None) as page:
        page.goto(server.url + "/")
        r = page.evaluate(DETECTOR_SCENARIOS)
    # Speech from 1.0 to 1.5 s: starts after the 100 ms hold, ends at its last voiced frame (after the hangover).
    assert r["plain"]["events"] == [["start", 1.1, False], ["end", 1.5]]
    # The agent's own voice at half its level (coupling 0.5) is not the user.
    assert r["echoOnly"]["events"] == [] and r["echoOnly"]["coupling"] == pytest.approx(0.5)
    # The user at 0.45 beats 2 x 0.5 x 0.3 = 0.3: barge-in after the 200 ms hold used while the agent speaks.
    assert r["userOverEcho"]["events"][:1] == [["start", 2.2, True]]
    # No echo measured: a quiet 0.05 voice barges in.
    assert r["headphones"]["events"][:1] == [["start", 2.2, True]]


def test_insecure_page_explains_and_typed_turns_still_work() -> None:
    """Opened by a name that is not localhost over http, the browser hides the microphone and AudioWorklet: the
    page says why and how to fix it, and typed turns still get their text reply."""
    insecure = ("--host-resolver-rules=MAP voxline.test 127.0.0.1",)  # still our loopback server
    port = free_port()
    # A page from a name the server cannot know is its own must be allowed by the operator (docs/security.md).
    allowed = {"CORS_ORIGINS": f"http://voxline.test:{port}"}
    with (
        agent_on_fakes(transcripts=[], replies=REPLY, port=port, env=allowed) as (server, _, _g),
        browser_page(None, extra_args=insecure) as page,
    ):
        page.goto(f"http://voxline.test:{server.port}/")
        page.wait_for_function("window.voxline && window.voxline.state.connection === 'open'", timeout=10000)
        assert page.evaluate("window.isSecureContext") is False
        assert "secure page" in page.inner_text("#insecure") and f"localhost:{server.port}" in page.inner_text(
            "#insecure"
        )
        page.fill("#typed-input", "How is the weather?")
        page.press("#typed-input", "Enter")
        page.wait_for_function("window.voxline.state.server === 'complete'", timeout=10000)
        assert "light breeze" in log_text(page)
        page.click("#talk")
        page.wait_for_selector("#error:has-text('Microphone unavailable')", timeout=5000)
        assert page.get_attribute("#talk", "aria-pressed") == "false"
        assert page.errors == []


def test_cannot_run_error_and_reconnect() -> None:
    """A session that cannot start shows it plainly; a server restart is survived by reconnecting."""
    env = {"STT_PROVIDER": "deepgram", "LOG_DIR": ""}  # asked for Deepgram without a key
    app = create_app(Config(environ=env), setup_logging=False)
    with browser_page(None) as page:
        with ServerThread(app) as server:
            port = server.port
            open_page(page, server)
            page.wait_for_selector("#error:not([hidden])", timeout=5000)
            text = page.inner_text("#error")
            assert "cannot run" in text and "DEEPGRAM_API_KEY" in text
            assert "fatal" in page.get_attribute("#error", "class")
            assert page.get_attribute("#error", "role") == "alert"
            # Keyboard only: the first Tab stop is the talk button, Space toggles it.
            page.keyboard.press("Tab")
            assert page.evaluate("document.activeElement.id") == "talk"
            page.keyboard.press("Space")
            page.wait_for_function("document.querySelector('#talk').getAttribute('aria-pressed') === 'true'")
            assert page.evaluate("document.activeElement.id") == "talk"  # focus stays put
            screenshot(page, "cannot-run")
        page.wait_for_function("window.voxline.state.connection === 'reconnecting'", timeout=5000)
        assert "Reconnecting" in page.inner_text("#conn")
        # The same port again, now configured correctly (offline demo).
        app2 = create_app(Config(environ={"LOG_DIR": "", "PORT": str(port)}), setup_logging=False)
        restarted = ServerThread(app2, port=port)
        with restarted:
            page.wait_for_function("window.voxline.counters.connects >= 2", timeout=15000)
            page.wait_for_function("window.voxline.session && window.voxline.session.offline_demo", timeout=5000)
            assert page.inner_text("#conn-text") == "Connected"
            assert page.is_visible("#demo")
            page.wait_for_selector("#error", state="hidden", timeout=5000)
        assert page.errors == []


def test_the_page_believes_the_session_message_not_the_timing_of_errors() -> None:
    """`session.ready` decides "cannot run": a not-ready session with no `error` at all is shown as cannot run,
    and an `error` right after a ready session is only an error (the old timing guess would have said fatal)."""
    import json

    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    def scripted(ready: bool, then: list[dict[str, Any]]) -> Any:
        async def endpoint(ws: WebSocket) -> None:
            await ws.accept()
            problems = [] if ready else ["LLM_PROVIDER=gemini needs GEMINI_API_KEY"]
            session = {"id": "scripted0001", "engines": {"stt": "local", "llm": "gemini", "tts": "local"}}
            session.update(offline_demo=True, missing=[], ready=ready, problems=problems)
            for message in [{"type": "status", "data": "connected"}, {"type": "session", "data": session}, *then]:
                await ws.send_text(json.dumps(message))
            try:
                while True:
                    await ws.receive_text()
            except WebSocketDisconnect:
                pass

        return endpoint

    # The real app serves the page; two scripted sockets stand in for servers in either state.
    app = create_app(Config(environ={"LOG_DIR": ""}), setup_logging=False, preload=False)
    app.router.routes[:0] = [
        WebSocketRoute("/ws-not-ready", scripted(False, [])),
        WebSocketRoute("/ws-ready", scripted(True, [{"type": "error", "data": "that audio was odd"}])),
    ]
    with ServerThread(app) as server, browser_page(None) as page:
        ws = f"ws://127.0.0.1:{server.port}"
        open_page(page, server, f"?ws={ws}/ws-not-ready")
        page.wait_for_selector("#error:not([hidden])", timeout=5000)
        assert page.inner_text("#error") == "The agent cannot run: LLM_PROVIDER=gemini needs GEMINI_API_KEY"
        assert "fatal" in page.get_attribute("#error", "class")
        assert page.evaluate("window.voxline.errors") == []  # no error message was needed
        # A session message without audio_in_rate / audio_out_rate: the seed's fixed formats.
        assert page.evaluate("window.voxline.rates") == {"in": 16000, "out": 24000}

        open_page(page, server, f"?ws={ws}/ws-ready")
        page.wait_for_function("window.voxline.errors.length === 1", timeout=5000)
        assert page.inner_text("#error") == "that audio was odd"
        assert "fatal" not in (page.get_attribute("#error", "class") or "")
        assert page.errors == []


def test_the_last_provider_error_of_each_stage_is_shown() -> None:
    """A provider that refuses its key: the page names the stage and the provider under the engines line, and
    /health has the same last error for that stage (never the key)."""
    import json
    import urllib.request

    with (
        agent_on_fakes(transcripts=[], replies=REPLY, env={"DEEPGRAM_API_KEY": "wrong-key-for-the-page"}) as (
            server,
            _d,
            _g,
        ),
        browser_page(None) as page,
    ):
        open_page(page, server, "")
        # the speak socket opens when the session starts: Deepgram refuses the key at once
        page.wait_for_selector("#stage-errors:not([hidden])", timeout=10000)
        shown = page.inner_text("#stage-errors")
        assert "text-to-speech (deepgram)" in shown and "HTTP 401" in shown and "DEEPGRAM_API_KEY" in shown
        assert page.evaluate("window.voxline.stageErrors.tts.provider") == "deepgram"
        with urllib.request.urlopen(server.url + "/health", timeout=5) as response:
            health = json.loads(response.read())
        last = health["stages"]["tts"]["last_error"]
        assert last["provider"] == "deepgram" and "HTTP 401" in last["message"]
        assert "wrong-key-for-the-page" not in json.dumps(health) + shown
        screenshot(page, "stage-error")
        assert page.errors == []
