"""The voice agent's turn-taking: the turn engine put around whichever speech-to-text stage a session runs.

One place assembles it (docs/turn-taking.md), from the ``TURN_*`` settings
(:class:`~voxline.apps.voice_agent.turn_settings.TurnSettings`):

* :func:`with_turn_engine` — the STT stages a builder made, wrapped as
  ``SileroVAD(start 0.2 s, stop 0.2 s) → turns.tap → <STT> → TurnProcessor``. Silero VAD runs on every
  provider path (it dates the user's speech and tells the engine when it stops); the STT no longer emits
  speaking frames or asks its provider for VAD events (the VAD owns them); the VAD's own barge-in stays off (the
  engine owns barge-in). On Deepgram the engine asks for the final with ``Finalize`` when the user falls silent,
  a quiet room goes out in 100 ms messages and the user's speech in 60 ms ones (frame by frame while the bot
  speaks), and Deepgram writes the fillers
  ("um", ``filler_words=true``) that tell an unfinished turn. With the smart-turn model installed (and not turned
  off), the engine asks it too: by default (``TURN_SMART_TURN_DOUBT=auto``) on Deepgram only when the words leave
  the turn in doubt (:data:`DEEPGRAM_MODEL_DOUBT`), elsewhere at every pause. With whisper the engine waits longer
  for its final and reads its words differently (:func:`_whisper_endpointing`): no evidence from its full stops
  or its end of speech, none for finishing from a last word it doubts, and pocketsphinx's interim (when it gives
  the interims) as a second opinion.
* :func:`connect_turns` — per session: hands the engine's echo detector to the transport, whose output tells it
  what the client plays and when; returns the ``features`` the ``session`` message advertises.
* :func:`preload_turns` — at server start: Silero and the smart-turn model loaded once per process, so no
  session pays for them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any

import attrs
from voxline.apps.voice_agent.config import Settings
from voxline.apps.voice_agent.turn_settings import TurnSettings
from voxline.processor import Processor
from voxline.transports import WebSocketTransport

__all__ = ["TRANSPORT_FEATURES", "connect_turns", "preload_turns", "turn_params", "with_turn_engine"]

logger = logging.getLogger("voxline.apps.voice_agent.turns")

TRANSPORT_FEATURES = ("played", "playback", "binary_audio")
"""What every session's transport understands: the client's ``played`` reports, ``playback`` start/pause/resume,
raw binary microphone frames after ``config`` ``binary_audio`` (the bundled page opts in when it sees this)."""

SERVER_BARGE_IN = "server_barge_in"
"""Advertised when the turn engine runs: the server interrupts on the user's voice by itself (and ignores
backchannels and echo), so a client need not send ``interrupt`` when the user speaks."""

_FILLER_WORDS = {"additional_query_parameters": {"filler_words": "true"}}
"""Deepgram drops "um" and "uh" unless asked (https://developers.deepgram.com/docs/filler-words); deepgram-sdk 7
has no keyword for it, so it rides as an extra query parameter."""


WHISPER_FINAL_TIMEOUT = 2.5
"""How long the engine waits for whisper's final after the VAD's stop (the default, 0.4 s, suits streaming STTs).
Whisper transcribes the whole utterance only then (~0.3-0.5 s on a quiet machine, 0.6-1.6 s measured at load
2.5-4.5); giving up sooner answers the pocketsphinx interim instead, and the final that comes later was taken
for the next stretch's text (the user's words mixed up or lost), so the engine waits as long as its longest
endpointing delay. With whisper the engine also takes no evidence from a full stop (``full_stop_counts``):
whisper ends every transcript with one."""


WHISPER_MIN_CONFIDENCE = 0.55
"""Below this whisper's confidence in a transcript (exp of its mean token log-probability), its words do not
interrupt the bot. On a short "uh-huh" whisper makes up a sentence: "Thank you." 0.37-0.44, "you add." 0.48,
"Have a good one." 0.35, "And that's it." 0.53 on the flite voices, where the words it hears score 0.6-0.94
("Stop." 0.60-0.69, a whole barge-in 0.72-0.78). A thin margin, measured on synthetic voices: a curt "stop"
still interrupts on its interim (an urgent word), before whisper's final."""


