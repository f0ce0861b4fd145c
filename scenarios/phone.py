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
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import IO, Any, Literal

import adbutils

from pixelpilot.agent.errors import DeviceError
from pixelpilot.scenarios._state_process import StateProcess, StateTimeout
from pixelpilot.scenarios.phone_app import APPS
from pixelpilot.tools._process import terminate
from pixelpilot.tools.android import adb_client, find_adb

__all__ = ["AdbServer", "PhoneFixture", "StateTimeout"]


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


class PhoneFixture(StateProcess):
    """The simulated phone, reachable as ``serial`` on an adb server; a context manager.

    ``start``: first screen (home, signin, shop, settings, notes). ``ime``: ADBKeyboard is
    'selected' (the current keyboard), only 'enabled', or 'none' (typing must fall back to
    ``input text``). ``adb``: an AdbServer to use (default: a private one for this phone); one
    that is already running is shared and left running, one started here is stopped here.
    """

    label = "the phone server"
    bulky = ("boxes", "shell", "events")

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
        super().__init__()
        self.start_screen, self.width, self.height, self.density = start, width, height, density
        self.ime = ime
        self.ready_timeout = ready_timeout
        self._own_adb = False
        self.adb = adb or AdbServer(adb_path)
        self.port = 0
        self.serial = ""

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> PhoneFixture:
        if self._proc is not None:
            return self
        t0 = time.perf_counter()
        self._temp_state("pixelpilot-phone-")
        argv = [
            sys.executable, "-m", "pixelpilot.scenarios.phone_server", "--port", "0",
            "--state", self.state_path, "--start", self.start_screen,
            "--width", str(self.width), "--height", str(self.height),
            "--density", str(self.density), "--ime", self.ime,
        ]  # fmt: skip
        self._spawn(argv)
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
        super().stop()
        if self._own_adb:
            self.adb.stop()
        elif self.serial:
            with contextlib.suppress(adbutils.AdbError, OSError):
                self.adb.client().disconnect(self.serial)
