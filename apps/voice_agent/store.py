"""Where conversations wait to be resumed: in this process (the default) or in Redis (``REDIS_URL``).

A session keeps its conversation in the store under a key only its client can name (the hash of its resume token;
:mod:`~voxline.apps.voice_agent.resume`), with a time to live: ``RESUME_SECONDS`` after the last save or refresh.
A client that reconnects in time *takes* it — read and delete in one step, so one token resumes one connection,
however many race for it.

* :class:`MemoryStore` — a dict in this process. Enough for one process; with ``--workers N`` a client may land on
  another worker, which cannot see it (``voxline serve`` warns).
* :class:`RedisStore` — Redis via redis-py's asyncio client (``pip install 'voxline[server]'``): every worker and
  every host behind a load balancer shares it. ``GETDEL`` needs Redis 6.2 or later.

Both have the same five operations; a store that fails raises :class:`StoreError` and the session goes on without
resuming (the failure is logged and counted, never shown to the client as a broken session).
"""

from __future__ import annotations

import time
from typing import Any, Protocol

__all__ = ["MemoryStore", "RedisStore", "SessionStore", "StoreError", "open_store"]

PREFIX = "voxline:session:"
TIMEOUT = 2.0
"""Seconds a Redis operation may take before it counts as failed."""


class StoreError(RuntimeError):
    """The store could not be reached or refused the operation (the message says which)."""


class SessionStore(Protocol):
    kind: str
    """``memory`` or ``redis`` (for /health)."""

    async def put(self, key: str, value: str, ttl: float, *, only_if_present: bool = False) -> bool:
        """Store ``value`` for ``ttl`` seconds. ``only_if_present``: only replace a value that is there (False if
        it is gone: taken by a resume, or expired)."""
        ...

    async def take(self, key: str) -> str | None:
        """The value, deleted in the same step; None when there is none (never stored, taken, or expired)."""
        ...

    async def touch(self, key: str, ttl: float) -> bool:
        """Give the value another ``ttl`` seconds; False when it is gone."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def ping(self) -> None:
        """Raise :class:`StoreError` unless the store answers."""
        ...

    async def aclose(self) -> None: ...


class MemoryStore:
    """The in-process store: a dict of ``key → (value, expiry)``, expired entries purged as it goes."""

    kind = "memory"

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._items: dict[str, tuple[str, float]] = {}
        self._clock = clock
        self._next_purge = 0.0

    def __len__(self) -> int:
        self._purge(force=True)
        return len(self._items)

    async def put(self, key: str, value: str, ttl: float, *, only_if_present: bool = False) -> bool:
        self._purge()
        if only_if_present and self._get(key) is None:
            return False
        self._items[key] = (value, self._clock() + ttl)
        return True

    async def take(self, key: str) -> str | None:
        value = self._get(key)
        self._items.pop(key, None)
        return value

    async def touch(self, key: str, ttl: float) -> bool:
        value = self._get(key)
        if value is None:
            return False
        self._items[key] = (value, self._clock() + ttl)
        return True

    async def exists(self, key: str) -> bool:
        return self._get(key) is not None

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        self._items.clear()

    def _get(self, key: str) -> str | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[1] <= self._clock():
            del self._items[key]
            return None
        return item[0]

    def _purge(self, *, force: bool = False) -> None:
        now = self._clock()
        if not force and now < self._next_purge:
            return
        self._next_purge = now + 10.0
        for key in [k for k, (_, expiry) in self._items.items() if expiry <= now]:
            del self._items[key]


class RedisStore:
    """The shared store: Redis, one connection pool per process, every key under ``voxline:session:``."""

    kind = "redis"

    def __init__(self, url: str) -> None:
        try:
            from redis.asyncio import Redis
        except ImportError as exc:
            raise StoreError("REDIS_URL needs the redis package: pip install 'voxline[server]'") from exc
        self._redis: Any = Redis.from_url(
            url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT, decode_responses=True
        )

    async def put(self, key: str, value: str, ttl: float, *, only_if_present: bool = False) -> bool:
        ms = max(1, int(ttl * 1000))
        return bool(await self._call("put", self._redis.set(PREFIX + key, value, px=ms, xx=only_if_present)))

    async def take(self, key: str) -> str | None:
        value = await self._call("take", self._redis.getdel(PREFIX + key))
        return None if value is None else str(value)

    async def touch(self, key: str, ttl: float) -> bool:
        return bool(await self._call("touch", self._redis.pexpire(PREFIX + key, max(1, int(ttl * 1000)))))

    async def exists(self, key: str) -> bool:
        return bool(await self._call("exists", self._redis.exists(PREFIX + key)))

    async def ping(self) -> None:
        await self._call("ping", self._redis.ping())

    async def aclose(self) -> None:
        await self._redis.aclose()

    async def _call(self, op: str, awaitable: Any) -> Any:
        try:
            return await awaitable
        except Exception as exc:
            # redis-py's errors name the host and port, never the password: safe to pass on.
            raise StoreError(f"Redis {op} failed: {type(exc).__name__}: {exc}") from exc


def open_store(redis_url: str | None) -> SessionStore:
    """Redis when a URL is given, else the in-process store."""
    return RedisStore(redis_url) if redis_url else MemoryStore()
