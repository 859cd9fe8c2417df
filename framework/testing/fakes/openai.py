"""A fake OpenAI-compatible chat-completions server for offline tests (what Ollama, llama.cpp and vLLM speak).

>>> async with FakeOpenAI(api_key="k", replies="Hi there.") as fake:
...     client = AsyncOpenAI(api_key="k", base_url=fake.base_url, max_retries=0)

* ``POST /v1/chat/completions`` with ``Authorization: Bearer <key>``; a missing or wrong key gets 401 and
  OpenAI's error JSON ``{"error": {"message", "type", "param", "code"}}`` (without echoing the key).
* The request rules of :mod:`voxline.testing.fakes.rules.openai`, answered with OpenAI's wording, ``param`` and
  ``code``: ``model`` required; ``messages`` a non-empty list of messages with a valid role and a string or
  parts content; ``temperature`` 0-2; ``max_tokens`` ≥ 1; OpenAI's reasoning models (``o1``, ``o3``, ``o4-*``,
  ``gpt-5*``) refuse ``max_tokens`` and a non-default temperature. Stricter than OpenAI on one point: the last
  message must be ``user`` (voxline's rule that every request ends with a user turn). Any model name is served.
* Tools: ``tools`` must be function tools with a valid name and an object schema; an assistant message's
  ``tool_calls`` must be answered by the ``tool`` messages right after it (one per ``tool_call_id``), and a
  ``tool`` message must answer such a call — OpenAI's own 400s otherwise. A scripted
  :class:`~voxline.testing.fakes._llm.CallTools` reply streams its text, then per call a ``tool_calls`` delta
  with ``index``, ``id``, ``type`` and the name (arguments ``""``), then the JSON arguments in pieces, and ends
  with ``finish_reason: "tool_calls"``.
* ``stream: true`` → ``text/event-stream``: ``data: <chat.completion.chunk>\\n\\n`` events (the first delta
  carries the role), a last chunk with ``finish_reason: "stop"``, a usage chunk when
  ``stream_options.include_usage`` is set, then ``data: [DONE]``. A mid-stream error is a
  ``data: {"error": {...}}`` event. ``stream: false`` gets one ``chat.completion`` object.

Scripting (replies, pacing, faults) and records come from :class:`~voxline.testing.fakes._llm.FakeLLMServer`.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from voxline.testing.fakes._http import HttpRequest
from voxline.testing.fakes._llm import (
    Call,
    CallTools,
    ChatRequest,
    FakeLLMServer,
    Fault,
    Pacing,
    RecordedRequest,
    Replies,
    Reply,
    RequestError,
    SeenResult,
    split_tokens,
)
from voxline.testing.fakes.rules import Refusal
from voxline.testing.fakes.rules import openai as rules

__all__ = [
    "Call",
    "CallTools",
    "ChatRequest",
    "FakeOpenAI",
    "Fault",
    "Pacing",
    "RecordedRequest",
    "Reply",
    "SeenResult",
]

_ERROR_TYPE = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", None),
    408: ("timeout", None),
    429: ("requests", "rate_limit_exceeded"),
}
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "tool"}


def _event(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def _content_text(content: Any) -> str:
    """A message's text: a string, or a list of ``{"type": "text", "text": ...}`` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


