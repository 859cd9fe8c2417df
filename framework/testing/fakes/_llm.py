"""What the fake LLM servers share: scripted replies, token pacing, fault injection, and request records.

A provider fake (:mod:`~voxline.testing.fakes.gemini`, :mod:`~voxline.testing.fakes.openai`) only knows its
wire format: how a request is parsed and authenticated, and how a token, the final event and an error are
encoded. Everything a test scripts lives here, so both fakes are scripted the same way:

* replies — one string, a list (the n-th streamed response gets the n-th entry, the last one repeats), or a
  function of the parsed :class:`ChatRequest`; a reply may be a :class:`CallTools` (the model calls functions,
  several at once for parallel calls, after saying its ``text``), and :attr:`ChatRequest.tool_results` shows a
  reply function what the client sent back;
* pacing — :class:`Pacing` (delay before the first token, then tokens per second);
* faults — queued with :meth:`FakeLLMServer.fail`, :meth:`~FakeLLMServer.error_mid_stream`,
  :meth:`~FakeLLMServer.drop_mid_stream`, :meth:`~FakeLLMServer.stall` and :meth:`~FakeLLMServer.empty`; each
  request takes the next queued fault, so ``fail(429, times=2)`` means "the next two requests get 429";
* records — :attr:`FakeLLMServer.requests`, with the parsed request and when the client went away.

The scripting types live in :mod:`~voxline.testing.fakes._script` (re-exported here).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any, Self

import attrs
from voxline.testing.fakes._http import ClientGone, FakeHttpServer, HttpRequest, HttpResponder
from voxline.testing.fakes._script import (
    Call,
    CallTools,
    ChatRequest,
    Fault,
    Pacing,
    Replies,
    Reply,
    SeenResult,
    split_tokens,
)
from voxline.testing.fakes.rules import Refusal

__all__ = [
    "Call",
    "CallTools",
    "ChatRequest",
    "FakeLLMServer",
    "Fault",
    "Pacing",
    "RecordedRequest",
    "Replies",
    "Reply",
    "SeenResult",
    "split_tokens",
]

DEFAULT_REPLY = "Hello! I am a fake language model, and I am glad to help."


@attrs.define(eq=False)
class RecordedRequest:
    """One request the fake received, and what became of it. Times are ``time.monotonic()`` seconds."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    received_at: float
    status: int = 0
    chat: ChatRequest | None = None
    fault: Fault | None = None
    refusal: Refusal | None = None
    """The rule the fake refused this request by, if it did (its status and the provider's message)."""
    tokens_sent: int = 0
    calls_sent: tuple[Call, ...] = ()
    """The function calls the fake sent in its reply (with the ids it sent, if any)."""
    first_token_at: float | None = None
    completed: bool = False
    """The response was sent to its end (including an error status)."""
    _responder: HttpResponder | None = attrs.field(default=None, repr=False, alias="responder")

    @property
    def disconnected_at(self) -> float | None:
        """When the client closed this request's connection, or None while it is open."""
        return self._responder.disconnected_at if self._responder is not None else None

    async def wait_disconnected(self, timeout: float = 5.0) -> float:
        """Wait (in the server's loop) until the client has closed the connection; returns the time."""
        assert self._responder is not None
        async with asyncio.timeout(timeout):
            await self._responder.wait_disconnected()
        assert self.disconnected_at is not None
        return self.disconnected_at


class RequestError(Refusal):
    """A request the fake rejects with an HTTP error (its handler turns it into the provider's error JSON). A
    :class:`~voxline.testing.fakes.rules.Refusal` from a rules module is handled the same way."""


