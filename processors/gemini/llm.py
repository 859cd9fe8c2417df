"""Gemini as the LLM stage: google-genai's ``generate_content_stream``, with the shared LLM rules of the base.

Default model: ``gemini-3.8-flash``. Latency is the product, and in late 2026 that is the current fast Flash:
``gemini-2.5-pro`` is slow to its first token (third-party: ~11 s with thinking on, against ~1 s for
Flash models) and, like ``gemini-2.5-flash``, is deprecated and being retired (requests reportedly reroute to
``gemini-3.8-flash``). A pinned name rather than ``gemini-flash-latest`` keeps behaviour — and the shape of
the thinking parameter — from changing under a deployment; set ``GEMINI_MODEL`` to choose another.

Thinking is minimised per model from the documented table in :mod:`~voxline.processors.gemini.models` (a 2.5
model takes a token budget, a 3.x/4 model a level, never both; 3.7+ Flash refuses ``MINIMAL``); a model the table
does not know gets no thinking field. Thinking, temperature and the output limit are optional fields: if
Gemini answers 400 naming one, the LLM base drops it for this model and endpoint and retries the turn without
it. Temperature is not sent by default: it is deprecated for 3.x.

Transport: the SDK's httpx2 backend, always (a custom transport also keeps google-genai from switching to
aiohttp if that happens to be installed, whose timeout covers the whole stream). The transport sets the
connect timeout; first-token and stall timeouts, retries and cancellation are the base's. The ``genai.Client``
is shared by every session of the process with the same key, endpoint and connect timeout
(:func:`voxline.providers.clients.shared_client`): one per session cost ~1.6 MiB that was never returned and
three SSL contexts. A stage never closes it; :func:`voxline.providers.clients.aclose_shared` does at shutdown.

First token: a Flash model with thinking minimised gets the base's fast deadline (3 s, then 3 times its recent
p90 TTFT within 1.5-6 s); a model that thinks first (Pro, a thinking setting chosen by hand, a model the table
does not know) gets the slow one (15 s, then within 6-30 s). See :mod:`voxline.llm_retry` for the figures.

Request cost: google-genai converts all of ``contents`` on every request (validation into its pydantic
types, then a field-by-field walk into the wire format), ~0.4 ms per message from ``types.Content`` objects on
the 2-core VM, and that time sits between the user's last word and the request leaving. So the SDK gets the
newest turn only, as a plain dict, and the history rides in the body as it goes on the wire, through
``HttpOptions.extra_body`` (:meth:`GeminiLLM.request_arguments`): the request's cost no longer grows with the
conversation, and the body is the same (figures in docs/performance.md). Tool steps ride along too, in the wire
form google-genai itself writes (:func:`voxline.processors.gemini.tools.wire_content`).

Tools (``tools=`` of the LLM base): declared as ``parametersJsonSchema``; the model's call steps are kept as
received (thought signatures included) and sent back as they came; see :mod:`voxline.processors.gemini.tools`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import ssl
from collections.abc import AsyncIterator, Hashable, Sequence
from typing import TYPE_CHECKING, Any

import httpx2
import voxline.processors.gemini.tools as fc
from google import genai
from google.genai import errors, types
from voxline.context import Context
from voxline.llm import RETRYABLE_STATUS, LLMProcessor, OptionalField, StreamItem
from voxline.llm_retry import FAST_MODEL, SLOW_MODEL, FirstTokenTimeout
from voxline.processors.gemini.models import thinking_config_for
from voxline.processors.gemini.provider import MODEL
from voxline.providers.clients import fingerprint, shared_client, ssl_context
from voxline.providers.redaction import hide_secret, redact

if TYPE_CHECKING:
    from starlette.config import Config

__all__ = ["DEFAULT_MODEL", "MAX_OUTPUT_TOKENS", "TEMPERATURE", "THINKING", "GeminiBlockedError", "GeminiLLM"]

DEFAULT_MODEL = MODEL.default  # the GEMINI_MODEL setting's default (the declaration)
DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
DEFAULT_API_VERSION = "v1"
"""google-genai 3.x's default for the Gemini Developer API (``GOOGLE_AI_API_DEFAULT_VERSION``)."""

