"""Any OpenAI-compatible chat-completions server as the LLM stage (OpenAI, Ollama, llama.cpp server, vLLM).

Uses the official ``openai`` SDK: ``AsyncOpenAI.chat.completions.create(stream=True)``. The SDK's own retries
are switched off (``max_retries=0``): it would retry behind the base's back, including after a partial
reply, and the base's rule — retry only before the first token has gone out — must be the only one. The
client gets a connect timeout and no read timeout; first-token and stall timeouts are the base's. One client
is shared by every session of the process with the same key, endpoint and connect timeout
(:func:`voxline.providers.clients.shared_client`), with the process's SSL context.

First token: OpenAI's own endpoint with a model that answers without reasoning first gets the base's fast
deadline; a reasoning model (``o1``, ``o3``, ``o4-*``, ``gpt-5*``) or any other server gets the slow one: a
self-hosted server's first request may load the model (Ollama loads on demand), which a retry cannot speed up.

Request cost: the SDK walks every message of ``messages`` against each ``TypedDict`` of its message union
on each request (~0.15 ms per message on the 2-core VM), time that sits between the user's last word and the
request leaving. Our messages are plain text, which that walk leaves unchanged, so the history rides in
``extra_body`` (:meth:`OpenAILLM.request_body`): the request's cost no longer grows with the conversation.

Tools (``tools=`` of the LLM base) go out as ``tools: [{"type": "function", "function": {"name", "description",
"parameters"}}]``. The streamed ``tool_calls`` deltas are put together by ``index`` (the first carries ``id``,
``type`` and the name; the arguments come as JSON text in pieces); each call is handed to the base when the
next one starts or the stream ends. A step goes back as an assistant message with ``content`` (null when the
model said nothing) and ``tool_calls`` — the arguments exactly as streamed — followed by one ``tool`` message per
call (``tool_call_id``, the result as JSON text; ``{"error": ...}`` for a failed call), as the function-calling
guide shows; OpenAI answers 400 to a call without its tool message, and the fake does too.

``temperature`` and ``max_tokens`` are optional fields: a server that answers 400 naming one (OpenAI's reasoning
models refuse both: "Unsupported parameter: 'max_tokens' is not supported with this model") gets requests
without it from then on, and the turn is retried at once (the LLM base's self-healing).

The package is called ``openai_compat`` because a package named ``openai`` would shadow the SDK.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import AsyncIterator, Hashable, Sequence
from typing import TYPE_CHECKING, Any

import httpx2
import openai
from openai import AsyncOpenAI
from openai.types.chat.chat_completion_chunk import ChatCompletionChunk, Choice, ChoiceDelta
from voxline.context import Context
from voxline.llm import RETRYABLE_STATUS, LLMProcessor, OptionalField, StreamItem
from voxline.llm_retry import FAST_MODEL, SLOW_MODEL, FirstTokenTimeout
from voxline.processors.openai_compat.tools import CallAssembler, result_text, step_message, tool_params
from voxline.providers.clients import fingerprint, shared_client, ssl_context
from voxline.providers.redaction import hide_secret, redact

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam
    from starlette.config import Config

__all__ = ["MAX_TOKENS", "NO_KEY", "TEMPERATURE", "OpenAILLM"]

logger = logging.getLogger("voxline.processors.openai_compat")

NO_KEY = "no-key"
"""Sent as the bearer token when no key is configured: local servers ignore it, and the SDK insists on one."""

DEFAULT_BASE_URL = "https://api.openai.com/v1"

TEMPERATURE = OptionalField("temperature", (r"temperature",))
MAX_TOKENS = OptionalField("max_tokens", (r"max_tokens", r"max tokens"))
"""The fields a server may refuse per model, as its 400 messages (and OpenAI's ``param``) name them."""


_REASONING = re.compile(r"^(o\d|gpt-5)", re.IGNORECASE)


def shared_openai_client(api_key: str, base_url: str | None, connect_timeout: float) -> AsyncOpenAI:
    """The process's ``AsyncOpenAI`` for this key, endpoint and connect timeout (built on first use)."""

    def build() -> AsyncOpenAI:
        timeout = openai.Timeout(None, connect=connect_timeout)
        http = openai.DefaultAsyncHttpxClient(verify=ssl_context(base_url or DEFAULT_BASE_URL), timeout=timeout)
        return AsyncOpenAI(api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout, http_client=http)

    key = ("openai", fingerprint(api_key), base_url, connect_timeout)
    return shared_client(key, build, close=_close_openai_client)


async def _close_openai_client(client: AsyncOpenAI) -> None:
    await client.close()


class OpenAILLM(LLMProcessor):
    """Streams replies from an OpenAI-compatible server.

    ``base_url`` is the API root including ``/v1`` (e.g. ``http://localhost:11434/v1`` for Ollama). ``model``,
    ``base_url`` and ``api_key`` left out (``None``) fall back to ``OPENAI_MODEL``, ``OPENAI_BASE_URL`` and
    ``OPENAI_API_KEY`` in the environment; without a base URL the SDK talks to api.openai.com, and without a key
    :data:`NO_KEY` is sent. ``extra_body`` is merged into every request, for server-specific options.
    """

    def __init__(
        self,
        *,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        extra_body: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        model = os.environ.get("OPENAI_MODEL") if model is None else model
        base_url = (os.environ.get("OPENAI_BASE_URL") or None) if base_url is None else base_url
        api_key = (os.environ.get("OPENAI_API_KEY") or None) if api_key is None else api_key
        if not model:
            raise ValueError("OpenAILLM needs a model name (OPENAI_MODEL)")
        if base_url is not None and not re.match(r"^https?://[^/]", base_url):
            raise ValueError(f"OPENAI_BASE_URL must be an http(s) URL, got {base_url!r}")
        hide_secret(api_key)
        self.model = model
        self.base_url = base_url
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.extra_body = extra_body
        self._api_key = api_key or NO_KEY
        self._client: AsyncOpenAI | None = None

    @classmethod
    def from_config(cls, config: Config, **kwargs: Any) -> OpenAILLM:
        """Build from the provider's settings (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``, ``OPENAI_MODEL``, which
        defaults to ``gpt-4o-mini``) in ``config`` (a Starlette ``Config`` or a mapping), read and checked by the
        same declarations as the voice agent's (:mod:`voxline.processors.openai_compat.provider`); ``kwargs`` win."""
        from voxline.processors.openai_compat.provider import OWN, arguments
        from voxline.registry import Values

        return cls(**{**arguments(Values.read(OWN, config)), **kwargs})

    async def on_start(self) -> None:
        self._client = shared_openai_client(self._api_key, self.base_url, self.connect_timeout)
        logger.info("%s: model %s at %s", self.name, self.model, redact(self.base_url or "api.openai.com"))
        self.start_warm_up()

    async def warm_up(self) -> None:
        if self._client is not None:
            await asyncio.gather(asyncio.to_thread(self._prebuild), self._client.models.retrieve(self.model))

    def _prebuild(self) -> None:
        """Import the SDK's chat resources now, off the loop: imported lazily, they cost the first turn ~60 ms.

        The streamed chunk's pydantic models are built lazily too, on the first chunk received (~5 ms).
        """
        if self._client is not None:
            self._client.chat.completions  # noqa: B018 (the attribute access is the import)
        for model in (ChatCompletionChunk, Choice, ChoiceDelta):
            model.model_rebuild()

    async def on_stop(self) -> None:
        await super().on_stop()
        self._client = None  # shared: closed by aclose_shared() at shutdown, never by a session

    def first_token_policy(self) -> FirstTokenTimeout:
        """Fast for OpenAI's own endpoint and a model that does not reason first; slow for anything else."""
        official = (self.base_url or DEFAULT_BASE_URL).rstrip("/") == DEFAULT_BASE_URL
        return FAST_MODEL if official and not _REASONING.match(self.model) else SLOW_MODEL

    def request_messages(self, context: Context) -> list[ChatCompletionMessageParam]:
        """System prompt, then the whole conversation, oldest first."""
        messages: list[ChatCompletionMessageParam] = []
        if context.system_prompt:
            messages.append({"role": "system", "content": context.system_prompt})
        for turn in context:
            if turn.role == "user":
                messages.append({"role": "user", "content": turn.text})
            elif turn.role == "tool":
                messages.extend(
                    {"role": "tool", "tool_call_id": r.call_id, "content": result_text(r)} for r in turn.tool_results
                )
            elif turn.tool_calls:
                messages.append(step_message(turn))
            else:
                messages.append({"role": "assistant", "content": self.turn_text(turn)})
        return messages

    def request_tools(self) -> list[ChatCompletionToolParam] | None:
        """The ``tools`` of every request (None without a toolbox)."""
        if self.toolbox is None:
            return None
        return tool_params(self.toolbox)

    def request_body(self, context: Context) -> tuple[list[ChatCompletionMessageParam], dict[str, Any]]:
        """``messages`` and ``extra_body`` for ``create``: the SDK transforms only the newest message.

        The SDK's request transform visits every message against each ``TypedDict`` of its message union (for
        aliases and formats that plain text messages do not have) on every request; with the history growing
        that delayed the request by several milliseconds. ``extra_body`` — the SDK's public way to add fields
        to the body, merged over the fields it built — carries the full list, which replaces ``messages`` in
        place, while ``messages`` holds the last one for the SDK to check as usual. The body sent is the same
        (a test compares it with the plain call's). Messages other than ``{"role", "content": str}`` (a
        subclass's ``request_messages``) all go through the SDK's transform. Tool steps count as plain: their
        fields (``tool_calls``, ``tool_call_id``, string arguments and content) have no aliases or formats the
        transform would change (a test compares those bodies too).
        """
        messages = self.request_messages(context)
        extra = dict(self.extra_body or {})
        if len(messages) < 2 or not all(_plain(message) for message in messages):
            return messages, extra
        extra["messages"] = messages
        return messages[-1:], extra

    async def stream(self, context: Context) -> AsyncIterator[StreamItem]:
        if self._client is None:
            raise RuntimeError(f"{self.name} is not started")
        params: dict[str, Any] = {}
        if self.temperature is not None and self.keeps(TEMPERATURE.name):
            params["temperature"] = self.temperature
        if self.max_tokens is not None and self.keeps(MAX_TOKENS.name):
            params["max_tokens"] = self.max_tokens
        tools = self.request_tools()
        if tools:
            params["tools"] = tools
        messages, extra_body = self.request_body(context)
        if extra_body:
            params["extra_body"] = extra_body
        stream = await self._client.chat.completions.create(model=self.model, messages=messages, stream=True, **params)
        calls = CallAssembler()
        async with stream:  # closes the HTTP response however the iteration ends
            async for chunk in stream:
                for choice in chunk.choices:
                    if choice.index != 0 or choice.delta is None:
                        continue
                    if choice.delta.content:
                        yield choice.delta.content
                    for done in calls.add(choice.delta.tool_calls or ()):
                        yield done
        for done in calls.finish():
            yield done

    def optional_fields(self) -> Sequence[OptionalField]:
        chosen = (TEMPERATURE, self.temperature), (MAX_TOKENS, self.max_tokens)
        return [field for field, value in chosen if value is not None]

    def refusal_message(self, exc: BaseException) -> str | None:
        if isinstance(exc, openai.BadRequestError):
            body = exc.body
            inner = body.get("error", body) if isinstance(body, dict) else None
            param = inner.get("param") if isinstance(inner, dict) else None
            return f"{_message(exc)} (param: {param})" if isinstance(param, str) else _message(exc)
        return None

    def request_key(self) -> Hashable:
        """``("openai", model, base URL)``: what a refused field is remembered under."""
        return ("openai", self.model, self.base_url or DEFAULT_BASE_URL)

    def is_retryable(self, exc: BaseException) -> bool:
        if isinstance(exc, openai.APIStatusError):
            return exc.status_code in RETRYABLE_STATUS
        return isinstance(exc, (openai.APIConnectionError, httpx2.TransportError, ConnectionError, TimeoutError))

    def is_connect_failure(self, exc: BaseException) -> bool:
        return isinstance(exc, (openai.APIConnectionError, httpx2.ConnectError, ConnectionError))

    def describe_error(self, exc: BaseException) -> str:
        if isinstance(exc, openai.APIStatusError):
            return f"LLM server error {exc.status_code}: {_message(exc)}"
        if isinstance(exc, openai.APIConnectionError):
            return f"LLM server unreachable: {exc.message} ({type(exc.__cause__).__name__ if exc.__cause__ else ''})"
        if isinstance(exc, openai.APIError):
            return f"LLM server error mid-stream: {_message(exc)}"
        return f"LLM: {type(exc).__name__}: {exc}"


def _plain(message: ChatCompletionMessageParam) -> bool:
    """Whether the SDK's transform leaves ``message`` as it is: ``{"role", "content": "<text>"}``, a tool result,
    or an assistant step whose ``tool_calls`` hold only ids, names and argument text."""
    keys = message.keys()
    content = message.get("content")
    if keys == {"role", "content"}:
        return isinstance(content, str)
    if keys == {"role", "tool_call_id", "content"}:
        return isinstance(content, str) and isinstance(message.get("tool_call_id"), str)
    calls = message.get("tool_calls")
    if keys == {"role", "content", "tool_calls"} and (content is None or isinstance(content, str)):
        return isinstance(calls, list) and all(_plain_call(call) for call in calls)
    return False


def _plain_call(call: Any) -> bool:
    function = call.get("function") if isinstance(call, dict) else None
    return (
        isinstance(call, dict)
        and call.keys() == {"id", "type", "function"}
        and isinstance(function, dict)
        and function.keys() == {"name", "arguments"}
        and all(isinstance(v, str) for v in (call["id"], call["type"], function["name"], function["arguments"]))
    )


def _message(exc: openai.APIError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
    return exc.message
