"""``voxline check``: a real round trip with every configured stage, one line each, before anyone opens the page.

For each stage of the plan (and each configured fallback) the provider's round trip runs
(:attr:`Provider.check <voxline.registry.provider.Provider.check>`, or the generic one of its stage in
:mod:`voxline.registry.round_trips`), timed, bounded by ``timeout``. A stage the plan already knows cannot run
(a missing key, a package not installed) fails without a request. Each line has the stage, the provider, its
model, OK or the provider's own error message with a hint naming the setting to fix, and the latency.

Hints come from the failure's kind and the provider's declared settings: a refused key names its ``key``
setting, an unknown model its ``model`` setting, a refused request the setting its message mentions (a thinking
level), an unreachable service its ``endpoint`` setting. No line ever holds a key: messages are redacted.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

import attrs
from voxline.registry.provider import STAGES, CheckFailed, Probe, Provider, Stage
from voxline.registry.registry import Plan, Registry
from voxline.registry.settings import Values

__all__ = ["CheckLine", "check_plan", "check_provider", "format_lines", "hint_for", "lines_json"]


@attrs.frozen
class CheckLine:
    """One stage's result."""

    stage: str
    """``stt``, ``llm``, ``tts``, or ``llm fallback`` / ``tts fallback``."""
    provider: str
    model: str
    ok: bool
    message: str
    """``OK`` details on success ("heard no words"); the provider's error otherwise."""
    hint: str = ""
    latency_ms: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


async def check_plan(
    registry: Registry, values: Values, plan: Plan, *, timeout: float = 30.0, fallbacks: bool = True
) -> list[CheckLine]:
    """Check every stage of ``plan`` in order (STT, LLM, TTS, then the fallbacks), one at a time."""
    lines = []
    for stage in STAGES:
        step = plan.stages[stage]
        if step.problem is not None:
            lines.append(_line(stage, step.provider, values, ok=False, message=step.problem, hint=_fix(step.problem)))
            continue
        lines.append(await check_provider(stage, step.provider, values, timeout=timeout))
    if fallbacks:
        for stage in ("llm", "tts"):
            name = values[registry.fallback(stage)]
            if name and name != plan.stages[stage].choice:
                entry = registry.get(stage, name)
                provider = entry if isinstance(entry, Provider) else entry.resolve()
                label = f"{stage} fallback"
                if not provider.available(values):
                    message = f"{registry.fallback(stage).name}={name} needs {provider.requirement()}"
                    lines.append(_line(label, provider, values, ok=False, message=message, hint=_fix(message)))
                else:
                    lines.append(await check_provider(stage, provider, values, timeout=timeout, label=label))
    return lines


async def check_provider(
    stage: Stage, provider: Provider, values: Values, *, timeout: float = 30.0, label: str | None = None
) -> CheckLine:
    """One provider's round trip, timed; never raises (a failure is a line)."""
    from voxline.providers.redaction import redact

    started = time.perf_counter()
    hint = ""
    try:
        async with asyncio.timeout(timeout):
            probe = await _round_trip(stage, provider, values, timeout)
        return _line(label or stage, provider, values, ok=True, message=probe.detail, t0=started)
    except CheckFailed as exc:
        message, kind, hint = exc.message, exc.kind, exc.hint
    except TimeoutError:
        message, kind = f"no answer within {timeout:g} s", "timeout"
    except ImportError as exc:
        message, kind, hint = f"not installed ({exc})", None, provider.install_hint()
    except Exception as exc:  # a bug or an error the round trip did not word: still one line, no traceback
        message, kind = f"{type(exc).__name__}: {exc}", None
    message = redact(message)
    hint = hint or hint_for(provider, values, kind, message)
    return _line(label or stage, provider, values, ok=False, message=message, hint=hint, t0=started)


async def _round_trip(stage: Stage, provider: Provider, values: Values, timeout: float) -> Probe:
    if provider.check is not None:
        return await provider.check(values)
    from voxline.registry import round_trips

    try:
        stages = provider.build(values)
    except ValueError as exc:  # a constructor refusing a value: the user's setting
        raise CheckFailed(str(exc), kind="refused") from None
    if stage == "stt":
        return await round_trips.stt_round_trip(stages, timeout=timeout)
    if stage == "llm":
        return await round_trips.llm_round_trip(stages, timeout=timeout)
    return await round_trips.tts_round_trip(stages, timeout=timeout)


def hint_for(provider: Provider, values: Values, kind: str | None, message: str) -> str:
    """What to fix, from the kind of failure and the provider's settings (see the module docstring)."""
    lowered = message.lower()
    mentioned = next((s for s in provider.settings if any(word in lowered for word in s.mentions)), None)
    key, model, endpoint = provider.setting("key"), provider.setting("model"), provider.setting("endpoint")
    where = (values[endpoint] if endpoint is not None and values.is_set(endpoint) else None) or "the service"
    if kind == "auth":
        if key is None:
            return "the service refused the request's credentials"
        return f"check {key.name}: the service refused the key" if values.is_set(key) else f"set {key.name}"
    if kind == "model" and model is not None:
        return f"check {model.name}={values[model]}: the service does not know this model"
    if kind in ("refused", "model", "other", None) and mentioned is not None:
        verdict = "does not know this model" if mentioned.role == "model" else "refused it"
        return f"check {mentioned.name}={_shown(values, mentioned)}: the service {verdict}"
    if kind == "refused":
        return f"check {model.name} and the options: the service refused the request" if model else ""
    if kind == "unreachable":
        return f"nothing answered at {where}: check {endpoint.name} and the network" if endpoint else "no answer"
    if kind == "timeout":
        return f"no answer from {where} in time: check {endpoint.name} and the network" if endpoint else ""
    if kind == "server":
        return "the service failed on its side: try again later"
    return ""


def _shown(values: Values, setting: Any) -> str:
    return "***" if setting.secret else str(values[setting])


def _fix(problem: str) -> str:
    """The hint for a problem the plan found: set the setting it names, or install what it names."""
    if "install with: " in problem:
        return problem.split("install with: ", 1)[1]
    return "set " + problem.split(" needs ", 1)[1] if " needs " in problem else ""


def _line(
    stage: str, provider: Provider, values: Values, *, ok: bool, message: str, hint: str = "", t0: float | None = None
) -> CheckLine:
    model = str(provider.describe(values).get("model", ""))
    latency = None if t0 is None else round((time.perf_counter() - t0) * 1000, 1)
    return CheckLine(stage, provider.name, model, ok, message, hint, latency)


def format_lines(lines: Sequence[CheckLine]) -> str:
    """Aligned text, one line per stage: ``stt  deepgram  nova-3  OK  412 ms  heard no words``."""
    rows = []
    for line in lines:
        latency = f"{line.latency_ms:.0f} ms" if line.latency_ms is not None else "-"
        verdict = "OK" if line.ok else "FAIL"
        outcome = line.message if line.ok else f"{line.message}" + (f" — hint: {line.hint}" if line.hint else "")
        rows.append((line.stage, line.provider, line.model or "-", verdict, latency, outcome))
    widths = [max(len(row[i]) for row in rows) for i in range(5)] if rows else []
    padded = ("  ".join([*(cell.ljust(widths[i]) for i, cell in enumerate(row[:5])), row[5]]) for row in rows)
    return "\n".join(text.rstrip() for text in padded)


def lines_json(lines: Sequence[CheckLine]) -> str:
    """``{"ok": bool, "stages": [...]}`` for scripts."""
    return json.dumps({"ok": all(line.ok for line in lines), "stages": [line.as_dict() for line in lines]}, indent=2)
