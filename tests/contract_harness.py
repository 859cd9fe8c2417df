"""A random pipeline that records everything it sees, and the checks of the interruption contract on it.

Used by ``tests/test_contract.py`` (hypothesis draws the pipelines and scripts). Every stage writes to one
shared event log, in the order things happen on the event loop:

* ``hop``  — the observer saw a frame handed from one processor to the next;
* ``recv`` — a stage's ``process`` was entered with a frame (the task's sink counts as the last stage);
* ``emit`` — a stage is about to push a data or control frame it made (or forwards).

Data frames carry their *lineage* in their text (``h3`` from the head, ``h3.2a`` made from it by stage 2), and
the harness knows the true epoch of each: a head frame belongs to the epoch in force when it was queued, a
derived frame to the epoch of its parent. The checks use that truth, not the epoch stamped on the frame, so a
core that stamped old work with a new epoch would be caught.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
from collections import defaultdict
from typing import Any

import attrs
from voxline.frames import (
    ControlFrame,
    DataFrame,
    EndFrame,
    Frame,
    InterruptFrame,
    LLMResponseEndFrame,
    LLMResponseStartFrame,
    SettingsFrame,
    StartFrame,
    SystemFrame,
    TextFrame,
    UserStartedSpeakingFrame,
)
from voxline.pipeline import Pipeline
from voxline.processor import DOWNSTREAM, Direction, Processor
from voxline.queued import QueuedProcessor
from voxline.task import PipelineTask


@attrs.frozen
class StageSpec:
    kind: str  # "inline" | "queued" | "task" (epoch-bound stream) | "late" (unbound task) | "reader" (like a transport)
    delays: tuple[float, ...] = (0.0,)  # cycled: each piece of data work sleeps this long (0 = just yield)
    fanout: int = 1  # data frames made per input data frame (1 = forward the frame itself)
    system_delay: bool = False  # sleep while handling system frames (before forwarding them)
    control_delay: bool = False  # sleep while handling control frames


_BARGED: contextvars.ContextVar[int] = contextvars.ContextVar("barged", default=0)
"""The epoch this stage started itself while handling the current frame (0: none)."""


class Log:
    def __init__(self) -> None:
        self.events: list[tuple[str, int, Frame, Any]] = []
        self.truth: dict[str, int] = {}  # data frame text -> true epoch
        self.controls: list[int] = []  # ids of the control frames queued at the head, in order
        self.exempt: dict[Any, int] = {}  # task -> newest epoch it started itself (it is not aborted by it)
        self.exempt_history: dict[Any, list[tuple[int, int]]] = {}
        self.unbound: set[Any] = set()  # tasks not bound to an epoch: nobody aborts what they drive
        self.follow_ups: dict[str, int] = {}  # frames pushed right after a barge-in, with their epoch

    def add(self, kind: str, stage: int, frame: Frame, extra: Any = None) -> None:
        if kind != "hop":
            extra = asyncio.current_task()
        self.events.append((kind, stage, frame, extra))

    def exempt_at(self, task: Any, pos: int) -> int:
        """The newest epoch ``task`` had started itself before event ``pos``."""
        return max((e for p, e in self.exempt_history.get(task, []) if p < pos), default=0)


class _Stage:
    """Behaviour shared by the three stage kinds (mixed into a Processor subclass)."""

    index: int
    spec: StageSpec
    log: Log
    _delays: itertools.cycle[float]

    def _setup(self, index: int, spec: StageSpec, log: Log) -> None:
        self.index = index
        self.spec = spec
        self.log = log
        self._delays = itertools.cycle(spec.delays)

    async def _nap(self) -> None:
        await asyncio.sleep(next(self._delays))

    async def _emit(self, frame: Frame) -> None:
        self.log.add("emit", self.index, frame)
        await self.push(frame, DOWNSTREAM)  # type: ignore[attr-defined]

    async def _children(self, frame: TextFrame) -> None:
        """Data work: forward ``frame`` after a nap, or make ``fanout`` new frames from it, napping before each."""
        if self.spec.fanout == 1:
            await self._nap()
            self.log.add("resume", self.index, frame)
            await self._emit(frame)
            return
        for k in range(self.spec.fanout):
            await self._nap()
            self.log.add("resume", self.index, frame)
            text = f"{frame.text}.{self.index}{'abcdefgh'[k]}"
            self.log.truth[text] = max(self.log.truth[frame.text], _BARGED.get())
            await self._emit(TextFrame(text=text))

    async def _handle(self, frame: Frame, direction: Direction) -> None:
        self.log.add("recv", self.index, frame)
        token = _BARGED.set(0)
        try:
            await self._dispatch(frame, direction)
        finally:
            _BARGED.reset(token)

    async def _dispatch(self, frame: Frame, direction: Direction) -> None:
        if direction is not DOWNSTREAM:
            await self.push(frame, direction)  # type: ignore[attr-defined]
        elif isinstance(frame, StartFrame) and self.spec.kind == "reader":
            await self.push(frame, direction)  # type: ignore[attr-defined]
            self.create_task(self._read(), epoch_bound=False)  # type: ignore[attr-defined]
        elif isinstance(frame, SystemFrame):
            if self.spec.system_delay:
                await asyncio.sleep(0)
            await self.push(frame, direction)  # type: ignore[attr-defined]
        elif isinstance(frame, EndFrame) and self.spec.kind in ("task", "late", "reader"):
            # Like an LLM stage: the end of stream waits for the replies being streamed.
            pending = list(self._tasks or {})  # type: ignore[attr-defined]
            if pending:
                await asyncio.wait(pending)
            await self._emit(frame)
        elif isinstance(frame, ControlFrame):
            if self.spec.control_delay:
                await asyncio.sleep(0)
            if isinstance(frame, SettingsFrame) and frame.settings.get("interrupt_at") == self.index:
                await self.push(InterruptFrame(reason=f"stage {self.index}"), DOWNSTREAM)  # type: ignore[attr-defined]
            await self._emit(frame)
        elif isinstance(frame, TextFrame):
            if f"!{self.index}" in frame.text:
                await self._barge_in(frame)
            if self.spec.kind == "task":
                await self._emit(frame)
                floor = _BARGED.get()  # a task made right after our own barge-in is new work
                unbound = asyncio.current_task() in self.log.unbound
                self.create_task(self._children_task(frame, floor, unbound))  # type: ignore[attr-defined]
            elif self.spec.kind == "late":
                await self._emit(frame)
                self.create_task(self._late_task(frame), epoch_bound=False)  # type: ignore[attr-defined]
            else:
                await self._children(frame)

    async def _barge_in(self, frame: TextFrame) -> None:
        """Like an STT stage hearing speech: push an interrupt from here, then a frame of the new epoch."""
        text = f"{frame.text}>{self.index}"
        self.log.follow_ups[text] = -(self._clock.current + 1)  # type: ignore[attr-defined]  # -(epoch to come)
        await self.push(InterruptFrame(reason=f"barge-in at {self.index}"), DOWNSTREAM)  # type: ignore[attr-defined]
        epoch = self.epoch  # type: ignore[attr-defined]
        _BARGED.set(epoch)
        self.log.exempt[asyncio.current_task()] = epoch
        self.log.exempt_history.setdefault(asyncio.current_task(), []).append((len(self.log.events), epoch))
        self.log.truth[text] = self.log.follow_ups[text] = epoch
        await self._emit(TextFrame(text=text))

    async def _read(self) -> None:
        """Like the input transport's reader: fresh frames from its own task, and now and then an interrupt."""
        self.log.unbound.add(asyncio.current_task())
        for i in range(6):
            await self._nap()
            if i == 1:
                await self.push(InterruptFrame(reason=f"reader {self.index}"), DOWNSTREAM)  # type: ignore[attr-defined]
            text = f"r{self.index}.{i}"
            self.log.truth[text] = self.log.follow_ups[text] = self.epoch  # type: ignore[attr-defined]
            await self._emit(TextFrame(text=text))

    async def _late_task(self, frame: TextFrame) -> None:
        """Work that outlives interrupts and stamps its output with the epoch it began in; gates must drop it."""
        self.log.unbound.add(asyncio.current_task())
        await self._nap()
        text = f"{frame.text}.{self.index}L"
        self.log.truth[text] = self.log.truth[frame.text]
        self.log.add("late", self.index, frame)
        await self.push(TextFrame(text=text, epoch=frame.epoch), DOWNSTREAM)  # type: ignore[attr-defined]

    async def _children_task(self, frame: TextFrame, floor: int, unbound: bool) -> None:
        """Like an LLM: a response start, chunks, a response end (the end only if not interrupted)."""
        if unbound:
            self.log.unbound.add(asyncio.current_task())  # started by work nobody aborts: same for this
        self.log.exempt_history.setdefault(asyncio.current_task(), []).append((-1, floor))
        await self._emit(LLMResponseStartFrame(epoch=frame.epoch))
        for k in range(max(1, self.spec.fanout)):
            await self._nap()
            self.log.add("resume", self.index, frame)
            text = f"{frame.text}.{self.index}{'ABCDEFGH'[k]}"
            self.log.truth[text] = max(self.log.truth[frame.text], floor)
            await self._emit(TextFrame(text=text))
        await self._emit(LLMResponseEndFrame(epoch=frame.epoch))


