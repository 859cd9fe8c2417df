"""The wire protocol: what the parser accepts, what it rejects (with a message the client can act on)."""

from __future__ import annotations

import base64
import json

import pytest
from voxline.transports.protocol import (
    AudioIn,
    ConfigIn,
    InterruptIn,
    ProtocolError,
    ProtocolParser,
    TextIn,
    audio_message,
    error_message,
    event_message,
    status_message,
    text_chunk_message,
    transcript_message,
)


def test_seed_messages_parse() -> None:
    parser = ProtocolParser()
    pcm = b"\x01\x00\xff\x7f"
    assert parser.parse_text(json.dumps({"type": "audio", "data": base64.b64encode(pcm).decode()})) == AudioIn(pcm)
    assert parser.parse_text('{"type": "interrupt"}') == InterruptIn()


def test_the_audio_fast_path_agrees_with_the_full_parser() -> None:
    parser = ProtocolParser()
    pcm = bytes(range(256)) * 4
    b64 = base64.b64encode(pcm).decode()
    compact = '{"type":"audio","data":"' + b64 + '"}'
    spaced = json.dumps({"type": "audio", "data": b64})
    assert parser.parse_text(compact) == parser.parse_text(spaced) == AudioIn(pcm)
    # look-alikes of the fast path's shape fall through to the full parser and its precise errors
    assert parser.parse_text('{"type":"audio","data":"AAAAAA==", "x":"y"}') == AudioIn(bytes(4))
    for text, needle in [
        ('{"type":"audio","data":"AA\\"=="}', "not valid base64"),  # an escaped quote inside the data
        ('{"type":"audio","data":"AA=="}', "odd number of bytes (1)"),
        ('{"type":"audio","data":"A==="}', "not valid base64"),
        ('{"type":"audio","data":"AA AA"}', "not valid base64"),
        ('{"type":"audio","data":"\u00e9"}', "not valid base64"),
        ('{"type":"audio","data":"AAAA"} trailing"}', "not valid JSON"),
    ]:
        with pytest.raises(ProtocolError) as info:
            parser.parse_text(text)
        assert needle in str(info.value), text


def test_extensions_parse() -> None:
    parser = ProtocolParser()
    assert parser.parse_text('{"type":"text","data":"  hello there "}') == TextIn("hello there")
    assert not parser.binary_audio
    assert parser.parse_text('{"type":"config","data":{"binary_audio":true}}') == ConfigIn(binary_audio=True)
    assert parser.binary_audio
    assert parser.parse_bytes(b"\x00\x01" * 10) == AudioIn(b"\x00\x01" * 10)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"data": 1}', 'needs a "type"'),
        ('{"type": "dance"}', "unknown message type 'dance'"),
        ('{"type": "audio", "data": "!!!not base64"}', "not valid base64"),
        ('{"type": "audio", "data": 12}', "base64 string"),
        ('{"type": "audio", "data": "AA=="}', "odd number of bytes (1)"),
        ('{"type": "audio"}', "base64 string"),
        ('{"type": "text", "data": "   "}', "non-empty string"),
        ('{"type": "config", "data": {"binary_audio": "yes"}}', "true or false"),
        ('{"type": "config", "data": 3}', "must be an object"),
    ],
)
def test_bad_messages_are_rejected_with_a_reason(message: str, expected: str) -> None:
    with pytest.raises(ProtocolError) as info:
        ProtocolParser().parse_text(message)
    assert expected in str(info.value)


def test_oversized_message_is_rejected_before_parsing() -> None:
    parser = ProtocolParser(max_message_bytes=1000)
    big = json.dumps({"type": "audio", "data": base64.b64encode(b"\x00" * 900).decode()})
    with pytest.raises(ProtocolError, match="too large"):
        parser.parse_text(big)
    small = json.dumps({"type": "audio", "data": base64.b64encode(b"\x00" * 600).decode()})
    assert parser.parse_text(small) == AudioIn(b"\x00" * 600)


def test_multibyte_text_counts_bytes_not_characters() -> None:
    parser = ProtocolParser(max_message_bytes=400)
    text = json.dumps({"type": "text", "data": "é" * 150}, ensure_ascii=False)  # 150 chars, 300 bytes of "é"
    assert parser.parse_text(text) == TextIn("é" * 150)
    with pytest.raises(ProtocolError, match="too large"):
        parser.parse_text(json.dumps({"type": "text", "data": "€" * 150}, ensure_ascii=False))  # 450 bytes


