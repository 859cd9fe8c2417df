"""Helpers for the real-browser tests: Debian chromium driven by Playwright (sync API), a flite-spoken WAV as the
microphone, uvicorn in a thread, and audio comparisons that tolerate Chromium's occasional 10 ms capture glitch.

Kept out of conftest.py on purpose: only the browser tests import it, and nothing here runs an event loop in the
test's thread (Playwright's sync API refuses to run inside one).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uvicorn

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def require_tools(*tools: str) -> None:
    """Skip (with the reason) when a system tool that scripts/bootstrap.sh installs is missing."""
    missing = [t for t in tools if shutil.which(t) is None and not Path(t).exists()]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (run scripts/bootstrap.sh dev)")


def speech_wav(directory: Path, text: str, name: str, pad: tuple[float, float] = (0.5, 1.5)) -> Path:
    """Speak ``text`` with flite (16 kHz mono Int16) and pad it with silence; returns the padded WAV."""
    raw = directory / f"{name}.raw.wav"
    out = directory / f"{name}.wav"
    subprocess.run(["flite", "-voice", "slt", "-t", text, "-o", str(raw)], check=True, capture_output=True)
    subprocess.run(["sox", str(raw), str(out), "pad", str(pad[0]), str(pad[1])], check=True, capture_output=True)
    return out


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), "<i2"), w.getframerate()


def write_wav(path: Path, pcm: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())


def free_port() -> int:
    """A loopback port nothing listens on now (for a server whose URL a setting must name before it starts)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerThread:
    """uvicorn serving an ASGI app on 127.0.0.1:<free port> in a daemon thread (sync tests, own event loop)."""

    def __init__(self, app: Any, port: int = 0) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn-test", daemon=True)
        self.port = 0

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def chromium_args(wav: Path | None) -> list[str]:
    args = ["--disable-gpu", "--disable-quic", "--disable-sync", "--use-fake-ui-for-media-stream"]
    args.append("--use-fake-device-for-media-stream")
    if wav is not None:
        # A missing file would give silent zeros without any error: check it here.
        assert wav.is_file(), wav
        args.append(f"--use-file-for-fake-audio-capture={wav}%noloop")
    return args


@contextmanager
def browser_page(
    wav: Path | None, viewport: dict[str, int] = DESKTOP, extra_args: tuple[str, ...] = ()
) -> Iterator[Any]:
    """A fresh headless chromium (one per WAV: the fake-capture file is a per-process flag) and one page.

    Uncaught exceptions are collected on ``page.errors`` and console errors (failed loads, ...) on
    ``page.console_errors``, so tests can assert the client threw and logged nothing.
    """
    from playwright.sync_api import sync_playwright

    require_tools(CHROMIUM)
    with sync_playwright() as pw:
        args = chromium_args(wav) + list(extra_args)
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            page = browser.new_page(viewport=viewport)
            errors: list[str] = []
            console: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
            page.errors = errors
            page.console_errors = console
            yield page
        finally:
            browser.close()


def screenshot(page: Any, name: str) -> Path:
    """Save desktop and phone-size screenshots under artifacts/ (gitignored) and return the desktop one."""
    ARTIFACTS.mkdir(exist_ok=True)
    original = page.viewport_size
    desktop = ARTIFACTS / f"{name}-desktop.png"
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(desktop), full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(ARTIFACTS / f"{name}-phone.png"), full_page=True)
    page.set_viewport_size(original)
    return desktop


def record(test: str, **values: Any) -> None:
    """Append what a test measured to artifacts/browser-measurements.jsonl (for people, not for asserts)."""
    ARTIFACTS.mkdir(exist_ok=True)
    with (ARTIFACTS / "browser-measurements.jsonl").open("a") as f:
        f.write(json.dumps({"test": test, "at": time.strftime("%Y-%m-%dT%H:%M:%S"), **values}) + "\n")


def counters(page: Any) -> dict[str, Any]:
    return dict(page.evaluate("window.voxline.counters"))


# ------------------------------------------------------------------------------------------------ audio checks


def envelope(pcm: np.ndarray, window: int = 320) -> np.ndarray:
    """RMS per 20 ms window at 16 kHz."""
    n = len(pcm) // window
    x = pcm[: n * window].astype(np.float64).reshape(n, window)
    return np.sqrt((x**2).mean(axis=1))


def envelope_match(reference: np.ndarray, received: np.ndarray, max_lag_windows: int = 250) -> tuple[float, int]:
    """Best Pearson correlation of the 20 ms envelopes over a lag search, and that lag in samples
    (positive: the reference appears that much later in ``received``)."""
    ref, got = envelope(reference), envelope(received)
    best, best_lag = -1.0, 0
    for lag in range(-min(max_lag_windows, len(ref) - 10), min(max_lag_windows, len(got) - 10) + 1):
        a, b = (ref, got[lag:]) if lag >= 0 else (ref[-lag:], got)
        n = min(len(a), len(b))
        if n < 10 or a[:n].std() == 0 or b[:n].std() == 0:
            continue
        c = float(np.corrcoef(a[:n], b[:n])[0, 1])
        if c > best:
            best, best_lag = c, lag
    return best, best_lag * 320


def segment_correlation(reference: np.ndarray, received: np.ndarray, lag: int, segment: int = 3200) -> float:
    """Median waveform correlation of the voiced 200 ms segments of the reference, each at its own best lag
    within +-40 ms of ``lag``.

    Robust to a 10 ms block Chromium occasionally drops or inserts under load (a global correlation is not).
    """
    ref = reference.astype(np.float64)
    got = received.astype(np.float64)
    loud = envelope(reference).max()
    slack = 640
    scores = []
    for start in range(0, len(ref) - segment, segment):
        seg = ref[start : start + segment]
        if np.sqrt((seg**2).mean()) < 0.1 * loud:
            continue
        lo = start + lag - slack
        hi = start + lag + segment + slack
        if lo < 0 or hi > len(got):
            continue
        window = got[lo:hi]
        raw = np.correlate(window, seg - seg.mean(), "valid")
        power = np.convolve(window**2, np.ones(segment), "valid")
        best = int(np.argmax(raw / np.sqrt(np.maximum(power, 1e-9))))
        scores.append(float(np.corrcoef(seg, window[best : best + segment])[0, 1]))
    return float(np.median(scores)) if scores else 0.0
