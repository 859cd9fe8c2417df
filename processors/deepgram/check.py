"""``voxline check`` for Deepgram: one real exchange on the wire, with the agent's exact options.

The stages are built from the settings as the agent builds them, and their own ``connect_options()`` /
``request_options()`` give the query, so the check asks Deepgram exactly what a session would. The exchange
itself goes over plain ``websockets`` / ``httpx`` rather than the SDK for one reason: the SDK turns a refused
handshake into an ``ApiError`` without the response, and Deepgram says *why* it refused in the response's
``dg-error`` header ("No such model/language/tier combination found"). Those words are what the user needs.

* listen: ~1 s of speech-like audio, ``Finalize``, ``CloseStream``; passes once ``Results`` or ``Metadata``
  arrives and the socket closes normally.
* speak (WebSocket): ``Speak`` + ``Flush``, audio until ``Flushed``, then ``Close``. speak (REST): one
  ``POST /v1/speak``, its audio read to the end.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from voxline.processors.deepgram._common import websocket_base
from voxline.processors.deepgram.provider import API_KEY, TTS_TRANSPORT, build_stt, build_tts
from voxline.registry import CheckFailed, Probe, Values
from voxline.registry.round_trips import CHECK_SENTENCE, SAMPLE_RATE, failure_kind, speech_like_audio, status_kind

__all__ = ["listen_round_trip", "speak_round_trip"]

OPEN_TIMEOUT = 10.0


async def listen_round_trip(values: Values) -> Probe:
    (stage,) = _built(build_stt, values)
    query = stage.connect_options()
    rate = int(query.get("sample_rate", SAMPLE_RATE))
    audio = speech_like_audio(1.0, rate)
    step = rate // 50 * 2  # 20 ms messages, as a session sends them
    heard: list[str] = []
    answered = False
    async with _socket(stage.base_url, "listen", query, values) as ws:
        for i in range(0, len(audio), step):
            await ws.send(audio[i : i + step])
        await ws.send(json.dumps({"type": "Finalize"}))
        await ws.send(json.dumps({"type": "CloseStream"}))
        async for message in ws:
            data = _json(message)
            kind = data.get("type")
            if kind == "Results":
                answered = True
                alternatives = (data.get("channel") or {}).get("alternatives") or [{}]
                if data.get("is_final") and alternatives[0].get("transcript"):
                    heard.append(alternatives[0]["transcript"])
            elif kind == "Metadata":
                answered = True
            elif kind == "Error":
                raise CheckFailed(_error_text(data), kind="refused")
    if not answered:
        raise CheckFailed(f"the socket closed ({_close(ws)}) before any Results or Metadata", kind="refused")
    return Probe(f"heard {' '.join(heard)!r}" if heard else "heard no words (expected: the audio has none)")


async def speak_round_trip(values: Values) -> Probe:
    (stage,) = _built(build_tts, values)
    if values[TTS_TRANSPORT] == "rest":
        audio = bytearray(await _speak_rest(stage.base_url, stage.request_options(CHECK_SENTENCE), values))
    else:
        audio = bytearray()
        async with _socket(stage.base_url, "speak", stage.connect_options(), values) as ws:
            await ws.send(json.dumps({"type": "Speak", "text": CHECK_SENTENCE}))
            await ws.send(json.dumps({"type": "Flush"}))
            async for message in ws:
                if isinstance(message, bytes):
                    audio += message
                    continue
                data = _json(message)
                if data.get("type") == "Flushed":
                    break
                if data.get("type") == "Error":
                    raise CheckFailed(_error_text(data), kind="refused")
            await ws.send(json.dumps({"type": "Close"}))
    if not audio:
        raise CheckFailed("Deepgram sent no audio", kind="other")
    return Probe(f"{len(audio) / 2 / stage.sample_rate:.1f} s of audio at {stage.sample_rate // 1000} kHz")


# --- the wire ------------------------------------------------------------------------------------------------


def _built(build: Any, values: Values) -> list[Any]:
    try:
        stages: list[Any] = build(values)
    except ValueError as exc:  # a key or URL the stage refuses
        raise CheckFailed(str(exc), kind="auth" if "API key" in str(exc) else "refused") from None
    return stages


def _headers(values: Values) -> dict[str, str]:
    key = values[API_KEY]
    return {"Authorization": "Token " + str(key)} if key is not None else {}


class _socket:
    """``async with _socket(...) as ws``: the WebSocket, with refusals and drops turned into :class:`CheckFailed`."""

    def __init__(self, base_url: str, endpoint: str, query: dict[str, Any], values: Values) -> None:
        self.url = f"{websocket_base(base_url)}/v1/{endpoint}?{urllib.parse.urlencode(query, doseq=True)}"
        self.base_url = base_url
        self.values = values
        self.context: Any = None

    async def __aenter__(self) -> Any:
        from voxline.providers.clients import ssl_context
        from websockets.asyncio.client import connect

        secure = self.url.startswith("wss://")
        self.context = connect(
            self.url,
            additional_headers=_headers(self.values),
            ssl=ssl_context(self.url) if secure else None,
            open_timeout=OPEN_TIMEOUT,
            max_size=None,
        )
        try:
            return await self.context.__aenter__()
        except Exception as exc:
            raise _refusal(exc, self.base_url) from None

    async def __aexit__(self, *exc_info: Any) -> None:
        try:
            await self.context.__aexit__(*exc_info)
        except CheckFailed:
            raise
        except Exception as exc:
            raise _refusal(exc, self.base_url) from None
        if exc_info[1] is not None and not isinstance(exc_info[1], CheckFailed):
            raise _refusal(exc_info[1], self.base_url) from None


async def _speak_rest(base_url: str, options: dict[str, Any], values: Values) -> bytes:
    import httpx
    from voxline.providers.clients import ssl_context

    text = options.pop("text")
    url = f"{base_url}/v1/speak"
    try:
        async with (
            httpx.AsyncClient(verify=ssl_context(url), timeout=httpx.Timeout(30.0, connect=OPEN_TIMEOUT)) as client,
            client.stream("POST", url, params=options, json={"text": text}, headers=_headers(values)) as response,
        ):
            body = await response.aread()
    except Exception as exc:
        raise _refusal(exc, base_url) from None
    if response.status_code != 200:
        message = _body_text(body) or f"HTTP {response.status_code}"
        raise CheckFailed(
            f"Deepgram answered HTTP {response.status_code}: {message}", kind=status_kind(response.status_code)
        )
    return body


def _refusal(exc: BaseException, base_url: str) -> CheckFailed:
    """A failed handshake, a dropped socket or no connection at all, in Deepgram's words where it gave any."""
    from websockets.exceptions import ConnectionClosed, InvalidStatus

    if isinstance(exc, CheckFailed):
        return exc
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        said = exc.response.headers.get("dg-error") or _body_text(bytes(exc.response.body or b""))
        return CheckFailed(f"Deepgram answered HTTP {status}" + (f": {said}" if said else ""), kind=status_kind(status))
    if isinstance(exc, ConnectionClosed):
        return CheckFailed(f"Deepgram closed the socket ({_close_of(exc)})", kind="other")
    if isinstance(exc, TimeoutError):
        return CheckFailed(f"no answer from {base_url} within {OPEN_TIMEOUT:g} s", kind="timeout")
    if isinstance(exc, OSError) or type(exc).__name__ in ("ConnectError", "ConnectTimeout"):
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return CheckFailed(f"could not connect to {base_url}: {reason}", kind="unreachable")
    return CheckFailed(f"{type(exc).__name__}: {exc}", kind=failure_kind(exc))


def _close(ws: Any) -> str:
    code, reason = getattr(ws, "close_code", None), getattr(ws, "close_reason", None) or ""
    return f"{code} {reason}".strip() if code is not None else "no close frame"


def _close_of(exc: Any) -> str:
    frame = exc.rcvd or exc.sent
    return "no close frame" if frame is None else f"{frame.code} {frame.reason}".strip()


def _json(message: str | bytes) -> dict[str, Any]:
    if isinstance(message, bytes):
        return {}
    try:
        data = json.loads(message)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _error_text(data: dict[str, Any]) -> str:
    said = data.get("description") or data.get("message") or data.get("variant") or "an error"
    return f"Deepgram said: {said}"


def _body_text(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:200]
    if isinstance(data, dict):
        return str(data.get("err_msg") or data.get("message") or data.get("reason") or text)[:200]
    return text[:200]
