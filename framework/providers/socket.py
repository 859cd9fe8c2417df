"""One provider WebSocket for the life of a stage: opened on demand, kept alive, reopened after every drop.

Provider SDKs hand out one connection per ``async with client.connect(...)`` and stop there: no reconnect, no
keepalive, and an exception or a cancel inside the block leaves the stage without a socket. A stage that holds
a :class:`ProviderSocket` gets, in one place:

* **Connect on demand.** The socket opens when ``wanted()`` says there is something to send (a speech-to-text
  stage: its first audio — Deepgram closes a listen socket that has heard no audio within 10 s, 1011
  ``NET-0001``, whatever KeepAlives it got) or at once when there is no ``wanted`` (a TTS socket, opened at the
  start of the session so no sentence pays a handshake).
* **Replay hook.** ``on_open(conn)`` runs on every new connection before it counts as ready: a stage resends
  there what the last connection lost (audio not yet finalised, text that got no audio). Nothing sent through
  :meth:`ProviderSocket.send` can slip in between: the socket is marked ready in the same step the hook returns.
* **Keepalive.** ``keepalive(conn)`` is sent whenever nothing has gone out for ``keepalive_interval`` seconds
  (stages call :meth:`ProviderSocket.touch` — :meth:`ProviderSocket.send` does — when they send).
* **Backoff with jitter** (:class:`~voxline.providers.backoff.Backoff`) between attempts. After ``report_after``
  consecutive failures the client gets one non-fatal ``ErrorFrame`` and the stage is told (``on_outage``) so
  it can stop queueing work; retries go on at the capped delay.
* **A rejected key (HTTP 401/403)** is reported to the client at once, in words that name the setting to fix
  and never the key, and then retried *slowly* (:data:`~voxline.providers.backoff.AUTH_RETRY`, every 30-60 s)
  for as long as the session lives: a key fixed while the session is open brings the stage back.
* **Close reasons.** :attr:`ProviderSocket.last_close` says how the last connection ended (the server's close
  code and reason, a lost connection, a refused handshake); every end is logged with it.
* **A stop that does not hang.** When the stage stops while messages are still arriving (a client dropped in
  the middle of a reply), the SDK's ``async with`` exit closes politely and waits — ignoring cancellation, for
  up to its ``close_timeout`` — for the server's close frame, which it only reads once the messages queued in
  front of it have been consumed. The socket keeps consuming (and discarding) them while the exit runs, so
  the close handshake completes in a round trip and the stage's tasks end when they are cancelled.

Failures are worded by :func:`describe_failure` from status codes and close codes, never from an SDK
exception's text (Deepgram's ``ApiError`` text embeds the request headers, ``Authorization`` included).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterable, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from voxline.providers.backoff import AUTH_RETRY, Backoff

if TYPE_CHECKING:
    from voxline.processor import Processor

__all__ = ["AUTH_STATUSES", "ProviderSocket", "close_reason", "describe_failure", "http_status"]

logger = logging.getLogger("voxline.providers.socket")

AUTH_STATUSES = frozenset({401, 403})
"""Handshake statuses that mean the key was refused: retried slowly, reported at once."""

C = TypeVar("C", bound=AsyncIterable[Any])


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of a failed handshake or request, if the exception carries one (SDK or ``websockets``)."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status
    response = getattr(exc, "response", None)  # websockets InvalidStatus, httpx HTTPStatusError
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def close_reason(exc: BaseException) -> str | None:
    """``"1011 NET-0001"`` for a ``websockets`` ``ConnectionClosed`` (``"1006"`` when no close frame came), else None.

    Close codes and reasons are the provider's words about the connection; they carry no secret.
    """
    if not (hasattr(exc, "rcvd") and hasattr(exc, "sent")):
        return None
    frame = exc.rcvd or exc.sent
    if frame is None:
        return "1006"
    return f"{frame.code} {frame.reason}" if frame.reason else str(frame.code)


def describe_failure(what: str, exc: BaseException, *, provider: str = "the provider", key_setting: str = "") -> str:
    """A user-facing sentence about a failed provider call, built without the exception's text (no key)."""
    status = http_status(exc)
    if status in AUTH_STATUSES:
        hint = f"; check {key_setting}" if key_setting else ""
        return f"{what}: {provider} rejected the API key (HTTP {status}){hint}"
    if status is not None:
        return f"{what}: {provider} answered HTTP {status}"
    reason = close_reason(exc)
    if reason == "1006":
        return f"{what}: connection lost (1006)"
    if reason is not None:
        return f"{what}: connection closed ({reason})"
    return f"{what}: {type(exc).__name__}"


