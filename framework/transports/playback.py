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
the end of its first chunk). The reference is realigned only by a lag that persisted (below), which is then
no longer counted among the corrections it was not told of. The first correction of a run of back-to-back audio (the
client's jitter buffer, at its start) moves the whole run, from its start (``since``), not only what had not played,
and at once.

The reference follows only a lag that *persists*: every report of the last ``realign_window`` seconds (1.5 s,
three times ``lag_window``) must put the client behind the reference by ``tolerance`` or more (or all ahead by
as much), and the reference is moved by the smallest of them. The position (what the user has heard) follows
the faster estimate. Why the two differ: a wrong position costs a word of heard text; every move of the
reference is a seam, and a lag the client makes up within a second (a stall and a catch-up: seen under load,
where the clock followed +0.23 to +0.42 s and then undid it in steps of -0.03 to -0.11 s) costs two or more
seams for nothing. A lag the reference has not followed is harmless while it is small: the echo detector
searches delays up to 0.4 s, and finds the echo that much later, without a seam.

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
    ``realign_window``: seconds for which a lag must persist before the listener's reference follows it.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] | None = None,
        tolerance: float = 0.03,
        lag_window: float = 0.5,
        realign_window: float = 1.5,
    ) -> None:
        self.clock = clock or _monotonic
        self.tolerance = tolerance
        self.lag_window = lag_window
        self.realign_window = realign_window
        self._lags: list[tuple[float, float]] = []  # (when, lag) of recent reports, against the current estimate
        self._ref_lags: list[tuple[float, float]] = []  # (when, lag) of recent reports, against the reference
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
        self._ref_lags.clear()
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
            self._ref_lags.clear()
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
        self._ref_lags.clear()
        if self.listener is not None:
            self.listener.resume(now)
        if abs(self._untold) >= self.tolerance:  # the reference has a seam here anyway: the resume
            self._realign(now, self._untold)

    def stop(self) -> None:
        """An interrupt: the client flushes what it had not played."""
        now = self.clock()
        self.epoch, self.sent, self._paused_ahead = None, 0.0, None
        self.end = min(self.end, now)
        self._lags.clear()
        self._ref_lags.clear()
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
            self._ref_lags.clear()
            return True
        self._lags = _window(self._lags, now, self.lag_window)
        self._lags.append((now, self.position(now) - played))  # > 0: the client is behind the estimate
        self._ref_lags = _window(self._ref_lags, now, self.realign_window)
        self._ref_lags.append((now, self._lags[-1][1] + self._untold))  # the reference ends ``_untold`` earlier
        lag = min(lag for _, lag in self._lags)  # time in transit only ever adds to a report's lag
        if lag != 0.0:
            self.end += lag
            self._untold += lag
            self._lags = [(t, earlier - lag) for t, earlier in self._lags]  # against the corrected estimate
        self._tell(now)
        self._run_checked = True
        return True

    def _tell(self, now: float) -> None:
        """Realign the listener's reference: at the first report of a run by the correction (from the run's
        start), later by a lag that persisted over ``realign_window`` (see the module docstring)."""
        if self._paused_ahead is not None:
            return
        if not self._run_checked:  # a run no report had checked yet is late (or early) from its start
            if abs(self._untold) >= self.tolerance:
                self._realign(now, self._untold, self._run_start)
            return
        if not self._ref_lags or now - self._ref_lags[0][0] < self.realign_window:
            return  # not yet a window's worth of reports
        lags = [lag for _, lag in self._ref_lags]
        low, high = min(lags), max(lags)
        if low >= self.tolerance:
            self._realign(now, low)
        elif high <= -self.tolerance:
            self._realign(now, high)

    def _realign(self, now: float, lag: float, since: float | None = None) -> None:
        self._untold -= lag
        self._ref_lags = [(t, earlier - lag) for t, earlier in self._ref_lags]
        self.last_lag = lag
        if self.listener is not None:
            self.listener.realign(now, lag, since)

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


def _window(reports: list[tuple[float, float]], now: float, seconds: float) -> list[tuple[float, float]]:
    """The reports of the last ``seconds``, and the last one read before them.

    That one too: a stall of the server's event loop reads no report for a while, then a burst of stale ones at
    once, which must be judged against a report that was read in time (without it the first of the burst would
    be the whole window, and applied)."""
    recent = [i for i, (t, _) in enumerate(reports) if now - t <= seconds]
    return reports[max(0, (recent[0] if recent else len(reports)) - 1) :]


def _monotonic() -> float:
    """``time.monotonic()`` looked up at each call, not bound once: a replay's virtual clock replaces it."""
    return time.monotonic()
