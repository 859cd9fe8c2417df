"""An agent with tools: the time, a calculator and a (fake) weather lookup, called by a model. No keys, no network.

Three ``@tool`` functions (``from voxline.tools import tool``) are offered to a real provider stage —
``GeminiLLM`` by default, ``OpenAILLM`` with ``--provider openai`` — which talks through its official SDK to the
strict fake server of ``voxline.testing.fakes`` on 127.0.0.1. The fake plays the model: a small script reads
the user's words and calls the tools a real model would (several at once when asked two things), then answers
from their results. Everything else is real: the function declarations and call steps on the wire (Gemini's
thought signatures included), the tools running in parallel, errors going back to the model as results, and
the context keeping every step.

Run it::

    python examples/tools_agent.py                                   # a short demo conversation
    python examples/tools_agent.py --script "what is 6 * 7" "bye"     # your own lines
    python examples/tools_agent.py --provider openai                 # the OpenAI-compatible stage
    echo "weather in Oslo" | python examples/tools_agent.py          # lines from a pipe

Watch the ``[tool]`` lines: the calls the model made, their arguments and what came back.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import datetime
import logging
import operator
import re
import sys
import zoneinfo
from collections.abc import Callable
from typing import Any, Literal

from voxline.frames import EndFrame, Frame, LLMResponseEndFrame, TextFrame, UserTextFrame
from voxline.llm import LLMProcessor
from voxline.pipeline import Pipeline
from voxline.processor import Direction, Processor
from voxline.task import PipelineTask
from voxline.testing.fakes.gemini import Call, CallTools, ChatRequest, FakeGemini, Reply
from voxline.testing.fakes.openai import FakeOpenAI
from voxline.tools import Toolbox, tool

DEMO = ("what time is it in Tokyo", "what is (3 + 4) * 12", "weather in Oslo and the time in Paris", "what is 1 / 0")

# --- the tools -----------------------------------------------------------------------------------------------


@tool
async def get_time(zone: str = "UTC") -> str:
    """The current local time in a time zone.

    Args:
        zone: An IANA time zone name, e.g. "Europe/Paris".
    """
    now = datetime.datetime.now(zoneinfo.ZoneInfo(zone))
    return now.strftime("%H:%M")


_OPERATORS: dict[type, Callable[..., float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
}


@tool
async def calculate(expression: str) -> float:
    """Evaluate an arithmetic expression (+, -, *, /, ** and parentheses).

    Args:
        expression: The expression, e.g. "(3 + 4) * 12".
    """

    def value(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](value(node.left), value(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](value(node.operand))
        raise ValueError(f"not arithmetic: {ast.unparse(node)}")

    return value(ast.parse(expression, mode="eval").body)


_WEATHER = {"oslo": (4, "light snow"), "paris": (17, "sunny"), "tokyo": (22, "cloudy"), "lima": (19, "fog")}


@tool(filler="Let me look that up.")
async def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> dict[str, object]:
    """The current weather in a city (a fake lookup: a few cities only).

    Args:
        city: The city name.
        unit: The temperature unit.
    """
    await asyncio.sleep(0.05)  # the network
    found = _WEATHER.get(city.lower())
    if found is None:
        raise LookupError(f"no weather station in {city}")
    celsius, sky = found
    temperature = celsius if unit == "celsius" else round(celsius * 9 / 5 + 32)
    return {"city": city, "temperature": temperature, "unit": unit, "sky": sky}


TOOLS = [get_time, calculate, get_weather]

# --- the scripted model (what the fake server answers) ---------------------------------------------------------

_ZONES = {"tokyo": "Asia/Tokyo", "paris": "Europe/Paris", "oslo": "Europe/Oslo", "new york": "America/New_York"}


def model(chat: ChatRequest) -> Reply:
    """Plays the model: the calls for the user's words, then an answer from the tools' results."""
    if chat.tool_results:
        return _answer(chat)
    said = chat.last_user_text.lower()
    calls: list[Call] = []
    if "weather" in said:
        city = next((c for c in _WEATHER if c in said), said.rsplit(" ", 1)[-1])
        calls.append(Call("get_weather", {"city": city.title()}))
    if "time" in said:
        place = next((p for p in _ZONES if p in said), None)
        calls.append(Call("get_time", {"zone": _ZONES[place]} if place else {}))
    math = re.search(r"what is ([-+*/(). \d]+)$", said)
    if math:
        calls.append(Call("calculate", {"expression": math[1].strip()}))
    if not calls:
        return (
            "I can tell the time, do arithmetic and look up the weather. Goodbye!"
            if "bye" in said
            else ("Ask me for the time somewhere, a sum, or the weather.")
        )
    return CallTools(*calls, text="One moment.")


def _answer(chat: ChatRequest) -> str:
    parts = []
    for result in chat.tool_results:
        value = _output(result.response)
        if isinstance(value, dict) and "error" in value:
            parts.append(f"that did not work ({value['error']})")
        elif isinstance(value, dict) and "sky" in value:
            parts.append(f"in {value['city']} it is {value['temperature']} degrees {value['unit']} and {value['sky']}")
        elif isinstance(value, str) and re.fullmatch(r"\d\d:\d\d", value):
            parts.append(f"it is {value} there")
        else:
            parts.append(f"that makes {value:g}" if isinstance(value, (int, float)) else f"I got {value}")
    text = "; ".join(parts) + "."
    return text[:1].upper() + text[1:]


def _output(response: Any) -> Any:
    """A result as the model sees it: Gemini sends {"output": ...} or {"error": ...}; OpenAI JSON text."""
    import json

    if isinstance(response, str):
        try:
            response = json.loads(response)
        except ValueError:
            return response
    if isinstance(response, dict) and response.keys() == {"output"}:
        return response["output"]
    return response


# --- running it ------------------------------------------------------------------------------------------------


class Printer(Processor):
    """Prints the reply as it streams, and each tool step the context records."""

    def __init__(self, llm: LLMProcessor) -> None:
        super().__init__()
        self.llm = llm
        self.done = asyncio.Event()
        self._seen = 0

    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, TextFrame):
            print(frame.text, end="", flush=True)
        elif isinstance(frame, LLMResponseEndFrame):
            print()
            self._show_tool_steps()
            self.done.set()
        await self.push(frame, direction)

    def _show_tool_steps(self) -> None:
        turns = self.llm.context.turns
        for turn in turns[self._seen :]:
            for call in turn.tool_calls:
                print(f"  [tool] {call.name}({', '.join(f'{k}={v!r}' for k, v in call.arguments.items())})")
            for result in turn.tool_results:
                shown = f"error: {result.error}" if result.error else repr(result.output)
                print(f"  [tool] {result.name} -> {shown}")
        self._seen = len(turns)


async def converse(lines: list[str], provider: str) -> int:
    from voxline.processors.gemini import GeminiLLM
    from voxline.processors.openai_compat import OpenAILLM

    fake = (
        FakeGemini(api_key="demo-key", replies=model)
        if provider == "gemini"
        else FakeOpenAI(api_key="demo-key", replies=model)
    )
    async with fake:
        toolbox = Toolbox(TOOLS, timeout=5.0, filler_after=1.0)
        llm: LLMProcessor
        if provider == "gemini":
            llm = GeminiLLM(api_key="demo-key", base_url=fake.url, tools=toolbox, warm_up=False)
        else:
            llm = OpenAILLM(model="demo", api_key="demo-key", base_url=f"{fake.url}/v1", tools=toolbox, warm_up=False)
        printer = Printer(llm)
        task = PipelineTask(Pipeline([llm, printer]), name="tools-agent")
        runner = asyncio.create_task(task.run())
        await task.wait_until_running()
        replies = 0
        for line in lines:
            print(f"you> {line}")
            printer.done.clear()
            await task.queue_frame(UserTextFrame(text=line))
            print("bot> ", end="", flush=True)
            await printer.done.wait()
            replies += 1
        await task.queue_frame(EndFrame())
        await runner
        for error in task.errors:
            print(f"error: {error.message}", file=sys.stderr)
        calls = sum(len(t.tool_calls) for t in llm.context)
        print(f"-- {replies} replies, {calls} tool calls, {len(fake.requests)} requests to the {provider} fake")
    return replies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--script", nargs="+", metavar="LINE", help="user turns (default: a demo, or piped lines)")
    parser.add_argument("--provider", choices=("gemini", "openai"), default="gemini", help="which stage to use")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # a failing tool is logged as a warning; here the [tool] lines show it
    lines = args.script
    if lines is None:
        piped = [] if sys.stdin.isatty() else [line.strip() for line in sys.stdin if line.strip()]
        lines = piped or list(DEMO)
    asyncio.run(converse(lines, args.provider))
    return 0


if __name__ == "__main__":
    sys.exit(main())
