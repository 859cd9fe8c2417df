"""An audio chain: WAV in, 20 ms frames through a level meter, a streaming resampler and a second meter, WAV out.

It shows three things a voice pipeline does with audio all the time:

* framing a buffer into fixed 20 ms :class:`~voxline.frames.AudioFrame`s (:func:`voxline.audio.chunk_pcm`);
* resampling a stream chunk by chunk without clicks (:class:`voxline.audio.AudioResampler`, 16 → 24 kHz by
  default, the rates of the voice agent's microphone and TTS audio);
* a custom processor, ``LevelMeter``, that measures the audio it forwards and reports it as
  :class:`~voxline.frames.MetricsFrame`s, the way the framework reports every measurement.

Run it::

    python examples/resample_chain.py                          # a generated 440 Hz tone, 1 s at 16 kHz
    python examples/resample_chain.py --input speech.wav --output out.wav --rate 48000
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from voxline.audio import (
    AudioResampler,
    chunk_pcm,
    float32_to_pcm,
    pcm_to_int16,
    peak_dbfs,
    read_wav,
    resample,
    rms_dbfs,
    to_dbfs,
    write_wav,
)
from voxline.frames import AudioFrame, EndFrame, Frame, MetricsFrame
from voxline.pipeline import Pipeline
from voxline.processor import DOWNSTREAM, Direction, Processor
from voxline.task import PipelineTask


class LevelMeter(Processor):
    """Forwards audio unchanged and reports its RMS level (dBFS) every ``window`` seconds of audio."""

    def __init__(self, label: str, *, window: float = 0.25) -> None:
        super().__init__(name=f"meter.{label}")
        self.label = label
        self.window = window
        self._energy = 0.0
        self._samples = 0
        self.frames = 0

    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, EndFrame) and self._samples:
            await self._report()  # the last partial window, before the end of stream passes
        await self.push(frame, direction)
        if direction is DOWNSTREAM and isinstance(frame, AudioFrame) and frame.pcm:
            samples = pcm_to_int16(frame.pcm).astype(np.float64) / 32768.0
            self._energy += float(np.dot(samples, samples))
            self._samples += samples.size
            self.frames += 1
            if self._samples >= self.window * frame.sample_rate * frame.channels:
                await self._report()

    async def _report(self) -> None:
        level = to_dbfs(math.sqrt(self._energy / self._samples))
        self._energy, self._samples = 0.0, 0
        await self.push(MetricsFrame(name=f"{self.label}.rms", value=level, unit="dBFS", source=self.name))


def tone(seconds: float, rate: int, freq: float, dbfs: float = -6.0) -> bytes:
    t = np.arange(round(seconds * rate)) / rate
    return float32_to_pcm(10 ** (dbfs / 20) * np.sin(2 * np.pi * freq * t))


def dominant_frequency(pcm: bytes, rate: int) -> float:
    samples = pcm_to_int16(pcm).astype(np.float64)
    if samples.size < 2:
        return 0.0
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.argmax(spectrum) * rate / samples.size)


async def run(pcm: bytes, in_rate: int, out_rate: int, frame_ms: int) -> tuple[bytes, list[MetricsFrame], float]:
    """Push ``pcm`` through the chain in ``frame_ms`` frames; returns the output, the metrics, the wall time."""
    chain = Pipeline([LevelMeter("in"), AudioResampler(out_rate), LevelMeter("out")])
    task = PipelineTask(chain, name="resample-chain")
    out = bytearray()
    metrics: list[MetricsFrame] = []

    def collect(frame: Frame) -> None:
        if isinstance(frame, AudioFrame):
            out.extend(frame.pcm)
        elif isinstance(frame, MetricsFrame):
            metrics.append(frame)

    task.on_downstream(collect)
    frames = [AudioFrame(pcm=chunk, sample_rate=in_rate) for chunk in chunk_pcm(pcm, in_rate, frame_ms)]
    started = time.perf_counter()
    await task.queue_frames([*frames, EndFrame()])
    await task.run()
    return bytes(out), metrics, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--input", type=Path, help="16-bit PCM WAV (mixed to mono); default: a generated tone")
    parser.add_argument("--output", type=Path, default=Path(tempfile.gettempdir()) / "voxline_resampled.wav")
    parser.add_argument("--rate", type=int, default=24000, help="output sample rate (default 24000)")
    parser.add_argument("--freq", type=float, default=440.0, help="frequency of the generated tone")
    parser.add_argument("--frame-ms", type=int, default=20)
    args = parser.parse_args(argv)

    if args.input is not None:
        try:
            wav = read_wav(args.input, mono=True)
        except (OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        pcm, in_rate, source = wav.pcm, wav.sample_rate, str(args.input)
    else:
        in_rate = 16000
        pcm, source = tone(1.0, in_rate, args.freq), f"generated {args.freq:g} Hz tone"

    out, metrics, seconds = asyncio.run(run(pcm, in_rate, args.rate, args.frame_ms))
    write_wav(args.output, out, args.rate)

    n_in, n_out = len(pcm) // 2, len(out) // 2
    frames = math.ceil(n_in / (in_rate * args.frame_ms / 1000))
    one_shot = pcm_to_int16(resample(pcm, in_rate, args.rate)).astype(np.int32)
    streamed = pcm_to_int16(out).astype(np.int32)
    same_length = one_shot.size == streamed.size
    max_diff = int(np.abs(one_shot - streamed).max(initial=0)) if same_length else -1
    print(f"input : {source}, {in_rate} Hz, {n_in} samples, {n_in / in_rate:.3f} s")
    print(f"output: {args.output}, {args.rate} Hz, {n_out} samples (ideal {n_in * args.rate / in_rate:.1f})")
    print(f"level : in {rms_dbfs(pcm):.2f} dBFS rms / {peak_dbfs(pcm):.2f} dBFS peak; out {rms_dbfs(out):.2f} dBFS rms")
    print(f"pitch : in {dominant_frequency(pcm, in_rate):.1f} Hz, out {dominant_frequency(out, args.rate):.1f} Hz")
    print(f"stream vs one-shot resampling: max difference {max_diff} Int16 steps")
    meters = ", ".join(f"{m.name}={m.value:.1f}" for m in metrics)
    print(f"meters: {len(metrics)} reports: {meters}")
    print(f"time  : {frames} frames in {1000 * seconds:.1f} ms ({1e6 * seconds / max(frames, 1):.0f} us/frame)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
