"""The provider registry: one declaration per provider, and everything the voice agent derives from them.

* :mod:`voxline.registry.settings` — :class:`Setting` (environment variable, parser, default, docs),
  :class:`Values` (the settings as read, keys masked), the settings table of the docs.
* :mod:`voxline.registry.provider` — :class:`Provider` (stage, name, settings, key, extra, ``build``,
  ``describe``, ``check``, ``preload``) and :class:`Alias` (``local``: the best installed engine).
* :mod:`voxline.registry.registry` — :class:`Registry` (the ordered list; the provider choices, the ``auto``
  rule and the :class:`Plan`).
* :mod:`voxline.registry.check` / :mod:`voxline.registry.round_trips` — ``voxline check``'s runner and the
  generic round trips of each stage.

The built-in providers are listed in :mod:`voxline.processors.registry`; the voice agent adds its own settings
(server, limits, tools) in :mod:`voxline.apps.voice_agent.config`. ``docs/architecture.md`` ("Providers")
explains the words; ``CONTRIBUTING.md`` adds a provider.
"""

from voxline.registry.provider import STAGE_WORDS, STAGES, Alias, CheckFailed, Probe, Provider, Stage
from voxline.registry.registry import Plan, Registry, StagePlan
from voxline.registry.settings import ConfigError, Secret, Setting, Values

__all__ = [
    "STAGES",
    "STAGE_WORDS",
    "Alias",
    "CheckFailed",
    "ConfigError",
    "Plan",
    "Probe",
    "Provider",
    "Registry",
    "Secret",
    "Setting",
    "Stage",
    "StagePlan",
    "Values",
]
