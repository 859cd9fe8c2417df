"""``@tool``: a typed async Python function the model may call.

>>> @tool
... async def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> dict[str, object]:
...     '''The current weather in a city.
...
...     Args:
...         city: The city, e.g. "Paris".
...         unit: The temperature unit.
...     '''

The decorated function stays callable (``await get_weather(city="Oslo")``) and becomes a :class:`Tool`: a name
(the function's), a description (the docstring's first paragraph: the model reads it to decide when to call
the tool, so one is required), and the JSON schema of its parameters (:mod:`voxline.tools.schema`).
``@tool(timeout=3.0, filler="Let me look that up.")`` sets a per-tool timeout and the words said while it runs
long (see :class:`~voxline.tools.toolbox.Toolbox`). :func:`tools_in` collects every tool of a module.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable, Mapping
from types import ModuleType
from typing import Any, overload

from voxline.tools.schema import NAME, bind_arguments, docstring_parts, parameters_schema

__all__ = ["Tool", "tool", "tools_in"]

ToolFunction = Callable[..., Awaitable[Any]]


class Tool:
    """A function the model may call: :attr:`name`, :attr:`description`, :attr:`parameters` (JSON Schema)."""

    def __init__(
        self,
        fn: ToolFunction,
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
        filler: str | None = None,
    ) -> None:
        label = getattr(fn, "__qualname__", repr(fn))
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"@tool needs an async function (async def); {label} is not")
        self.fn = fn
        self.name = name or fn.__name__
        if not NAME.match(self.name):
            raise TypeError(
                f"tool name {self.name!r}: use ASCII letters, digits, '_' or '-', starting with a letter or '_', "
                "at most 64 characters (what both Gemini and OpenAI accept)"
            )
        summary, _ = docstring_parts(fn.__doc__)
        self.description = (description or summary).strip()
        if not self.description:
            raise TypeError(f"tool {self.name!r} needs a docstring: the model reads it to decide when to call it")
        if timeout is not None and timeout <= 0:
            raise ValueError(f"tool {self.name!r}: timeout must be positive, got {timeout}")
        self.timeout = timeout
        """Seconds a call may run (None: the toolbox's default)."""
        self.filler = filler
        """Said when a call runs longer than the toolbox's ``filler_after`` (None: the toolbox's filler)."""
        self.parameters: dict[str, Any] = parameters_schema(fn)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __repr__(self) -> str:
        return f"<Tool {self.name}>"

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return await self.fn(*args, **kwargs)

    async def invoke(self, arguments: Mapping[str, Any]) -> Any:
        """Call the function with the model's ``arguments``, checked and converted first (ToolArgumentError)."""
        return await self.fn(**bind_arguments(self.fn, arguments))

    def declaration(self) -> dict[str, Any]:
        """``{"name", "description", "parameters"}``: what every provider declares, in its own envelope."""
        return {"name": self.name, "description": self.description, "parameters": self.parameters}


@overload
def tool(fn: ToolFunction, /) -> Tool: ...


@overload
def tool(
    *, name: str | None = None, description: str | None = None, timeout: float | None = None, filler: str | None = None
) -> Callable[[ToolFunction], Tool]: ...


def tool(
    fn: ToolFunction | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    filler: str | None = None,
) -> Tool | Callable[[ToolFunction], Tool]:
    """Declare a tool: ``@tool`` or ``@tool(name=..., description=..., timeout=..., filler=...)``."""
    if fn is not None:
        return Tool(fn)

    def decorate(f: ToolFunction) -> Tool:
        return Tool(f, name=name, description=description, timeout=timeout, filler=filler)

    return decorate


def tools_in(module: str | ModuleType) -> list[Tool]:
    """Every :class:`Tool` defined at the top level of ``module`` (imported by name from the normal import path),
    in the order they appear. A module that declares none is an error: it is almost certainly the wrong one."""
    mod = importlib.import_module(module) if isinstance(module, str) else module
    found = [value for value in vars(mod).values() if isinstance(value, Tool)]
    if not found:
        raise LookupError(f"module {mod.__name__!r} defines no @tool functions")
    names = [t.name for t in found]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"module {mod.__name__!r} defines several tools named {', '.join(duplicates)}")
    return found
