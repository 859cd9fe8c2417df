"""Optional request fields an LLM stage chose, and the process-wide memory of the ones a provider refused.

An LLM request carries fields the provider does not need — a thinking setting, a temperature, a token limit —
that voxline (or the user) chose. Providers change which of those a model accepts (a new model refuses a
thinking level its predecessor took; a reasoning model refuses ``max_tokens``), and a refused field fails
*every* turn with HTTP 400. So the LLM base (:class:`voxline.llm.LLMProcessor`) heals such a request once:
when a 400's message names an optional field the request carried, that field is dropped — the model's own
default applies — the turn is retried at once, one warning says which field and what the provider said, and
every later request to the same provider, model and endpoint leaves the field out, for the rest of the
process (:data:`REDUCED_REQUESTS`).

A provider stage declares its fields with :class:`OptionalField` (how its provider's messages name each one)
and asks :meth:`RequestHealing.keeps` before putting a field in a request; :class:`RequestHealing` is the part of
the LLM base that does the healing.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Collection, Hashable, Iterable, Sequence

import attrs
from voxline.providers.redaction import redact

__all__ = ["REDUCED_REQUESTS", "OptionalField", "ReducedRequests", "RequestHealing", "refused_field"]

logger = logging.getLogger("voxline.llm")


@attrs.frozen
class OptionalField:
    """A field a stage may leave out of its requests. ``mentions`` are regular expressions (case-insensitive) for
    the ways a provider's error message names it, e.g. ``("thinking", "budget")`` or ``("max_tokens",)``."""

    name: str
    mentions: tuple[str, ...]
    _pattern: re.Pattern[str] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_pattern", re.compile("|".join(self.mentions), re.IGNORECASE))

    def named_in(self, message: str) -> bool:
        """Whether ``message`` (a provider's error text) names this field."""
        return bool(self.mentions) and self._pattern.search(message) is not None


class ReducedRequests:
    """Which optional fields have been dropped, per request key (provider, model, endpoint). Thread-safe: several
    event loops (an app and a test's fake server, say) may share one process."""

    def __init__(self) -> None:
        self._dropped: dict[Hashable, frozenset[str]] = {}
        self._lock = threading.Lock()

    def dropped(self, key: Hashable) -> frozenset[str]:
        """The fields requests under ``key`` leave out."""
        return self._dropped.get(key, frozenset())

    def drop(self, key: Hashable, field: str) -> bool:
        """Leave ``field`` out of requests under ``key`` from now on; False if it was already left out."""
        with self._lock:
            current = self._dropped.get(key, frozenset())
            if field in current:
                return False
            self._dropped[key] = current | {field}
            return True

    def snapshot(self) -> dict[Hashable, frozenset[str]]:
        """Every key with the fields it leaves out (for status pages and diagnostics)."""
        with self._lock:
            return dict(self._dropped)

    def forget(self, keys: Iterable[Hashable] | None = None) -> None:
        """Send the dropped fields again (all keys, or only ``keys``): after a configuration change, or in tests."""
        with self._lock:
            if keys is None:
                self._dropped.clear()
            else:
                for key in keys:
                    self._dropped.pop(key, None)


REDUCED_REQUESTS = ReducedRequests()
"""The process-wide memory every LLM stage consults."""


def refused_field(fields: Iterable[OptionalField], message: str, dropped: Collection[str]) -> OptionalField | None:
    """The first of ``fields`` not yet ``dropped`` that a provider's refusal ``message`` names, if any."""
    return next((f for f in fields if f.name not in dropped and f.named_in(message)), None)


class RequestHealing:
    """The request-healing half of :class:`voxline.llm.LLMProcessor`: which optional fields requests carry, and
    dropping one a provider refused (process-wide, per :meth:`request_key`)."""

    name: str

    def optional_fields(self) -> Sequence[OptionalField]:
        """The optional fields the next request carries (before :meth:`keeps` is applied); none by default."""
        return ()

    def refusal_message(self, exc: BaseException) -> str | None:
        """The provider's message if ``exc`` is an HTTP 400 refusing the request as built, else None."""
        return None

    def request_key(self) -> Hashable:
        """What a dropped field (and TTFT samples) are kept under: provider, model, endpoint (default: the class)."""
        return (type(self).__name__,)

    def keeps(self, field: str) -> bool:
        """Whether requests still carry ``field`` (False once a provider refused it for this key)."""
        return field not in REDUCED_REQUESTS.dropped(self.request_key())

    @property
    def dropped_fields(self) -> frozenset[str]:
        """The optional fields this stage's requests leave out because the provider refused them."""
        return REDUCED_REQUESTS.dropped(self.request_key())

    def _leave_out_refused_field(self, exc: BaseException) -> bool:
        """If ``exc`` refuses a field the request carried, drop it (process-wide) and say so; True to retry."""
        message = self.refusal_message(exc)
        field = refused_field(self.optional_fields(), message, self.dropped_fields) if message else None
        if field is None or message is None:
            return False
        key = self.request_key()
        if REDUCED_REQUESTS.drop(key, field.name):  # else another stage dropped it meanwhile: just retry
            where = " ".join(str(part) for part in (key if isinstance(key, tuple) else (key,)))
            logger.warning(
                "%s: the provider refused the request's %s (%s); retrying without it, and requests to %s leave "
                "it out from now on (the model's default applies)",
                self.name,
                field.name,
                redact(message.strip()),
                redact(where),
            )
        return True
