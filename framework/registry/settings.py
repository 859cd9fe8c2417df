"""A setting declared once: its environment variable, how its text is parsed and checked, its default, its docs.

Every setting of the voice agent — a provider's key, model or endpoint, a server option, a session limit — is a
:class:`Setting`. Reading the configuration, refusing a bad value with a message that names it, masking keys,
and the settings tables in README.md and docs/configuration.md all come from these declarations, so a value
cannot be read one way in one place and documented another way somewhere else.

Parsers are small functions ``(name, text) -> value`` that raise :class:`ConfigError`; the constructors below
(:func:`text`, :func:`integer`, :func:`choice`, ...) make the usual ones. Nothing here imports anything heavy:
declarations are read when the app starts, long before an engine is.
"""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, Literal, TypeVar, cast

import attrs

__all__ = [
    "ConfigError",
    "Parser",
    "Role",
    "Secret",
    "Setting",
    "Source",
    "Values",
    "choice",
    "integer",
    "number",
    "on_off",
    "optional_text",
    "replace_table",
    "secret",
    "settings_table",
    "text",
    "url",
]

T = TypeVar("T")

Parser = Callable[[str, str], T]
"""``parse(name, text)``: the value of the setting ``name`` written as ``text`` (stripped, not empty)."""

Source = Callable[..., Any] | Mapping[str, str]
"""Where settings are read from: a Starlette ``Config`` (called as ``config(name, default=None)``) or a mapping
such as ``os.environ`` or a test's dict."""

Role = Literal["key", "endpoint", "model", "option", "choice", "app"]
"""What a setting is to its provider. ``voxline check`` words its hints from it: a refused key names the
``key`` setting, an unreachable service the ``endpoint``, an unknown model the ``model``."""


class ConfigError(ValueError):
    """A setting has a value the agent cannot use (named in the message)."""


class Secret:
    """A key. ``str()`` gives the value; ``repr()`` and f-strings never do, so printing settings shows no key."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def __str__(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@attrs.frozen(eq=False)
class Setting(Generic[T]):
    """One setting. ``name`` is its environment variable; ``doc`` is the "Meaning" cell of the settings table.

    ``default_doc`` is the "Default" cell when the default needs words (``"the real service"``); otherwise the
    default itself is shown. ``blank_is_default`` (the usual case): an unset or blank variable means the default;
    when False the parser also sees ``""`` (``LOG_DIR=`` turns the log file off). ``mentions``: words a
    provider's error message uses for this setting ("thinking", "model"), for ``voxline check``'s hints.
    """

    name: str
    parse: Parser[T] = attrs.field(repr=False)
    default: T
    doc: str = attrs.field(repr=False)
    default_doc: str | None = attrs.field(default=None, repr=False)
    role: Role = "option"
    blank_is_default: bool = attrs.field(default=True, repr=False)
    mentions: tuple[str, ...] = attrs.field(default=(), repr=False)

    def read(self, source: Source) -> T:
        """This setting's value in ``source`` (the default when unset); :class:`ConfigError` when unusable."""
        raw = _lookup(source, self.name)
        if raw is None:
            return self.default
        stripped = raw.strip()
        if not stripped and self.blank_is_default:
            return self.default
        return self.parse(self.name, stripped)

    @property
    def secret(self) -> bool:
        return self.role == "key"

    def default_cell(self) -> str:
        """The "Default" cell of the settings table."""
        if self.default_doc is not None:
            return self.default_doc
        if self.default is None:
            return "—"
        shown = f"{self.default:g}" if isinstance(self.default, float) else str(self.default)
        return f"`{shown}`"


def _lookup(source: Source, name: str) -> str | None:
    value = source.get(name) if isinstance(source, Mapping) else source(name, default=None)
    return None if value is None else str(value)