class InlineStage(_Stage, Processor):
    def __init__(self, index: int, spec: StageSpec, log: Log) -> None:
        Processor.__init__(self, name=f"s{index}")
        self._setup(index, spec, log)

    async def process(self, frame: Frame, direction: Direction) -> None:
        await self._handle(frame, direction)


class QueuedStage(_Stage, QueuedProcessor):
    def __init__(self, index: int, spec: StageSpec, log: Log) -> None:
        QueuedProcessor.__init__(self, name=f"s{index}")
        self._setup(index, spec, log)

    async def process(self, frame: Frame, direction: Direction) -> None:
        await self._handle(frame, direction)


class HopObserver:
    def __init__(self, log: Log, index_of: dict[int, int]) -> None:
        self.log = log
        self.index_of = index_of

    def on_push(self, source: Processor, destination: Any, frame: Frame, direction: Direction) -> None:
        self.log.add("hop", self.index_of.get(id(destination), -1), frame, self.index_of.get(id(source), -1))


def build(specs: list[StageSpec], nesting: list[int], log: Log) -> tuple[Processor, list[Processor]]:
    """Stages for ``specs``; ``nesting`` cuts them into nested pipelines (group sizes)."""
    stages: list[Processor] = []
    for i, spec in enumerate(specs):
        cls = QueuedStage if spec.kind == "queued" else InlineStage
        stages.append(cls(i, spec, log))
    groups: list[Processor] = []
    pos = 0
    for size in nesting:
        chunk = stages[pos : pos + size]
        if chunk:
            groups.append(Pipeline([Pipeline(chunk)]) if len(chunk) > 1 else chunk[0])
        pos += size
    groups.extend(stages[pos:])
    return Pipeline(groups), stages


