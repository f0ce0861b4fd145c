"""Start a real desktop program (mousepad, xterm, Chromium) for a scenario, isolated from the
user's own session, and wait until its window is shown.

Each ``LaunchedApp`` gets a fresh temporary root: ``work/`` is its current directory (and the
``{workdir}`` placeholder in its command, and where ``file`` checks look), ``home/`` its HOME
(``{home}``)
with its own XDG config, data, cache and state directories, so no setting, recent file or
profile of the user's leaks in or is changed. The environment also has:

- ``GSETTINGS_BACKEND=memory``: GTK apps keep settings in memory (no dconf to write to);
- ``DBUS_SESSION_BUS_ADDRESS`` pointing at no bus: a GApplication such as mousepad would
  otherwise hand its window to an instance already running on the user's bus and exit;
- ``NO_AT_BRIDGE=1``: no accessibility-bus warnings;
- ``LANG``/``LC_ALL=C.UTF-8``: a terminal and its shell read the typed UTF-8 as UTF-8.

The program runs in its own process group, which ``stop`` ends (Chromium's renderers included).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Self

from pixelpilot.agent.errors import ConfigError, DeviceError
from pixelpilot.tools.x11_windows import WindowInfo, WindowSpec, X11Windows

__all__ = ["LaunchedApp"]


class LaunchedApp:
    """A program on an X display in a fresh work directory, ready once ``ready_window`` is
    shown (a window spec, see ``x11_windows``); a context manager."""

    label = "the program"

    def __init__(
        self,
        argv: Sequence[str],
        ready_window: str,
        *,
        display: str | None = None,
        timeout: float = 30.0,
        env: dict[str, str] | None = None,
    ) -> None:
        if not argv:
            raise ConfigError("launch: give the program to run")
        self.argv = list(argv)
        self.ready_window = WindowSpec.parse(ready_window)
        self.display = display
        self.timeout = timeout
        self.extra_env = dict(env or {})
        self.root: Path | None = None
        self.window: WindowInfo | None = None
        self.started_in = 0.0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def workdir(self) -> Path:
        """The program's current directory (``{workdir}``): where ``file`` checks look."""
        if self.root is None:
            raise DeviceError(f"{self.label} is not started")
        return self.root / "work"

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> Self:
        display = self.display or os.environ.get("DISPLAY")
        if not display:
            raise ConfigError("no X display: set DISPLAY or start one (pixelpilot.tools.xvfb)")
        self.display = display
        exe = shutil.which(self.argv[0])
        if exe is None:
            raise ConfigError(
                f"{self.argv[0]} is not installed; bash scripts/setup.sh --test installs it"
            )
        self.root = Path(tempfile.mkdtemp(prefix="pixelpilot-app-"))
        home = self.root / "home"
        for sub in ("work", "home/.config", "home/.local/share", "home/.cache", "home/.local/state"):
            (self.root / sub).mkdir(parents=True)
        env = {
            **os.environ,
            "DISPLAY": display,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local/share"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_STATE_HOME": str(home / ".local/state"),
            "GSETTINGS_BACKEND": "memory",
            "DBUS_SESSION_BUS_ADDRESS": f"unix:path={self.root / 'no-session-bus'}",
            "NO_AT_BRIDGE": "1",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            **self.extra_env,
        }
        fields = {"{workdir}": str(self.workdir), "{home}": str(home)}
        argv = [exe] + [_fill(a, fields) for a in self.argv[1:]]
        t0 = time.perf_counter()
        self._log = tempfile.TemporaryFile(prefix="pixelpilot-app-", suffix=".log")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            argv, cwd=self.workdir, env=env, stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=self._log, start_new_session=True,
        )  # fmt: skip
        try:
            self._ready(t0)
        except BaseException:
            self.stop()
            raise
        self.started_in = time.perf_counter() - t0
        return self

    def _ready(self, t0: float) -> None:
        """Wait for the program's window (subclasses wait for more)."""
        self.window = self._wait_window(t0)

    def _wait_window(self, t0: float) -> WindowInfo:
        windows = X11Windows(self.display or "")
        try:
            while True:
                self._check_running()
                try:
                    return windows.find(self.ready_window, timeout=0)
                except ConfigError as exc:
                    if time.perf_counter() - t0 > self.timeout:
                        raise DeviceError(
                            f"{self.label} ({self.argv[0]}) showed no window within "
                            f"{self.timeout:g} s: {exc}; its output: {self.output()}"
                        ) from None
                time.sleep(0.05)
        finally:
            windows.close()

    def _check_running(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            raise DeviceError(
                f"{self.label} ({self.argv[0]}) exited with code {self._proc.returncode}: "
                f"{self.output()}"
            )

    def output(self, limit: int = 600) -> str:
        """The tail of the program's stdout and stderr, on one line."""
        if self._log is None:
            return "(no output)"
        self._log.seek(0)
        text = self._log.read().decode(errors="replace").strip()
        return " | ".join(text.splitlines())[-limit:] or "(no output)"

    def stop(self) -> None:
        """End the program's process group (SIGTERM, then SIGKILL after 5 s); remove the
        temporary root. Safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            with contextlib.suppress(ProcessLookupError):  # children that outlived the leader
                os.killpg(proc.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None


def _fill(arg: str, fields: dict[str, str]) -> str:
    for key, value in fields.items():
        arg = arg.replace(key, value)
    return arg