class Values:
    """The settings as read: ``values[SETTING]`` is that setting's typed value. Keys stay :class:`Secret`."""

    __slots__ = ("_settings", "_values")

    def __init__(self, settings: Iterable[Setting[Any]], values: Mapping[str, Any]) -> None:
        self._settings = {s.name: s for s in settings}
        self._values = dict(values)

    @classmethod
    def read(cls, settings: Iterable[Setting[Any]], source: Source) -> Values:
        """Read every setting of ``settings`` from ``source``; the first unusable value raises ConfigError."""
        declared = _unique(settings)
        return cls(declared, {s.name: s.read(source) for s in declared})

    def __getitem__(self, setting: Setting[T]) -> T:
        try:
            return cast(T, self._values[setting.name])
        except KeyError:
            raise KeyError(f"{setting.name} was not read (it is not declared in this registry)") from None

    def __contains__(self, setting: Setting[Any]) -> bool:
        return setting.name in self._values

    def is_set(self, setting: Setting[Any]) -> bool:
        """Whether ``setting`` has a value (a key given, a URL set): None and "" are unset."""
        value = self._values.get(setting.name)
        return value is not None and value != ""

    def names(self) -> list[str]:
        return list(self._values)

    def secrets(self) -> list[str]:
        """The key values, for the log filter that makes sure none is ever written out."""
        return [str(v) for v in self._values.values() if isinstance(v, Secret) and str(v)]

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in self._values.items())
        return f"Values({shown})"


def _unique(settings: Iterable[Setting[Any]]) -> list[Setting[Any]]:
    """The settings in order, each once; two different declarations of one name are a programming error."""
    seen: dict[str, Setting[Any]] = {}
    for setting in settings:
        other = seen.setdefault(setting.name, setting)
        if other is not setting:
            raise ValueError(f"{setting.name} is declared twice, differently")
    return list(seen.values())


# --- parsers -----------------------------------------------------------------------------------------------


def text() -> Parser[str]:
    """Any text (stripped)."""
    return lambda name, raw: raw


def optional_text() -> Parser[str | None]:
    """Any text; the default is None (unset)."""
    return lambda name, raw: raw


def secret() -> Parser[Secret | None]:
    """A key, held as a :class:`Secret`."""
    return lambda name, raw: Secret(raw)


def url(*schemes: str) -> Parser[str | None]:
    """A URL with one of ``schemes`` (default http, https) and a host."""
    allowed = schemes or ("http", "https")

    def parse(name: str, raw: str) -> str | None:
        parts = urllib.parse.urlsplit(raw)
        if parts.scheme not in allowed or not parts.netloc:
            raise ConfigError(f"{name} must be a {' or '.join(s + '://' for s in allowed)} URL, got {raw!r}")
        return raw

    return parse


def integer(low: int, high: int) -> Parser[int]:
    """A whole number in ``[low, high]``."""
    return _ranged(int, "an integer", low, high)


def number(low: float, high: float) -> Parser[float]:
    """A number in ``[low, high]`` (never nan)."""
    return _ranged(float, "a number", low, high)


N = TypeVar("N", int, float)


def _ranged(convert: Callable[[str], N], what: str, low: N, high: N) -> Parser[N]:
    def parse(name: str, raw: str) -> N:
        try:
            value = convert(raw)
        except ValueError:
            raise ConfigError(f"{name} must be {what}, got {raw!r}") from None
        if math.isnan(value) or not low <= value <= high:
            raise ConfigError(f"{name} must be between {low:g} and {high:g}, got {raw}")
        return value

    return parse


def choice(*options: str, upper: bool = False) -> Parser[str]:
    """One of ``options``, case-insensitive (given back in lower case, or upper case with ``upper``)."""

    def parse(name: str, raw: str) -> str:
        value = raw.upper() if upper else raw.lower()
        if value not in options:
            raise ConfigError(f"{name}={value!r} is not one of: {', '.join(options)}")
        return value

    return parse


def on_off() -> Parser[bool]:
    """A switch: ``on``/``true``/``yes``/``1`` or ``off``/``false``/``no``/``0`` (case-insensitive)."""

    def parse(name: str, raw: str) -> bool:
        value = raw.lower()
        if value in ("on", "true", "yes", "1"):
            return True
        if value in ("off", "false", "no", "0"):
            return False
        raise ConfigError(f"{name}={raw!r} is not on or off")

    return parse


# --- the docs table ------------------------------------------------------------------------------------------

TABLE_HEADER = "| Variable | Default | Meaning |\n|---|---|---|"


def settings_table(settings: Iterable[Setting[Any]]) -> str:
    """The Markdown settings table of README.md and docs/configuration.md (tests keep them equal to this)."""
    rows = [f"| `{s.name}` | {s.default_cell()} | {s.doc} |" for s in _unique(settings)]
    return "\n".join([TABLE_HEADER, *rows])


def replace_table(markdown: str, table: str) -> str:
    """``markdown`` with its settings table (from the ``| Variable |`` header to the next blank line) replaced."""
    start = markdown.index("| Variable |")
    end = markdown.find("\n\n", start)
    return markdown[:start] + table + (markdown[end:] if end != -1 else "\n")
