"""Whisper's log-mel front end in numpy: what the smart-turn model (a Whisper-tiny encoder) reads.

The recipe is Whisper's (OpenAI's ``log_mel_spectrogram``, and Hugging Face's ``WhisperFeatureExtractor`` that
smart-turn was trained with), written out here so no torch or transformers is needed:

1. 16 kHz audio, the last 8 s, zero-padded *in front* to exactly 8 s (smart-turn's convention: the end of the
   turn sits at the end of the window), then normalised to zero mean and unit variance;
2. a centred STFT: reflect-padded by half a window, periodic Hann window of 400 samples (25 ms), hop 160
   (10 ms), power spectrum;
3. 80 triangular mel filters on the Slaney scale from 0 to 8 kHz, each normalised to unit area (Slaney);
4. log10 with a floor of 1e-10, the last frame dropped (801 → 800 frames), values below the maximum minus 8
   raised to it, then ``(x + 4) / 4``.

Checked numerically against an independent implementation in ``tests/test_turns_smart_turn.py``.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["N_FFT", "N_MELS", "RATE", "WINDOW_SECONDS", "log_mel", "mel_filters", "padding_frames"]

RATE = 16000
N_FFT = 400
HOP = 160
N_MELS = 80
WINDOW_SECONDS = 8


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3.0)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-12) / 1000.0) / (np.log(6.4) / 27.0)
    mel: np.ndarray = np.where(hz >= 1000.0, log_part, linear)
    return mel


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * (200.0 / 3.0)
    log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    hz: np.ndarray = np.where(mel >= 15.0, log_part, linear)
    return hz


@functools.cache
def mel_filters(n_mels: int = N_MELS, n_fft: int = N_FFT, rate: int = RATE) -> np.ndarray:
    """The (n_mels, n_fft // 2 + 1) Slaney-normalised triangular filterbank (read-only, built once)."""
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(rate / 2)), n_mels + 2))
    bins = np.linspace(0.0, rate / 2, n_fft // 2 + 1)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lower) / (centre - lower)
    falling = (upper - bins[None, :]) / (upper - centre)
    weights: np.ndarray = np.clip(np.minimum(rising, falling), 0.0, None)
    weights *= 2.0 / (upper - lower)  # unit area per filter
    weights.setflags(write=False)
    return weights


@functools.cache
def _hann(n: int = N_FFT) -> np.ndarray:
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)  # periodic: the DFT-even Hann
    window.setflags(write=False)
    return window


def fit_window(audio: np.ndarray, seconds: int = WINDOW_SECONDS, rate: int = RATE) -> np.ndarray:
    """The last ``seconds`` of ``audio`` as float32, zero-padded in front to exactly that length."""
    n = seconds * rate
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)[-n:]
    if len(audio) < n:
        audio = np.concatenate((np.zeros(n - len(audio), dtype=np.float32), audio))
    return audio


def padding_frames(audio_samples: int, seconds: int = WINDOW_SECONDS, rate: int = RATE) -> int:
    """How many of the STFT's frames lie wholly inside the zeros :func:`fit_window` puts in front of
    ``audio_samples`` samples (the centred STFT's reflected half window in front is padding too)."""
    padding = max(0, seconds * rate - audio_samples)
    if padding == 0:
        return 0  # the reflection in front mirrors audio
    return max(0, (N_FFT // 2 + padding - N_FFT) // HOP + 1)


def log_mel(audio: np.ndarray) -> np.ndarray:
    """Float32 (80, 800) features of 16 kHz mono ``audio`` (any length: its last 8 s are used).

    A short turn is mostly padding: after normalisation the zeros in front are one constant ``c``, and a frame of
    a constant has a known spectrum — the Hann window's, scaled: ``(200 c)²`` in bin 0, ``(100 c)²`` in bin 1 and
    nothing elsewhere (the reference's FFT gives those bins ~1e-30, below the log's floor) — so only the frames
    that touch the audio go through the FFT (a 2 s turn: 202 of 801).
    """
    x = fit_window(audio)
    mean, std = x.mean(), np.sqrt(x.var() + 1e-7)
    x = (x - mean) / std
    constant = padding_frames(min(len(np.asarray(audio).reshape(-1)), len(x)))
    padded = np.pad(x.astype(np.float64), N_FFT // 2, mode="reflect")
    count = 1 + (len(padded) - N_FFT) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[constant * HOP :: HOP]
    spectrum = np.fft.rfft(frames * _hann(), axis=1)  # (frames, bins)
    power = spectrum.real**2 + spectrum.imag**2
    filters = mel_filters()
    mel = np.empty((N_MELS, count))
    # (mels, frames). Not ``filters @ power.T``: numpy hands a matrix product this size to OpenBLAS, whose worker
    # threads then spin on the other core for ~25 ms waiting for more (measured: 29 ms of CPU a call against 2 ms
    # for this einsum, numpy's own loop, which never calls BLAS).
    mel[:, constant:] = np.einsum("mb,fb->mf", filters, power)
    if constant:
        c = float(-mean / std)  # the padding's value after normalisation
        mel[:, :constant] = (filters[:, 0] * (200.0 * c) ** 2 + filters[:, 1] * (100.0 * c) ** 2)[:, None]
    logs = np.log10(np.maximum(mel, 1e-10))[:, :-1]
    logs = np.maximum(logs, logs.max() - 8.0)
    out: np.ndarray = ((logs + 4.0) / 4.0).astype(np.float32)
    return out
