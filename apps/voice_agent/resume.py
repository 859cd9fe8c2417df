"""Session resume: a client that lost its socket comes back within ``RESUME_SECONDS`` and goes on talking.

Every session that can run gets a **resume token** in its ``session`` message (``resume_token``; 256 random bits,
single use). Its conversation — the LLM context's turns (text, interruptions, tool steps; not the providers' own
opaque parts) and the turn count — is saved in the session store (:mod:`~voxline.apps.voice_agent.store`) under the
token's SHA-256, so the store never holds a usable token:

* when the session starts, after every reply and every interruption (in the background: never on the hot path),
  and once more, awaited, when the session ends — before its socket is closed, so a client told to reconnect
  (a drain's 1012) finds its latest words whichever worker it lands on;
* kept alive every ``RESUME_SECONDS / 3`` while the session lives, so a process that dies without a goodbye
  leaves the conversation as it was at its last turn, for ``RESUME_SECONDS``.

A client resumes by connecting to ``/ws?resume=<token>``. The new session *takes* the conversation (read and
delete in one step: a token resumes one connection), loads it into its LLM's context before the pipeline runs,
continues the turn count, and says ``"resumed": true`` with a new token. A token that is unknown, used or expired
starts a fresh conversation with ``"resumed": false`` — never an error: the client still gets a working session.
A save after the conversation was taken by a newer connection does nothing (the old session cannot overwrite it).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

import attrs
from voxline.apps.voice_agent.metrics import Metrics
from voxline.apps.voice_agent.store import SessionStore, StoreError
from voxline.context import Context, ToolCall, ToolResult

__all__ = ["Conversation", "Record", "Resumes", "dump_turns", "key_of", "restore_turns"]

logger = logging.getLogger("voxline.apps.voice_agent.resume")

VERSION = 1
MAX_RECORD_CHARS = 1 << 20
"""A conversation larger than this (1 MiB of JSON) is not saved; the session goes on, not resumable."""
MAX_TOKEN_CHARS = 200


def key_of(token: str) -> str:
    """The store key of a resume token: its SHA-256 (a dump of the store resumes nothing)."""
    return hashlib.sha256(token.encode()).hexdigest()


def dump_turns(context: Context) -> list[dict[str, Any]]:
    """The context's turns as JSON-able dicts (the providers' opaque ``raw`` parts are left out)."""
    out: list[dict[str, Any]] = []
    for turn in context.turns:
        item: dict[str, Any] = {"role": turn.role, "text": turn.text}
        if turn.interrupted:
            item["interrupted"] = True
        if turn.tool_calls:
            item["calls"] = [
                {"id": c.id, "name": c.name, "arguments": dict(c.arguments), "raw_arguments": c.raw_arguments}
                for c in turn.tool_calls
            ]
        if turn.tool_results:
            item["results"] = [
                {"call_id": r.call_id, "name": r.name, "output": r.output, "error": r.error} for r in turn.tool_results
            ]
        out.append(item)
    return out


def restore_turns(context: Context, turns: list[dict[str, Any]]) -> int:
    """Append ``turns`` (from :func:`dump_turns`) to ``context``; all or nothing. Returns how many were added.

    Raises ``ValueError``/``TypeError``/``KeyError`` on a record that is not a valid conversation.
    """
    scratch = Context(max_turns=context.max_turns)
    for target in (scratch, context):  # validated on a scratch context first: a bad record changes nothing
        for item in turns:
            _append(target, item)
    return len(turns)


def _append(context: Context, item: dict[str, Any]) -> None:
    role, text = item["role"], item.get("text", "")
    if not isinstance(text, str):
        raise TypeError("a turn's text must be a string")
    if role == "user":
        context.add_user(text)
    elif role == "assistant" and item.get("calls"):
        calls = [
            ToolCall(c["id"], c["name"], dict(c.get("arguments") or {}), c.get("raw_arguments")) for c in item["calls"]
        ]
        context.add_tool_calls(calls, text=text)
    elif role == "assistant":
        context.add_assistant(text, interrupted=bool(item.get("interrupted")))
    elif role == "tool":
        results = [ToolResult(r["call_id"], r["name"], r.get("output"), r.get("error")) for r in item["results"]]
        context.add_tool_results(results)
    else:
        raise ValueError(f"not a turn role: {role!r}")


@attrs.frozen
class Record:
    """What the store holds for one conversation."""

    conversation: str
    """The id of the conversation's first session (it stays the same across resumes)."""
    turns: list[dict[str, Any]]
    turn: int = 0
    """Replies so far (the ``metrics`` message's ``turn`` goes on from here)."""

    def to_json(self) -> str:
        data = {"v": VERSION, "conversation": self.conversation, "turns": self.turns, "turn": self.turn}
        return json.dumps(data, ensure_ascii=False, default=str)

    @classmethod
    def from_json(cls, text: str) -> Record:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("v") != VERSION or not isinstance(data.get("turns"), list):
            raise ValueError("not a conversation record of this version")
        return cls(str(data["conversation"]), data["turns"], int(data.get("turn", 0)))


