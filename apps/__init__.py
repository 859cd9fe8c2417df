"""Applications built on voxline: the reference voice agent (:mod:`voxline.apps.voice_agent`) and the CLI."""
