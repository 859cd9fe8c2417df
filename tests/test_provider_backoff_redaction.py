"""voxline.providers: the one Backoff rule and the one secret redactor (stages, SDK loggers, the app's log filter)."""

from __future__ import annotations

import logging
import random

import pytest
from voxline.providers.backoff import AUTH_RETRY, Backoff
from voxline.providers.redaction import SECRETS, RedactingFilter, Redactor, hide_secret, redact


def test_backoff_is_exponential_jittered_and_capped() -> None:
    backoff = Backoff(initial=0.25, maximum=5.0, rng=random.Random(7))
    for attempt in range(1, 12):
        ceiling = min(5.0, 0.25 * 2 ** (attempt - 1))
        delays = {backoff.delay(attempt) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 40  # jittered: reconnecting clients do not stampede in step


def test_backoff_jitter_bounds_and_attempts() -> None:
    assert {Backoff(initial=1, jitter=0).delay(1) for _ in range(5)} == {1.0}
    full = [Backoff(initial=1, jitter=1).delay(1) for _ in range(200)]
    assert min(full) < 0.1 and max(full) <= 1.0
    bounded = Backoff(attempts=3)
    assert not bounded.exhausted(2) and bounded.exhausted(3)
    assert not Backoff().exhausted(10**6)  # no limit: a socket comes back whenever the provider does
    with pytest.raises(ValueError):
        Backoff(jitter=1.5)
    # A refused key is retried every 30-60 s, whatever the attempt number.
    assert all(30 <= AUTH_RETRY.delay(n) <= 60 for n in (1, 2, 50))


def test_redactor_masks_secrets_longest_first_and_url_credentials() -> None:
    redactor = Redactor(["abcd", "abcdefgh", "no"])  # "no" is too short to be a secret: it would mask words
    assert redactor.redact("key abcdefgh, prefix abcd, no") == "key ***, prefix ***, no"
    assert redactor.redact("https://user:pw@host/v1 and http://h:1/x") == "https://***@host/v1 and http://h:1/x"
    assert "abcd" in redactor and "no" not in redactor


def test_process_wide_redactor_covers_stages_and_sdk_loggers(caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk-process-wide-secret-42"
    hide_secret(secret)
    assert secret in SECRETS
    assert redact(f"rejected {secret}") == "rejected ***"
    caplog.set_level(logging.DEBUG)
    # The SDK stack's loggers (websockets prints handshake headers at DEBUG) are scrubbed at the source.
    logging.getLogger("websockets.client").debug("> Authorization: Token %s", secret)
    logging.getLogger("httpx").info("GET https://u:%s@host/v1", secret)
    assert secret not in caplog.text
    assert "Authorization: Token ***" in caplog.text


def test_redacting_filter_scrubs_messages_and_tracebacks() -> None:
    redactor = Redactor(["tb-secret-1234"])
    try:
        raise ValueError("failed with tb-secret-1234")
    except ValueError as exc:
        info = (type(exc), exc, None)
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "key %s", ("tb-secret-1234",), info)
    assert RedactingFilter(redactor).filter(record) is True  # masks, never drops
    assert record.getMessage() == "key ***"
    assert record.exc_text is not None and "tb-secret-1234" not in record.exc_text and "***" in record.exc_text
