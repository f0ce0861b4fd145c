"""Start the simulated phone and a private adb server, and read the phone's state: the oracle
of Android tests and mobile scenarios.

``PhoneFixture`` runs ``python -m pixelpilot.scenarios.phone_server`` (the device side of adb's
protocol in front of ``phone_app``), starts the real ``adb`` binary as a private server on a
free port (``adb -P PORT nodaemon server``, so tests never touch a user's adb server on 5037)
and ``adb connect``s the phone to it::

    with PhoneFixture(start="signin") as phone, AndroidDevice(**phone.device_kwargs()) as dev:
        dev.execute(Tap(point=Point(x=360, y=296, space="screen_px")))
        phone.wait_for(lambda s: s["focus"] == "name")

Several phones may share one ``AdbServer`` (``PhoneFixture(adb=server)``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import IO, Any, Literal

import adbutils

from pixelpilot.agent.errors import DeviceError
from pixelpilot.scenarios.fixture import StateTimeout
from pixelpilot.scenarios.phone_app import APPS
from pixelpilot.tools._process import terminate
from pixelpilot.tools.android import adb_client, find_adb

__all__ = ["AdbServer", "PhoneFixture", "StateTimeout"]

State = dict[str, Any]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class AdbServer:
    """The real adb binary as a private server on its own port; a context manager."""

    def __init__(self, adb_path: str | None = None, port: int | None = None) -> None:
        self.adb_path = find_adb(adb_path)
        self.port = port or _free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, timeout: float = 15.0) -> AdbServer:
        if self._proc is not None:
            return self
        self._log = tempfile.TemporaryFile(prefix="adb-server-")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            [self.adb_path, "-P", str(self.port), "nodaemon", "server"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.client().server_version()
                return self
            except adbutils.AdbError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    log = self.log()
                    self.stop()
                    raise DeviceError(
                        f"the adb server ({self.adb_path}) did not start: {log}"
                    ) from None
                time.sleep(0.05)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def client(self) -> adbutils.AdbClient:
        return adb_client("127.0.0.1", self.port, timeout=10)

    def log(self, limit: int = 1500) -> str:
        if self._log is None:
            return "(none)"
        self._log.seek(0)
        return self._log.read().decode(errors="replace").strip()[-limit:] or "(empty)"

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        terminate(proc, timeout=3)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> AdbServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PhoneFixture:
    """The simulated phone, reachable as ``serial`` on an adb server; a context manager.

    ``start``: first screen (home, signin, shop, settings, notes). ``ime``: ADBKeyboard is
    'selected' (the current keyboard), only 'enabled', or 'none' (typing must fall back to
    ``input text``). ``adb``: an AdbServer to use (default: a private one for this phone); one
    that is already running is shared and left running, one started here is stopped here.
    """

    def __init__(
        self,
        start: str = "home",
        width: int = 720,
        height: int = 1280,
        density: int = 320,
        *,
        ime: Literal["selected", "enabled", "none"] = "selected",
        adb: AdbServer | None = None,
        adb_path: str | None = None,
        ready_timeout: float = 15.0,
    ) -> None:
        self.start_screen, self.width, self.height, self.density = start, width, height, density
        self.ime = ime
        self.ready_timeout = ready_timeout
        self._own_adb = False
        self.adb = adb or AdbServer(adb_path)
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._tmpdir: str | None = None
        self.state_path = ""
        self.port = 0
        self.serial = ""
        self.started_in = 0.0

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> PhoneFixture:
        if self._proc is not None:
            return self
        t0 = time.perf_counter()
        self._tmpdir = tempfile.mkdtemp(prefix="pixelpilot-phone-")
        self.state_path = os.path.join(self._tmpdir, "state.json")
        argv = [
            sys.executable, "-m", "pixelpilot.scenarios.phone_server", "--port", "0",
            "--state", self.state_path, "--start", self.start_screen,
            "--width", str(self.width), "--height", str(self.height),
            "--density", str(self.density), "--ime", self.ime,
        ]  # fmt: skip
        self._log = tempfile.TemporaryFile(prefix="phone-")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log
        )
        try:
            self.port = int(self._wait(lambda s: bool(s.get("port")), self.ready_timeout)["port"])
            self.serial = f"127.0.0.1:{self.port}"
            self._own_adb = not self.adb.running  # stopped again by stop() if started here
            self.adb.start()
            self._connect()
        except BaseException:
            self.stop()
            raise
        self.started_in = time.perf_counter() - t0
        return self

    def _connect(self) -> None:
        client = self.adb.client()
        reply = client.connect(self.serial, timeout=self.ready_timeout)
        deadline = time.monotonic() + self.ready_timeout
        while True:
            states = {i.serial: i.state for i in client.list()}
            if states.get(self.serial) == "device":
                return
            if time.monotonic() > deadline:
                raise DeviceError(
                    f"adb did not see the phone {self.serial} as a device ({reply!r}; "
                    f"adb lists {states}); phone log: {self.stderr()}; adb log: {self.adb.log()}"
                )
            time.sleep(0.02)

    def device_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``AndroidDevice`` that reach this phone."""
        return {
            "serial": self.serial,
            "adb_port": self.adb.port,
            "adb_path": self.adb.adb_path,
            "apps": {label: pkg for pkg, (label, _) in APPS.items()},
        }

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Make the phone vanish (the process dies; adb notices the connection drop)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(sig)
            self._proc.wait(timeout=5)

    def stop(self) -> None:
        """Stop the phone (and the private adb server) and remove temporary files."""
        proc, self._proc = self._proc, None
        terminate(proc, timeout=3)
        if self._own_adb:
            self.adb.stop()
        elif self.serial:
            with contextlib.suppress(adbutils.AdbError, OSError):
                self.adb.client().disconnect(self.serial)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> PhoneFixture:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- state -----------------------------------------------------------------------------------
    def state(self) -> State:
        """The phone's last written state ({} before its first write)."""
        try:
            with open(self.state_path, encoding="utf-8") as f:
                return dict(json.load(f))
        except FileNotFoundError:
            return {}

    def wait_for(
        self, predicate: Callable[[State], bool], timeout: float = 3.0, interval: float = 0.01
    ) -> State:
        """Poll the state until ``predicate(state)`` holds; StateTimeout (an AssertionError)
        with the last state otherwise, DeviceError when the phone process exits meanwhile."""
        return self._wait(predicate, timeout, interval)

    def _wait(
        self, predicate: Callable[[State], bool], timeout: float, interval: float = 0.01
    ) -> State:
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            if state and predicate(state):
                return state
            if self._proc is None or self._proc.poll() is not None:
                code = None if self._proc is None else self._proc.returncode
                raise DeviceError(f"the phone server exited (code {code}): {self.stderr()}")
            if time.monotonic() >= deadline:
                brief = {k: v for k, v in state.items() if k not in ("boxes", "shell", "events")}
                raise StateTimeout(
                    f"phone did not reach the expected state within {timeout:g}s; "
                    f"last state: {json.dumps(brief, ensure_ascii=False)}"
                )
            time.sleep(interval)

    def stderr(self, limit: int = 2000) -> str:
        """The tail of the phone server's output."""
        if self._log is None:
            return "(none)"
        self._log.seek(0)
        return self._log.read().decode(errors="replace").strip()[-limit:] or "(empty)"

    def center(self, widget: str) -> tuple[int, int]:
        """Centre pixel of a widget on the current screen (from the state's boxes)."""
        boxes = self.state().get("boxes", {})
        if widget not in boxes:
            raise KeyError(f"no widget {widget!r}; the screen has: {', '.join(sorted(boxes))}")
        x, y, w, h = boxes[widget]
        return x + w // 2, y + h // 2