async def run_script(
    specs: list[StageSpec], nesting: list[int], script: list[tuple[str, int]], *, end: str = "end"
) -> tuple[Log, PipelineTask, list[Processor]]:
    """Run ``script`` through a pipeline of ``specs``; ``end`` is "end", "interrupt_then_end" or "cancel"."""
    log = Log()
    pipeline, stages = build(specs, nesting, log)
    sink_index = len(stages)
    index_of = {id(s): i for i, s in enumerate(stages)}
    task = PipelineTask(pipeline, observers=[HopObserver(log, index_of)])
    index_of[id(task._sink)] = sink_index
    task.on_downstream(lambda f: log.add("recv", sink_index, f))
    counter = itertools.count()
    runner = asyncio.create_task(task.run())
    assert await task.wait_until_running()
    for action, arg in script:
        if action in ("data", "barge"):
            for _ in range(1 if action == "barge" else arg):
                text = f"h{next(counter)}" + (f"!{arg}" if action == "barge" else "")
                log.truth[text] = task.epoch
                await task.queue_frame(TextFrame(text=text))
        elif action == "control":
            settings = {"n": next(counter)} if arg < 0 else {"n": next(counter), "interrupt_at": arg}
            control = SettingsFrame(settings=settings)
            log.controls.append(control.id)
            await task.queue_frame(control)
        elif action == "system":
            await task.queue_frame(UserStartedSpeakingFrame())
        elif action == "interrupt":
            await task.interrupt("script")
        elif action == "sleep":
            await asyncio.sleep(arg / 1000)
    if end == "cancel":
        await task.cancel("script")
    else:
        await task.queue_frame(EndFrame())
        if end == "interrupt_then_end":
            await task.interrupt("after end")
    async with asyncio.timeout(10):
        await runner
    return log, task, stages


# --- the checks ----------------------------------------------------------------------------------------------


