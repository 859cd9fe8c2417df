"""smart-turn v3.2: the numpy Whisper front end against an implementation we did not write, and the model.

The reference is the numpy feature extractor Pipecat ships beside the model in the same wheel
(``pipecat/audio/turn/smart_turn/_whisper_features.py``, itself checked by its authors against Hugging Face's
``WhisperFeatureExtractor``, which smart-turn was trained with). It is loaded from its file, so ``pipecat``
(and its dependency tree, which is not installed) is never imported. Skipped when the wheel is missing:
``python -m voxline.processors.turns.install``.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import threading
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from voxline.processors.turns import features
from voxline.turns import EndOfTurnModel

pytestmark = pytest.mark.smart_turn


def _reference() -> ModuleType:
    try:
        dist = importlib.metadata.distribution("pipecat-ai")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the smart-turn wheel is not installed: python -m voxline.processors.turns.install")
    path = dist.locate_file("pipecat/audio/turn/smart_turn/_whisper_features.py")
    spec = importlib.util.spec_from_file_location("pipecat_whisper_features", str(path))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _voice_like(seconds: float, seed: int) -> np.ndarray:
    """A harmonic tone with a wandering pitch and syllable-rate envelope, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * features.RATE)) / features.RATE
    pitch = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / features.RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)
    return (0.2 * voice * envelope + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.mark.parametrize("seconds", [0.0125, 0.3, 2.0, 7.97, 7.99, 8.0, 11.5])
def test_log_mel_matches_the_reference(seconds: float) -> None:
    reference = _reference()
    audio = _voice_like(seconds, seed=int(seconds * 10))
    ours = features.log_mel(audio)
    # The reference takes exactly 8 s; smart-turn's convention is the last 8 s, zero-padded in front.
    theirs = reference.compute_whisper_log_mel_features(features.fit_window(audio), do_normalize=True)
    assert ours.shape == theirs.shape == (80, 800)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)


@pytest.mark.parametrize("samples", [1, 200, 1000, 127_520, 127_600, 127_800, 128_000, 200_000])
def test_the_frames_taken_as_padding_touch_no_audio_and_the_next_one_does(samples: int) -> None:
    constant = features.padding_frames(samples)
    padding = max(0, 8 * features.RATE - samples) + features.N_FFT // 2  # in the reflect-padded signal
    hop = 160
    assert constant == 0 or (constant - 1) * hop + features.N_FFT <= padding  # the last one taken: all padding
    assert samples >= 8 * features.RATE or constant * hop + features.N_FFT > padding  # the next: some audio


def test_the_window_keeps_the_end_and_pads_in_front() -> None:
    audio = np.arange(1, 9 * features.RATE + 1, dtype=np.float32)
    window = features.fit_window(audio)
    assert len(window) == 8 * features.RATE and window[-1] == audio[-1] and window[0] == audio[features.RATE]
    short = features.fit_window(np.ones(100, dtype=np.float32))
    assert short[:-100].sum() == 0 and short[-100:].sum() == 100


def test_mel_filters_are_slaney_triangles() -> None:
    bank = features.mel_filters()
    assert bank.shape == (80, 201)
    assert (bank >= 0).all()
    hz = np.linspace(0, 8000, 201)
    peaks = hz[bank.argmax(axis=1)]
    assert (np.diff(peaks) >= 0).all()  # filters in order of frequency
    # Slaney normalisation: each triangle's area is 1 (in Hz, sampled on the FFT grid) give or take the grid.
    areas = bank.sum(axis=1) * (hz[1] - hz[0])
    assert np.median(areas) == pytest.approx(1.0, rel=0.05)


def test_the_model_loads_once_and_runs_off_the_loop() -> None:
    _reference()
    pytest.importorskip("onnxruntime")
    from voxline.processors.turns.smart_turn import _SESSIONS, SmartTurnModel

    model = SmartTurnModel()
    assert isinstance(model, EndOfTurnModel)
    seen: list[str] = []

    async def run() -> list[float]:
        original = model.predict

        def predict(audio: np.ndarray) -> float:
            seen.append(threading.current_thread().name)
            return original(audio)

        model.predict = predict  # type: ignore[method-assign]
        return list(await asyncio.gather(*(model.analyze(_voice_like(s, 1)) for s in (1.0, 3.0))))

    probabilities = asyncio.run(run())
    assert all(0.0 <= p <= 1.0 for p in probabilities)
    assert seen and all(name.startswith("smart-turn") for name in seen)
    SmartTurnModel().load()
    assert len([key for key in _SESSIONS if key[1] == 1]) == 1  # one session per process, however many models


def test_a_missing_wheel_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from voxline.processors.turns import smart_turn

    def missing(name: str) -> importlib.metadata.Distribution:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(smart_turn.importlib.metadata, "distribution", missing)
    with pytest.raises(ImportError, match=r"python -m voxline.processors.turns.install"):
        smart_turn.model_path()


def test_the_installer_pins_the_wheel_by_hash_without_dependencies(monkeypatch: pytest.MonkeyPatch) -> None:
    from voxline.processors.turns import install

    calls: list[list[str]] = []
    contents: list[str] = []

    def call(command: list[str]) -> int:
        calls.append(command)
        contents.append(Path(command[command.index("-r") + 1]).read_text())
        return 0

    monkeypatch.setattr(install.subprocess, "call", call)
    assert install.main([]) == 0
    (command,) = calls
    assert command[1:5] == ["-m", "pip", "install", "--no-deps"] and "--require-hashes" in command
    assert contents[0].startswith("pipecat-ai==1.14.0 --hash=sha256:")
