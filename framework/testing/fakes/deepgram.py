"""A fake Deepgram (live STT WebSocket, Aura speak WebSocket, speak REST) on 127.0.0.1, for offline tests.

It speaks the wire protocol the official ``deepgram-sdk`` speaks (see ``docs/providers.md``): every message
carries its ``type``; Metadata; Flushed/Cleared; close 1000 after CloseStream/Close; close 1011 ``NET-0001``
after :attr:`FakeDeepgram.idle_timeout` seconds without a client frame (or without any audio since the socket
opened); HTTP 401 on a bad key. It refuses what Deepgram refuses (:mod:`voxline.testing.fakes.rules`): an
unknown model or voice, a bad encoding/sample rate/container combination, ``utterance_end_ms`` without interim
results, a bad ``endpointing`` (HTTP 400 with ``dg-error``); undecodable or empty audio (close 1008
``DATA-0000``); a speak message that is not a command or too long (1003/1008/1009); REST text too long (413); a
Flush past 20 per 60 s on one speak socket (a ``Warning``, and the Flush is not processed).

Point a voxline Deepgram processor at it with ``base_url=fake.base_url`` (or ``DEEPGRAM_BASE_URL``)::

    async with FakeDeepgram(transcripts=["hello there", "what time is it"]) as fake:
        stt = DeepgramSTT(api_key="test-key", base_url=fake.base_url)
        ...
        assert fake.listen_connections[0].audio_seconds > 1.0

Behaviour is scripted (:class:`FakeDeepgram` arguments): transcripts per utterance (utterances are found from
the audio's energy, timestamps are audio time), fixed delays for the STT final and the TTS first byte, TTS audio
whose length is proportional to the text. Faults are injected through :attr:`FakeDeepgram.faults` at any time,
and everything the fake received is recorded in :attr:`FakeDeepgram.connections` and
:attr:`FakeDeepgram.rest_requests`. Serve it with ``async with`` or :meth:`FakeServer.start_in_thread`.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import attrs
from voxline.testing.fakes._deepgram_listen import ListenSession
from voxline.testing.fakes._deepgram_speak import SpeakSession, tone
from voxline.testing.fakes._server import FakeServer, HttpRequest, HttpResponse
from voxline.testing.fakes.rules import Refusal, deepgram_listen, deepgram_speak
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

__all__ = ["DeepgramConnection", "DeepgramFaults", "FakeDeepgram"]


@attrs.define
class DeepgramFaults:
    """Failures to inject; change the fields at any time. ``*_after_*`` faults fire once, then reset to None."""

    refuse_listen: int = 0
    """Reject this many upcoming ``/v1/listen`` handshakes with :attr:`refuse_status`."""
    refuse_speak: int = 0
    """Reject this many upcoming ``/v1/speak`` WebSocket handshakes with :attr:`refuse_status`."""
    refuse_status: int = 503
    stt_drop_after_audio: float | None = None
    """Abort the listen socket's TCP connection (no close frame) once this many seconds of audio arrived on it."""
    stt_error_after_audio: float | None = None
    """Send an Error message and close 1011 once this many seconds of audio arrived on the socket."""
    stall: bool = False
    """While set, the fake sends nothing at all on any socket (it still reads and records)."""
    tts_drop_after_bytes: int | None = None
    """Abort the speak socket's TCP connection after sending this many audio bytes on it."""
    tts_error_after_bytes: int | None = None
    """Send a Warning and close the speak socket 1011 after sending this many audio bytes (an error mid-stream)."""
    tts_audio_after_clear: float = 0.0
    """After a Clear, keep sending the old audio for this many seconds before ``Cleared`` (a slow server)."""
    rest_status: int | None = None
    """Answer every ``POST /v1/speak`` with this error status (JSON body ``{err_code, err_msg, request_id}``)."""
    rest_drop_after_bytes: int | None = None
    """Abort a REST response after this many body bytes."""


@attrs.define(eq=False)
class DeepgramConnection:
    """One WebSocket connection the fake accepted, and everything it saw."""

    kind: str
    """``"listen"`` or ``"speak"``."""
    query: dict[str, str]
    headers: dict[str, str]
    messages: list[dict[str, Any]] = attrs.field(factory=list)
    """Every text message the client sent, decoded, in order."""
    message_times: list[float] = attrs.field(factory=list)
    """``time.monotonic()`` when each of :attr:`messages` arrived."""
    audio: bytearray = attrs.field(factory=bytearray)
    """Every binary byte the client sent (listen only)."""
    audio_sizes: list[int] = attrs.field(factory=list)
    """The size of each binary message, in order."""
    audio_before: list[int] = attrs.field(factory=list)
    """For each of :attr:`messages`: how many audio bytes had arrived before it."""
    sent: list[dict[str, Any]] = attrs.field(factory=list)
    """Every JSON message the fake sent."""
    audio_bytes_sent: int = 0
    refused_flushes: int = 0
    """Flushes refused past Deepgram's limit of 20 per 60 s (speak only; each got a ``Warning``)."""
    close_code: int | None = None
    """The close code the connection ended with (1006 if the TCP connection was aborted)."""
    close_reason: str = ""
    closed_by_client: bool = False
    """The client sent a close frame first (a clean shutdown from the client's side)."""
    closed: asyncio.Event = attrs.field(factory=asyncio.Event)

    def message_types(self) -> list[str]:
        return [str(m.get("type")) for m in self.messages]

    @property
    def audio_seconds(self) -> float:
        rate = int(self.query.get("sample_rate", "16000"))
        return len(self.audio) / (2 * rate * int(self.query.get("channels", "1")))


