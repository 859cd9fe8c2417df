"""How a turn is retried before its first token: which HTTP statuses, how often, how patiently (``voxline.llm``)."""

from __future__ import annotations

import random
from typing import Final

import attrs

__all__ = ["RETRYABLE_STATUS", "EmptyReplyError", "LLMTimeoutError", "RetryPolicy"]

RETRYABLE_STATUS: Final = frozenset({408, 429, 500, 502, 503, 504})
"""HTTP statuses worth another try before the first token: timeout, rate limit, server trouble."""


class EmptyReplyError(Exception):
    """The model's stream ended without a single chunk of text."""


class LLMTimeoutError(TimeoutError):
    """No first token, or no next token, within the configured time."""


@attrs.frozen
class RetryPolicy:
    """How often and how patiently a turn is retried before its first token.

    ``attempts`` counts requests, the first included. The n-th retry waits
    ``min(max_delay, initial_delay * multiplier**(n-1))`` plus up to ``jitter`` of that again at random, so
    clients that failed together do not come back together.
    """

    attempts: int = attrs.field(default=3, validator=attrs.validators.ge(1))
    initial_delay: float = attrs.field(default=0.2, validator=attrs.validators.ge(0))
    max_delay: float = attrs.field(default=2.0, validator=attrs.validators.ge(0))
    multiplier: float = attrs.field(default=2.0, validator=attrs.validators.ge(1))
    jitter: float = attrs.field(default=0.25, validator=attrs.validators.ge(0))

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        base = min(self.max_delay, self.initial_delay * self.multiplier ** max(0, retry - 1))
        return base + random.uniform(0, self.jitter * base)
