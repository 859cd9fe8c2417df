"""Which provider of a fallback stage is serving, which are down, and when a down one is tried again.

A :class:`Roster` holds the providers of one stage in priority order (the first is the primary). The stage asks
it to :meth:`~Roster.fail_over` when the serving provider failed; the roster marks that provider down, picks the
next one, logs the switch (one WARNING line with both names and the reason) and pushes
``MetricsFrame("<kind>.fallback", value=<index now serving>, unit="index")`` downstream. Each provider marked
down gets a background recovery task: after ``cooldown`` seconds it runs the provider's health probe every
``probe_interval`` seconds until one passes, then marks it available again and — if it ranks above the one
serving — switches back (logged and measured the same way). A provider whose health cannot be probed (its
``health_check`` raises ``NotImplementedError``) is taken back after the cooldown on trust: if it still fails,
the stage fails over again, and nothing is lost either way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import attrs
from voxline.frames import MetricsFrame
from voxline.processor import DOWNSTREAM, Processor
from voxline.providers.redaction import redact

__all__ = ["Roster", "Switch"]

logger = logging.getLogger("voxline.fallback")

P = TypeVar("P", bound=Processor)

PROBE_TIMEOUT = 10.0
"""Seconds one health probe may take."""


@attrs.frozen
class Switch:
    """One change of the serving provider: from and to (names), why, and when (``time.monotonic()``)."""

    source: str
    target: str
    reason: str
    at: float


class Roster(Generic[P]):
    """The providers of one fallback stage (``owner``) and their state; see the module docstring."""

    def __init__(
        self,
        owner: Processor,
        members: Sequence[P],
        *,
        kind: str,
        cooldown: float,
        probe_interval: float,
        probe: Callable[[P], Awaitable[None]],
        on_switch: Callable[[P, P], Awaitable[None]] | None = None,
    ) -> None:
        if len(members) < 2:
            raise ValueError(f"a fallback {kind} needs at least two providers, got {len(members)}")
        if cooldown < 0 or probe_interval <= 0:
            raise ValueError("cooldown must be non-negative and probe_interval positive")
        names = [m.name for m in members]
        if len(set(names)) != len(names):
            raise ValueError(f"the providers of a fallback {kind} need distinct names (name=...), got {names}")
        self.owner = owner
        self.members = list(members)
        self.kind = kind
        self.cooldown = cooldown
        self.probe_interval = probe_interval
        self._probe = probe
        self._on_switch = on_switch
        self.available = [True] * len(members)
        self.index = 0
        """The serving provider's position."""
        self.switches: list[Switch] = []
        """Every switch so far, oldest first."""
        self._recovering: dict[int, asyncio.Task[None]] = {}

    @property
    def active(self) -> P:
        return self.members[self.index]

    def position(self, member: P) -> int:
        return next(i for i, m in enumerate(self.members) if m is member)

    async def fail_over(
        self, reason: str, *, exclude: set[int] | frozenset[int] = frozenset(), try_down: bool = False
    ) -> bool:
        """The serving provider failed (``reason``): mark it down and switch to the next one not in ``exclude``:
        an available one by priority, else — with ``try_down`` (an LLM step, tried once per provider) — one marked
        down (it may have recovered). False if there is none: the stage stays where it is."""
        failed = self.index
        if self.available[failed]:
            self.available[failed] = False
            self._start_recovery(failed)
        order = [i for i in range(len(self.members)) if i != failed and i not in exclude]
        fallback = order[0] if order and try_down else None
        target = next((i for i in order if self.available[i]), fallback)
        if target is None:
            logger.error(
                "%s: %s failed (%s) and no other %s provider is left to try",
                self.owner.name,
                self.members[failed].name,
                redact(reason),
                self.kind,
            )
            return False
        await self._switch(target, f"{self.members[failed].name} failed: {reason}")
        return True

    async def _switch(self, target: int, reason: str) -> None:
        source = self.members[self.index]
        self.index = target
        chosen = self.members[target]
        reason = redact(reason)
        self.switches.append(Switch(source.name, chosen.name, reason, time.monotonic()))
        logger.warning(
            "%s: %s switched from %s to %s (%s)", self.owner.name, self.kind, source.name, chosen.name, reason
        )
        metric = MetricsFrame(name=f"{self.kind}.fallback", value=target, unit="index", source=self.owner.name)
        await self.owner.push(metric, DOWNSTREAM)
        if self._on_switch is not None:
            await self._on_switch(source, chosen)

    def resume(self) -> None:
        """Restart the recovery of providers still down (the stage was stopped, and its tasks with it)."""
        for index, up in enumerate(self.available):
            if not up:
                self._start_recovery(index)

    def _start_recovery(self, index: int) -> None:
        task = self._recovering.get(index)
        if task is None or task.done():
            name = f"{self.owner.name}-recover-{self.members[index].name}"
            self._recovering[index] = self.owner.create_task(self._recover(index), name=name, epoch_bound=False)

    async def _recover(self, index: int) -> None:
        member = self.members[index]
        await asyncio.sleep(self.cooldown)
        while True:
            verdict = await self._check(member)
            if verdict is not False:
                self.available[index] = True
                how = "passed its health probe" if verdict else "is trusted again after the cooldown (no probe)"
                logger.info("%s: %s %s", self.owner.name, member.name, how)
                if index < self.index:
                    await self._switch(index, f"{member.name} recovered")
                return
            await asyncio.sleep(self.probe_interval)

    async def _check(self, member: P) -> bool | None:
        """True: healthy; False: not yet; None: it cannot be probed."""
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                await self._probe(member)
        except NotImplementedError:
            return None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.info(
                "%s: %s is still down (%s)", self.owner.name, member.name, redact(f"{type(exc).__name__}: {exc}")
            )
            return False
        return True
