"""The registry: every provider declaration in one ordered list, and what the voice agent derives from it.

From the declarations alone, a :class:`Registry` gives

* the provider-choice settings (``STT_PROVIDER`` …: ``auto`` plus every provider and alias of the stage) and the
  fallback settings (``LLM_FALLBACK``, ``TTS_FALLBACK``), with their docs;
* every setting the providers read, each once, in declaration order (:meth:`Registry.settings`);
* the plan (:meth:`Registry.plan`): which provider runs each stage. ``auto`` takes the first *cloud* provider of
  the stage (in registry order) whose key is set, else the stage's first local entry (``local`` or ``echo``).
  An explicit choice whose key is missing or whose packages are not installed is a *problem*, named in words
  the user can act on.

Order matters and is the list's: it is the ``auto`` preference, and the order of the docs table.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, cast

import attrs
from voxline.registry.provider import STAGE_WORDS, STAGES, Alias, Provider, Stage
from voxline.registry.settings import Parser, Setting, Values, choice

__all__ = ["Entry", "Plan", "Registry", "StagePlan"]

logger = logging.getLogger("voxline.registry")

Entry = Provider | Alias


@attrs.frozen
class StagePlan:
    """One stage of the plan: ``choice`` is the name asked for or picked by ``auto`` (``"local"``), ``provider``
    the declaration that will run (``whisper``), ``problem`` why it cannot (None: it can)."""

    stage: Stage
    choice: str
    provider: Provider
    problem: str | None = None


@attrs.frozen
class Plan:
    """Which provider runs each stage, and what is missing for the full (cloud) agent."""

    stages: dict[Stage, StagePlan]
    missing: tuple[str, ...] = ()
    """Environment variables to set for the full (cloud) agent."""

    @property
    def stt(self) -> str:
        return self.stages["stt"].choice

    @property
    def llm(self) -> str:
        return self.stages["llm"].choice

    @property
    def tts(self) -> str:
        return self.stages["tts"].choice

    @property
    def engines(self) -> dict[str, str]:
        """Stage → the provider chosen for it (as named in the settings: ``local`` stays ``local``)."""
        return {stage: plan.choice for stage, plan in self.stages.items()}

    @property
    def problems(self) -> tuple[str, ...]:
        """Requested providers that cannot be built as configured (each names what is missing)."""
        return tuple(p.problem for p in self.stages.values() if p.problem is not None)

    @property
    def offline_demo(self) -> bool:
        """True when any stage is not a cloud provider."""
        return any(not plan.provider.cloud for plan in self.stages.values())

    def provider(self, stage: Stage) -> Provider:
        return self.stages[stage].provider


class Registry:
    """Provider declarations in preference order (see the module docstring)."""

    def __init__(self, entries: Iterable[Entry], *, shared: Sequence[Setting[Any]] = ()) -> None:
        self.entries: tuple[Entry, ...] = tuple(entries)
        self.shared = tuple(shared)
        """Settings several providers read (the system prompt), listed after the providers' own."""
        for stage in STAGES:
            names = [e.name for e in self.of(stage)]
            if len(set(names)) != len(names):
                raise ValueError(f"two {stage} providers share a name: {names}")
            if not any(not e.cloud for e in self.of(stage)):
                raise ValueError(f"the {stage} stage has no local provider for `auto` to fall back on")
        self._choices = {stage: self._choice_setting(stage) for stage in STAGES}
        self._fallbacks = {stage: self._fallback_setting(stage) for stage in ("llm", "tts")}

    def extended(self, *entries: Entry) -> Registry:
        """This registry plus ``entries`` (last in preference): how a new provider joins, in a test or an app."""
        return Registry([*self.entries, *entries], shared=self.shared)

    def of(self, stage: Stage) -> list[Entry]:
        return [e for e in self.entries if e.stage == stage]

    def get(self, stage: Stage, name: str) -> Entry:
        for entry in self.of(stage):
            if entry.name == name:
                return entry
        raise KeyError(f"no {STAGE_WORDS[stage]} provider called {name!r}")

    def providers(self) -> Iterator[Provider]:
        """Every concrete provider (aliases left out), in order."""
        for entry in self.entries:
            if isinstance(entry, Provider):
                yield entry

    # --- settings ------------------------------------------------------------------------------------------

    def choice(self, stage: Stage) -> Setting[str]:
        """``STT_PROVIDER`` / ``LLM_PROVIDER`` / ``TTS_PROVIDER``."""
        return self._choices[stage]

    def fallback(self, stage: Stage) -> Setting[str | None]:
        """``LLM_FALLBACK`` / ``TTS_FALLBACK``."""
        return self._fallbacks[stage]

    def settings(self) -> list[Setting[Any]]:
        """Every setting the registry reads: keys first, then the choices, each provider's own, the shared ones
        and the fallbacks — each once."""
        own = [s for p in self.providers() for s in p.settings]
        keys = [s for s in own if s.role == "key"]
        rest = [s for s in own if s.role != "key"]
        ordered = [*keys, *self._choices.values(), *rest, *self.shared, *self._fallbacks.values()]
        return list({s.name: s for s in ordered}.values())

    def read(self, source: Any) -> Values:
        return Values.read(self.settings(), source)

    def _choice_setting(self, stage: Stage) -> Setting[str]:
        entries = self.of(stage)
        names = ("auto", *(e.name for e in entries))
        listed = ", ".join(f"`{e.name}` ({e.title})" for e in entries)
        cloud = [e for e in entries if isinstance(e, Provider) and e.cloud]
        local = next(e for e in entries if not e.cloud)
        rule = "".join(f"`{e.name}` when {_when(e)} is set, else " for e in cloud)
        return Setting(
            f"{stage.upper()}_PROVIDER",
            choice(*names),
            "auto",
            f"{listed}; or `auto`: {rule}`{local.name}`.",
            role="choice",
        )

    def _fallback_setting(self, stage: Stage) -> Setting[str | None]:
        names = tuple(e.name for e in self.of(stage))
        what = "LLM provider" if stage == "llm" else "TTS provider"
        verb = "takes the turn" if stage == "llm" else "takes over"
        doc = (
            f"A second {what} ({', '.join(f'`{n}`' for n in names)}) that {verb} when the chosen one fails "
            "(docs/fallback.md). Left out, with a warning, if it cannot be built."
        )
        parse = cast(Parser[str | None], choice(*names))
        return Setting(f"{stage.upper()}_FALLBACK", parse, None, doc, role="choice")

    # --- the plan ------------------------------------------------------------------------------------------

    def plan(self, values: Values) -> Plan:
        stages: dict[Stage, StagePlan] = {stage: self._plan_stage(stage, values) for stage in STAGES}
        missing: list[str] = []
        for stage, plan in stages.items():
            wanted = plan.provider if plan.provider.cloud else self._preferred_cloud(stage)
            if wanted is not None:
                missing += [name for name in wanted.unmet(values) if name not in missing]
        return Plan(stages, tuple(missing))

    def _plan_stage(self, stage: Stage, values: Values) -> StagePlan:
        asked = values[self._choices[stage]]
        setting = self._choices[stage].name
        if asked == "auto":
            ready = [e for e in self.of(stage) if isinstance(e, Provider) and e.cloud and e.available(values)]
            entry = ready[0] if ready else next(e for e in self.of(stage) if not e.cloud)
        else:
            entry = self.get(stage, asked)
        provider = entry.resolve() if isinstance(entry, Alias) else entry
        problem = None
        if not provider.available(values):
            problem = f"{setting}={asked} needs {provider.requirement()}"
        elif asked == provider.name and (packages := provider.requires()):
            needed = ", ".join(packages)
            problem = f"{setting}={asked} needs {needed} (not installed); install with: {provider.install_hint()}"
        return StagePlan(stage, entry.name, provider, problem)

    def _preferred_cloud(self, stage: Stage) -> Provider | None:
        return next((e for e in self.of(stage) if isinstance(e, Provider) and e.cloud), None)


def _when(provider: Provider) -> str:
    return (" or " if provider.needs_any else " and ").join(f"`{s.name}`" for s in provider.needs)
