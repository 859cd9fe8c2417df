"""Gemini as the LLM stage: google-genai's ``generate_content_stream``, with the shared LLM rules of the base.

Default model: ``gemini-3.8-flash``. Latency is the product, and in late 2026 that is the current fast Flash:
the seed's ``gemini-2.5-pro`` is slow to its first token (third-party: ~11 s with thinking on, against ~1 s for
Flash models) and, like ``gemini-2.5-flash``, is deprecated and being retired (requests reportedly reroute to
``gemini-3.8-flash``). A pinned name rather than ``gemini-flash-latest`` keeps behaviour — and the shape of
the thinking parameter — from changing under a deployment; set ``GEMINI_MODEL`` to choose another.

Thinking is minimised in the form the model family accepts (sending both is an HTTP 400): Gemini 2.x takes a
token budget (0 for Flash; 2.5 Pro cannot switch it off, 128 is its floor), Gemini 3.x and later a level
(``MINIMAL`` for Flash, ``LOW`` for Pro). Temperature is not sent by default: it is deprecated for 3.x.

Transport: the SDK's httpx2 backend, always (a custom transport also keeps google-genai from switching to
aiohttp if that happens to be installed, whose timeout covers the whole stream). The transport sets the
connect timeout; first-token and stall timeouts, retries and cancellation are the base's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx2
from google import genai
from google.genai import errors, types
from voxline.context import Context
from voxline.llm import RETRYABLE_STATUS, LLMProcessor

if TYPE_CHECKING:
    from starlette.config import Config

__all__ = ["DEFAULT_MODEL", "GeminiBlockedError", "GeminiLLM", "thinking_config_for"]

DEFAULT_MODEL = "gemini-3.8-flash"

_SAMPLE_RESPONSE = {
    "candidates": [{"content": {"parts": [{"text": "Hi"}], "role": "model"}, "finish_reason": "STOP", "index": 0}],
    "usage_metadata": {"prompt_token_count": 1, "candidates_token_count": 1, "total_token_count": 2},
}

_REFUSALS = frozenset({"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "LANGUAGE"})

logger = logging.getLogger("voxline.processors.gemini")


def thinking_config_for(model: str) -> types.ThinkingConfig:
    """The least thinking ``model`` accepts, in the one form its family understands (never both)."""
    name = model.removeprefix("models/").lower()
    match = re.match(r"gemini-(\d+)", name)
    if match is not None and int(match.group(1)) < 3:
        return types.ThinkingConfig(thinking_budget=128 if "pro" in name else 0)
    level = types.ThinkingLevel.LOW if "pro" in name else types.ThinkingLevel.MINIMAL
    return types.ThinkingConfig(thinking_level=level)


class _ConnectTimeoutTransport(httpx2.AsyncHTTPTransport):
    """Gives every request a connect timeout and leaves reads unbounded (the base times stalls itself)."""

    def __init__(self, connect_timeout: float) -> None:
        super().__init__()
        self._connect_timeout = connect_timeout

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        timeout = dict(request.extensions.get("timeout") or {})
        timeout["connect"] = self._connect_timeout
        request.extensions["timeout"] = timeout
        return await super().handle_async_request(request)


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
        self.hide_secret(api_key)
        self.model = model
        self.thinking = thinking if thinking is not None else thinking_config_for(model)
        self.temperature = temperature
        self.max_output_tokens = max_output_tokens
        self._api_key = api_key
        self.base_url = base_url
        self.api_version = api_version
        self._client: genai.Client | None = None

    @classmethod
    def from_config(cls, config: Config, **kwargs: Any) -> GeminiLLM:
        """Build from ``GEMINI_API_KEY``, ``GEMINI_MODEL`` and ``GEMINI_BASE_URL`` (e.g. a Starlette ``Config``)."""
        return cls(
            api_key=config("GEMINI_API_KEY", default=""),
            model=config("GEMINI_MODEL", default=DEFAULT_MODEL) or DEFAULT_MODEL,
            base_url=config("GEMINI_BASE_URL", default=None) or None,
            **kwargs,
        )

    async def on_start(self) -> None:
        # A fresh transport per start: a restarted processor never relies on the transport of a closed client.
        options = types.HttpOptions(
            base_url=self.base_url,
            api_version=self.api_version,
            async_client_args={"transport": _ConnectTimeoutTransport(self.connect_timeout)},
        )
        self._client = genai.Client(api_key=self._api_key, http_options=options)
        thinking = self.thinking.model_dump(exclude_none=True, mode="json")
        where = self.redact(self.base_url or "Google")
        logger.info("%s: Gemini %s (thinking %s) at %s", self.name, self.model, thinking, where)
        self.start_warm_up()

    async def warm_up(self) -> None:
        if self._client is not None:
            await asyncio.gather(asyncio.to_thread(self._prebuild), self._client.aio.models.get(model=self.model))

    def _prebuild(self) -> None:
        """Build the SDK's pydantic validators now, off the loop: lazily built, they cost the first turn ~90 ms."""
        context = Context()
        context.add_user("warm up")
        self.request_contents(context)
        self.request_config(context)
        with contextlib.suppress(ValueError):
            types.GenerateContentResponse.model_validate(_SAMPLE_RESPONSE)

    async def on_stop(self) -> None:
        await super().on_stop()
        if self._client is not None:
            await self._client.aio.aclose()
            self._client = None

    def request_config(self, context: Context) -> types.GenerateContentConfig:
        """The generation config sent with every request (system prompt, thinking, limits)."""
        return types.GenerateContentConfig(
            system_instruction=context.system_prompt or None,
            thinking_config=self.thinking,
            temperature=self.temperature,
            max_output_tokens=self.max_output_tokens,
        )

    def request_contents(self, context: Context) -> list[types.Content]:
        """The whole conversation, oldest first, with Gemini's roles (``user``/``model``)."""
        return [
            types.Content(
                role="model" if turn.role == "assistant" else "user", parts=[types.Part(text=self.turn_text(turn))]
            )
            for turn in context
        ]

    async def stream(self, context: Context) -> AsyncIterator[str]:
        if self._client is None:
            raise RuntimeError(f"{self.name} is not started")
        responses = await self._client.aio.models.generate_content_stream(
            model=self.model, contents=self.request_contents(context), config=self.request_config(context)
        )
        said = False
        async for chunk in responses:
            feedback = chunk.prompt_feedback
            if feedback is not None and feedback.block_reason is not None:
                raise GeminiBlockedError(f"the prompt was blocked ({feedback.block_reason.value})")
            candidate = chunk.candidates[0] if chunk.candidates else None
            content = candidate.content if candidate is not None else None
            for part in (content.parts if content is not None else None) or ():
                if part.text and not part.thought:  # thought summaries are not part of the reply
                    said = True
                    yield part.text
            reason = candidate.finish_reason if candidate is not None else None
            if not said and reason is not None and reason.value in _REFUSALS:
                # An empty reply the model refused to give: retrying would only repeat the refusal.
                raise GeminiBlockedError(f"the model declined to answer (finish reason {reason.value})")

    def is_retryable(self, exc: BaseException) -> bool:
        if isinstance(exc, errors.APIError):
            return exc.code in RETRYABLE_STATUS
        return isinstance(exc, (httpx2.TransportError, ConnectionError, TimeoutError))

    def describe_error(self, exc: BaseException) -> str:
        if isinstance(exc, errors.APIError):
            return f"Gemini error {exc.code} {exc.status or ''}: {exc.message or 'no message'}".replace("  ", " ")
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if isinstance(exc, httpx2.TransportError):
            return f"Gemini connection failed: {detail}"
        return f"Gemini: {detail}"


class GeminiBlockedError(Exception):
    """Gemini refused the prompt (safety or policy); retrying would not help."""
