"""Start a fixture app as a subprocess and read its JSON state: the oracle of desktop tests.

``FixtureApp`` runs ``python -m pixelpilot.scenarios.fixture_app`` (or any ``command`` that
writes the same kind of state file, with ``"ready": true`` once it can be used) on an X
display, waits until it is ready and terminates it on exit::

    with FixtureApp() as app:
        device.execute(Click(point=Point(x=..., y=..., space="screen_px")))
        app.wait_for(lambda s: s["submit_count"] == 1)
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence

from pixelpilot.agent.errors import ConfigError
from pixelpilot.scenarios._state_process import State, StateProcess, StateTimeout

__all__ = ["FixtureApp", "State", "StateTimeout"]


class FixtureApp(StateProcess):
    """A fixture app process on an X display, with its state file; a context manager.

    ``command`` may use the placeholders ``{state}``, ``{width}`` and ``{height}``; the default
    runs the Tk fixture app with this interpreter. ``display`` defaults to ``$DISPLAY``.
    """

    bulky = ("boxes", "item_boxes", "menu_entries")

    def __init__(
        self,
        state_path: str | os.PathLike[str] | None = None,
        width: int = 1280,
        height: int = 800,
        display: str | None = None,
        *,
        command: Sequence[str] | None = None,
        ready_timeout: float = 10.0,
    ) -> None:
        super().__init__()
        self.width, self.height = width, height
        self.display = display
        self.ready_timeout = ready_timeout
        self._given_path = os.fspath(state_path) if state_path is not None else None
        self._command = list(command) if command is not None else [
            sys.executable, "-m", "pixelpilot.scenarios.fixture_app",
            "--state", "{state}", "--width", "{width}", "--height", "{height}",
        ]  # fmt: skip
        self.state_path = self._given_path or ""

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> FixtureApp:
        """Start the app and wait until its state file says ready."""
        if self._proc is not None:
            return self
        display = self.display or os.environ.get("DISPLAY")
        if not display:
            raise ConfigError(
                "no X display: set DISPLAY or start one with pixelpilot.tools.xvfb.ensure_display"
            )
        self.display = display
        if self._given_path is None:
            self._temp_state("pixelpilot-fixture-")
        elif os.path.exists(self.state_path):
            os.remove(self.state_path)  # a stale file from an earlier run must not look ready
        fields = {"state": self.state_path, "width": self.width, "height": self.height}
        argv = [part.format(**fields) for part in self._command]
        t0 = time.perf_counter()
        self._spawn(argv, env={**os.environ, "DISPLAY": display})
        try:
            self._wait(lambda s: bool(s.get("ready")), self.ready_timeout, what="ready")
        except BaseException:
            self.stop()
            raise
        self.started_in = time.perf_counter() - t0
        return self

    @property
    def boxes(self) -> dict[str, list[int]]:
        """Widget boxes [x, y, w, h] in screen pixels."""
        return dict(self.state().get("boxes", {}))

    def element_boxes(self) -> dict[str, list[int]]:
        """Every element's box [x, y, w, h]: widgets, list items ("item:N"), menu entries."""
        state = self.state()
        out = dict(state.get("boxes", {}))
        out.update({f"item:{k}": v for k, v in state.get("item_boxes", {}).items()})
        out.update({f"menu:{k}": v for k, v in (state.get("menu_entries") or {}).items()})
        return out