_SAMPLE_RESPONSE = {
    "candidates": [{"content": {"parts": [{"text": "Hi"}], "role": "model"}, "finish_reason": "STOP", "index": 0}],
    "usage_metadata": {"prompt_token_count": 1, "candidates_token_count": 1, "total_token_count": 2},
}

_REFUSALS = frozenset({"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "LANGUAGE"})

logger = logging.getLogger("voxline.processors.gemini")


THINKING = OptionalField("thinking", (r"thinking", r"budget"))
TEMPERATURE = OptionalField("temperature", (r"temperature",))
MAX_OUTPUT_TOKENS = OptionalField("max_output_tokens", (r"max[_ ]?output[_ ]?tokens",))
"""The fields Gemini may refuse per model, as its 400 messages name them (``'minimal' is not a supported thinking
level``, ``Budget 0 is invalid``, ``Thinking level is not supported for this model``)."""


class _ConnectTimeoutTransport(httpx2.AsyncHTTPTransport):
    """Gives every request a connect timeout and leaves reads unbounded (the base times stalls itself)."""

    def __init__(self, connect_timeout: float, verify: ssl.SSLContext) -> None:
        super().__init__(verify=verify)
        self._connect_timeout = connect_timeout

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        timeout = dict(request.extensions.get("timeout") or {})
        timeout["connect"] = self._connect_timeout
        request.extensions["timeout"] = timeout
        return await super().handle_async_request(request)


def shared_genai_client(
    api_key: str, base_url: str | None, api_version: str | None, connect_timeout: float
) -> genai.Client:
    """The process's ``genai.Client`` for this key, endpoint and connect timeout (built on first use).

    Every HTTP client inside it gets the process's SSL context (:func:`voxline.providers.clients.ssl_context`),
    so building it loads no CA bundle, and none at all for a plain ``http://`` endpoint.
    """

    def build() -> genai.Client:
        ctx = ssl_context(base_url)
        options = types.HttpOptions(
            base_url=base_url,
            api_version=api_version,
            client_args={"verify": ctx},
            # "ssl" is what the SDK would otherwise build a context of its own for (its WebSocket client).
            async_client_args={"transport": _ConnectTimeoutTransport(connect_timeout, ctx), "ssl": ctx},
        )
        return genai.Client(api_key=api_key, http_options=options)

    key = ("gemini", fingerprint(api_key), base_url, api_version, connect_timeout)
    return shared_client(key, build, close=_close_genai_client)


async def _close_genai_client(client: genai.Client) -> None:
    await client.aio.aclose()
    client.close()


class GeminiLLM(LLMProcessor):
    """Streams Gemini replies. ``base_url`` points the SDK elsewhere (a fake, a proxy).

    ``api_key``, ``model`` and ``base_url`` left out (``None``) fall back to ``GEMINI_API_KEY``,
    ``GEMINI_MODEL`` and ``GEMINI_BASE_URL`` in the environment; a key is required one way or the other.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        model: str | None = None,
        base_url: str | None = None,
        api_version: str | None = None,
        thinking: types.ThinkingConfig | None = None,
        temperature: float | None = None,
        max_output_tokens: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        api_key = os.environ.get("GEMINI_API_KEY") if api_key is None else api_key
        model = (os.environ.get("GEMINI_MODEL") or DEFAULT_MODEL) if model is None else model
        base_url = (os.environ.get("GEMINI_BASE_URL") or None) if base_url is None else base_url
        if not api_key:
            raise ValueError("GeminiLLM needs an API key (GEMINI_API_KEY)")
        if base_url is not None and not re.match(r"^https?://[^/]", base_url):
            raise ValueError(f"GEMINI_BASE_URL must be an http(s) URL, got {base_url!r}")
        if not model:
            raise ValueError("GeminiLLM needs a model name (GEMINI_MODEL)")
        hide_secret(api_key)
        self.model = model
        self.thinking: types.ThinkingConfig | None = thinking if thinking is not None else thinking_config_for(model)
        """The thinking setting sent (None: none, the model's default). From the model table unless given."""
        self.temperature = temperature
        self.max_output_tokens = max_output_tokens
        self._api_key = api_key
        self.base_url = base_url
        self.api_version = api_version
        self._client: genai.Client | None = None

    @classmethod
    def from_config(cls, config: Config, **kwargs: Any) -> GeminiLLM:
        """Build from the provider's settings (``GEMINI_API_KEY``, ``GEMINI_MODEL``, ``GEMINI_BASE_URL``,
        ``GEMINI_THINKING``) in ``config`` (a Starlette ``Config`` or a mapping), read and checked by the same
        declarations as the voice agent's (:mod:`voxline.processors.gemini.provider`); ``kwargs`` win."""
        from voxline.processors.gemini.provider import OWN, arguments
        from voxline.registry import Values

        llm = cls(**{**arguments(Values.read(OWN, config)), **kwargs})
        return llm

    async def on_start(self) -> None:
        self._client = shared_genai_client(self._api_key, self.base_url, self.api_version, self.connect_timeout)
        thinking = self.thinking.model_dump(exclude_none=True, mode="json") if self.thinking else "model default"
        if self.thinking is not None and not self.keeps(THINKING.name):
            thinking = "model default (refused earlier)"
        where = redact(self.base_url or "Google")
        logger.info("%s: Gemini %s (thinking %s) at %s", self.name, self.model, thinking, where)
        self.start_warm_up()

    async def warm_up(self) -> None:
        if self._client is not None:
            await asyncio.gather(asyncio.to_thread(self._prebuild), self._client.aio.models.get(model=self.model))

    def _prebuild(self) -> None:
        """Build the SDK's pydantic validators now, off the loop: lazily built, they cost the first turn ~90 ms.

        Besides the request and response types, the SDK builds ``Content`` from our dicts, wraps parts in
        ``UserContent`` and starts every streamed reply from an empty ``Candidate``; each of those validators
        costs 1-10 ms the first time it is used.
        """
        context = Context()
        context.add_user("warm up")
        for content in self.request_contents(context):
            types.Content.model_validate(content)
        types.UserContent(parts=[types.Part(text="warm up")])
        types.Candidate()
        self.request_config(context)
        with contextlib.suppress(ValueError):
            types.GenerateContentResponse.model_validate(_SAMPLE_RESPONSE)
            types.GenerateContentResponseUsageMetadata.model_validate(_SAMPLE_RESPONSE["usage_metadata"])

    async def on_stop(self) -> None:
        await super().on_stop()
        self._client = None  # shared: closed by aclose_shared() at shutdown, never by a session

    def first_token_policy(self) -> FirstTokenTimeout:
        """Fast for a Flash model with its fastest thinking setting from the table; slow for any other."""
        fastest = thinking_config_for(self.model)
        fast = "flash" in self.model.lower() and fastest is not None and self.thinking == fastest
        return FAST_MODEL if fast else SLOW_MODEL

    def request_config(self, context: Context) -> types.GenerateContentConfig:
        """The generation config sent with every request (system prompt, thinking, limits, tools), less refused
        fields."""
        return types.GenerateContentConfig(
            system_instruction=context.system_prompt or None,
            tools=fc.declarations(self.toolbox) if self.toolbox is not None else None,
            thinking_config=self.thinking if self.keeps(THINKING.name) else None,
            temperature=self.temperature if self.keeps(TEMPERATURE.name) else None,
            max_output_tokens=self.max_output_tokens if self.keeps(MAX_OUTPUT_TOKENS.name) else None,
        )

    def optional_fields(self) -> Sequence[OptionalField]:
        chosen = (THINKING, self.thinking), (TEMPERATURE, self.temperature), (MAX_OUTPUT_TOKENS, self.max_output_tokens)
        return [field for field, value in chosen if value is not None]

    def refusal_message(self, exc: BaseException) -> str | None:
        if isinstance(exc, errors.ClientError) and exc.code == 400:
            return exc.message or str(exc)
        return None

    def request_key(self) -> Hashable:
        """``("gemini", model, base URL, API version)``: what a refused field is remembered under."""
        model = self.model.removeprefix("models/")
        return ("gemini", model, self.base_url or DEFAULT_BASE_URL, self.api_version or DEFAULT_API_VERSION)

    def request_contents(self, context: Context) -> list[types.ContentDict]:
        """The whole conversation, oldest first, with Gemini's roles (``user``/``model``).

        Plain dicts, not ``types.Content``: whatever the SDK converts, it validates again on each request, and
        from a dict that costs a fraction of re-validating its own objects (~0.2 ms less per message on the
        2-core VM). Text-only dicts are also the wire format, which lets :meth:`request_arguments` skip the
        SDK's conversion for the history. Building them takes microseconds, so nothing is cached: a fresh list
        of fresh dicts per request. Tool steps: :mod:`voxline.processors.gemini.tools`.
        """
        contents: list[types.ContentDict] = []
        current = fc.current_turn_start(context)
        previous = None
        for i, turn in enumerate(context):
            if turn.role == "tool":
                contents.append(fc.result_content(turn, previous))
            elif turn.tool_calls:
                contents.append(fc.step_content(turn, current=i >= current, model=self.model))
            else:
                role = "model" if turn.role == "assistant" else "user"
                contents.append({"role": role, "parts": [{"text": self.turn_text(turn)}]})
            previous = turn
        return contents

    def request_arguments(self, context: Context) -> tuple[list[types.ContentDict], types.GenerateContentConfig]:
        """``contents`` and ``config`` for ``generate_content_stream``: the SDK converts only the newest turn.

        google-genai walks every item of ``contents`` field by field through pydantic on each request (~0.15 ms
        per message on the 2-core VM even from dicts), so a long conversation delayed the request by 5-10 ms.
        The history is turned into the REST wire format here (text parts are the same there; tool parts get
        their camelCase names and URL-safe base64 signatures, as the SDK writes them:
        :func:`~voxline.processors.gemini.tools.wire_content`), and the whole list rides in
        ``HttpOptions.extra_body`` — the SDK's public way to set fields of the request body, which replaces
        ``contents`` in the body it built — while ``contents`` holds just the last turn, which the SDK validates
        as usual. The body sent is the same (tests compare it with the one built from ``types.Content``
        objects). Contents with parts this does not know (a subclass's ``request_contents``) all go through the
        SDK.
        """
        contents = self.request_contents(context)
        config = self.request_config(context)
        wire = [fc.wire_content(content) for content in contents]
        if len(contents) < 2 or any(content is None for content in wire):
            return contents, config
        options = config.http_options.model_copy() if config.http_options is not None else types.HttpOptions()
        options.extra_body = {**(options.extra_body or {}), "contents": wire}
        return contents[-1:], config.model_copy(update={"http_options": options})

    async def stream(self, context: Context) -> AsyncIterator[StreamItem]:
        if self._client is None:
            raise RuntimeError(f"{self.name} is not started")
        contents, config = self.request_arguments(context)
        responses = await self._client.aio.models.generate_content_stream(
            model=self.model, contents=contents, config=config
        )
        said = False
        kept: list[types.Part] = []
        called = False
        async for chunk in responses:
            feedback = chunk.prompt_feedback
            if feedback is not None and feedback.block_reason is not None:
                raise GeminiBlockedError(f"the prompt was blocked ({feedback.block_reason.value})")
            candidate = chunk.candidates[0] if chunk.candidates else None
            content = candidate.content if candidate is not None else None
            for part, call in fc.call_parts(list((content.parts if content is not None else None) or ())):
                kept.append(part)
                if call is not None:
                    called = True
                    yield call
                elif part.text and not part.thought:  # thought summaries are not part of the reply
                    said = True
                    yield part.text
            reason = candidate.finish_reason if candidate is not None else None
            if not said and not called and reason is not None and reason.value in _REFUSALS:
                # An empty reply the model refused to give: retrying would only repeat the refusal.
                raise GeminiBlockedError(f"the model declined to answer (finish reason {reason.value})")
        if called:
            yield fc.kept(kept)  # the step as received, for the request that answers its calls

    def is_retryable(self, exc: BaseException) -> bool:
        if isinstance(exc, errors.APIError):
            return exc.code in RETRYABLE_STATUS
        return isinstance(exc, (httpx2.TransportError, ConnectionError, TimeoutError))

    def is_connect_failure(self, exc: BaseException) -> bool:
        return isinstance(exc, (httpx2.ConnectError, httpx2.ConnectTimeout, ConnectionError))

    def describe_error(self, exc: BaseException) -> str:
        if isinstance(exc, errors.APIError):
            return f"Gemini error {exc.code} {exc.status or ''}: {exc.message or 'no message'}".replace("  ", " ")
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if isinstance(exc, httpx2.TransportError):
            return f"Gemini connection failed: {detail}"
        return f"Gemini: {detail}"


class GeminiBlockedError(Exception):
    """Gemini refused the prompt (safety or policy); retrying would not help."""
