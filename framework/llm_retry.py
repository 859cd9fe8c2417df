"""How a turn is retried before its first token: which HTTP statuses, and how long a first token may take.

The retry *delays* are :class:`voxline.providers.backoff.Backoff` (one rule for every retry in voxline); this
module holds what is particular to LLM turns.

**The first-token timeout follows the provider's real time to first token.** A request that stalls before its
first token is silence the user sits through, so the timeout is a few times what the provider actually takes,
not a round number that is safe for every model: :class:`FirstTokenTimeout` starts from a per-provider
``initial`` value and, once a few requests to the same provider, model and endpoint have been timed
(:data:`TTFT_HISTORY`, process-wide), waits ``factor`` times their recent 90th percentile, within
``[minimum, maximum]``. A timed-out attempt counts as a sample of its timeout, so a provider that has become
slower raises the deadline instead of timing out every turn.

What the numbers rest on:

* *The provider.* Google publishes no TTFT figures; third-party measurements of Flash models with thinking
  minimised put the median at 0.5-1.1 s (gemini-1.5/2.0-flash 0.51-0.52 s, danielcorin.com 2025; ~1.1 s for
  gemini-3-flash, ~2.2 s from India, discuss.ai.google.dev 2026) and the tail near 4 s (a production chat
  feature: 520 ms average, p99 ~4,000 ms, gemilab.net "tail latency" field notes). Models that think before
  answering are another class: 5-6 s for 2.5/3.5 Flash with thinking on, ~11 s for 2.5 Pro (single-prompt
  measurements, 2026-05-24, /work/shared/reference/provider-protocols.md §E).
* *The user.* Turn-taking leaves gaps of about 200 ms (Stivers et al., PNAS 2009, ten languages); a silence of
  about a second is where conversation analysis finds speakers treating it as trouble (Jefferson's "standard
  maximum", 1989), and voice-agent builders report users giving up around 3 s ("I tested 6 Gemini models for
  voice AI latency", dev.to, 2025). So the stall must be noticed, and the retry's answer heard, within a few
  seconds: a fast model's timeout is 3 s before anything is known (about its p99), then 3 times its recent p90
  (1.5 s at the least), and the retry follows within 0.1-0.2 s.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Hashable
from typing import Final

import attrs

__all__ = [
    "FAST_MODEL",
    "RETRYABLE_STATUS",
    "SLOW_MODEL",
    "TTFT_HISTORY",
    "EmptyReplyError",
    "FirstTokenTimeout",
    "LLMTimeoutError",
    "TTFTHistory",
]

RETRYABLE_STATUS: Final = frozenset({408, 429, 500, 502, 503, 504})
"""HTTP statuses worth another try before the first token: timeout, rate limit, server trouble."""


class EmptyReplyError(Exception):
    """The model's stream ended without a single chunk of text."""


class LLMTimeoutError(TimeoutError):
    """No first token, or no next token, within the allowed time."""


class TTFTHistory:
    """Recent times to first token per request key (provider, model, endpoint), process-wide. Thread-safe."""

    def __init__(self, keep: int = 50) -> None:
        self.keep = keep
        self._samples: dict[Hashable, deque[float]] = {}
        self._lock = threading.Lock()

    def record(self, key: Hashable, seconds: float) -> None:
        """One attempt's time to first token (a timed-out attempt: its timeout)."""
        with self._lock:
            samples = self._samples.get(key)
            if samples is None:
                samples = self._samples[key] = deque(maxlen=self.keep)
            samples.append(seconds)

    def recent(self, key: Hashable) -> list[float]:
        with self._lock:
            return list(self._samples.get(key, ()))

    def forget(self) -> None:
        """Drop every sample (tests, or after a configuration change)."""
        with self._lock:
            self._samples.clear()


TTFT_HISTORY: Final = TTFTHistory()
"""The process-wide history every LLM stage records into and reads its first-token deadline from."""


@attrs.frozen
class FirstTokenTimeout:
    """How long an attempt may wait for its first token: ``factor`` times the recent p90 TTFT, within
    ``[minimum, maximum]``; ``initial`` until ``min_samples`` attempts have been timed (see the module docstring)."""

    initial: float = attrs.field(default=3.0, validator=attrs.validators.gt(0))
    minimum: float = attrs.field(default=1.5, validator=attrs.validators.gt(0))
    maximum: float = attrs.field(default=6.0, validator=attrs.validators.gt(0))
    factor: float = attrs.field(default=3.0, validator=attrs.validators.ge(1))
    min_samples: int = attrs.field(default=3, validator=attrs.validators.ge(1))

    def seconds(self, samples: list[float]) -> float:
        """The timeout, given recent TTFT ``samples`` of this provider, model and endpoint."""
        if len(samples) < self.min_samples:
            return self.initial
        ordered = sorted(samples)
        p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
        return min(self.maximum, max(self.minimum, self.factor * p90))


FAST_MODEL: Final = FirstTokenTimeout()
"""A model that answers without thinking first (Flash with thinking minimised, gpt-4o-mini class): 3 s, then
3 times the recent p90 within 1.5-6 s."""

SLOW_MODEL: Final = FirstTokenTimeout(initial=15.0, minimum=6.0, maximum=30.0)
"""A model that thinks before it answers, an unknown model, or a self-hosted server whose first request loads
the model (Ollama loads it on demand; retrying does not make that faster): 15 s, then within 6-30 s."""
