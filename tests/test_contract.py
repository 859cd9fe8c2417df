"""The interruption contract, property-tested: random pipelines, random scripts, every clause checked.

Hypothesis draws a pipeline (inline stages, queued stages, stages that stream from epoch-bound tasks; random
async delays; fan-out; nested pipelines; stages that push an interrupt from the middle when a marked control
frame reaches them) and a script (data, control and system frames from the head, interrupts, pauses). The
harness in ``contract_harness.py`` records every hop and every frame each stage sees, and checks the five
clauses listed in docs/architecture.md against the *true* epoch of every data frame.
"""

from __future__ import annotations

import asyncio

from contract_harness import StageSpec, check_contract, run_script
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

DELAY = st.sampled_from([0.0, 0.0, 0.0005, 0.001])

stage_specs = st.builds(
    StageSpec,
    kind=st.sampled_from(["inline", "queued", "task", "late", "reader"]),
    delays=st.lists(DELAY, min_size=1, max_size=3).map(tuple),
    fanout=st.sampled_from([1, 1, 2]),
    system_delay=st.booleans(),
    control_delay=st.booleans(),
)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[StageSpec], list[int], list[tuple[str, int]]]:
    specs = draw(st.lists(stage_specs, min_size=1, max_size=5))
    nesting = draw(st.lists(st.integers(1, 3), max_size=3))
    action = st.one_of(
        st.tuples(st.just("data"), st.integers(1, 4)),
        st.tuples(st.just("control"), st.integers(-1, len(specs) - 1)),
        st.tuples(st.just("system"), st.just(0)),
        st.tuples(st.just("barge"), st.integers(0, len(specs) - 1)),
        st.tuples(st.just("interrupt"), st.just(0)),
        st.tuples(st.just("sleep"), st.integers(0, 3)),
    )
    script = draw(st.lists(action, min_size=1, max_size=14))
    return specs, nesting, script


def _no_tasks_left() -> list[asyncio.Task[object]]:
    current = asyncio.current_task()
    return [t for t in asyncio.all_tasks() if t is not current and not t.done()]


def _run(scenario: tuple[list[StageSpec], list[int], list[tuple[str, int]]], end: str) -> None:
    specs, nesting, script = scenario

    async def main() -> None:
        log, task, _ = await run_script(specs, nesting, script, end=end)
        check_contract(log, len(specs), task.epoch, ended=end != "cancel")
        assert _no_tasks_left() == []
        assert task.errors == []

    asyncio.run(main())


SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(scenarios())
def test_contract_holds_when_the_stream_ends(
    scenario: tuple[list[StageSpec], list[int], list[tuple[str, int]]],
) -> None:
    _run(scenario, "end")


@SETTINGS
@given(scenarios())
def test_contract_holds_with_an_interrupt_behind_the_end_of_stream(
    scenario: tuple[list[StageSpec], list[int], list[tuple[str, int]]],
) -> None:
    _run(scenario, "interrupt_then_end")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_contract_holds_until_a_cancel(scenario: tuple[list[StageSpec], list[int], list[tuple[str, int]]]) -> None:
    _run(scenario, "cancel")