class Resumes:
    """The process's side of resuming: the store, and the time a conversation waits for its client."""

    def __init__(self, store: SessionStore, seconds: float, sink: Metrics) -> None:
        self.store = store
        self.seconds = seconds
        self.sink = sink
        self.last_error: str | None = None
        """The store's last failure, until an operation succeeds again (for /health)."""

    @property
    def enabled(self) -> bool:
        return self.seconds > 0

    def health(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "store": self.store.kind, "store_ok": self.last_error is None}

    async def known(self, token: str | None) -> bool:
        """A conversation waits under ``token`` (a resume token admits its client where auth is required)."""
        if not self.enabled or not token or len(token) > MAX_TOKEN_CHARS:
            return False
        try:
            return await self.store.exists(key_of(token))
        except StoreError as exc:
            self._failed("exists", exc)
            return False

    async def take(self, token: str | None) -> Record | None:
        """The conversation waiting under ``token``, taken from the store; None (and why, counted) otherwise."""
        if not self.enabled or not token:
            return None
        outcome = "expired"
        try:
            raw = await self.store.take(key_of(token)) if len(token) <= MAX_TOKEN_CHARS else None
            if raw is not None:
                record = Record.from_json(raw)
                outcome = "resumed"
                return record
            return None
        except StoreError as exc:
            outcome = "store_error"
            self._failed("take", exc)
            return None
        except (ValueError, TypeError, KeyError) as exc:
            outcome = "invalid"
            logger.warning("a stored conversation could not be read: %s", exc)
            return None
        finally:
            self.sink.resumes.labels(outcome).inc()

    def track(self, conversation: str, context: Context, turn: Callable[[], int]) -> Conversation:
        return Conversation(self, conversation, context, turn)

    def _failed(self, op: str, exc: Exception) -> None:
        self.last_error = str(exc)
        self.sink.store_errors.labels(op).inc()
        logger.warning("session store: %s", exc)


class Conversation:
    """One session's conversation in the store (see the module docstring): :meth:`start`, :meth:`save_soon` after
    each turn, :meth:`aclose` at the end."""

    def __init__(self, resumes: Resumes, conversation: str, context: Context, turn: Callable[[], int]) -> None:
        self.resumes = resumes
        self.conversation = conversation
        self.context = context
        self.turn = turn
        self.token = secrets.token_urlsafe(32)
        self.key = key_of(self.token)
        self.saves = 0
        self.taken = False
        """A newer connection took the conversation (or it expired): this session saves no more."""
        self._stored = False
        self._dirty = False
        self._saving: asyncio.Task[None] | None = None
        self._keeper: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Save now (in the background) and keep the record alive while the session lives."""
        self.save_soon()
        self._keeper = asyncio.get_running_loop().create_task(self._keep_alive(), name="resume-keepalive")

    def save_soon(self) -> None:
        """Save in the background; saves asked for while one runs are folded into one more."""
        if self.taken:
            return
        if self._saving is not None and not self._saving.done():
            self._dirty = True
            return
        self._saving = asyncio.get_running_loop().create_task(self._save_loop(), name="resume-save")

    async def aclose(self) -> None:
        """The session ended: stop refreshing, then the last save (awaited: before the socket is closed)."""
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.cancel()  # it only sleeps and refreshes: nothing to wait for
        if self._saving is not None and not self._saving.done():
            await asyncio.wait({self._saving})  # not gather: a cancel of this task must not cancel the save
        with contextlib.suppress(asyncio.TimeoutError):
            async with asyncio.timeout(3.0):
                await self._save()

    async def _save_loop(self) -> None:
        await self._save()
        while self._dirty and not self.taken:
            self._dirty = False
            await self._save()

    async def _save(self) -> None:
        if self.taken:
            return
        resumes = self.resumes
        record = Record(self.conversation, dump_turns(self.context), self.turn())
        text = record.to_json()
        if len(text) > MAX_RECORD_CHARS:
            logger.warning("the conversation is too large to keep for resuming (%d characters)", len(text))
            return
        try:
            ok = await resumes.store.put(self.key, text, resumes.seconds, only_if_present=self._stored)
        except StoreError as exc:
            resumes._failed("put", exc)
            return
        resumes.last_error = None
        if ok:
            self._stored = True
            self.saves += 1
        else:
            self.taken = True
            logger.info("the conversation was resumed elsewhere (or expired): not saved from here any more")

    async def _keep_alive(self) -> None:
        resumes = self.resumes
        while not self.taken:
            await asyncio.sleep(resumes.seconds / 3)
            if not self._stored:
                self.save_soon()
                continue
            try:
                if not await resumes.store.touch(self.key, resumes.seconds):
                    self.taken = True
            except StoreError as exc:
                resumes._failed("touch", exc)
