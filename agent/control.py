"""Human control of a running agent: a kill switch and a pause (take-over) switch.

A ``RunControl`` is flipped from any thread — the X11 hotkey listener
(``pixelpilot.tools.x11_hotkeys``), a UI, a signal handler — and read by the loop between the
stages of a step and by devices between the chunks of long actions (typing, drags, waits),
through ``check``:

- ``stop()``: ``check`` raises ``StoppedByUser``; the run ends at once with status ``error``,
  reason "stopped by user", every finished step (and the interrupted one) recorded.
- ``pause()``: ``check`` raises ``UserTookOver``; the action in progress is abandoned, the loop
  waits in ``wait_while_paused`` until ``resume()`` (or ``stop()``), then observes the screen
  afresh and tells the model the user took over. Time spent paused does not count against the
  run's time budget.
"""

from __future__ import annotations

import threading
import time

from pixelpilot.agent.errors import StoppedByUser, UserTookOver

STOPPED_REASON = "stopped by user"
TOOK_OVER_NOTE = "The user took over; the screen may have changed."


class RunControl:
    """Thread-safe kill and pause switches for one or more runs."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._stopped = False
        self._paused = False
        self._paused_since: float | None = None
        self.paused_seconds = 0.0
        """Total seconds spent paused so far."""

    @property
    def stopped(self) -> bool:
        return self._stopped

    @property
    def paused(self) -> bool:
        return self._paused

    def stop(self) -> None:
        """The kill switch: the run ends at the next check (it also ends a pause)."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def pause(self) -> None:
        """The user takes over: the agent stops acting at the next check."""
        with self._cond:
            if not self._paused:
                self._paused, self._paused_since = True, time.monotonic()
            self._cond.notify_all()

    def resume(self) -> None:
        """Hand control back to the agent."""
        with self._cond:
            if self._paused and self._paused_since is not None:
                self.paused_seconds += time.monotonic() - self._paused_since
            self._paused, self._paused_since = False, None
            self._cond.notify_all()

    def toggle_pause(self) -> None:
        """Pause when running, resume when paused (one hotkey does both)."""
        with self._cond:
            paused = self._paused
        self.resume() if paused else self.pause()

    def check(self) -> None:
        """Raise StoppedByUser or UserTookOver when a switch is flipped; cheap otherwise."""
        if self._stopped:
            raise StoppedByUser(STOPPED_REASON)
        if self._paused:
            raise UserTookOver("the user took over")

    def wait_while_paused(self) -> float:
        """Block while paused; the seconds waited. Raises StoppedByUser if stopped meanwhile."""
        t0 = time.monotonic()
        with self._cond:
            while self._paused and not self._stopped:
                self._cond.wait()
        if self._stopped:
            raise StoppedByUser(STOPPED_REASON)
        return time.monotonic() - t0

    def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` but raise at once when a switch is flipped meanwhile."""
        deadline = time.monotonic() + seconds
        with self._cond:
            while True:
                if self._stopped or self._paused:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(left)
        self.check()
