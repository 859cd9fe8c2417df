"""Word error rate of the local STT engines, per voice: whisper tiny.en and pocketsphinx on the same corpus.

Prints one JSON object per line. ``--quick``: 6 sentences instead of 24 (a smoke run; the figures are not
worth recording).

The corpus: 24 sentences a voice assistant hears (190 words), spoken by flite's four voices (slt, rms, awb:
16 kHz; kal: 8 kHz, fed as 8 kHz frames, so the stage's own resampling is part of the test) and by piper's
joe voice (22.05 kHz, resampled to 16 kHz). Each voice's sentences go, one second of silence apart and as
20 ms frames, through the real stage: ``SileroVAD -> WhisperSTT(interims="none")`` or
``SileroVAD -> PocketsphinxSTT()`` (interims do not change a final). The turns' texts, joined,
are compared with the sentences, joined: WER = (substitutions + deletions + insertions) / reference words,
so a sentence split into two turns by a pause costs nothing, and a word lost at a cut costs one.

Normalisation, applied to both sides: lower case, hyphens to spaces, numbers to words ("10" = "ten"), a few
contractions expanded ("how's" = "how is"), other punctuation dropped.

Needs ``voxline[local]`` and flite. Run: ``python tests/bench/bench_local_wer.py [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

CORPUS = [
    "What is the capital of France?",
    "Turn on the kitchen lights.",
    "What time is it?",
    "How is the weather today?",
    "Play some music please.",
    "Set a timer for ten minutes.",
    "Who wrote the book about the old man and the sea?",
    "Tell me a joke about computers.",
    "How far away is the moon?",
    "Call my mother when you have a moment.",
    "Please remind me to buy milk and bread on the way home.",
    "Can you recommend a good restaurant near the station?",
    "I would like to book a table for two people tonight.",
    "How many minutes are there in an hour?",
    "Read me the latest news about the football game.",
    "Open the front door and close the back window.",
    "What is the difference between a virus and a bacterium?",
    "My flight leaves at seven in the morning, so wake me up early.",
    "Send a message to Sarah saying I will be late.",
    "Why is the sky blue during the day?",
    "Turn the volume down a little bit.",
    "Add eggs, butter and sugar to my shopping list.",
    "What should I cook for dinner this evening?",
    "Thank you, that was very helpful.",
]
FLITE_VOICES = {"slt": 16000, "rms": 16000, "awb": 16000, "kal": 8000}

_ONES = [
    *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"),
    *("thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"),
]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_CONTRACTIONS = {
    "how's": "how is",
    "what's": "what is",
    "it's": "it is",
    "that's": "that is",
    "there's": "there is",
    "i'm": "i am",
    "i'll": "i will",
    "i'd": "i would",
    "don't": "do not",
    "can't": "can not",
    "cannot": "can not",
    "won't": "will not",
    "let's": "let us",
}


def _number(n: int) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        return _ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + _number(n % 100))
    return str(n)


def words(text: str) -> list[str]:
    """``text`` normalised for scoring (see the module docstring)."""
    text = text.lower().replace("-", " ").replace("\u2019", "'")
    text = " ".join(_CONTRACTIONS.get(w.strip(".,?!"), w) for w in text.split())
    text = re.sub(r"\d+", lambda m: f" {_number(int(m.group()))} ", text)
    return re.sub(r"[^a-z' ]", " ", text).split()


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i in range(1, len(ref) + 1):
        diagonal, row[0] = row[0], i
        for j in range(1, len(hyp) + 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (ref[i - 1] != hyp[j - 1]))
    return row[len(hyp)]


def emit(name: str, value: float, unit: str, **extra: Any) -> None:
    print(json.dumps({"bench": "local_wer", "name": name, "value": round(value, 4), "unit": unit, **extra}), flush=True)


def flite(folder: Path, text: str, voice: str, n: int) -> bytes:
    path = folder / f"{voice}{n}.wav"
    subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(path)], check=True, capture_output=True)
    with wave.open(str(path)) as w:
        assert w.getframerate() == FLITE_VOICES[voice], (voice, w.getframerate())
        return w.readframes(w.getnframes())


def piper(sentences: list[str]) -> list[bytes]:
    from voxline.processors.local.piper import PiperEngine

    engine = PiperEngine.shared()
    out: list[bytes] = []
    for text in sentences:
        chunks: list[bytes] = []

        def keep(pcm: bytes, chunks: list[bytes] = chunks) -> bool:
            chunks.append(pcm)
            return True

        engine.synthesize_sync([text], 16000, None, keep)
        out.append(b"".join(chunks))
    return out


async def transcribe(stt_name: str, utterances: list[bytes], rate: int) -> tuple[list[str], float]:
    """The turns the stage heard in ``utterances`` (1 s of silence around each), and the CPU seconds it took."""
    from voxline.frames import AudioFrame, UserTextFrame
    from voxline.pipeline import Pipeline
    from voxline.processors.local.stt import PocketsphinxSTT
    from voxline.processors.local.whisper import WhisperSTT
    from voxline.processors.vad import SileroVAD
    from voxline.testing import Sleep, run_processor

    gap = b"\0\0" * rate
    stt = WhisperSTT(interims="none") if stt_name == "whisper" else PocketsphinxSTT()
    step = rate // 50 * 2
    items: list[AudioFrame | Sleep] = []
    for pcm in utterances:
        audio = gap + pcm + gap
        items += [AudioFrame(pcm=audio[i : i + step], sample_rate=rate) for i in range(0, len(audio), step)]
        items.append(Sleep(0.01))
    cpu = time.process_time()
    result = await run_processor(Pipeline([SileroVAD(), stt]), items, timeout=600)
    return [u.text for u in result.downstream_of(UserTextFrame)], time.process_time() - cpu


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6 sentences instead of 24")
    parser.add_argument("--stt", default="whisper,pocketsphinx", help="comma-separated: whisper, pocketsphinx")
    parser.add_argument("--voices", default="slt,rms,awb,kal,piper", help="comma-separated flite voices and piper")
    args = parser.parse_args()
    sentences = CORPUS[:6] if args.quick else CORPUS
    reference = [w for s in sentences for w in words(s)]
    emit("load_average_1min", os.getloadavg()[0], "", cores=os.cpu_count(), when="start")
    with tempfile.TemporaryDirectory() as tmp:
        for voice in args.voices.split(","):
            if voice == "piper":
                utterances, rate = piper(sentences), 16000
            else:
                utterances = [flite(Path(tmp), s, voice, n) for n, s in enumerate(sentences)]
                rate = FLITE_VOICES[voice]
            audio_secs = sum(len(u) for u in utterances) / (2 * rate)
            for stt_name in args.stt.split(","):
                turns, cpu = await transcribe(stt_name, utterances, rate)
                hypothesis = [w for t in turns for w in words(t)]
                errors = edit_distance(reference, hypothesis)
                emit(
                    f"wer.{stt_name}.{voice}",
                    100 * errors / len(reference),
                    "%",
                    errors=errors,
                    words=len(reference),
                    turns=len(turns),
                    sentences=len(sentences),
                    input_rate=rate,
                    cpu_s=round(cpu, 2),
                    audio_s=round(audio_secs, 1),
                )
    emit("load_average_1min", os.getloadavg()[0], "", cores=os.cpu_count(), when="end")


if __name__ == "__main__":
    missing = [tool for tool in ("flite",) if shutil.which(tool) is None]
    if missing:
        print(json.dumps({"bench": "local_wer", "skipped": f"needs {', '.join(missing)}"}))
        sys.exit(0)
    from voxline.processors.local.choose import missing_packages

    if missing_packages("whisper") or missing_packages("piper"):
        print(json.dumps({"bench": "local_wer", "skipped": "pip install 'voxline[local]'"}))
        sys.exit(0)
    asyncio.run(main())
