"""What every provider stage uses to talk to its service, each concern in one place.

* :mod:`voxline.providers.backoff` — :class:`Backoff`, the one retry-delay rule (LLM retries, socket reconnects).
* :mod:`voxline.providers.redaction` — the process-wide secret redactor: stages register keys, error messages
  and log lines (the app's log filter included) are scrubbed by it.
* :mod:`voxline.providers.socket` — :class:`ProviderSocket`, one reconnecting provider WebSocket (connect on
  demand, keepalive, backoff, replay hook, close reasons, slow retry after a rejected key).
* :mod:`voxline.providers.clients` — SDK clients and SSL contexts shared per process, and
  :func:`aclose_shared` for the app's shutdown.
"""