class FakeDeepgram(FakeServer):
    """The fake. Arguments script its behaviour; see the module docstring and :class:`DeepgramFaults`.

    * ``transcripts``: one entry per utterance, in order (across connections). A list entry is a long
      utterance: its pieces come as separate ``is_final`` results, one per ``segment_seconds`` of speech.
      When the script runs out, utterances are transcribed as ``default_transcript``.
    * ``stt_final_delay``: seconds from the arrival of the last voiced audio to the final result (never before
      the fake has seen ``endpointing`` seconds of silence). ``None``: as soon as endpointing fires.
    * ``endpointing``: seconds of silence that end an utterance; ``None`` uses the client's ``endpointing``.
    * ``tts_first_byte_delay``: seconds from Flush (WS) or request (REST) to the first audio byte.
    * ``tts_seconds_per_char``: TTS audio length per character of text (a tone).
    """

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        transcripts: Sequence[str | Sequence[str]] = (),
        default_transcript: str = "hello world",
        stt_final_delay: float | None = None,
        stt_interim_interval: float = 0.5,
        segment_seconds: float = 3.0,
        endpointing: float | None = None,
        energy_threshold: float = 500.0,
        tts_first_byte_delay: float = 0.0,
        tts_seconds_per_char: float = 0.05,
        tts_chunk_bytes: int = 4800,
        tts_chunk_interval: float = 0.0,
        idle_timeout: float = 10.0,
        tts_idle_timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.transcripts = [t if isinstance(t, str) else list(t) for t in transcripts]
        self.default_transcript = default_transcript
        self.stt_final_delay = stt_final_delay
        self.stt_interim_interval = stt_interim_interval
        self.segment_seconds = segment_seconds
        self.endpointing = endpointing
        self.energy_threshold = energy_threshold
        self.tts_first_byte_delay = tts_first_byte_delay
        self.tts_seconds_per_char = tts_seconds_per_char
        self.tts_chunk_bytes = tts_chunk_bytes
        self.tts_chunk_interval = tts_chunk_interval
        self.idle_timeout = idle_timeout
        self.tts_idle_timeout = tts_idle_timeout
        self.clock = clock
        """The clock of the speak socket's Flush window (a test passes a virtual one to let 60 s go by)."""
        self.faults = DeepgramFaults()
        self.connections: list[DeepgramConnection] = []
        self.attempts: list[tuple[str, int]] = []
        """Every WebSocket handshake: ``(path, status)`` — 101 accepted, else the rejection status."""
        self.rest_requests: list[HttpRequest] = []
        self._utterances_done = 0
        self._listen_sessions: list[ListenSession] = []
        self._live: dict[DeepgramConnection, ServerConnection] = {}

    # --- what tests read ----------------------------------------------------------------------------------

    @property
    def listen_connections(self) -> list[DeepgramConnection]:
        return [c for c in self.connections if c.kind == "listen"]

    @property
    def speak_connections(self) -> list[DeepgramConnection]:
        return [c for c in self.connections if c.kind == "speak"]

    def attempts_on(self, path: str) -> int:
        return sum(1 for p, _ in self.attempts if p == path)

    def tts_audio_bytes(self, text: str, sample_rate: int = 24000) -> int:
        """How many bytes of audio the fake makes for ``text`` (for exact assertions)."""
        return 2 * round(len(text) * self.tts_seconds_per_char * sample_rate)

    def inject(self, payload: dict[str, Any] | str) -> int:
        """Send ``payload`` (a JSON object, or a raw text frame) on every open listen socket, in order with the
        results already queued there. Returns how many sockets it went to. For messages the SDK does not know."""

        def send() -> int:
            for session in self._listen_sessions:
                session.inject(payload)
            return len(self._listen_sessions)

        return self.run_sync(send)

    def drop(self, kind: str | None = None) -> int:
        """Abort the TCP connection of every open socket (of ``kind``, ``"listen"`` or ``"speak"``) right now,
        without a close frame, as a network failure would. Returns how many were dropped."""

        def abort() -> int:
            dropped = [c for r, c in self._live.items() if kind is None or r.kind == kind]
            for connection in dropped:
                connection.transport.abort()
            return len(dropped)

        return self.run_sync(abort)

    # --- the script, used by the sessions -----------------------------------------------------------------

    def utterance(self) -> list[str]:
        """Pieces of the current (next unfinished) utterance of the script."""
        if self._utterances_done < len(self.transcripts):
            entry = self.transcripts[self._utterances_done]
            return [entry] if isinstance(entry, str) else list(entry)
        return [self.default_transcript]

    def utterance_done(self) -> None:
        self._utterances_done += 1

    # --- serving ------------------------------------------------------------------------------------------

    def _authorized(self, headers: dict[str, str]) -> bool:
        if self.api_key is None:
            return True
        scheme, _, key = headers.get("authorization", "").partition(" ")
        return scheme.lower() in ("token", "bearer") and key == self.api_key

    def check_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        headers = {k.lower(): v for k, v in request.headers.raw_items()}
        if path not in ("/v1/listen", "/v1/speak"):
            return self._reject(connection, path, 404, "Not found.")
        if not self._authorized(headers):
            return self._reject(connection, path, 401, "Invalid credentials.")
        refusals = "refuse_listen" if path == "/v1/listen" else "refuse_speak"
        if getattr(self.faults, refusals) > 0:
            setattr(self.faults, refusals, getattr(self.faults, refusals) - 1)
            return self._reject(connection, path, self.faults.refuse_status, "Service unavailable.")
        query = dict(urllib.parse.parse_qsl(request.path.partition("?")[2], keep_blank_values=True))
        try:
            if path == "/v1/listen":
                deepgram_listen.check_listen_query(query)
            else:
                deepgram_speak.check_speak_query(query)
        except Refusal as refusal:
            return self._reject(connection, path, refusal.status, refusal.message)
        self.attempts.append((path, 101))
        return None

    def _reject(self, connection: ServerConnection, path: str, status: int, text: str) -> Response:
        self.attempts.append((path, status))
        response = connection.respond(status, text)
        response.headers["dg-error"] = text
        response.headers["dg-request-id"] = str(uuid.uuid4())
        return response

    async def handle_websocket(self, connection: ServerConnection) -> None:
        request = connection.request
        assert request is not None
        path, _, query_string = request.path.partition("?")
        query = dict(urllib.parse.parse_qsl(query_string, keep_blank_values=True))
        headers = {k.lower(): v for k, v in request.headers.raw_items()}
        record = DeepgramConnection(kind="listen" if path == "/v1/listen" else "speak", query=query, headers=headers)
        self.connections.append(record)
        self._live[record] = connection
        session: ListenSession | SpeakSession
        if record.kind == "listen":
            session = ListenSession(self, connection, record)
            self._listen_sessions.append(session)
        else:
            session = SpeakSession(self, connection, record)
        try:
            await session.run()
        finally:
            await session.shutdown()
            self._live.pop(record, None)
            if isinstance(session, ListenSession):
                self._listen_sessions.remove(session)
            record.close_code = connection.close_code if connection.close_code is not None else 1006
            record.close_reason = connection.close_reason or ""
            rcvd, sent = connection.protocol.close_rcvd, connection.protocol.close_sent
            record.closed_by_client = rcvd is not None and (
                sent is None or bool(connection.protocol.close_rcvd_then_sent)
            )
            record.closed.set()

    async def handle_http(self, request: HttpRequest) -> HttpResponse:
        if request.path != "/v1/speak" or request.method != "POST":
            return HttpResponse(404, {"Content-Type": "application/json"}, b'{"err_msg":"Not found."}')
        self.rest_requests.append(request)
        request_id = str(uuid.uuid4())
        json_headers = {"Content-Type": "application/json", "dg-request-id": request_id}
        if not self._authorized(request.headers):
            return HttpResponse(401, json_headers, _error_body("INVALID_AUTH", "Invalid credentials.", request_id))
        if self.faults.rest_status is not None:
            status = self.faults.rest_status
            return HttpResponse(status, json_headers, _error_body("FAKE_ERROR", f"Injected {status}.", request_id))
        try:
            text = deepgram_speak.check_rest(request.query, json.loads(request.body))
        except ValueError:
            return HttpResponse(400, json_headers, _error_body("Bad Request", "Body must be JSON.", request_id))
        except Refusal as refusal:
            body = _error_body(refusal.code or "Bad Request", refusal.message, request_id)
            return HttpResponse(refusal.status, json_headers, body)
        rate = int(request.query.get("sample_rate", "24000"))
        audio = tone(text, self.tts_seconds_per_char, rate)
        headers = {"Content-Type": "audio/l16", "dg-request-id": request_id}
        return HttpResponse(200, headers, self._rest_body(audio))

    async def _rest_body(self, audio: bytes) -> AsyncIterator[bytes]:
        await asyncio.sleep(self.tts_first_byte_delay)
        sent = 0
        step = self.tts_chunk_bytes
        for i in range(0, len(audio), step):
            chunk = audio[i : i + step]
            limit = self.faults.rest_drop_after_bytes
            if limit is not None and sent + len(chunk) > limit:
                self.faults.rest_drop_after_bytes = None
                yield chunk[: max(0, limit - sent)]
                raise ConnectionAbortedError("injected drop")
            sent += len(chunk)
            yield chunk
            if self.tts_chunk_interval:
                await asyncio.sleep(self.tts_chunk_interval)


def _error_body(code: str, message: str, request_id: str) -> bytes:
    return json.dumps({"err_code": code, "err_msg": message, "request_id": request_id}).encode()
