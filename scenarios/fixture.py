"""Start a fixture app as a subprocess and read its JSON state: the oracle of desktop tests.

``FixtureApp`` runs ``python -m pixelpilot.scenarios.fixture_app`` (or any ``command`` that
writes the same kind of state file, with ``"ready": true`` once it can be used) on an X
display, waits until it is ready and terminates it on exit::

    with FixtureApp() as app:
        device.execute(Click(point=Point(x=..., y=..., space="screen_px")))
        app.wait_for(lambda s: s["submit_count"] == 1)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import IO, Any

from pixelpilot.agent.errors import ConfigError, DeviceError
from pixelpilot.tools._process import terminate

__all__ = ["FixtureApp", "StateTimeout"]

State = dict[str, Any]


class StateTimeout(AssertionError, TimeoutError):
    """The app's state did not satisfy a predicate in time (a test failure, not an error)."""


class FixtureApp:
    """A fixture app process on an X display, with its state file; a context manager.

    ``command`` may use the placeholders ``{state}``, ``{width}`` and ``{height}``; the default
    runs the Tk fixture app with this interpreter. ``display`` defaults to ``$DISPLAY``.
    """

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
        self.width, self.height = width, height
        self.display = display
        self.ready_timeout = ready_timeout
        self._given_path = os.fspath(state_path) if state_path is not None else None
        self._command = list(command) if command is not None else [
            sys.executable, "-m", "pixelpilot.scenarios.fixture_app",
            "--state", "{state}", "--width", "{width}", "--height", "{height}",
        ]  # fmt: skip
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._tmpdir: str | None = None
        self.state_path = self._given_path or ""
        self.started_in = 0.0

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
            self._tmpdir = tempfile.mkdtemp(prefix="pixelpilot-fixture-")
            self.state_path = os.path.join(self._tmpdir, "state.json")
        elif os.path.exists(self.state_path):
            os.remove(self.state_path)  # a stale file from an earlier run must not look ready
        fields = {"state": self.state_path, "width": self.width, "height": self.height}
        argv = [part.format(**fields) for part in self._command]
        self._log = tempfile.TemporaryFile(prefix="fixture-", suffix=".log")  # noqa: SIM115 - closed in stop()
        t0 = time.perf_counter()
        self._proc = subprocess.Popen(
            argv,
            env={**os.environ, "DISPLAY": display},
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        try:
            self._wait(lambda s: bool(s.get("ready")), self.ready_timeout, what="ready")
        except BaseException:
            self.stop()
            raise
        self.started_in = time.perf_counter() - t0
        return self

    def stop(self) -> None:
        """Terminate the app (SIGTERM, then SIGKILL after 3 s) and remove temporary files."""
        proc, self._proc = self._proc, None
        terminate(proc, timeout=3)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> FixtureApp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- state -----------------------------------------------------------------------------------
    def state(self) -> State:
        """The app's last written state ({} before its first write)."""
        try:
            with open(self.state_path, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def wait_for(
        self, predicate: Callable[[State], bool], timeout: float = 3.0, interval: float = 0.01
    ) -> State:
        """Poll the state until ``predicate(state)`` holds; return that state.

        Raises StateTimeout (an AssertionError) with the last state when it does not hold in
        ``timeout`` seconds, DeviceError when the app exits meanwhile.
        """
        return self._wait(predicate, timeout, interval=interval)

    def _wait(
        self,
        predicate: Callable[[State], bool],
        timeout: float,
        interval: float = 0.01,
        what: str = "the expected state",
    ) -> State:
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            if state and predicate(state):
                return state
            if self._proc is None or self._proc.poll() is not None:
                code = None if self._proc is None else self._proc.returncode
                raise DeviceError(f"the fixture app exited (code {code}): {self.stderr()}")
            if time.monotonic() >= deadline:
                raise StateTimeout(
                    f"fixture app did not reach {what} within {timeout:g}s; "
                    f"stderr: {self.stderr()}; last state: {json.dumps(_brief(state))}"
                )
            time.sleep(interval)

    def stderr(self, limit: int = 2000) -> str:
        """The tail of the app's combined stdout and stderr."""
        if self._log is None:
            return "(none)"
        self._log.seek(0)
        text = self._log.read().decode(errors="replace").strip()
        return text[-limit:] or "(empty)"

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

    def box(self, name: str) -> list[int]:
        boxes = self.boxes
        if name not in boxes:
            raise KeyError(f"no widget {name!r}; the app has: {', '.join(sorted(boxes))}")
        return boxes[name]

    def center(self, name: str) -> tuple[int, int]:
        """Centre pixel of widget ``name``."""
        x, y, w, h = self.box(name)
        return x + w // 2, y + h // 2


def _brief(state: State) -> State:
    """The state without its bulky geometry, for error messages."""
    return {k: v for k, v in state.items() if k not in ("boxes", "item_boxes", "menu_entries")}
