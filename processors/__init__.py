"""voxline's providers and local engines: the processors that talk to a service or run a model.

Each provider package (``deepgram``, ``gemini``, ``openai_compat``, ``local``) holds its stages and a
``provider.py`` declaring them for the voice agent; :mod:`voxline.processors.registry` lists the declarations.
``vad`` is Silero voice activity detection for any STT; ``turns`` holds end-of-turn models.
"""
