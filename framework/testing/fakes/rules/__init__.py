"""What the real services refuse, as small pure checks the fake servers run on every request.

One module per API — :mod:`.gemini` (and :mod:`.gemini_tools`, its function calling), :mod:`.openai`,
:mod:`.deepgram_listen`, :mod:`.deepgram_speak` — each a set
of functions that take what a client sent (a parsed body, a query, a message) and raise :class:`Refusal` (an
HTTP error) or :class:`Close` (a WebSocket close) exactly where the provider would. They know nothing about
sockets, so they are tested on their own, and the fakes' plumbing only calls them. Every rule names its source
in a comment: a documentation page, or an error the live service was observed to return. Where a fake is
stricter or looser than the service, the comment says so and why.

These tables are written from the providers' documents independently of the processors' own tables (e.g.
``voxline.processors.gemini.models``): a fake that imported the code under test would only prove that the code
agrees with itself.
"""

from __future__ import annotations

__all__ = ["Close", "Refusal"]


class Refusal(Exception):
    """An HTTP error the service answers with: ``status``, its ``message``, an optional ``code`` and ``param``."""

    def __init__(self, status: int, message: str, *, code: str = "", param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param


class Close(Exception):
    """A WebSocket close the service ends a session with: ``code`` and ``reason`` (e.g. 1008 ``DATA-0000``)."""

    def __init__(self, code: int, reason: str, description: str = "") -> None:
        super().__init__(f"{code} {reason}: {description}" if description else f"{code} {reason}")
        self.code = code
        self.reason = reason
        self.description = description
