"""Which way a frame travels and which turn it belongs to: the values the interruption contract is stated in.

:class:`Direction`, the :class:`EpochClock` a pipeline's stages share and the ``WORK_EPOCH`` of the frame being
processed are read by the processor's gate, the queue's worker and the task alike. They live here, apart from
:class:`~voxline.processor.Processor` (which enforces the contract with them), so each of those can be read on
its own; ``from voxline.processor import Direction, EpochClock, ...`` keeps working.
"""

from __future__ import annotations

import contextvars
import enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voxline.processor import Processor

__all__ = ["DOWNSTREAM", "UPSTREAM", "WORK_EPOCH", "Direction", "EpochClock"]

WORK_EPOCH: contextvars.ContextVar[int | None] = contextvars.ContextVar("voxline_work_epoch", default=None)
"""The epoch of the data frame whose processing is running in this task (None outside data processing).

Output made while processing a frame belongs to that frame's epoch, even if an interrupt passed the stage
meanwhile: so a stage still busy with old work when the interrupt went by cannot pass it off as new.
"""


class Direction(enum.IntEnum):
    """Which way a frame travels: downstream (towards the output) or upstream (towards the input)."""

    DOWNSTREAM = 0
    UPSTREAM = 1


DOWNSTREAM = Direction.DOWNSTREAM
UPSTREAM = Direction.UPSTREAM


class EpochClock:
    """Hands out epoch numbers for one pipeline; shared by all its processors so epochs never collide.

    ``head`` is the processor where interrupts start (the task's source); ``None`` outside a task.
    """

    __slots__ = ("current", "head")

    def __init__(self) -> None:
        self.current = 0
        self.head: Processor | None = None

    def advance(self) -> int:
        self.current += 1
        return self.current
