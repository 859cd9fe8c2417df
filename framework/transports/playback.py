"""Where the client's playback of the bot's audio is, on the server's clock.

The server sends audio faster than real time and the client plays it from a buffer, so "what has the user
heard?" needs a model of the client's player. :class:`PlaybackClock` keeps one per connection:

* every ``audio`` message sent adds its seconds to the *epoch* it belongs to, placed right after what is already
  queued (``max(now, end)``): the client plays chunks back to back, starting afresh when its queue ran dry;
* ``playback`` pause/resume (the turn engine holding the bot while it finds out whether the user is barging
  in) stop and restart that clock;
* an interrupt stops it: the client flushes what it had not played;
* the client's ``played`` reports (``{"epoch": E, "seconds": s}``: ``s`` seconds of epoch ``E``'s audio have
  played) re-anchor it, so the browser's jitter buffer, output latency and underruns are counted. A report is
  true when it is sent and read a little later: the time in transit (the network's jitter, a busy event loop)
  can only make the client look *behind*, never ahead. So the clock corrects by the smallest lag of the
  reports of the last ``lag_window`` seconds (a minimum filter, as clock synchronisation does), and a late
  report followed by timely ones moves nothing; a lag that lasts is applied once the window holds no earlier
  report. The window also keeps the last report read before it, so a stall of the server's own event loop
  (no report read for a while, then a burst of stale ones) is judged against a report read in time.
  (Correcting by every report moved the echo reference back and forth by each report's delay and broke the
  bot's echo into pieces the detector no longer recognised.) Clients that send none (the seed's) are followed
  on the server's clock alone.

The listener's reference stays *continuous* where the client's playback is: a correction under ``tolerance``
moves the position but not the reference, so audio queued behind it is placed right after the reference's own
end (``end`` minus the corrections it was not told of), not after the corrected ``end``. Placing it at the
corrected ``end`` left a gap or overlap of a millisecond or so at the next TTS piece, where the client played
on without a break; the echo detector correlates sample by sample, so a window across that seam matched only
on one side of it (the bot's echo at -6 dB read as 0.3-0.65 echo instead of 1.0, and interrupted the bot at
the end of its first chunk). Corrections add up; once they reach ``tolerance`` the reference is realigned by
their sum. The first correction of a run of back-to-back audio (the client's jitter buffer, at its start)
moves the whole run, from its start (``since``), not only what had not played.

Seconds are counted per epoch, from the epoch's first audio, like the TTS stage's record of which text each
stretch of its audio speaks: :meth:`PlaybackClock.position` is exactly what a ``BotHeardTextFrame`` carries.

A listener (the session's echo detector, :class:`voxline.turns.EchoDetector`) is told when each chunk plays,
so it can recognise the bot's own voice in the microphone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["PlaybackClock", "PlaybackListener"]


class PlaybackListener(Protocol):
    """Told what the client plays and when (times on the playback clock's ``clock``)."""

    def played(self, pcm: bytes, sample_rate: int, at: float) -> None: ...

    def stopped(self, at: float) -> None: ...

    def pause(self, at: float) -> None: ...

    def resume(self, at: float) -> None: ...

    def realign(self, at: float, lag: float, since: float | None = None) -> None: ...


class PlaybackClock:
    """The client's playback position per epoch; see the module docstring. Times are ``clock()`` seconds.

    ``tolerance``: a correction smaller than this only updates the position, not the listener's reference.
    ``lag_window``: seconds of reports whose smallest lag is the correction (see the module docstring).
    """

    def __init__(
        self, *, clock: Callable[[], float] | None = None, tolerance: float = 0.03, lag_window: float = 0.5
    ) -> None:
        self.clock = clock or _monotonic
        self.tolerance = tolerance
        self.lag_window = lag_window
        self._lags: list[tuple[float, float]] = []  # (when, lag) of recent reports, against the current estimate
        self.listener: PlaybackListener | None = None
        self.epoch: int | None = None
        """The epoch whose audio is being played (None: nothing since the last interrupt)."""
        self.sent = 0.0
        """Seconds of :attr:`epoch`'s audio sent."""
        self.end = 0.0
        """When the audio sent so far finishes playing (while not paused)."""
        self._paused_ahead: float | None = None  # seconds still to play when paused
        self.reports = 0
        """``played`` reports that were used (for the current epoch or earlier ones)."""
        self.last_lag = 0.0
        """The last correction the listener was told of: positive when the client was behind the estimate."""
        self._untold = 0.0  # corrections of ``end`` the listener was not told of: its reference ends at end - this
        self._run_start: float | None = None  # when the current run of back-to-back playback began
        self._run_checked = False  # a report has checked the current run (a later lag arose after its start)

    # --- what the server sends ---------------------------------------------------------------------------

    def begin(self, epoch: int) -> bool:
        """Audio of ``epoch`` is about to be sent; True when that is a new epoch (its seconds start at 0)."""
        if epoch == self.epoch:
            return False
        self.epoch, self.sent = epoch, 0.0
        self._lags.clear()
        return True

    def audio(self, epoch: int, pcm: bytes, sample_rate: int) -> float:
        """``pcm`` (mono Int16) of ``epoch`` was sent; returns when its first sample plays (paused: when the pause
        began)."""
        self.begin(epoch)
        now = self.clock()
        seconds = len(pcm) / (2 * sample_rate)
        self.sent += seconds
        if self._paused_ahead is not None:
            self._paused_ahead += seconds
            at = told = now
        elif now < self.end:  # queued behind what plays: right after it, in the listener's reference too
            at, told = self.end, self.end - self._untold
            self.end = at + seconds
        else:  # the queue ran dry: the client starts afresh
            at = told = now
            self.end = at + seconds
            self._untold, self._run_start, self._run_checked = 0.0, now, False
        if self.listener is not None:
            self.listener.played(pcm, sample_rate, told)
        return at

    def pause(self) -> None:
        if self._paused_ahead is not None:
            return
        now = self.clock()
        self._paused_ahead = max(0.0, self.end - now)
        if self.listener is not None:
            self.listener.pause(now)

    def resume(self) -> None:
        ahead, self._paused_ahead = self._paused_ahead, None
        if ahead is None:
            return
        now = self.clock()
        self.end = now + ahead
        self._lags.clear()
        if self.listener is not None:
            self.listener.resume(now)
        self._tell(now)

    def stop(self) -> None:
        """An interrupt: the client flushes what it had not played."""
        now = self.clock()
        self.epoch, self.sent, self._paused_ahead = None, 0.0, None
        self.end = min(self.end, now)
        self._lags.clear()
        self._untold = 0.0
        if self.listener is not None:
            self.listener.stopped(now)

    # --- what the client says ----------------------------------------------------------------------------

    def report(self, epoch: int, seconds: float) -> bool:
        """The client has played ``seconds`` of ``epoch``'s audio; False if that is not the epoch playing."""
        if epoch != self.epoch:
            return False
        self.reports += 1
        now = self.clock()
        played = min(max(0.0, seconds), self.sent)
        if self._paused_ahead is not None:
            self._untold += (self.sent - played) - self._paused_ahead  # told at the resume
            self._paused_ahead = self.sent - played
            return True
        if played >= self.sent - 1e-6:
            self.end = min(self.end, now)  # all of it has played (the client is not ahead of what it got)
            self._lags.clear()  # it ran dry: it starts the next audio after filling its buffer again
            return True
        # The window keeps the last report read before it too: a stall of the server's event loop reads no
        # report for a while, then a burst of stale ones at once, which must be judged against a report that was
        # read in time (without it the first of the burst would be the whole window, and applied).
        recent = [i for i, (t, _) in enumerate(self._lags) if now - t <= self.lag_window]
        self._lags = self._lags[max(0, (recent[0] if recent else len(self._lags)) - 1) :]
        self._lags.append((now, self.position(now) - played))  # > 0: the client is behind the estimate
        lag = min(lag for _, lag in self._lags)  # time in transit only ever adds to a report's lag
        if lag != 0.0:
            self.end += lag
            self._untold += lag
            self._lags = [(t, earlier - lag) for t, earlier in self._lags]  # against the corrected estimate
            self._tell(now)
        self._run_checked = True
        return True

    def _tell(self, now: float) -> None:
        """Realign the listener's reference once the corrections it was not told of reach the tolerance."""
        if abs(self._untold) < self.tolerance or self._paused_ahead is not None:
            return
        lag, self._untold = self._untold, 0.0
        self.last_lag = lag
        if self.listener is not None:  # a run no report had checked yet is late (or early) from its start
            self.listener.realign(now, lag, None if self._run_checked else self._run_start)

    # --- what the server asks ----------------------------------------------------------------------------

    @property
    def paused(self) -> bool:
        return self._paused_ahead is not None

    def ahead(self, now: float | None = None) -> float:
        """Seconds of sent audio not played yet."""
        if self._paused_ahead is not None:
            return self._paused_ahead
        return max(0.0, self.end - (self.clock() if now is None else now))

    def position(self, now: float | None = None) -> float:
        """Seconds of :attr:`epoch`'s audio played by ``now`` (default: now)."""
        return max(0.0, self.sent - self.ahead(now))


def _monotonic() -> float:
    """``time.monotonic()`` looked up at each call, not bound once: a replay's virtual clock replaces it."""
    return time.monotonic()
