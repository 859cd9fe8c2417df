"""@tool and Toolbox: the schema from hints and docstrings, argument checking, and how a call runs."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import enum
import sys
import types
from typing import Annotated, Literal

import pytest
from voxline.context import ToolCall
from voxline.tools import Tool, ToolArgumentError, Toolbox, jsonable, tool, tools_in
from voxline.tools.schema import bind_arguments, docstring_parts


class Unit(enum.Enum):
    C = "celsius"
    F = "fahrenheit"


@tool
async def weather(city: str, unit: Unit = Unit.C, days: int = 1, detailed: bool | None = None) -> dict[str, object]:
    """The weather in a city.

    More text the model does not need.

    Args:
        city: The city, e.g. "Paris".
        unit: The temperature unit.
        days (int): How many days,
            counted from today.
    """
    return {"city": city, "unit": unit, "days": days, "detailed": detailed}


def test_schema_from_hints_and_a_google_docstring() -> None:
    assert isinstance(weather, Tool)
    assert weather.name == "weather" and weather.description == "The weather in a city."
    assert weather.parameters == {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": 'The city, e.g. "Paris".'},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "The temperature unit."},
            "days": {"type": "integer", "description": "How many days, counted from today."},
            "detailed": {"type": "boolean"},
        },
        "required": ["city"],
    }


def test_more_hints_and_rest_docstrings() -> None:
    @tool(name="plan-trip", timeout=2.0, filler="Let me plan that.")
    async def plan(
        stops: list[str],
        budget: Annotated[float, "In euros."],
        mode: Literal["car", "train"],
        notes: dict[str, int],
        rating: tuple[int, ...] = (),
    ) -> str:
        """Plan a trip.

        :param stops: The places to visit,
            in order.
        :param mode: How to travel.
        """
        return "ok"

    assert (plan.name, plan.timeout, plan.filler) == ("plan-trip", 2.0, "Let me plan that.")
    props = plan.parameters["properties"]
    visit = "The places to visit, in order."
    assert props["stops"] == {"type": "array", "items": {"type": "string"}, "description": visit}
    assert props["budget"] == {"type": "number", "description": "In euros."}
    assert props["mode"] == {"type": "string", "enum": ["car", "train"], "description": "How to travel."}
    assert props["notes"] == {"type": "object", "additionalProperties": {"type": "integer"}}
    assert props["rating"] == {"type": "array", "items": {"type": "integer"}}
    assert plan.parameters["required"] == ["stops", "budget", "mode", "notes"]
    assert plan.declaration() == {"name": "plan-trip", "description": "Plan a trip.", "parameters": plan.parameters}


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def f(x: int) -> int:\n    'Doc.'\n    return x", "async function"),
        ("async def f(x) -> None:\n    'Doc.'", "needs a type hint"),
        ("async def f(x: int) -> None:\n    pass", "needs a docstring"),
        ("async def f(*xs: int) -> None:\n    'Doc.'", "named parameters only"),
        ("async def f(x: object) -> None:\n    'Doc.'", "has no JSON schema"),
        ("async def f(x: int | str) -> None:\n    'Doc.'", "only X | None"),
        ("async def f(x: int | None) -> None:\n    'Doc.'", "needs the default None"),
        ("async def f(x: dict[int, str]) -> None:\n    'Doc.'", "must be dict"),
        ("async def f(x: tuple[int, str]) -> None:\n    'Doc.'", "use tuple"),
        ("async def f(x: list) -> None:\n    'Doc.'", "say what the list holds"),
        ("async def f(x: Literal['a', 1]) -> None:\n    'Doc.'", "enum values"),
        ("async def f(é: int) -> None:\n    'Doc.'", "ASCII"),
    ],
)
def test_what_a_schema_cannot_express_is_refused_when_declared(source: str, message: str) -> None:
    namespace: dict[str, object] = {"Literal": Literal}
    exec(source, namespace)
    with pytest.raises(TypeError, match=message):
        tool(namespace["f"])  # type: ignore[arg-type]


def test_a_tool_name_both_providers_accept() -> None:
    async def f() -> None:
        """Doc."""

    with pytest.raises(TypeError, match="tool name"):
        tool(name="has space")(f)
    with pytest.raises(TypeError, match="tool name"):
        tool(name="x" * 65)(f)
    assert tool(name="a_b-c")(f).name == "a_b-c"


def test_arguments_are_checked_and_converted() -> None:
    fn = weather.fn
    assert bind_arguments(fn, {"city": "Oslo", "unit": "fahrenheit", "days": 3.0}) == {
        "city": "Oslo",
        "unit": Unit.F,
        "days": 3,
    }
    assert bind_arguments(fn, {"city": "Oslo", "detailed": None}) == {"city": "Oslo", "detailed": None}
    for args, message in [
        ({}, "missing required argument 'city'"),
        ({"city": "x", "country": "y"}, "unexpected argument"),
        ({"city": 3}, "must be a string"),
        ({"city": "x", "days": 2.5}, "must be an integer"),
        ({"city": "x", "days": True}, "must be an integer"),
        ({"city": "x", "unit": "kelvin"}, "must be one of"),
        ({"city": "x", "detailed": "yes"}, "true or false"),
    ]:
        with pytest.raises(ToolArgumentError, match=message):
            bind_arguments(fn, args)


def test_docstring_parts() -> None:
    doc = "Line one\ncontinues.\n\nArgs:\n    a: First.\n    b (int): Second\n        more.\n"
    summary, params = docstring_parts(doc)
    assert summary == "Line one continues."
    assert params == {"a": "First.", "b": "Second more."}


@dataclasses.dataclass
class Forecast:
    day: datetime.date
    unit: Unit


def test_results_become_plain_json() -> None:
    value = {"f": Forecast(datetime.date(2026, 1, 2), Unit.F), "s": {1}, "b": b"x", "o": object}
    assert jsonable(value) == {
        "f": {"day": "2026-01-02", "unit": "fahrenheit"},
        "s": [1],
        "b": "x",
        "o": "<class 'object'>",
    }


async def test_toolbox_runs_a_call_to_a_result_or_an_error() -> None:
    @tool(timeout=0.05)
    async def slow() -> str:
        """Takes forever."""
        await asyncio.sleep(10)
        return "never"

    @tool
    async def broken(x: int) -> int:
        """Raises."""
        raise RuntimeError(f"no {x}")

    box = Toolbox([weather, slow, broken])
    ok = await box.run(ToolCall("1", "weather", {"city": "Oslo"}))
    assert ok.ok and ok.output == {"city": "Oslo", "unit": "celsius", "days": 1, "detailed": None}
    assert (await box.run(ToolCall("2", "slow", {}))).error == "timed out after 0.05 s"
    assert (await box.run(ToolCall("3", "broken", {"x": 1}))).error == "RuntimeError: no 1"
    assert (await box.run(ToolCall("4", "nope", {}))).error == "there is no tool named 'nope'"
    bad_args = await box.run(ToolCall("5", "weather", {"town": "x"}))
    assert bad_args.error is not None and bad_args.error.startswith("bad arguments: unexpected argument")
    not_json = await box.run(ToolCall("6", "weather", {}, raw_arguments='{"city": '))
    assert not_json.error is not None and "not a JSON object" in not_json.error


def test_toolbox_validation() -> None:
    with pytest.raises(ValueError, match="two tools"):
        Toolbox([weather, weather])
    with pytest.raises(TypeError, match="@tool"):
        Toolbox([print])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        Toolbox([weather], max_steps=0)
    assert Toolbox.of(None) is None and Toolbox.of([]) is None
    box = Toolbox([weather])
    assert Toolbox.of(box) is box and len(Toolbox.of([weather]) or []) == 1


def test_tools_in_a_module_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("my_agent_tools")
    exec(
        "from voxline.tools import tool\n"
        "@tool\nasync def a() -> str:\n    'A.'\n    return 'a'\n"
        "@tool\nasync def b() -> str:\n    'B.'\n    return 'b'\n"
        "def helper() -> None: ...\n",
        module.__dict__,
    )
    monkeypatch.setitem(sys.modules, "my_agent_tools", module)
    assert [t.name for t in tools_in("my_agent_tools")] == ["a", "b"]
    empty = types.ModuleType("no_tools_here")
    monkeypatch.setitem(sys.modules, "no_tools_here", empty)
    with pytest.raises(LookupError, match="defines no @tool"):
        tools_in("no_tools_here")
    with pytest.raises(ModuleNotFoundError):
        tools_in("surely_not_a_module_xyz")
