"""One declaration per provider: everything the voice agent needs to know about a way to run one stage.

A **provider** is a named way to run one stage of the voice agent — a cloud service (``deepgram``, ``gemini``)
or a local engine (``whisper``, ``piper``, ``echo``) — chosen with ``STT_PROVIDER`` / ``LLM_PROVIDER`` /
``TTS_PROVIDER``. Its :class:`Provider` declaration says which stage it runs, its settings, whether it is a
cloud service and which key it needs, what to install, how to build its processors, what ``/health`` says
about it and how ``voxline check`` round-trips it. An :class:`Alias` (``local``) names the best installed of
several providers.

Declarations import nothing heavy: ``build``, ``check`` and ``preload`` import their engine when called.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import attrs
from voxline.registry.settings import Setting, Values

if TYPE_CHECKING:
    from voxline.processor import Processor

__all__ = [
    "STAGES",
    "STAGE_WORDS",
    "Alias",
    "Builder",
    "CheckFailed",
    "FailureKind",
    "Probe",
    "Provider",
    "Stage",
    "missing_modules",
    "shows",
]

Stage = Literal["stt", "llm", "tts"]
STAGES: tuple[Stage, ...] = ("stt", "llm", "tts")
STAGE_WORDS: dict[Stage, str] = {"stt": "speech-to-text", "llm": "language model", "tts": "text-to-speech"}

Builder = Callable[[Values], "list[Processor]"]


@attrs.frozen
class Probe:
    """What one ``voxline check`` round trip showed, for its line: e.g. ``"heard: 'hello'"``, ``"1.2 s of audio"``."""

    detail: str = ""


FailureKind = Literal["auth", "model", "refused", "unreachable", "timeout", "server", "other"]
"""What a failed round trip means for the user, so the hint can name the setting to fix: a refused key (the
provider's ``key`` setting), an unknown model (``model``), a refused request (the setting its message
mentions), an unreachable service (``endpoint``)."""


class CheckFailed(Exception):
    """A round trip failed. ``message`` is the provider's own words (never a key); ``hint`` says what to fix
    (derived from ``kind`` and the provider's settings when left empty)."""

    def __init__(self, message: str, hint: str = "", *, kind: FailureKind | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.kind = kind


def shows(**fields: Setting[Any] | str) -> Callable[[Values], dict[str, Any]]:
    """A ``describe`` for :class:`Provider`: each field is a setting's value, or a fixed text.

    ``shows(model=MODEL, language=LANGUAGE)``, ``shows(model="espeak-ng")``.
    """

    def describe(values: Values) -> dict[str, Any]:
        return {key: field if isinstance(field, str) else values[field] for key, field in fields.items()}

    return describe


def missing_modules(*packages: tuple[str, str]) -> list[str]:
    """The pip names of the ``(import name, pip name)`` pairs that are not installed (nothing is imported)."""
    return [pip for module, pip in packages if importlib.util.find_spec(module) is None]


@attrs.frozen(eq=False)
class Provider:
    """A provider of one stage. See the module docstring; every callable gets the settings as read.

    * ``title`` — a few words for the docs table ("Deepgram Nova-3 live STT").
    * ``build(values)`` — the stage's processors, in pipeline order (e.g. a VAD, then the STT).
    * ``settings`` — every setting it reads (``needs`` among them).
    * ``cloud`` / ``needs`` — a cloud service needs these settings set (all of them, or any one with
      ``needs_any``); ``needs_note`` words the requirement when the setting names alone do not.
    * ``extra`` — the pip extra that installs it (``local``, ``openai``); ``requires()`` — the pip names of its
      packages that are not installed (checked without importing them).
    * ``describe(values)`` — what ``/health`` says of it besides its name: ``{"model": ...}``.
    * ``check(values)`` — ``voxline check``'s round trip (None: the generic one of its stage,
      :mod:`voxline.registry.round_trips`).
    * ``preload(values)`` — load its models at startup so the first session does not wait (local engines).
    """

    stage: Stage
    name: str
    title: str
    build: Builder = attrs.field(repr=False)
    settings: tuple[Setting[Any], ...] = attrs.field(default=(), repr=False)
    cloud: bool = False
    needs: tuple[Setting[Any], ...] = attrs.field(default=(), repr=False)
    needs_any: bool = False
    needs_note: str = ""
    extra: str | None = None
    requires: Callable[[], list[str]] = attrs.field(default=list, repr=False)
    describe: Callable[[Values], dict[str, Any]] = attrs.field(default=lambda values: {}, repr=False)
    check: Callable[[Values], Awaitable[Probe]] | None = attrs.field(default=None, repr=False)
    preload: Callable[[Values], Awaitable[None]] | None = attrs.field(default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        unknown = [s.name for s in self.needs if s not in self.settings]
        if unknown:
            raise ValueError(f"{self.stage} provider {self.name!r} needs settings it does not declare: {unknown}")

    def available(self, values: Values) -> bool:
        """Whether the settings it needs are set (always, for a provider that needs none)."""
        if not self.needs:
            return True
        given = [values.is_set(s) for s in self.needs]
        return any(given) if self.needs_any else all(given)

    def requirement(self) -> str:
        """What it needs, in words: "DEEPGRAM_API_KEY", "OPENAI_API_KEY or OPENAI_BASE_URL"."""
        names = [s.name for s in self.needs]
        return self.needs_note or (" or " if self.needs_any else " and ").join(names)

    def unmet(self, values: Values) -> list[str]:
        """The settings to set for it to be available (none when it is)."""
        if self.available(values):
            return []
        return [s.name for s in self.needs if not values.is_set(s)][: 1 if self.needs_any else None]

    def install_hint(self) -> str:
        return f"pip install 'voxline[{self.extra}]'" if self.extra else "pip install voxline"

    def setting(self, role: str) -> Setting[Any] | None:
        """Its first setting of this role (``key``, ``endpoint``, ``model``), for hints."""
        return next((s for s in self.settings if s.role == role), None)


@attrs.frozen(eq=False)
class Alias:
    """A name for the best of several providers of one stage (``local``: whisper, else pocketsphinx).

    ``pick()`` names the one to use now (it may log why it did not take the first); a candidate chosen by the
    alias must still be buildable: a broken install (a model file whose hash is wrong) fails when it starts.
    """

    stage: Stage
    name: str
    title: str
    candidates: Sequence[Provider] = attrs.field(repr=False)
    pick: Callable[[], str] = attrs.field(repr=False)

    def resolve(self) -> Provider:
        chosen = self.pick()
        for candidate in self.candidates:
            if candidate.name == chosen:
                return candidate
        raise ValueError(f"alias {self.name!r} picked {chosen!r}, which is not one of its candidates")

    @property
    def cloud(self) -> bool:
        return False
