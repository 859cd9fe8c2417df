"""Property test of the LLM stage's interruption contract, over random interleavings of turns, barge-ins and faults.

Whatever the order of user turns, interrupts and failures, what leaves the LLM must obey:

* response boundaries alternate strictly — Start(e), End(e), Start(e'), End(e') — with matching epochs;
* no TextFrame of an epoch older than an InterruptFrame that went before it, and every TextFrame sits inside
  a Start/End pair of its own epoch;
* every request ends with a user turn, and the context alternates user/assistant, starting with the user;
* only the scripted failures become errors, and none is fatal.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from voxline.context import Context
from voxline.frames import InterruptFrame, LLMResponseEndFrame, LLMResponseStartFrame, TextFrame, UserTextFrame
from voxline.llm import LLMProcessor
from voxline.providers.backoff import Backoff
from voxline.testing import Interrupt, Sleep, run_processor

WORDS = ["alpha ", "beta ", "gamma ", "delta ", "epsilon "]


class RandomLLM(LLMProcessor):
    """Plays scripted attempts: (number of tokens, delay per token, failure after the tokens or None)."""

    def __init__(self, attempts: list[tuple[int, float, str | None]]) -> None:
        super().__init__(retry=Backoff(attempts=2, initial=0.001, jitter=0), stall_timeout=1.0)
        self.attempts = attempts
        self.calls = 0
        self.failures = 0

    async def stream(self, context: Context) -> AsyncIterator[str]:
        assert context.ends_with_user(), "a request must end with a user turn"
        tokens, delay, failure = self.attempts[self.calls % len(self.attempts)]
        self.calls += 1
        for i in range(tokens):
            await asyncio.sleep(delay)
            yield WORDS[i % len(WORDS)]
        if failure is not None or tokens == 0:  # an empty stream is a failure too
            self.failures += 1
        if failure is not None:
            raise ConnectionError(failure) if failure == "retryable" else ValueError(failure)


attempt = st.tuples(
    st.integers(min_value=0, max_value=4),
    st.sampled_from([0.0, 0.005, 0.015]),
    st.sampled_from([None, None, None, "retryable", "fatal-for-the-turn"]),
)
step = st.one_of(
    st.builds(lambda w: UserTextFrame(text=w), st.sampled_from(["hi", "what", "tell me more", "stop"])),
    st.builds(Sleep, st.sampled_from([0.0, 0.005, 0.02])),
    st.just(Interrupt()),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(attempts=st.lists(attempt, min_size=1, max_size=4), steps=st.lists(step, min_size=1, max_size=8))
def test_interruption_contract_holds_for_any_interleaving(
    attempts: list[tuple[int, float, str | None]], steps: list[Any]
) -> None:
    llm = RandomLLM(attempts)
    result = asyncio.run(run_processor(llm, [*steps, Sleep(0.02)], timeout=20))

    open_epoch: int | None = None
    newest_interrupt = -1
    for frame in result.downstream:
        if isinstance(frame, InterruptFrame):
            assert frame.epoch is not None
            newest_interrupt = max(newest_interrupt, frame.epoch)
        elif isinstance(frame, LLMResponseStartFrame):
            assert open_epoch is None, "a Start before the previous End"
            open_epoch = frame.epoch
        elif isinstance(frame, LLMResponseEndFrame):
            assert open_epoch is not None and frame.epoch == open_epoch, "an End without its Start"
            open_epoch = None
        elif isinstance(frame, TextFrame):
            assert frame.epoch is not None and frame.epoch >= newest_interrupt, "old-epoch text after an interrupt"
            assert frame.epoch == open_epoch, "text outside its reply"
    assert open_epoch is None, "a reply never ended"

    roles = [turn.role for turn in llm.context]
    assert roles[:1] in ([], ["user"])
    assert all(a != b for a, b in itertools.pairwise(roles)), roles
    assert all(not e.fatal for e in result.errors)
    assert len(result.errors) <= llm.failures