class FakeLLMServer:
    """Base of the fake LLM servers; subclasses implement the wire format (see the module docstring)."""

    def __init__(
        self, *, api_key: str | None = "test-key", replies: Replies = DEFAULT_REPLY, pacing: Pacing | None = None
    ) -> None:
        self.api_key = api_key
        self.replies = replies
        self.pacing = pacing or Pacing()
        self.requests: list[RecordedRequest] = []
        self.lookups: list[str] = []
        """Paths of the model lookups (``GET``) served, oldest first."""
        self._faults: collections.deque[Fault] = collections.deque()
        self._lock = threading.Lock()
        self._served = 0
        self._server = FakeHttpServer(self._handle)

    # --- scripting ------------------------------------------------------------------------------------

    def fail(self, status: int = 503, *, times: int = 1, message: str = "") -> None:
        """Answer the next ``times`` requests with ``status`` and the provider's error JSON."""
        self._queue(Fault("status", status=status, message=message), times)

    def error_mid_stream(self, *, after_tokens: int = 1, status: int = 500, times: int = 1) -> None:
        """Start streaming, then send an error event after ``after_tokens`` tokens and end the response."""
        self._queue(Fault("error_mid_stream", status=status, after_tokens=after_tokens), times)

    def drop_mid_stream(self, *, after_tokens: int = 1, times: int = 1) -> None:
        """Start streaming, then reset the TCP connection after ``after_tokens`` tokens."""
        self._queue(Fault("drop", after_tokens=after_tokens), times)

    def stall(self, *, after_tokens: int = 1, times: int = 1) -> None:
        """Send ``after_tokens`` tokens (0: none), then nothing until the client gives up."""
        self._queue(Fault("stall", after_tokens=after_tokens), times)

    def empty(self, *, times: int = 1) -> None:
        """Answer with a well-formed stream that carries no text."""
        self._queue(Fault("empty"), times)

    def recover(self) -> None:
        """Drop the faults still queued: the provider is back, from the next request on."""
        with self._lock:
            self._faults.clear()

    def _queue(self, fault: Fault, times: int) -> None:
        with self._lock:
            self._faults.extend([fault] * times)

    def _next_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def reply_for(self, chat: ChatRequest) -> Reply:
        replies = self.replies
        if isinstance(replies, (str, CallTools)):
            return replies
        if callable(replies):
            return replies(chat)
        with self._lock:
            index = min(self._served, len(replies) - 1)
            self._served += 1
        return replies[index]

    # --- running ----------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return self._server.url

    async def __aenter__(self) -> Self:
        await self._server.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._server.stop()

    @contextlib.contextmanager
    def running_in_thread(self) -> Iterator[Self]:
        """Serve from a background thread (for code under test that runs its own loop elsewhere)."""
        with self._server.running_in_thread():
            yield self

    def start_in_thread(self) -> Self:
        """Like :meth:`running_in_thread`, without a ``with`` block; end it with :meth:`stop_thread`."""
        self._server.start_in_thread()
        return self

    def stop_thread(self) -> None:
        self._server.stop_thread()

    # --- what a provider fake implements --------------------------------------------------------------

    def route(self, request: HttpRequest) -> ChatRequest:
        """Authenticate and parse ``request``; raise :class:`RequestError` to reject it."""
        raise NotImplementedError

    def error_body(self, status: int, message: str) -> Any:
        """The provider's error JSON for an HTTP error."""
        raise NotImplementedError

    def refusal_body(self, refusal: Refusal) -> Any:
        """The provider's error JSON for a refused request (by default :meth:`error_body`)."""
        return self.error_body(refusal.status, refusal.message)

    def lookup(self, request: HttpRequest) -> Any:
        """Answer a ``GET`` (a model lookup); raise :class:`RequestError` to reject it."""
        raise RequestError(404, f"Path {request.path} was not found.")

    def token_event(self, record: RecordedRequest, token: str, last: bool) -> bytes:
        raise NotImplementedError

    def calls_event(self, record: RecordedRequest, calls: CallTools, last: bool) -> bytes:
        """The event(s) carrying a reply's function calls (after its text); set :attr:`RecordedRequest.calls_sent`."""
        raise NotImplementedError

    def final_events(self, record: RecordedRequest, tokens: int) -> bytes:
        """Sent after the last token (or, for an empty stream, instead of any): finish reason, usage, [DONE]."""
        raise NotImplementedError

    def error_event(self, record: RecordedRequest, status: int, message: str) -> bytes:
        raise NotImplementedError

    # --- serving ---------------------------------------------------------------------------------------

    async def _handle(self, request: HttpRequest, responder: HttpResponder) -> None:
        if request.method == "GET":
            # Model lookups (what the processors send on start to open a connection early) are answered but
            # kept out of ``requests``, so tests can count chat requests.
            try:
                info = self.lookup(request)
            except Refusal as exc:
                await responder.send_json(exc.status, self.refusal_body(exc))
                return
            self.lookups.append(request.path)
            await responder.send_json(200, info)
            return
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            headers=request.headers,
            body=_parse_json(request.body),
            received_at=request.received_at,
            responder=responder,
        )
        self.requests.append(record)
        try:
            record.chat = self.route(request)
        except Refusal as exc:
            record.status = exc.status
            record.refusal = exc
            await responder.send_json(exc.status, self.refusal_body(exc))
            record.completed = True
            return
        fault = record.fault = self._next_fault()
        if fault is not None and fault.kind == "status":
            record.status = fault.status
            message = fault.message or _default_message(fault.status)
            await responder.send_json(fault.status, self.error_body(fault.status, message))
            record.completed = True
            return
        record.status = 200
        await self._stream(record, responder, record.chat, fault)

    async def _stream(
        self, record: RecordedRequest, out: HttpResponder, chat: ChatRequest, fault: Fault | None
    ) -> None:
        tokens: list[str | CallTools] = []
        if fault is None or fault.kind != "empty":
            reply = self.reply_for(chat)
            tokens.extend(split_tokens(reply.text if isinstance(reply, CallTools) else reply))
            if isinstance(reply, CallTools):
                tokens.append(reply)
        await out.start()
        try:
            await self._pause(out, self.pacing.first_token_delay)
            for i, token in enumerate(tokens):
                if i:
                    await self._pause(out, self.pacing.gap)
                if fault is not None and i == fault.after_tokens:
                    if fault.kind == "error_mid_stream":
                        await out.write(self.error_event(record, fault.status, _default_message(fault.status)))
                        await out.end()
                        record.completed = True
                        return
                    if fault.kind == "drop":
                        out.abort()
                        return
                    if fault.kind == "stall":
                        await out.wait_disconnected()
                        return
                last = i == len(tokens) - 1
                if isinstance(token, CallTools):
                    await out.write(self.calls_event(record, token, last=last))
                else:
                    await out.write(self.token_event(record, token, last=last))
                record.tokens_sent += 1
                if record.first_token_at is None:
                    record.first_token_at = time.monotonic()
            if fault is not None and fault.kind == "stall":
                await out.wait_disconnected()  # a stall after every token (or before any)
                return
            await out.write(self.final_events(record, len(tokens)))
            await out.end()
            record.completed = True
        except ClientGone:
            return

    @staticmethod
    async def _pause(out: HttpResponder, seconds: float) -> None:
        """Sleep, but notice at once when the client goes away (a disconnect is what barge-in tests time)."""
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await out.wait_disconnected()
        if out.disconnected_at is not None:
            raise ClientGone("the client closed the connection")


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def _default_message(status: int) -> str:
    return {
        408: "The request timed out.",
        429: "Resource has been exhausted (e.g. check quota).",
        500: "An internal error has occurred. Please retry or report it.",
        502: "Bad gateway.",
        503: "The model is overloaded. Please try again later.",
        504: "The service is currently unavailable.",
    }.get(status, f"Error {status}.")
