"""A seeded generator of client messages for the fuzz test: each message comes with whether the protocol must
refuse it (an ``error``) or accept it, known from how it was built — never from running the parser.

Categories: malformed JSON, wrong types, deep nesting, huge strings, bad base64, odd PCM, NaN/Infinity, huge
numbers, unicode edge cases (lone surrogates, BOM, NUL, non-BMP, RTL, combining marks), binary frames (before
and after the opt-in), oversize messages, and the good messages of every type in several spellings.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable
from typing import Any

import attrs

MAX_BYTES = 64 * 1024
"""The fuzzed transport's MAX_MESSAGE_BYTES: oversize messages stay cheap to make."""

UNICODE = [
    "h\u00e9llo",
    "\U0001f600 emoji",
    "\u202eRTL override",
    "e\u0301\u0301 combining",
    "zero\u200bwidth",
    "nul \u0000 inside",
    "\ufeffbom first",
    "\uffff noncharacter",
    "\U0010ffff last plane",
    "mixed 中文 русский العربية",
]


@attrs.frozen
class Message:
    kind: str
    """``"text"`` or ``"bytes"`` (the WebSocket frame type)."""
    payload: str | bytes
    bad: bool
    """The protocol must answer it with an ``error``."""
    category: str
    audio_seconds: float = 0.0
    """Seconds of audio it carries, if it is good audio."""
    binary_audio: bool | None = None
    """For a good ``config`` message: what it sets ``binary_audio`` to (None: unchanged)."""


def _b64(pcm: bytes) -> str:
    return base64.b64encode(pcm).decode()


