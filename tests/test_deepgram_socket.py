"""The Deepgram stages' sockets: the handshake deepgram-sdk's ``connect()`` would make, minus permessage-deflate.

The stages open their WebSockets themselves (``voxline.processors.deepgram._common.open_socket``) so that the
client does not deflate every 20 ms audio message. These tests hold that to the SDK: the same query and
``Authorization`` reach the fake as through ``client.listen.v1.connect`` / ``client.speak.v1.connect``, no
``Sec-WebSocket-Extensions`` is offered (the SDK's handshake offers permessage-deflate), and the connection
handed to the stage is the SDK's own socket client.
"""

from __future__ import annotations

from typing import Any

from deepgram import AsyncDeepgramClient, DeepgramClientEnvironment
from voxline.frames import AudioFrame
from voxline.processors.deepgram import DeepgramSTT, DeepgramTTS
from voxline.processors.deepgram._common import open_socket, query_string, websocket_base
from voxline.testing import Sleep, run_processor
from voxline.testing.fakes.deepgram import FakeDeepgram

KEY = "test-key"


def sdk(fake: FakeDeepgram) -> AsyncDeepgramClient:
    ws = websocket_base(fake.base_url)
    environment = DeepgramClientEnvironment(base=fake.base_url, production=ws, agent=ws, agent_rest=fake.base_url)
    return AsyncDeepgramClient(api_key=KEY, environment=environment)


def test_query_string_encodes_like_the_sdk() -> None:
    options: dict[str, Any] = {"model": "nova-3", "smart_format": True, "numerals": False, "keyterm": ["a b", "c"]}
    assert query_string({**options, "tag": None, "sample_rate": 16000}) == (
        "model=nova-3&smart_format=true&numerals=false&keyterm=a+b&keyterm=c&sample_rate=16000"
    )


async def test_listen_socket_is_the_sdk_handshake_without_compression() -> None:
    async with FakeDeepgram() as fake:
        stt = DeepgramSTT(api_key=KEY, base_url=fake.base_url, options={"keyterm": ["voxline", "nova"]})
        async with sdk(fake).listen.v1.connect(**stt.connect_options()):
            pass
        url = f"{websocket_base(fake.base_url)}/v1/listen?{query_string(stt.connect_options())}"
        headers = {"Authorization": f"Token {KEY}"}
        async with open_socket(url, headers, "listen") as conn:
            assert type(conn).__module__ == "deepgram.listen.v1.socket_client"
        through_sdk, ours = fake.listen_connections
    assert ours.query == through_sdk.query
    assert ours.headers["authorization"] == through_sdk.headers["authorization"] == f"Token {KEY}"
    assert "permessage-deflate" in through_sdk.headers["sec-websocket-extensions"]
    assert "sec-websocket-extensions" not in ours.headers


async def test_stages_offer_no_compression_and_keep_a_session_id() -> None:
    quiet = AudioFrame(pcm=bytes(640), sample_rate=16000)
    async with FakeDeepgram() as fake:
        stt = DeepgramSTT(api_key=KEY, base_url=fake.base_url)
        tts = DeepgramTTS(api_key=KEY, base_url=fake.base_url)
        await run_processor(stt, [quiet, Sleep(0.3), quiet])  # the first audio opens the listen socket
        await run_processor(tts, [Sleep(0.3)])  # the speak socket opens at the start
        sockets = fake.connections
    assert sorted(c.kind for c in sockets) == ["listen", "speak"]
    for connection in sockets:
        assert "sec-websocket-extensions" not in connection.headers
        assert connection.headers["x-deepgram-session-id"]
        assert connection.headers["authorization"] == f"Token {KEY}"
    (listen,) = (c for c in sockets if c.kind == "listen")
    assert listen.query == {k: str(v) for k, v in stt.connect_options().items()}
    assert len(listen.audio) == 1280
