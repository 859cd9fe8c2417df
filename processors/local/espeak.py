"""A minimal ctypes binding to the libespeak-ng inside the ``espeakng-loader`` wheel (no apt package needed).

espeak-ng keeps global state (one voice, one synthesis callback, one output buffer per process) and is not
thread-safe, so every call goes through :data:`ENGINE`, which runs them one at a time on a single thread of
its own. That thread also keeps the event loop free: a sentence takes 3-6 ms to synthesise, too long to hold
the loop.

Synthesis is synchronous (``AUDIO_OUTPUT_SYNCHRONOUS``): ``espeak_Synth`` calls our callback with each block
of 22.05 kHz samples as it is made, and returns when the text is done. The callback hands each block to the
caller's sink at once, so the first audio is ready well before the sentence is finished, and a sink that
returns ``False`` aborts the synthesis (an interrupted reply stops costing CPU).

espeak-ng is GPL-3.0-or-later. It is loaded at run time from a wheel the user installs (``voxline[local]``);
voxline itself does not ship it. See docs/local-engines.md.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from voxline.processors.local import require

__all__ = ["ENGINE", "EspeakEngine"]

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_CHARS_UTF8 = 1
_ESPEAK_RATE = 1
_ESPEAK_PITCH = 3
_BUFFER_MS = 60  # size of the blocks the callback receives

_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

Sink = Callable[[bytes], bool]
"""Receives each block of PCM; returns ``False`` to abort the synthesis."""

OnWord = Callable[[int, int, int], None]
"""Told of each word as espeak-ng places it: ``(first sample, first char, char after the end)``."""

_EVENT_WORD = 1  # espeakEVENT_WORD; a list of events ends with espeakEVENT_LIST_TERMINATED (0)


class _Event(ctypes.Structure):
    """``espeak_EVENT`` (speak_lib.h): for a word, ``text_position`` (1-based) and ``length`` in characters and
    ``sample``, the sample at which it starts in this synthesis."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]


class EspeakEngine:
    """The process's one espeak-ng instance, driven from one dedicated thread."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="espeak-ng")
        self._lib: Any = None
        self._callback: Any = None  # keep the ctypes thunk alive as long as the library may call it
        self._sink: Sink | None = None
        self._on_word: OnWord | None = None
        self._voice: tuple[str, int, int] | None = None
        self._init_lock = threading.Lock()
        self.sample_rate = 22050

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` on the espeak thread (after initialising the library there if needed)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._call, fn, args)

    def _call(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        self._ensure_loaded()
        return fn(*args)

    def _ensure_loaded(self) -> None:
        with self._init_lock:
            if self._lib is not None:
                return
            loader = require("espeakng_loader")
            lib = ctypes.CDLL(loader.get_library_path())
            lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
            lib.espeak_Initialize.restype = ctypes.c_int
            lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
            lib.espeak_SetVoiceByName.restype = ctypes.c_int
            lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
            lib.espeak_SetParameter.restype = ctypes.c_int
            lib.espeak_SetSynthCallback.argtypes = [_Callback]
            lib.espeak_SetSynthCallback.restype = None
            lib.espeak_Synth.argtypes = [
                ctypes.c_char_p,
                ctypes.c_size_t,
                ctypes.c_uint,
                ctypes.c_int,
                ctypes.c_uint,
                ctypes.c_uint,
                ctypes.c_void_p,
                ctypes.c_void_p,
            ]
            lib.espeak_Synth.restype = ctypes.c_int
            data_dir = os.path.dirname(loader.get_data_path())  # the folder that holds espeak-ng-data/
            rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, data_dir.encode(), 0)
            if rate <= 0:
                raise RuntimeError(f"espeak-ng failed to initialise (data in {data_dir})")
            self._callback = _Callback(self._on_audio)
            lib.espeak_SetSynthCallback(self._callback)
            self.sample_rate = rate
            self._lib = lib

    def _on_audio(self, wav: Any, num_samples: int, events: Any) -> int:
        sink = self._sink
        if sink is None:
            return 1
        on_word = self._on_word
        if on_word is not None and events:
            event = ctypes.cast(events, ctypes.POINTER(_Event))
            i = 0
            while event[i].type != 0:
                if event[i].type == _EVENT_WORD:
                    start = event[i].text_position - 1
                    on_word(event[i].sample, start, start + event[i].length)
                i += 1
        if num_samples > 0 and wav and not sink(ctypes.string_at(wav, num_samples * 2)):
            return 1  # abort
        return 0

    # --- called on the espeak thread (through run) --------------------------------------------------------

    def set_voice(self, voice: str, rate: int, pitch: int) -> None:
        """Select a voice (e.g. ``"en-us"``), speed in words per minute and pitch (0-100)."""
        if self._voice == (voice, rate, pitch):
            return
        if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice named {voice!r}")
        self._lib.espeak_SetParameter(_ESPEAK_RATE, rate, 0)
        self._lib.espeak_SetParameter(_ESPEAK_PITCH, pitch, 0)
        self._voice = (voice, rate, pitch)

    def synth(self, text: str, voice: str, rate: int, pitch: int, sink: Sink, on_word: OnWord | None = None) -> None:
        """Synthesise ``text``, passing each block of Int16 PCM at :attr:`sample_rate` to ``sink`` (and, to
        ``on_word``, where each word starts)."""
        self.set_voice(voice, rate, pitch)
        data = text.encode("utf-8") + b"\0"
        self._sink, self._on_word = sink, on_word
        try:
            status = self._lib.espeak_Synth(data, len(data), 0, 0, 0, _ESPEAK_CHARS_UTF8, None, None)
        finally:
            self._sink = self._on_word = None
        if status != 0:  # EE_INTERNAL_ERROR (-1) or EE_NOT_FOUND (2); an abort by the sink still returns 0
            raise RuntimeError(f"espeak-ng failed to synthesise {text[:40]!r} (status {status})")


ENGINE = EspeakEngine()
