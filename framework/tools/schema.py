"""The JSON schema of a tool's parameters, from its type hints and its docstring; and checking the model's arguments.

Both providers take a JSON Schema object for a function's parameters (Gemini's ``parametersJsonSchema``,
OpenAI's ``function.parameters``). What the hints map to:

=============================================  ===============================================================
hint                                           schema
=============================================  ===============================================================
``str``, ``int``, ``float``, ``bool``          ``{"type": "string" | "integer" | "number" | "boolean"}``
``Literal["a", "b"]``, an ``Enum`` subclass    the type of the values, with ``"enum": [...]``
``list[X]``, ``tuple[X, ...]``                 ``{"type": "array", "items": <X>}``
``dict[str, X]``                               ``{"type": "object", "additionalProperties": <X>}``
``X | None = None``                            ``<X>``, not required
``Annotated[X, "text"]``                       ``<X>`` with ``"description": "text"``
=============================================  ===============================================================

A parameter without a default is required. Descriptions come from the docstring: its first paragraph describes
the tool; an ``Args:`` (or ``Arguments:``/``Parameters:``) section, Google style, or ``:param name:`` lines
describe the parameters. Anything else (``Any``, a class, a union of two types, ``*args``) is refused when the
tool is declared, with a message that says what to change: a schema the model cannot fill in is a bug found at
import time, not in a conversation.

The model's arguments are checked against the same hints before the function runs (:func:`bind_arguments`):
a missing or unknown argument, or a value of the wrong type, becomes an error the model reads as the tool's
result. Whole floats are accepted for integers (Gemini's JSON numbers arrive as floats) and Enum values are
turned into members.
"""

from __future__ import annotations

import enum
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["NAME", "ToolArgumentError", "bind_arguments", "docstring_parts", "parameters_schema"]

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
"""What both providers accept as a function name: OpenAI ``^[a-zA-Z0-9_-]{1,64}$``; Gemini "must start with a
letter or an underscore ... a maximum length of 128" (google-genai ``FunctionDeclaration.name``)."""

PARAMETER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
"""Gemini: parameter names "must start with a letter or an underscore and must only contain chars a-z, A-Z, 0-9,
or underscores with a maximum length of 64" (google-genai ``FunctionDeclaration.parameters``)."""

_SCALARS: dict[type, str] = {str: "string", bool: "boolean", int: "integer", float: "number"}


class ToolArgumentError(ValueError):
    """The model's arguments do not fit the tool's parameters (the message goes back to the model)."""


def docstring_parts(doc: str | None) -> tuple[str, dict[str, str]]:
    """The description (first paragraph) and per-parameter descriptions of a docstring."""
    text = inspect.cleandoc(doc or "")
    paragraphs = re.split(r"\n\s*\n", text, maxsplit=1)
    summary = " ".join(line.strip() for line in paragraphs[0].splitlines() if line.strip())
    params: dict[str, str] = {}
    for match in re.finditer(r"^\s*:param\s+(?:\w+\s+)?(\w+):\s*(.*(?:\n(?!\s*:)\s+.*)*)", text, re.M):
        params[match[1]] = " ".join(match[2].split())
    section = re.search(r"^(Args|Arguments|Parameters):\s*\n((?:[ \t]+.*\n?|\s*\n)+)", text, re.M)
    if section is not None:
        current: str | None = None
        indent: int | None = None
        for line in section[2].splitlines():
            if not line.strip():
                continue
            width = len(line) - len(line.lstrip())
            entry = re.match(r"^\s*(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$", line)
            if entry is not None and (indent is None or width <= indent):
                indent = width
                current = entry[1]
                params[current] = entry[2].strip()
            elif current is not None:
                params[current] = f"{params[current]} {line.strip()}".strip()
    return summary, params


def parameters_schema(fn: Callable[..., Any]) -> dict[str, Any]:
    """The JSON Schema (an object) of ``fn``'s parameters; raises TypeError for what a schema cannot express."""
    name = getattr(fn, "__name__", repr(fn))
    signature = inspect.signature(fn)
    hints = typing.get_type_hints(fn, include_extras=True)
    _, described = docstring_parts(fn.__doc__)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in signature.parameters.values():
        where = f"tool {name!r}, parameter {param.name!r}"
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise TypeError(f"{where}: a tool takes named parameters only (no *args, **kwargs or positional-only)")
        if not PARAMETER.match(param.name):
            raise TypeError(f"{where}: names must be ASCII letters, digits and underscores (at most 64)")
        if param.name not in hints:
            raise TypeError(f"{where}: needs a type hint (the model is told the type)")
        hint = hints[param.name]
        optional = _optional_of(hint)
        if optional is not None:
            if param.default is not None:
                raise TypeError(f"{where}: an optional parameter (X | None) needs the default None")
            hint = optional
        schema = _schema(hint, where)
        if param.name in described and "description" not in schema:
            schema = {**schema, "description": described[param.name]}
        properties[param.name] = schema
        if param.default is inspect.Parameter.empty:
            required.append(param.name)
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    return out


