"""``voxline check``'s generic round trips: one short real exchange with a stage, through its own processors.

A provider whose declaration has no ``check`` of its own is checked here, by the kind of its stage, with the
very processors the agent would build (so the same model, voice and options):

* **STT** — ~1 s of speech-like audio (:func:`speech_like_audio`) framed as one utterance (the speaking frames
  a VAD would send around it), then the end of the stream; passes when the stages finish without an error.
  For a local engine that is a model load and one inference.
* **LLM** — one short streamed request with the stage's own context (its system prompt) through the stage's
  ``stream()``: no retries and no self-healing, so a refused field shows up here instead of being dropped.
* **TTS** — one short sentence; passes when audio comes back.

Errors are the stages' own words (keys redacted); :func:`failure_kind` sorts an exception into what the hint
should name (the key, the model, the endpoint).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

from voxline.registry.provider import CheckFailed, FailureKind, Probe

if TYPE_CHECKING:
    from voxline.frames import Frame
    from voxline.processor import Processor
    from voxline.task import PipelineTask

__all__ = [
    "CHECK_PROMPT",
    "CHECK_SENTENCE",
    "failure_kind",
    "llm_round_trip",
    "speech_like_audio",
    "status_kind",
    "stt_round_trip",
    "tts_round_trip",
]

CHECK_PROMPT = "This is a connection check. Reply with one short sentence."
CHECK_SENTENCE = "Hello, this is a voice check."
SAMPLE_RATE = 16000


def speech_like_audio(seconds: float = 1.0, rate: int = SAMPLE_RATE) -> bytes:
    """Int16 mono PCM that looks like speech to an energy detector and a speech model: syllables of a voiced
    source (a 100-140 Hz pulse train with a falling pitch) shaped by two moving formants, 4 a second, with
    short gaps. No words: a recogniser may well hear nothing, and that is a pass."""
    import numpy as np

    n = int(seconds * rate)
    t = np.arange(n) / rate
    pitch = 140 - 40 * t / max(seconds, 1e-9)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    source = sum(np.sin(k * phase) / k for k in range(1, 25))
    f1 = 500 + 250 * np.sin(2 * np.pi * 1.5 * t)
    f2 = 1500 + 700 * np.sin(2 * np.pi * 0.9 * t + 1)
    voiced = source * (1 + 0.8 * np.sin(2 * np.pi * f1 * t) + 0.5 * np.sin(2 * np.pi * f2 * t))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 0.6
    signal = voiced * envelope
    peak = float(np.max(np.abs(signal))) or 1.0
    return (signal / peak * 0.5 * 32767).astype("<i2").tobytes()


def status_kind(status: int) -> FailureKind:
    """What an HTTP status means for the user: a refused key, an unknown model, a refused request, ..."""
    if status in (401, 403):
        return "auth"
    if status == 404:
        return "model"
    if status >= 500 or status in (408, 429):
        return "server"
    return "refused" if status >= 400 else "other"


def failure_kind(exc: BaseException) -> FailureKind:
    """What a failed request means for the user (:func:`status_kind` when it carries an HTTP status)."""
    status = _status(exc)
    if status is not None:
        return status_kind(status)
    if isinstance(exc, TimeoutError):
        return "timeout"
    names = {cls.__name__ for cls in type(exc).__mro__}
    if isinstance(exc, ConnectionError | OSError) or names & {"ConnectError", "APIConnectionError", "ConnectTimeout"}:
        return "unreachable"
    return "other"


def _status(exc: BaseException) -> int | None:
    for value in (getattr(exc, "status_code", None), getattr(exc, "code", None)):
        if isinstance(value, int) and 100 <= value < 600:
            return value
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


class _Run:
    """Stages running in a task of their own; what came out of the end and the errors at the head."""

    def __init__(self, task: PipelineTask, runner: asyncio.Task[None]) -> None:
        self.task = task
        self.runner = runner
        self.frames: list[Frame] = []
        self.errors: list[str] = []

    async def finish(self, timeout: float) -> None:
        """Send the end of the stream and wait (bounded) for the stages to drain it and stop."""
        from voxline.frames import EndFrame

        await self.task.queue_frame(EndFrame())
        async with asyncio.timeout(timeout):
            await asyncio.shield(self.runner)


@contextlib.asynccontextmanager
async def _running(stages: Sequence[Processor], timeout: float) -> AsyncIterator[_Run]:
    from voxline.frames import ErrorFrame
    from voxline.pipeline import Pipeline
    from voxline.providers.redaction import redact
    from voxline.task import PipelineTask

    task = PipelineTask(Pipeline(list(stages)), name="voxline-check")
    run = _Run(task, asyncio.create_task(task.run()))
    task.on_downstream(run.frames.append)
    task.on_upstream(lambda frame: run.errors.append(redact(frame.message)) if isinstance(frame, ErrorFrame) else None)
    try:
        async with asyncio.timeout(timeout):
            running = await task.wait_until_running()
        if not running:
            failed = [redact(e.message) for e in task.errors] or ["the stage did not start"]
            raise CheckFailed(failed[0])
        yield run
    finally:
        if not run.runner.done():
            await task.cancel("check done")
        with contextlib.suppress(BaseException):
            await run.runner


async def stt_round_trip(stages: Sequence[Processor], *, seconds: float = 1.0, timeout: float = 30.0) -> Probe:
    """One utterance of speech-like audio through the STT stages; see the module docstring."""
    from voxline.frames import AudioFrame, TranscriptFrame, UserStartedSpeakingFrame, UserStoppedSpeakingFrame

    pcm = speech_like_audio(seconds)
    frame_bytes = SAMPLE_RATE // 50 * 2  # 20 ms
    async with _running(stages, timeout) as run:
        await run.task.queue_frame(UserStartedSpeakingFrame())
        for i in range(0, len(pcm), frame_bytes):
            await run.task.queue_frame(AudioFrame(pcm=pcm[i : i + frame_bytes], sample_rate=SAMPLE_RATE))
            await asyncio.sleep(0)
        await run.task.queue_frame(UserStoppedSpeakingFrame(audio_time=seconds))
        await run.finish(timeout)
        if run.errors:
            raise CheckFailed(run.errors[0])
        finals = [f.text for f in run.frames if isinstance(f, TranscriptFrame) and f.is_final and f.text]
    return Probe(f"heard {' '.join(finals)!r}" if finals else "heard no words (expected: the audio has none)")


async def tts_round_trip(stages: Sequence[Processor], *, text: str = CHECK_SENTENCE, timeout: float = 30.0) -> Probe:
    """One sentence through the TTS stages; passes when audio comes back."""
    from voxline.frames import SpeakTextFrame, TTSAudioFrame

    async with _running(stages, timeout) as run:
        await run.task.queue_frame(SpeakTextFrame(text=text))
        await run.finish(timeout)
        if run.errors:
            raise CheckFailed(run.errors[0])
        audio = [f for f in run.frames if isinstance(f, TTSAudioFrame)]
    seconds = sum(f.duration for f in audio)
    if not seconds:
        raise CheckFailed("no audio came back")
    return Probe(f"{seconds:.1f} s of audio at {audio[0].sample_rate // 1000} kHz")


async def llm_round_trip(stages: Sequence[Processor], *, prompt: str = CHECK_PROMPT, timeout: float = 30.0) -> Probe:
    """One short streamed request with the LLM stage's own system prompt, straight through its ``stream()``."""
    from voxline.context import Context
    from voxline.llm import LLMProcessor
    from voxline.providers.redaction import redact

    llm = next((s for s in stages if isinstance(s, LLMProcessor)), None)
    if llm is None:
        raise CheckFailed("no language-model stage was built")
    context = Context(llm.context.system_prompt)
    context.add_user(prompt)
    reply: list[str] = []
    async with _running([llm], timeout):
        try:
            async with asyncio.timeout(timeout):
                async for item in llm.stream(context):
                    if isinstance(item, str):
                        reply.append(item)
        except TimeoutError as exc:
            raise _failed(f"no reply within {timeout:g} s", exc) from None
        except Exception as exc:
            raise _failed(redact(llm.describe_error(exc)), exc, connect=llm.is_connect_failure(exc)) from None
    text = "".join(reply).strip()
    if not text:
        raise CheckFailed("the model sent an empty reply")
    return Probe(f"replied {_short(text)!r}")


def _failed(message: str, exc: BaseException, *, connect: bool = False) -> CheckFailed:
    return CheckFailed(message, kind="unreachable" if connect else failure_kind(exc))


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