class FakeOpenAI(FakeLLMServer):
    """The fake chat-completions server. ``api_key=None`` accepts any key, or none (like Ollama)."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        replies: Replies = "Hello! I am a fake chat model.",
        pacing: Pacing | None = None,
    ) -> None:
        super().__init__(api_key=api_key, replies=replies, pacing=pacing)
        self._ids = itertools.count(1)

    @property
    def base_url(self) -> str:
        """What to pass as ``AsyncOpenAI(base_url=...)`` (or ``OPENAI_BASE_URL``): ``http://127.0.0.1:<port>/v1``."""
        return f"{self.url}/v1"

    def _authenticate(self, request: HttpRequest) -> None:
        if self.api_key is not None:
            auth = request.headers.get("authorization", "")
            if not auth.startswith("Bearer ") or auth.removeprefix("Bearer ").strip() != self.api_key:
                raise RequestError(401, "Incorrect API key provided.")

    def lookup(self, request: HttpRequest) -> Any:
        """``GET /v1/models/{model}``: the model object."""
        if not request.path.startswith("/v1/models/") or request.path.count("/") != 3:
            raise RequestError(404, f"Invalid URL ({request.method} {request.path})")
        self._authenticate(request)
        return {"id": request.path.rsplit("/", 1)[1], "object": "model", "created": 0, "owned_by": "voxline-fake"}

    def route(self, request: HttpRequest) -> ChatRequest:
        if request.path.rstrip("/") != "/v1/chat/completions":
            raise RequestError(404, f"Invalid URL ({request.method} {request.path})")
        if request.method != "POST":
            raise RequestError(405, f"Method {request.method} is not allowed.")
        self._authenticate(request)
        try:
            body = json.loads(request.body)
        except ValueError as exc:
            raise RequestError(400, f"We could not parse the JSON body of your request. ({exc})") from exc
        rules.check_chat_request(body)
        system: list[str] = []
        turns: list[tuple[str, str]] = []
        for message in body["messages"]:
            role = _ROLES.get(str(message.get("role")), "user")
            text = _content_text(message.get("content"))
            if role == "system":
                system.append(text)
            else:
                turns.append((role, text))
        results: list[SeenResult] = []
        for message in reversed(body["messages"]):
            if message.get("role") != "tool":
                break
            results.insert(0, SeenResult(message.get("tool_call_id"), None, message.get("content")))
        tools = tuple(str(t["function"]["name"]) for t in body.get("tools") or [])
        return ChatRequest(
            model=str(body["model"]),
            system="\n".join(system),
            turns=tuple(turns),
            body=body,
            tool_results=tuple(results),
            tools=tools,
        )

    def refusal_body(self, refusal: Refusal) -> Any:
        body = self.error_body(refusal.status, refusal.message)
        if refusal.code:
            body["error"]["code"] = refusal.code
        if refusal.param:
            body["error"]["param"] = refusal.param
        return body

    def error_body(self, status: int, message: str) -> Any:
        kind, code = _ERROR_TYPE.get(status, ("server_error", None))
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}

    # --- streaming ------------------------------------------------------------------------------------

    def _chunk(self, record: RecordedRequest, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-fake{id(record):x}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": record.chat.model if record.chat else "",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    def token_event(self, record: RecordedRequest, token: str, last: bool) -> bytes:
        out = b""
        if record.tokens_sent == 0:
            out = _event(self._chunk(record, {"role": "assistant", "content": ""}))
        return out + _event(self._chunk(record, {"content": token}))

    def calls_event(self, record: RecordedRequest, calls: CallTools, last: bool) -> bytes:
        out = b""
        sent: list[Call] = []
        for index, call in enumerate(calls.calls):
            ident = call.id or f"call_fake{next(self._ids):04d}"
            head: dict[str, Any] = {
                "index": index,
                "id": ident,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            delta: dict[str, Any] = {"tool_calls": [head]}
            if record.tokens_sent == 0 and index == 0:
                delta = {"role": "assistant", "content": None, **delta}
            out += _event(self._chunk(record, delta))
            arguments = json.dumps(call.args)
            middle = len(arguments) // 2
            for piece in (arguments[:middle], arguments[middle:]):  # arguments arrive in pieces, as OpenAI streams
                if piece:
                    out += _event(
                        self._chunk(record, {"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                    )
            sent.append(Call(call.name, call.args, ident))
        record.calls_sent = tuple(sent)
        return out

    def final_events(self, record: RecordedRequest, tokens: int) -> bytes:
        out = b"" if tokens else _event(self._chunk(record, {"role": "assistant", "content": ""}))
        out += _event(self._chunk(record, {}, finish="tool_calls" if record.calls_sent else "stop"))
        options = record.body.get("stream_options") if isinstance(record.body, dict) else None
        if isinstance(options, dict) and options.get("include_usage"):
            usage = self._usage(record, tokens)
            out += _event({**self._chunk(record, {}), "choices": [], "usage": usage})
        return out + b"data: [DONE]\n\n"

    def error_event(self, record: RecordedRequest, status: int, message: str) -> bytes:
        return _event(self.error_body(status, message))

    @staticmethod
    def _usage(record: RecordedRequest, tokens: int) -> dict[str, int]:
        prompt = sum(len(text.split()) for _, text in record.chat.turns) if record.chat else 0
        return {"prompt_tokens": prompt, "completion_tokens": tokens, "total_tokens": prompt + tokens}

    async def _stream(self, record: RecordedRequest, out: Any, chat: ChatRequest, fault: Fault | None) -> None:
        if isinstance(record.body, dict) and record.body.get("stream"):
            await super()._stream(record, out, chat, fault)
            return
        # A non-streaming request: one chat.completion object after the whole reply's worth of pacing.
        reply = "" if fault is not None and fault.kind == "empty" else self.reply_for(chat)
        text = reply.text if isinstance(reply, CallTools) else reply
        tokens = split_tokens(text)
        await self._pause(out, self.pacing.first_token_delay + self.pacing.gap * max(0, len(tokens) - 1))
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if isinstance(reply, CallTools):
            calls = [Call(c.name, c.args, c.id or f"call_fake{next(self._ids):04d}") for c in reply.calls]
            record.calls_sent = tuple(calls)
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.args)}}
                for c in calls
            ]
        await out.send_json(
            200,
            {
                "id": f"chatcmpl-fake{id(record):x}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": chat.model,
                "choices": [
                    {"index": 0, "message": message, "finish_reason": "tool_calls" if record.calls_sent else "stop"}
                ],
                "usage": self._usage(record, len(tokens)),
            },
        )
        record.tokens_sent = len(tokens)
        record.completed = True
