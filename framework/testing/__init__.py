"""The testing kit: run a processor or pipeline in a test, drive it step by step, and see what came out.

>>> result = await run_processor(MyProcessor(), [TextFrame(text="hi")])
>>> result.downstream_of(TextFrame)

* :func:`run_processor` feeds frames in order (with :class:`Sleep` and :class:`Interrupt` between them), sends an
  ``EndFrame`` and returns every frame that left the pipeline in each direction (a :class:`RunResult`).
* :func:`drive` takes the same steps plus :class:`Until` (:func:`texts_out`, :func:`replies_ended`,
  :func:`audio_out`, :func:`frames_out`): each step happens once the output is ready, not after a guessed delay.
* :func:`barge_in_on_first_audio`: a reply, an interrupt the moment its first audio is out, the next reply.
* :func:`started` runs a pipeline in the background for an ``async with`` block and tears it down whole however
  the block ends; :func:`until` polls state that has no event to await, with a deadline.
* :mod:`voxline.testing.fakes`: faithful fake provider servers on 127.0.0.1 for the real SDKs.

The pieces live in small modules (``steps``, ``result``, ``running``, ``drive``, ``polling``); import them from
here.
"""

from __future__ import annotations

from voxline.testing.drive import barge_in_on_first_audio, drive, run_processor
from voxline.testing.polling import until
from voxline.testing.result import RunResult
from voxline.testing.running import RunningPipeline, started
from voxline.testing.steps import (
    Interrupt,
    Sleep,
    Step,
    Until,
    audio_out,
    frames_out,
    replies_ended,
    texts_out,
)

__all__ = [
    "Interrupt",
    "RunResult",
    "RunningPipeline",
    "Sleep",
    "Step",
    "Until",
    "audio_out",
    "barge_in_on_first_audio",
    "drive",
    "frames_out",
    "replies_ended",
    "run_processor",
    "started",
    "texts_out",
    "until",
]
