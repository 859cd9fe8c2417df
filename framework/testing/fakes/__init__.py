"""Faithful fake provider servers on 127.0.0.1, for testing voice pipelines offline with the real SDKs.

* :mod:`voxline.testing.fakes.deepgram` — live STT and Aura TTS (``FakeDeepgram``).
* :mod:`voxline.testing.fakes.gemini` — Gemini ``streamGenerateContent`` over SSE (``FakeGemini``).
* :mod:`voxline.testing.fakes.openai` — OpenAI-compatible chat completions over SSE (``FakeOpenAI``).

Each runs in the test's event loop (``async with``) or in a background thread, records what it received, and
can be scripted to misbehave (errors, dropped connections, stalls). Each refuses what its provider refuses —
the rules are small pure modules in :mod:`voxline.testing.fakes.rules`, each citing its source — so a request the
real service would answer with 400 (or a WebSocket close) fails the test instead of passing. Import the module
you need: this package imports nothing itself, so using one fake does not load the others.
"""