WHISPER_DOUBTFUL_WORD = 0.5
"""A last word whisper gives a confidence below this (the lower of its probability for the word and for the whole
transcript) cannot make the turn read as finished (``TranscriptCompleteness(doubtful_below=...)``): whisper
completes a sentence it hears cut off, "call, uh, …" → "call us?" ("us" 0.22), "to the, um, …" → "to the
pump." (0.24), "a dragon and …" → "a dragon end." (0.29). Measured on the turn corpus (flite and piper voices):
the last words of complete questions 0.59-0.99."""


QUIET_MESSAGE_SECONDS = 0.1
"""Deepgram gets 100 ms messages (the most its docs allow) of a quiet room while the VAD says the user is not
speaking (``DeepgramSTT.quiet_message_seconds``): a fifth of the messages (each costs the SDK's framing, a mask and
a send call; docs/performance.md "Capacity"). Any louder frame goes at once with what was held: speech reaches
Deepgram as soon as before."""


SPEECH_MESSAGE_SECONDS = 0.06
"""While the VAD says the user speaks and the bot is silent, Deepgram gets 60 ms messages
(``DeepgramSTT.speech_message_seconds``; frame by frame while the bot speaks, where interims decide barge-in).
The VAD's stop sends what was held before the engine's ``Finalize``; the last words reach Deepgram at most 40 ms
later than frame by frame, inside the 200 ms the VAD waits before its stop, so the final is not later (with a
final 150 ms after the last voiced audio, as the benchmarks' fake answers, 100 ms messages could make it up to
30 ms later)."""


DEEPGRAM_MODEL_DOUBT = 0.6
"""On Deepgram the engine asks smart-turn only when some verdict could move the wait after the turn by more than
this (``TurnParams.model_doubt``; ``TURN_SMART_TURN_DOUBT=auto``). Deepgram punctuates (smart_format) and writes
fillers: a turn ending in "for" or "um" waits the longest whatever the model says; one ending in "?" or "." is
answered after the minimum wait unless the model is almost sure it is unfinished, which on this path moves it by
at most 0.585 s (2.5 - 2.4 log-odds: 0.94 s instead of 0.35 s), and which the model said mostly of finished
questions in synthetic voices. The turns left in doubt (no punctuation, a trailing comma, one word) still ask.
Measured on the cloud turn benchmark and the capacity benchmark: docs/performance.md "Capacity"."""


class TurnWiringError(RuntimeError):
    """The turn engine cannot be built as configured (the message says why)."""


def turn_params(turns: TurnSettings, language: str = "en") -> Any:
    """The engine's :class:`~voxline.turns.TurnParams` from the settings."""
    from voxline.turns import TurnParams

    unsure = min(max(1.0, turns.min_endpointing_secs), turns.max_endpointing_secs)
    return TurnParams(
        min_interruption_duration=turns.min_interruption_secs,
        min_interruption_words=turns.min_interruption_words,
        backchannels=turns.backchannels or None,
        false_interruption_timeout=turns.false_interruption_timeout,
        min_endpointing_delay=turns.min_endpointing_secs,
        unsure_endpointing_delay=unsure,
        max_endpointing_delay=turns.max_endpointing_secs,
        language=language.split("-")[0].lower() or "en",
    )


