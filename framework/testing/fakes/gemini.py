"""A fake Gemini API for offline tests: ``streamGenerateContent`` over SSE, as google-genai 3.x speaks it.

>>> async with FakeGemini(api_key="k", replies="Hi there.") as fake:
...     client = genai.Client(api_key="k", http_options=HttpOptions(base_url=fake.url))
...     async for chunk in await client.aio.models.generate_content_stream(model="m", contents="Hello"): ...

What it checks, so that a wrong request fails the test instead of passing silently:

* ``POST /{v1|v1beta}/models/{model}:streamGenerateContent?alt=sse`` (both API versions: google-genai 3.x
  defaults to ``v1``, 1.x/2.x used ``v1beta``).
* ``x-goog-api-key`` (or ``?key=``): missing → 403 ``PERMISSION_DENIED``; wrong → 401 ``UNAUTHENTICATED``
  (the live API answers a malformed key with 400 ``INVALID_ARGUMENT``; both are non-retryable).
* Everything in :mod:`voxline.testing.fakes.rules.gemini`, with the API's own 400/404 messages: the model must
  be one the API serves (``models=None`` serves any name), its thinking setting one the model accepts (3.7+
  Flash refuses ``MINIMAL``, 2.5 Pro a zero budget, 2.5 models any level, ...), never both thinking fields;
  ``contents`` non-empty with roles ``user``/``model`` and the last one ``user``; no empty parts, no part
  without data, no empty text; a system instruction with text; a field sent in both camelCase and snake_case.
  Keys may be snake_case (what the SDK sends inside ``thinkingConfig``) or camelCase.

Responses: ``text/event-stream``, chunked, one ``data: <GenerateContentResponse JSON>\\r\\n\\r\\n`` event per
token; the last event carries ``finishReason`` and ``usageMetadata``. Errors are Google's
``{"error": {"code", "message", "status"}}``, as a status response or as a mid-stream event. Scripting
(replies, pacing, faults) and request records come from :class:`~voxline.testing.fakes._llm.FakeLLMServer`.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
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
)
from voxline.testing.fakes.rules import gemini as rules
from voxline.testing.fakes.rules import gemini_tools

__all__ = [
    "Call",
    "CallTools",
    "ChatRequest",
    "FakeGemini",
    "Fault",
    "Pacing",
    "RecordedRequest",
    "Reply",
    "SeenResult",
]

_MODEL_PATH = re.compile(r"^/(?P<version>v1|v1beta)/models/(?P<model>[^/:]+)$")
_PATH = re.compile(r"^/(?P<version>v1|v1beta)/models/(?P<model>[^/:]+):streamGenerateContent$")
_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    408: "DEADLINE_EXCEEDED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def _event(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\r\n\r\n"


def _get(mapping: Any, *names: str) -> Any:
    """The first of ``names`` present in ``mapping`` (camelCase or snake_case spelling)."""
    if not isinstance(mapping, dict):
        return None
    for name in names:
        if name in mapping:
            return mapping[name]
    return None


def _text_of(content: Any) -> str:
    parts = _get(content, "parts") or []
    return "".join(p.get("text", "") for p in parts if isinstance(p, dict))


class FakeGemini(FakeLLMServer):
    """The fake Gemini server. ``api_key=None`` accepts any key; ``models`` are the model names it serves with
    their thinking rules (:data:`voxline.testing.fakes.rules.gemini.MODELS` by default; ``None`` serves any
    name and checks only what holds for every model). See the module docstring."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        replies: Replies = "Hello! I am a fake Gemini.",
        pacing: Pacing | None = None,
        thought: str = "",
        finish_reason: str = "STOP",
        models: dict[str, rules.ModelThinking] | None = rules.MODELS,
        thought_signatures: bool = True,
        call_ids: bool = False,
    ) -> None:
        super().__init__(api_key=api_key, replies=replies, pacing=pacing)
        self.thought_signatures = thought_signatures
        """Sign the first ``functionCall`` part of each reply with calls (Gemini 3 does; 2.5 may)."""
        self.call_ids = call_ids
        """Give every ``functionCall`` an ``id`` (the response must then carry it back)."""
        self.issued_signatures: list[bytes] = []
        """Every thought signature sent, oldest first (a follow-up must return them as sent)."""
        self._ids = itertools.count(1)
        self.models = models
        self.finish_reason = finish_reason
        """The ``finishReason`` of the last event (``"SAFETY"`` with :meth:`empty` plays a refusal)."""
        self.thought = thought
        """If set, the first event also carries this as a thought-summary part (``"thought": true``), which a
        client must not read out as part of the reply."""

    @property
    def base_url(self) -> str:
        """What to pass as ``HttpOptions(base_url=...)`` (or ``GEMINI_BASE_URL``): the same as :attr:`url`."""
        return self.url

    def _authenticate(self, request: HttpRequest) -> None:
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if not key:
            raise RequestError(403, "Method doesn't allow unregistered callers. Please use an API key.")
        if self.api_key is not None and key != self.api_key:
            raise RequestError(401, "API key not valid. Please pass a valid API key.")

    def lookup(self, request: HttpRequest) -> Any:
        """``GET /{v1|v1beta}/models/{model}``: the model's metadata."""
        match = _MODEL_PATH.match(request.path)
        if match is None:
            raise RequestError(404, f"Path {request.path} was not found.")
        self._authenticate(request)
        model = match["model"]
        rules.check_model(model, match["version"], self.models)
        return {
            "name": f"models/{model}",
            "displayName": f"Fake {model}",
            "inputTokenLimit": 1048576,
            "outputTokenLimit": 65536,
            "supportedGenerationMethods": ["generateContent", "countTokens"],
            "thinking": True,
        }

    def route(self, request: HttpRequest) -> ChatRequest:
        match = _PATH.match(request.path)
        if match is None:
            raise RequestError(404, f"Path {request.path} was not found.")
        if request.method != "POST":
            raise RequestError(405, f"Method {request.method} is not allowed.")
        self._authenticate(request)
        if request.query.get("alt") != "sse":
            raise RequestError(400, "This fake only streams with alt=sse.")
        try:
            body = json.loads(request.body)
        except ValueError as exc:
            raise RequestError(400, f"Invalid JSON payload received. {exc}") from exc
        model_rules = rules.check_model(match["model"], match["version"], self.models)
        wire = rules.normalise(body)
        rules.check_generate_content(wire, model_rules)
        gemini_tools.check_tools(wire.get("tools"))
        known = model_rules is None or model_rules.rules_known
        gemini_tools.check_function_turns(
            wire["contents"],
            signatures_required=gemini_tools.signatures_required(match["model"], known),
            issued=self.issued_signatures,
        )
        return ChatRequest(
            model=match["model"],
            system=self._system(wire),
            turns=self._turns(wire),
            body=body,
            tool_results=self._results(wire["contents"][-1]),
            tools=tuple(
                str(gemini_tools.part_field(d, "name"))
                for entry in wire.get("tools") or []
                for d in gemini_tools.part_field(entry, "functionDeclarations") or []
            ),
        )

    @staticmethod
    def _system(body: dict[str, Any]) -> str:
        system = body.get("systemInstruction")
        return _text_of(system) if system is not None else ""

    @staticmethod
    def _turns(body: dict[str, Any]) -> tuple[tuple[str, str], ...]:
        contents = body["contents"]  # checked by the rules: a non-empty list of user/model contents
        turns: list[tuple[str, str]] = []
        for content in contents:
            results = FakeGemini._results(content)
            if results:
                turns.append(("tool", json.dumps([r.response for r in results])))
            else:
                turns.append(("assistant" if content.get("role") == "model" else "user", _text_of(content)))
        return tuple(turns)

    @staticmethod
    def _results(content: Any) -> tuple[SeenResult, ...]:
        out: list[SeenResult] = []
        for part in content.get("parts") or [] if isinstance(content, dict) else []:
            response = gemini_tools.part_field(part, "functionResponse")
            if isinstance(response, dict):
                name, ident = gemini_tools.part_field(response, "name"), gemini_tools.part_field(response, "id")
                out.append(SeenResult(ident, name, gemini_tools.part_field(response, "response")))
        return tuple(out)

    @staticmethod
    def thinking_config(record: RecordedRequest) -> dict[str, Any]:
        """The request's ``thinkingConfig`` with snake_case keys (what a test asserts on)."""
        config = _get(_get(record.body, "generationConfig", "generation_config"), "thinkingConfig", "thinking_config")
        if not isinstance(config, dict):
            return {}
        return {re.sub(r"(?<!^)([A-Z])", r"_\1", k).lower(): v for k, v in config.items()}

    def error_body(self, status: int, message: str) -> Any:
        return {"error": {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}}

    def _response(self, record: RecordedRequest, parts: list[dict[str, Any]], final: bool, tokens: int) -> bytes:
        chat = record.chat
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        response: dict[str, Any] = {"candidates": [candidate]}
        if final:
            candidate["finishReason"] = self.finish_reason
            prompt = sum(len(text.split()) for _, text in chat.turns) if chat else 0
            response["usageMetadata"] = {
                "promptTokenCount": prompt,
                "candidatesTokenCount": tokens,
                "totalTokenCount": prompt + tokens,
            }
        response["modelVersion"] = chat.model if chat else ""
        response["responseId"] = f"fake-{id(record):x}"
        return _event(response)

    def token_event(self, record: RecordedRequest, token: str, last: bool) -> bytes:
        parts: list[dict[str, Any]] = [{"text": token}]
        if self.thought and record.tokens_sent == 0:
            parts.insert(0, {"text": self.thought, "thought": True})
        return self._response(record, parts, final=last, tokens=record.tokens_sent + 1)

    def calls_event(self, record: RecordedRequest, calls: CallTools, last: bool) -> bytes:
        parts: list[dict[str, Any]] = []
        sent: list[Call] = []
        for i, call in enumerate(calls.calls):
            ident = call.id or (f"fc-{next(self._ids)}" if self.call_ids else None)
            function: dict[str, Any] = {"name": call.name, "args": call.args}
            if ident is not None:
                function = {"id": ident, **function}
            part: dict[str, Any] = {"functionCall": function}
            if i == 0 and self.thought_signatures:
                signature = os.urandom(48)  # standard base64 with '+' and '/': what a client must not mangle
                self.issued_signatures.append(signature)
                part["thoughtSignature"] = base64.b64encode(signature).decode()
            parts.append(part)
            sent.append(Call(call.name, call.args, ident))
        record.calls_sent = tuple(sent)
        return self._response(record, parts, final=last, tokens=record.tokens_sent + 1)

    def final_events(self, record: RecordedRequest, tokens: int) -> bytes:
        # The last token's event already carried finishReason and usage; an empty reply still needs one.
        return b"" if tokens else self._response(record, [], final=True, tokens=0)

    def error_event(self, record: RecordedRequest, status: int, message: str) -> bytes:
        return _event(self.error_body(status, message))
