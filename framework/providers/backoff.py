"""How long to wait before trying a provider again: one rule for every retry and reconnect in voxline.

Capped exponential backoff with jitter. Delay *n* (1 for the first retry) is drawn from
``[ceiling·(1 - jitter), ceiling]`` with ``ceiling = min(maximum, initial · multiplier**(n - 1))``: it grows
quickly to a cap, and clients that failed together (a provider outage drops every session at once) do not come
back together. ``jitter=0.5`` (the default) draws from the upper half, ``1`` is full jitter, ``0`` none.
``attempts`` bounds how many tries a caller makes in all (the first included); ``None`` means no limit, as for a
socket that must come back whenever the provider does.
"""

from __future__ import annotations

import random

import attrs

__all__ = ["AUTH_RETRY", "Backoff"]


@attrs.frozen
class Backoff:
    """Capped exponential backoff with jitter (see the module docstring). ``rng`` makes the jitter reproducible."""

    initial: float = attrs.field(default=0.25, validator=attrs.validators.ge(0))
    maximum: float = attrs.field(default=5.0, validator=attrs.validators.ge(0))
    multiplier: float = attrs.field(default=2.0, validator=attrs.validators.ge(1))
    jitter: float = attrs.field(default=0.5, validator=[attrs.validators.ge(0), attrs.validators.le(1)])
    attempts: int | None = attrs.field(default=None, validator=attrs.validators.optional(attrs.validators.ge(1)))
    rng: random.Random | None = attrs.field(default=None, eq=False, repr=False)

    def ceiling(self, retry: int) -> float:
        """The longest delay before retry number ``retry`` (1-based)."""
        return min(self.maximum, self.initial * self.multiplier ** max(0, retry - 1))

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        ceiling = self.ceiling(retry)
        draw = (self.rng or random).random()
        return ceiling * (1.0 - self.jitter * draw)

    def exhausted(self, attempt: int) -> bool:
        """Whether ``attempt`` tries (the first included) are all that :attr:`attempts` allows."""
        return self.attempts is not None and attempt >= self.attempts


AUTH_RETRY = Backoff(initial=60.0, maximum=60.0, jitter=0.5)
"""After a provider rejected the key (HTTP 401/403): try again every 30-60 s, for as long as the session lives.

Slowly, because a rejected key rarely fixes itself within seconds and a tight loop would hammer the provider's
auth service from every session; but never giving up, because the key may be fixed (rotated, topped up,
re-enabled) while the session is open, and a stage that stopped for good would stay deaf or mute until the user
reconnected."""