def test_binary_frames_need_opt_in_and_whole_samples() -> None:
    parser = ProtocolParser(max_message_bytes=100)
    with pytest.raises(ProtocolError, match="binary frames are not enabled"):
        parser.parse_bytes(b"\x00\x00")
    parser.parse_text('{"type":"config","data":{"binary_audio":true}}')
    with pytest.raises(ProtocolError, match="odd number"):
        parser.parse_bytes(b"\x00\x00\x00")
    with pytest.raises(ProtocolError, match="too large"):
        parser.parse_bytes(b"\x00" * 102)
    parser.parse_text('{"type":"config","data":{"binary_audio":false}}')
    with pytest.raises(ProtocolError, match="not enabled"):
        parser.parse_bytes(b"\x00\x00")


def test_outbound_messages_are_seed_shaped_json() -> None:
    pcm = bytes(range(256)) * 3
    assert json.loads(audio_message(pcm)) == {"type": "audio", "data": base64.b64encode(pcm).decode()}
    assert json.loads(status_message("connected")) == {"type": "status", "data": "connected"}
    assert json.loads(transcript_message('say "hi"\n', False)) == {
        "type": "transcript",
        "data": {"text": 'say "hi"\n', "is_final": False},
    }
    assert json.loads(text_chunk_message("naïve \\ ok")) == {"type": "text_chunk", "data": "naïve \\ ok"}
    assert json.loads(error_message("bad")) == {"type": "error", "data": "bad"}
    assert json.loads(event_message("speaking", {"who": "bot", "state": "started"})) == {
        "type": "speaking",
        "data": {"who": "bot", "state": "started"},
    }


# --- bounded parsing: nothing a client sends can make the parser raise anything but ProtocolError ----------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("[" * 5000, "nests arrays/objects too deeply"),  # json.loads alone raises RecursionError here
        ('{"type": "text", "data": ' + "[" * 100_000 + "]" * 100_000 + "}", "too deeply"),
        ('{"type": "config", "data": {"a": [[[[[[[[[1]]]]]]]]]}}', "too deeply"),
        ('{"type": "audio", "data": NaN}', "NaN is not a JSON value"),
        ('{"type": "config", "data": {"binary_audio": Infinity}}', "Infinity is not a JSON value"),
        ('{"type": -Infinity}', "-Infinity is not a JSON value"),
        ('{"type": "text", "data": ' + "1" * 5000 + "}", "not valid JSON"),  # int() refuses > 4300 digits
        ('{"type": "text", "data": "' + "x" * 10_001 + '"}', "text too long: 10001 characters"),
        ('{"type": "\\ud800"}', "unknown message type"),
        ('{"type":"audio","data":"AAAA="}', "not valid base64"),  # strict_mode alone takes excess padding
        ('{"type": "audio", "data": "AAAA=="}', "not valid base64"),
    ],
)
def test_hostile_messages_are_protocol_errors(message: str, expected: str) -> None:
    with pytest.raises(ProtocolError) as info:
        ProtocolParser().parse_text(message)
    assert expected in str(info.value)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = "[" * 3000 + "{" * 3000 + ' \\" ]]] '
    message = json.dumps({"type": "text", "data": text})
    assert ProtocolParser().parse_text(message) == TextIn(text.strip())
    nested = '{"type": "config", "data": {"binary_audio": true, "x": [[["[[[[[[[[[[[["]]]}}'
    assert ProtocolParser().parse_text(nested) == ConfigIn(binary_audio=True)


def test_a_typed_turn_with_a_lone_surrogate_is_repaired_not_refused() -> None:
    parser = ProtocolParser()
    assert parser.parse_text('{"type": "text", "data": "hi \\ud800 there"}') == TextIn("hi \ufffd there")
    # an escaped pair is one character, as JSON says
    assert parser.parse_text('{"type": "text", "data": "\\ud83d\\ude00"}') == TextIn("\U0001f600")


def test_encodable_replaces_lone_surrogates_and_keeps_everything_else() -> None:
    from voxline.transports.protocol import encodable

    ascii_text = "plain ascii"
    assert encodable(ascii_text) is ascii_text
    assert encodable("naïve — ok 😀") == "naïve — ok 😀"
    repaired = encodable("a\ud800b\udfffc\ud83d\ude00")  # two lone ones, and a pair as two code points
    assert repaired == "a\ufffdb\ufffdc\U0001f600"
    repaired.encode("utf-8")
    message = error_message("unknown message type '\ud800'")
    assert json.loads(encodable(message))["data"] == "unknown message type '\ufffd'"