def with_turn_engine(stt_stages: Sequence[Processor], settings: Settings) -> list[Processor]:
    """``stt_stages`` (a builder's speech-to-text stages, a VAD of its own included) inside the turn engine."""
    turns = settings.turns
    if not turns.enabled:
        return list(stt_stages)
    from voxline.processors.vad import SileroVAD, VADParams
    from voxline.stt import STTProcessor
    from voxline.turns import EchoDetector, TurnProcessor

    params = turn_params(turns, _language(settings))
    stages = [stage for stage in stt_stages if not isinstance(stage, SileroVAD)]  # ours replaces it
    finalizer: Any = None
    deepgram = sys.modules.get("voxline.processors.deepgram.stt")  # loaded if (and only if) a stage uses it
    whisper = sys.modules.get("voxline.processors.local.whisper")
    whisper_stt = whisper is not None and any(isinstance(stage, whisper.WhisperSTT) for stage in stages)
    if whisper_stt:
        params = attrs.evolve(
            params,
            final_timeout=max(params.final_timeout, WHISPER_FINAL_TIMEOUT),
            full_stop_counts=False,
            min_word_confidence=max(params.min_word_confidence, WHISPER_MIN_CONFIDENCE),
        )
    for stage in stages:
        if isinstance(stage, STTProcessor):
            stage.speaking_frames = False  # the VAD dates the user's speech
        if deepgram is not None and isinstance(stage, deepgram.DeepgramSTT):
            stage.vad_events = False
            stage.quiet_message_seconds = QUIET_MESSAGE_SECONDS
            stage.speech_message_seconds = SPEECH_MESSAGE_SECONDS
            extra = dict(stage.options.get("request_options") or {})
            query = {**_FILLER_WORDS["additional_query_parameters"], **extra.get("additional_query_parameters", {})}
            stage.options["request_options"] = {**extra, "additional_query_parameters": query}
            finalizer = stage  # Finalize on the engine's decision: the final comes in ~100 ms
    doubt = turns.smart_turn_doubt
    if doubt == "auto":
        doubt = str(DEEPGRAM_MODEL_DOUBT) if finalizer is not None else "always"
    params = attrs.evolve(params, model_doubt=None if doubt == "always" else float(doubt))
    model = _model(turns.smart_turn)
    pocketsphinx_interims = any(getattr(stage, "interims", None) == "pocketsphinx" for stage in stages)
    endpointing = _whisper_endpointing(params, model, second_opinion=pocketsphinx_interims) if whisper_stt else None
    engine = TurnProcessor(
        params=params,
        endpointing=endpointing,
        model=model,
        stt=finalizer,
        echo=EchoDetector(threshold=turns.echo_threshold),
    )
    vad = SileroVAD(params=VADParams(start_secs=params.vad_start_secs, stop_secs=params.vad_stop_secs))
    return [vad, engine.tap, *stages, engine]


def _whisper_endpointing(params: Any, model: Any, *, second_opinion: bool = True) -> list[Any]:
    """The endpointing strategies with whisper: its words, unless it doubts the last one or pocketsphinx's interim
    (``second_opinion``) heard them end unfinished; the model's verdict. No ``STTEndOfSpeech``: whisper's final
    always says end of speech, restating the VAD's stop."""
    from voxline.turns.strategies import ModelVerdict, TranscriptCompleteness

    words = TranscriptCompleteness(
        full_stop=params.full_stop_counts, doubtful_below=WHISPER_DOUBTFUL_WORD, second_opinion=second_opinion
    )
    return [words, ModelVerdict()] if model is not None else [words]


def _language(settings: Settings) -> str:
    """``STT_LANGUAGE`` (declared by the Deepgram provider) picks the word lists; "en" in a registry without it."""
    from voxline.processors.deepgram.provider import STT_LANGUAGE

    if STT_LANGUAGE not in settings.values:
        return "en"
    return settings.values[STT_LANGUAGE]


def _model(choice: str) -> Any:
    if choice == "off":
        return None
    try:
        from voxline.processors.turns import SmartTurnModel

        return SmartTurnModel()
    except ImportError as exc:
        if choice == "on":
            raise TurnWiringError(f"TURN_SMART_TURN=on, but {exc}") from exc
        _note_missing_model(str(exc))
        return None


_noted: list[str] = []


def _note_missing_model(reason: str) -> None:
    if not _noted:
        _noted.append(reason)
        logger.info("turn-taking without the smart-turn model (%s); the words and the VAD decide", reason)


def connect_turns(transport: WebSocketTransport, processors: Sequence[Processor]) -> list[str]:
    """Hand the session's echo detector to its transport; return the features its ``session`` message names."""
    from voxline.turns import TurnProcessor

    engine = next((p for p in processors if isinstance(p, TurnProcessor)), None)
    if engine is None:
        return list(TRANSPORT_FEATURES)
    transport.attach_echo(engine.echo)
    return [*TRANSPORT_FEATURES, SERVER_BARGE_IN]


async def preload_turns(settings: Settings) -> None:
    """Load Silero and the smart-turn model once for the process (at server start, off the event loop)."""
    if not settings.turns.enabled:
        return
    from voxline.processors.local import preload

    await preload(stt=False, vad=True, tts=False)
    model = _model(settings.turns.smart_turn)
    if model is not None:
        await model.warm_up()
        logger.info("smart-turn end-of-turn model loaded")