def bind_arguments(fn: Callable[..., Any], arguments: Mapping[str, Any]) -> dict[str, Any]:
    """``arguments`` checked against ``fn``'s hints and converted (whole floats to int, values to Enum members)."""
    signature = inspect.signature(fn)
    hints = typing.get_type_hints(fn, include_extras=True)
    unknown = sorted(set(arguments) - set(signature.parameters))
    if unknown:
        raise ToolArgumentError(f"unexpected argument(s): {', '.join(unknown)}")
    out: dict[str, Any] = {}
    for param in signature.parameters.values():
        if param.name not in arguments:
            if param.default is inspect.Parameter.empty:
                raise ToolArgumentError(f"missing required argument {param.name!r}")
            continue
        value = arguments[param.name]
        hint = hints[param.name]
        optional = _optional_of(hint)
        if optional is not None:
            if value is None:
                out[param.name] = None
                continue
            hint = optional
        out[param.name] = _convert(hint, value, param.name)
    return out


# --- hints → schema ------------------------------------------------------------------------------------------


def _strip_annotated(hint: Any) -> tuple[Any, str | None]:
    if typing.get_origin(hint) is typing.Annotated:
        base, *extras = typing.get_args(hint)
        text = next((e for e in extras if isinstance(e, str)), None)
        return base, text
    return hint, None


def _optional_of(hint: Any) -> Any | None:
    """``X`` if ``hint`` is ``X | None`` (or ``Optional[X]``), else None."""
    base, _ = _strip_annotated(hint)
    if typing.get_origin(base) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(base) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(base)) == 2:
            return args[0]
    return None


def _schema(hint: Any, where: str) -> dict[str, Any]:
    hint, description = _strip_annotated(hint)
    schema = _bare_schema(hint, where)
    return {**schema, "description": description} if description else schema


def _bare_schema(hint: Any, where: str) -> dict[str, Any]:
    if hint in _SCALARS:
        return {"type": _SCALARS[hint]}
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return _enum_schema(list(args), where)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _enum_schema([member.value for member in hint], where)
    if origin in (list, Sequence, tuple) or hint in (list, tuple):
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            raise TypeError(f"{where}: use tuple[X, ...] or list[X] (fixed-size tuples have no JSON schema here)")
        if not args:
            raise TypeError(f"{where}: say what the list holds, e.g. list[str]")
        return {"type": "array", "items": _schema(args[0], where)}
    if origin in (dict, Mapping):
        if not args or args[0] is not str:
            raise TypeError(f"{where}: a mapping must be dict[str, X] (JSON object keys are strings)")
        return {"type": "object", "additionalProperties": _schema(args[1], where)}
    if origin in (typing.Union, types.UnionType):
        raise TypeError(f"{where}: a union of types has no single JSON type; only X | None is allowed")
    raise TypeError(
        f"{where}: {hint!r} has no JSON schema here; use str, int, float, bool, Literal, an Enum, "
        "list[X] or dict[str, X]"
    )


def _enum_schema(values: list[Any], where: str) -> dict[str, Any]:
    kinds = {type(v) for v in values}
    if len(kinds) != 1 or next(iter(kinds)) not in (str, int):
        raise TypeError(f"{where}: enum values must all be strings or all be integers")
    return {"type": _SCALARS[next(iter(kinds))], "enum": values}


# --- checking arguments --------------------------------------------------------------------------------------


def _convert(hint: Any, value: Any, where: str) -> Any:
    hint, _ = _strip_annotated(hint)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ToolArgumentError(f"{where} must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ToolArgumentError(f"{where} must be an integer, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ToolArgumentError(f"{where} must be a number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ToolArgumentError(f"{where} must be a string, got {value!r}")
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        if value in args:
            return value
        raise ToolArgumentError(f"{where} must be one of {list(args)!r}, got {value!r}")
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            raise ToolArgumentError(f"{where} must be one of {[m.value for m in hint]!r}, got {value!r}") from None
    if origin in (list, Sequence, tuple):
        if not isinstance(value, list):
            raise ToolArgumentError(f"{where} must be a list, got {value!r}")
        items = [_convert(args[0], item, f"{where}[{i}]") for i, item in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping):
        if not isinstance(value, dict):
            raise ToolArgumentError(f"{where} must be an object, got {value!r}")
        return {k: _convert(args[1], v, f"{where}[{k!r}]") for k, v in value.items()}
    return value
