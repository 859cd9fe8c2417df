"""A :class:`Toolbox`: the tools an LLM stage offers the model, and how their calls run.

* **One task per call, all at once.** The calls of one model step (parallel calls) run concurrently, each in an
  epoch-bound task of the LLM stage: a barge-in cancels every running call, and with it the reply.
* **A timeout per call** (the tool's own, else :attr:`Toolbox.timeout`). A call that times out, raises, names
  no known tool or gets arguments that do not fit becomes a :class:`~voxline.context.ToolResult` with an
  ``error`` the model reads — never an exception that ends the turn. Errors are logged (one WARNING line; the
  traceback of an exception in the tool at DEBUG) and redacted like every other message.
* **Filler speech.** When a step's calls are still running after :attr:`Toolbox.filler_after` seconds, the stage
  says the filler once (the slow tool's own ``filler``, else :attr:`Toolbox.filler`; nothing when neither is
  set), so the user is not left in silence.
* **Results are JSON.** What a tool returns is made JSON-safe (dataclasses and attrs classes become objects,
  enums their values, dates ISO strings, anything else its ``str``) before it goes into the context.
* **A bounded loop.** At most :attr:`Toolbox.max_steps` model steps with calls per user turn; past that the turn
  ends with an error rather than letting a confused model call tools forever.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import enum
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import attrs
from voxline.context import ToolCall, ToolResult
from voxline.providers.redaction import redact
from voxline.tools.schema import ToolArgumentError
from voxline.tools.tool import Tool

if TYPE_CHECKING:
    from voxline.processor import Processor

__all__ = ["Toolbox", "jsonable"]

logger = logging.getLogger("voxline.tools")


class Toolbox:
    """The tools offered to the model, with the rules their calls run by (see the module docstring)."""

    def __init__(
        self,
        tools: Iterable[Tool],
        *,
        timeout: float = 10.0,
        filler: str | None = None,
        filler_after: float = 1.0,
        max_steps: int = 5,
    ) -> None:
        self.tools: dict[str, Tool] = {}
        for t in tools:
            if not isinstance(t, Tool):
                raise TypeError(f"a Toolbox holds @tool functions; got {t!r}")
            if t.name in self.tools:
                raise ValueError(f"two tools are named {t.name!r}")
            self.tools[t.name] = t
        if timeout <= 0 or filler_after < 0 or max_steps < 1:
            raise ValueError("Toolbox: timeout must be positive, filler_after non-negative, max_steps at least 1")
        self.timeout = timeout
        self.filler = filler
        self.filler_after = filler_after
        self.max_steps = max_steps

    @classmethod
    def of(cls, tools: Toolbox | Iterable[Tool] | None) -> Toolbox | None:
        """``tools`` as a Toolbox (None or empty: no tools)."""
        if tools is None or isinstance(tools, Toolbox):
            return tools if tools is None or tools.tools else None
        box = cls(tools)
        return box if box.tools else None

    def __len__(self) -> int:
        return len(self.tools)

    def declarations(self) -> list[dict[str, Any]]:
        """``{"name", "description", "parameters"}`` per tool, in order."""
        return [t.declaration() for t in self.tools.values()]

    async def run(self, call: ToolCall) -> ToolResult:
        """Run one call to its result: the tool's output, or an error for the model (never raises but cancel)."""
        found = self.tools.get(call.name)
        if found is None:
            return _failed(call, f"there is no tool named {call.name!r}")
        if call.raw_arguments is not None and not call.arguments and call.raw_arguments.strip() not in ("", "{}"):
            return _failed(call, f"the arguments are not a JSON object: {call.raw_arguments[:200]!r}")
        limit = found.timeout or self.timeout
        started = time.monotonic()
        try:
            async with asyncio.timeout(limit):
                output = await found.invoke(call.arguments)
        except ToolArgumentError as exc:
            return _failed(call, f"bad arguments: {exc}")
        except TimeoutError:
            return _failed(call, f"timed out after {limit:g} s")
        except Exception as exc:
            message = redact(f"{type(exc).__name__}: {exc}")
            logger.warning("tool %s failed: %s", call.name, message)
            logger.debug("tool %s failed", call.name, exc_info=redact(str(exc)) == str(exc))
            return ToolResult(call.id, call.name, error=message)
        logger.debug("tool %s answered in %.3f s", call.name, time.monotonic() - started)
        return ToolResult(call.id, call.name, output=jsonable(output))

    def filler_for(self, calls: Sequence[ToolCall]) -> str | None:
        """What to say while ``calls`` run long: the first running tool's filler, else the toolbox's."""
        for call in calls:
            found = self.tools.get(call.name)
            if found is not None and found.filler:
                return found.filler
        return self.filler

    async def run_step(
        self, owner: Processor, calls: Sequence[ToolCall], say: Callable[[str], Awaitable[None]]
    ) -> list[ToolResult]:
        """Run one step's ``calls`` concurrently in epoch-bound tasks of ``owner``; ``say(filler)`` once if they
        are still running after :attr:`filler_after` s. Results come back in the calls' order."""
        tasks = [owner.create_task(self.run(call), name=f"{owner.name}-tool-{call.name}") for call in calls]
        try:
            pending = set(tasks)
            filler = self.filler_for(calls)
            if filler:
                _, pending = await asyncio.wait(pending, timeout=self.filler_after)
                if pending:
                    await say(filler)
            if pending:
                await asyncio.wait(pending)
        finally:
            for task in tasks:
                task.cancel()  # only the unfinished: a barge-in (or the stage stopping) cancelled this step
        results: list[ToolResult] = []
        for call, task in zip(calls, tasks, strict=True):
            result = task.result() if not task.cancelled() else None
            results.append(result if isinstance(result, ToolResult) else _failed(call, "the call did not finish"))
        return results


def _failed(call: ToolCall, error: str) -> ToolResult:
    logger.warning("tool call %s(%s) failed: %s", call.name, call.id, error)
    return ToolResult(call.id, call.name, error=error)


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data (see the module docstring)."""
    return json.loads(json.dumps(value, default=_default))


def _default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if attrs.has(type(value)):
        return attrs.asdict(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