class ProviderSocket(Generic[C]):
    """A reconnecting provider WebSocket owned by one stage (see the module docstring).

    ``connect()`` returns the SDK's async context manager for one connection (e.g.
    ``lambda: client.listen.v1.connect(**options)``); the connection it yields is iterated for messages, each
    handed to ``on_message``. ``what`` names the stage in messages ("Deepgram STT"), ``provider`` and
    ``key_setting`` word a rejected key ("Deepgram rejected the API key (HTTP 401); check DEEPGRAM_API_KEY").

    Hooks, all optional but ``on_message``: ``on_open(conn)`` (replay, before the socket counts as ready),
    ``on_drop()`` (after a connection ended or failed, unless the socket is closing), ``on_outage(message)``
    (the client has just been told the provider is unreachable or refused the key), ``keepalive(conn)``, and
    ``wanted()`` (whether a connection is needed now; without it the socket connects at once and always
    reconnects).
    """

    def __init__(
        self,
        owner: Processor,
        connect: Callable[[], AbstractAsyncContextManager[C]],
        *,
        on_message: Callable[[Any], Awaitable[None]],
        what: str,
        provider: str = "the provider",
        key_setting: str = "",
        on_open: Callable[[C], Awaitable[None]] | None = None,
        on_drop: Callable[[], Awaitable[None]] | None = None,
        on_outage: Callable[[str], Awaitable[None]] | None = None,
        keepalive: Callable[[C], Awaitable[None]] | None = None,
        keepalive_interval: float = 4.0,
        wanted: Callable[[], bool] | None = None,
        backoff: Backoff | None = None,
        auth_backoff: Backoff = AUTH_RETRY,
        report_after: int = 5,
    ) -> None:
        self.owner = owner
        self.what = what
        self.provider = provider
        self.key_setting = key_setting
        self.backoff = backoff or Backoff()
        self.auth_backoff = auth_backoff
        self.report_after = report_after
        self.keepalive_interval = keepalive_interval
        self._connect = connect
        self._on_message = on_message
        self._on_open = on_open
        self._on_drop = on_drop
        self._on_outage = on_outage
        self._keepalive = keepalive
        self._wanted = wanted
        self.conn: C | None = None
        """The connection, while it is ready (opened and replayed); None otherwise."""
        self.connections = 0
        """Connections opened so far (for tests and metrics)."""
        self.keepalives_sent = 0
        self.outage: str | None = None
        """The message the client was given about the current outage (a refused key, or repeated failures); None
        while the provider is reachable."""
        self.last_close: str | None = None
        """How the last connection ended, or why the last attempt failed (a close code, a status)."""
        self.closing = False
        self._outage_kind: str | None = None
        self._ready = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._last_activity = 0.0
        self._runner: asyncio.Task[None] | None = None

    # --- what the stage calls ----------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """A connection is open and replayed: :meth:`send` goes straight to the provider."""
        return self._ready.is_set()

    def start(self) -> None:
        """Start the connection task (idempotent). It connects once ``wanted()`` holds (at once without it)."""
        if self._runner is None and not self.closing:
            self._last_activity = time.monotonic()
            name = self.owner.name
            self._runner = self.owner.create_task(self._run(), name=f"{name}-socket", epoch_bound=False)
            if self._keepalive is not None:
                self.owner.create_task(self._keep_alive(), name=f"{name}-keepalive", epoch_bound=False)

    def wake(self) -> None:
        """Something may need a connection now (``wanted()`` may have become true): start, or stop waiting."""
        self.start()
        self._wakeup.set()

    def touch(self) -> None:
        """Something was just sent: the keepalive waits another ``keepalive_interval``."""
        self._last_activity = time.monotonic()

    async def send(self, action: Callable[[C], Awaitable[None]]) -> bool:
        """Run ``action(conn)`` (an SDK send) on the ready connection, in order with every other send.

        Returns False when no connection is ready or the send failed; a failed send marks the socket not ready
        and the connection task reconnects (a dead socket is its business, not the caller's).
        """
        async with self._send_lock:
            conn = self.conn
            if conn is None or not self.ready:
                return False
            try:
                await action(conn)
            except Exception as exc:
                what = type(exc).__name__
                logger.debug("%s: a send failed (%s); the connection task takes over", self.owner.name, what)
                self._ready.clear()
                return False
            self.touch()
            return True

    async def wait_ready(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a ready connection; False if there is none by then."""
        if self.ready:
            return True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._ready.wait()
        return self.ready

    async def close(self, goodbye: Callable[[C], Awaitable[None]] | None = None, *, timeout: float = 2.0) -> None:
        """End the socket gracefully: no reconnect from now on (unless ``wanted()`` still holds), ``goodbye(conn)``
        on the open connection (e.g. Deepgram's ``CloseStream``), then wait for the server to close — all within
        ``timeout``. A connection still opening while ``wanted()`` holds is given that time to get ready, so what
        the stage buffered still reaches the provider. Whatever is still running afterwards is cancelled when the
        stage stops."""
        self.closing = True
        self._wakeup.set()
        runner = self._runner
        if runner is None or runner.done():
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if self._has_work() and not self.ready:
            ready = loop.create_task(self._ready.wait())
            await asyncio.wait({ready, runner}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
            await asyncio.wait({ready})
        if goodbye is not None:
            await self.send(goodbye)
        await asyncio.wait({runner}, timeout=max(0.0, deadline - loop.time()))

    def stop(self) -> None:
        """No more connections (the stage is stopping; its tasks are being cancelled)."""
        self.closing = True
        self._ready.clear()
        self.conn = None

    # --- the connection task -----------------------------------------------------------------------------

    def _has_work(self) -> bool:
        """``wanted()`` holds: work the provider must still see, even while closing."""
        return self._wanted is not None and self._wanted()

    def _finished(self) -> bool:
        return self.closing and not self._has_work()

    async def _run(self) -> None:
        failures = 0
        refusals = 0
        while not self._finished():
            if self._wanted is not None and not self._wanted():
                self._wakeup.clear()
                if not self._wanted() and not self.closing:
                    await self._wakeup.wait()
                continue
            try:
                await self._connection()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._finished():
                    return
                self.last_close = describe_failure("", exc, provider=self.provider).removeprefix(": ")
                if http_status(exc) in AUTH_STATUSES:
                    refusals += 1
                    delay = self.auth_backoff.delay(refusals)
                    await self._refused(exc, delay)
                else:
                    refusals = 0
                    failures += 1
                    delay = self.backoff.delay(failures)
                    await self._failed(exc, failures)
            else:
                failures = refusals = 0
                self.last_close = "closed by the server"
                if self.closing:
                    return
                delay = self.backoff.delay(1)
                logger.info("%s: %s closed the connection; reconnecting", self.owner.name, self.provider)
            if self._finished():
                return
            if self._on_drop is not None:
                await self._on_drop()
            await self._sleep(delay)

    async def _connection(self) -> None:
        """One connection, from the handshake to its end; returns when the server ended it cleanly."""
        drain: asyncio.Task[None] | None = None
        try:
            async with self._connect() as conn:
                self.connections += 1
                if self.outage is not None:
                    logger.info("%s: connected to %s again", self.owner.name, self.provider)
                self._outage_kind = self.outage = None
                try:
                    if self._on_open is not None:
                        await self._on_open(conn)
                    self.conn = conn
                    self._ready.set()  # in the step the replay ended: nothing sent through send() slips between
                    self.touch()
                    async for message in conn:
                        await self._on_message(message)
                except BaseException:
                    # Leaving early (a stop, a failing hook): the SDK's exit waits for the server's close frame,
                    # which it reads only after the messages queued in front of it. Keep them moving meanwhile.
                    drain = asyncio.get_running_loop().create_task(_discard(conn), name=f"{self.owner.name}-drain")
                    raise
                finally:
                    self._ready.clear()
                    self.conn = None
        finally:
            if drain is not None:
                drain.cancel()
                await asyncio.wait({drain})

    async def _refused(self, exc: BaseException, delay: float) -> None:
        """The key was refused: tell the client at once (once per outage), then retry slowly."""
        message = describe_failure(self.what, exc, provider=self.provider, key_setting=self.key_setting)
        if self._outage_kind != "auth":
            self._outage_kind, self.outage = "auth", message
            slowest = self.auth_backoff.ceiling(1)
            fastest = slowest * (1 - self.auth_backoff.jitter)
            await self._report(f"{message}; retrying every {fastest:g}-{slowest:g} s")
        logger.warning("%s: %s; next attempt in %.0f s", self.owner.name, message, delay)

    async def _failed(self, exc: BaseException, failures: int) -> None:
        lost = describe_failure("connection lost", exc, provider=self.provider)
        logger.warning("%s: %s (attempt %d)", self.owner.name, lost, failures)
        if failures == self.report_after and self._outage_kind is None:
            what = f"{self.what} unavailable after {failures} attempts"
            message = describe_failure(what, exc, provider=self.provider)
            self._outage_kind, self.outage = "down", message
            await self._report(message + "; still retrying")

    async def _report(self, message: str) -> None:
        if self._on_outage is not None:
            await self._on_outage(message)
        await self.owner.push_error(message)

    async def _sleep(self, delay: float) -> None:
        """Wait ``delay`` seconds before the next attempt; less if the socket is closed and nothing is left to send."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                while not self._finished():
                    self._wakeup.clear()
                    await self._wakeup.wait()

    async def _keep_alive(self) -> None:
        assert self._keepalive is not None
        keepalive = self._keepalive
        while not self.closing:
            wait = self._last_activity + self.keepalive_interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            if await self.send(keepalive):
                self.keepalives_sent += 1
            self.touch()


async def _discard(conn: AsyncIterable[Any]) -> None:
    """Read and drop ``conn``'s messages until it closes (a closing SDK connection needs its queue read)."""
    with contextlib.suppress(Exception):
        async for _ in conn:
            pass
