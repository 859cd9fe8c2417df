"""Tools the model may call: ``from voxline.tools import tool``.

* :func:`tool` turns a typed ``async def`` into a :class:`Tool` (JSON schema from its type hints, descriptions
  from its docstring: :mod:`voxline.tools.schema`).
* :class:`Toolbox` holds the tools an LLM stage offers and runs their calls (epoch-bound tasks, a timeout per
  call, errors back to the model as results, filler speech for slow calls).
* :func:`tools_in` collects every tool of a module (what the voice agent's ``AGENT_TOOLS`` names).

Give an LLM stage its tools with ``GeminiLLM(tools=[...])`` / ``OpenAILLM(tools=Toolbox([...], filler=...))``;
docs/tools.md walks through it.
"""

from __future__ import annotations

from voxline.context import ToolCall, ToolResult
from voxline.tools.schema import ToolArgumentError
from voxline.tools.tool import Tool, tool, tools_in
from voxline.tools.toolbox import Toolbox, jsonable

__all__ = ["Tool", "ToolArgumentError", "ToolCall", "ToolResult", "Toolbox", "jsonable", "tool", "tools_in"]