def check_contract(log: Log, n_stages: int, last_epoch: int, *, ended: bool = True) -> None:
    events = log.events
    stages = range(n_stages + 1)  # the sink is the last
    recv: dict[int, list[tuple[int, Frame]]] = defaultdict(list)
    for pos, (kind, stage, frame, _) in enumerate(events):
        if kind == "recv":
            recv[stage].append((pos, frame))

    def truth(frame: DataFrame) -> int:
        return log.truth[frame.text]  # type: ignore[attr-defined]

    # 1. every interrupt reaches every stage exactly once, in pipeline order, and at once.
    interrupt_at: dict[int, dict[int, int]] = defaultdict(dict)
    for stage in stages:
        for pos, frame in recv[stage]:
            if isinstance(frame, InterruptFrame):
                assert frame.epoch is not None
                assert stage not in interrupt_at[frame.epoch], f"interrupt {frame.epoch} twice at stage {stage}"
                interrupt_at[frame.epoch][stage] = pos
    for epoch in range(1, last_epoch + 1):
        seen = interrupt_at[epoch]
        if ended:
            assert sorted(seen) == list(stages), f"interrupt {epoch} reached only stages {sorted(seen)}"
        positions = [seen[s] for s in sorted(seen)]
        assert positions == sorted(positions), f"interrupt {epoch} out of pipeline order: {seen}"
    for pos, (kind, stage, frame, _) in enumerate(events):
        if kind == "hop" and isinstance(frame, InterruptFrame) and stage >= 0:
            # Never delayed behind queued data: nothing reaches the stage between the hop and the interrupt.
            for later in events[pos + 1 :]:
                if later[0] == "recv" and later[1] == stage:
                    if later[2] is frame:
                        break
                    assert isinstance(later[2], SystemFrame), (
                        f"interrupt {frame.epoch} was held up at stage {stage} behind {later[2].name}"
                    )
    # 2 and 4. after a stage saw interrupt e: no data of an older epoch reaches it, and none of its work for
    # an older epoch goes on (no resume, no emit).
    # The one exception, by design: a task that pushed an interrupt itself carries on with what it was doing.
    for pos, (kind, stage, frame, task) in enumerate(events):
        if kind in ("recv", "resume", "emit") and isinstance(frame, TextFrame):
            epoch = truth(frame)
            if task in log.unbound:
                continue  # clause 2 covers the framework's own drivers (queues, epoch-bound tasks); clause 4 the rest
            exempt = log.exempt_at(task, pos) if kind != "recv" else 0
            for newer, seen in interrupt_at.items():
                if newer > max(epoch, exempt) and stage in seen and seen[stage] < pos:
                    raise AssertionError(
                        f"{kind} of {frame.text} (epoch {epoch}) at stage {stage} after interrupt {newer}"
                    )

    # 3. control frames survive, in order; the end of stream reaches the sink.
    head_controls = log.controls
    for stage in stages:
        got = [f.id for _, f in recv[stage] if isinstance(f, SettingsFrame)]
        if ended:
            assert got == head_controls, f"control frames at stage {stage}: {got} != {head_controls}"
    if ended:
        assert any(isinstance(f, EndFrame) for _, f in recv[n_stages]), "EndFrame never reached the sink"

    # ... and so do control frames made inside stages (a response start must not be cut off halfway).
    if ended:
        for kind, stage, frame, _ in events:
            if kind == "emit" and isinstance(frame, ControlFrame) and not isinstance(frame, SettingsFrame):
                for later in range(stage + 1, n_stages + 1):
                    got = [p for p, f in recv[later] if f is frame]
                    assert len(got) == 1, f"{frame.name} from stage {stage} reached stage {later} {len(got)} times"

    # The frame a stage pushes right after its own interrupt is new-epoch work: it is not lost.
    if ended:
        at_sink = {f.text for _, f in recv[n_stages] if isinstance(f, TextFrame)}
        newest_at_sink = max((e for e, seen in interrupt_at.items() if n_stages in seen), default=0)
        for text, epoch in log.follow_ups.items():
            if epoch < 0:  # never pushed: only a newer interrupt than its own may have stopped the stage
                assert last_epoch > -epoch, f"the stage that pushed an interrupt before {text} was aborted by it"
                continue
            delivered = any(t.startswith(text) for t in at_sink)  # itself or what later stages made of it
            assert delivered or newest_at_sink > epoch, f"{text} (epoch {epoch}) was lost"

    # 5. system frames are never reordered behind data frames.
    for stage in range(n_stages):
        there = {f.id: pos for pos, f in recv[stage + 1]}
        systems = [(pos, f) for pos, f in recv[stage] if isinstance(f, SystemFrame) and f.id in there]
        datas = [(pos, f) for pos, f in recv[stage] if isinstance(f, DataFrame) and f.id in there]
        for s_pos, s in systems:
            for d_pos, d in datas:
                if s_pos < d_pos:
                    assert there[s.id] < there[d.id], (
                        f"{s.name} overtaken by {d.name} between stage {stage} and {stage + 1}"
                    )