class Generator:
    """``next()`` gives one message; tracks the one piece of protocol state that changes meaning: whether the
    client has opted in to binary audio frames."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.binary_audio = False
        self._makers: list[tuple[int, Callable[[], Message]]] = [
            (10, self.good_audio),
            (3, self.good_interrupt),
            (4, self.good_text),
            (3, self.good_config),
            (4, self.binary),
            (8, self.malformed_json),
            (8, self.wrong_types),
            (4, self.deep_nesting),
            (3, self.huge_strings),
            (6, self.bad_base64),
            (4, self.odd_pcm),
            (4, self.not_json_values),
            (3, self.not_an_object),
            (3, self.unknown_type),
            (2, self.oversize),
        ]
        self._weights = [w for w, _ in self._makers]

    def next(self) -> Message:
        (maker,) = self.rng.choices([m for _, m in self._makers], weights=self._weights)
        message = maker()
        if message.binary_audio is not None:
            self.binary_audio = message.binary_audio
        return message

    # --- good messages ---------------------------------------------------------------------------------------

    def _pcm(self, max_samples: int = 4000) -> bytes:
        return self.rng.randbytes(2 * self.rng.randint(0, max_samples))

    def good_audio(self) -> Message:
        pcm = self._pcm()
        spelled = self.rng.choice(
            [
                '{"type":"audio","data":"' + _b64(pcm) + '"}',  # the fast path
                json.dumps({"type": "audio", "data": _b64(pcm)}),
                json.dumps({"data": _b64(pcm), "type": "audio", "extra": [1, {"x": None}]}),
                ' \n{"type" : "audio" , "data" : "' + _b64(pcm) + '"}\t',
            ]
        )
        return Message("text", spelled, False, "audio", audio_seconds=len(pcm) / 32000)

    def good_interrupt(self) -> Message:
        spelled = self.rng.choice(['{"type":"interrupt"}', '{"type": "interrupt", "data": [1, 2]}'])
        return Message("text", spelled, False, "interrupt")

    def good_text(self) -> Message:
        text = self.rng.choice([*UNICODE, "x" * self.rng.randint(1, 10_000), "lone \ud800 surrogate", "hi"])
        if text.strip() == "":
            text = "x"
        ensure_ascii = self.rng.random() < 0.5  # \\uXXXX escapes, or the characters themselves
        spelled = json.dumps({"type": "text", "data": f"  {text}  "}, ensure_ascii=ensure_ascii)
        if not ensure_ascii and "\ud800" in spelled:
            spelled = json.dumps({"type": "text", "data": text})  # a raw lone surrogate cannot go on the wire
        return Message("text", spelled, False, "text")

    def good_config(self) -> Message:
        choice = self.rng.choice([True, False, None])
        data: dict[str, Any] = {"unknown": self.rng.random()}
        if choice is not None:
            data["binary_audio"] = choice
        return Message("text", json.dumps({"type": "config", "data": data}), False, "config", binary_audio=choice)

    def binary(self) -> Message:
        pcm = self._pcm()
        if self.rng.random() < 0.3 and pcm:
            pcm = pcm[:-1]  # odd length
            return Message("bytes", pcm, True, "binary odd")
        if not self.binary_audio:
            return Message("bytes", pcm, True, "binary before opting in")
        return Message("bytes", pcm, False, "binary audio", audio_seconds=len(pcm) / 32000)

    # --- bad messages ----------------------------------------------------------------------------------------

    def malformed_json(self) -> Message:
        whole = self.rng.choice(
            ['{"type":"interrupt"}', json.dumps({"type": "text", "data": "hello"}), '{"type":"audio","data":"AAAA"}']
        )
        broken = self.rng.choice(
            [
                whole[: self.rng.randint(0, len(whole) - 1)],  # a proper prefix of an object is never valid
                whole + self.rng.choice(["}", "x", ",", '"', " 1"]),
                whole.replace('"', "'"),
                "\ufeff" + whole,  # a BOM is not JSON
                self.rng.randbytes(self.rng.randint(1, 64)).decode("latin-1").replace("{", "(") + "{",
                '{"type": "text", "data": "unterminated',
                '{"type": "text", "data": "bad escape \\x41"}',
                "",
            ]
        )
        return Message("text", broken, True, "malformed json")

    def wrong_types(self) -> Message:
        odd: list[Any] = [1, 1.5, True, [], ["a"], {}, {"k": "v"}]
        kind, data = self.rng.choice(
            [
                ("audio", self.rng.choice([*odd, None])),
                ("text", self.rng.choice([*odd, None, "", "   ", "\n\t"])),
                ("config", self.rng.choice([1, "x", [], True, None])),
                ("config", {"binary_audio": self.rng.choice([1, 0, "true", [], {}])}),
            ]
        )
        message: dict[str, Any] = {"type": kind}
        if data is not None or self.rng.random() < 0.5:
            message["data"] = data
        if kind == "config" and data is None and "data" not in message:
            message["data"] = 7
        return Message("text", json.dumps(message), True, f"wrong type ({kind})")

    def deep_nesting(self) -> Message:
        depth = self.rng.choice([9, 50, 1000, 5000, 30_000])
        opener, closer = self.rng.choice([("[", "]"), ('{"a":', "}")])
        nested = opener * depth + "1" + closer * depth
        spelled = self.rng.choice([nested, '{"type": "config", "data": ' + nested + "}", "[" * depth])
        return Message("text", spelled, True, "deep nesting")

    def huge_strings(self) -> Message:
        size = self.rng.randint(10_001, 15_000)
        spelled = self.rng.choice(
            [
                json.dumps({"type": "text", "data": "y" * size}),
                json.dumps({"type": "t" * size}),
                json.dumps({"type": "audio", "data": "A" * (size | 1)}),  # base64 of the wrong length
            ]
        )
        return Message("text", spelled, True, "huge string")

    def bad_base64(self) -> Message:
        good = _b64(self._pcm(400) + b"\x00\x00")
        data = self.rng.choice(
            [
                good[:-1] if good.endswith("=") else good + "=",
                good.replace("A", "-") if "A" in good else "-_-_",
                good[:2] + " " + good[2:],
                "!!!!",
                "A===",
                good + "\u00e9",
                good[:4] + "\\n" + good[4:],
            ]
        )
        if data == good:
            data = "%%%%"
        spelled = '{"type":"audio","data":"' + data + '"}'
        return Message("text", spelled, True, "bad base64")

    def odd_pcm(self) -> Message:
        pcm = self.rng.randbytes(2 * self.rng.randint(0, 2000) + 1)
        return Message("text", json.dumps({"type": "audio", "data": _b64(pcm)}), True, "odd pcm")

    def not_json_values(self) -> Message:
        value = self.rng.choice(["NaN", "Infinity", "-Infinity", "1" * self.rng.randint(4301, 6000)])
        spelled = self.rng.choice(
            [
                '{"type": "audio", "data": ' + value + "}",
                '{"type": "config", "data": {"binary_audio": ' + value + "}}",
                '{"type": ' + value + "}",
            ]
        )
        return Message("text", spelled, True, "NaN/Infinity/huge number")

    def not_an_object(self) -> Message:
        spelled = self.rng.choice(["[]", "[1, 2]", "3", '"audio"', "true", "null", '[{"type": "interrupt"}]'])
        return Message("text", spelled, True, "not an object")

    def unknown_type(self) -> Message:
        kind = self.rng.choice(["sing", "AUDIO", "Interrupt", "", "audio ", "\ud800", "\U0001f600", "x" * 300])
        return Message("text", json.dumps({"type": kind, "data": "AAAA"}), True, "unknown type")

    def oversize(self) -> Message:
        if self.rng.random() < 0.5:
            pcm = bytes(MAX_BYTES + 2 * self.rng.randint(1, 1000))
            return Message("bytes", pcm, True, "oversize binary")
        return Message("text", json.dumps({"type": "audio", "data": "A" * (MAX_BYTES + 4)}), True, "oversize text")
