"""A private X server (Xvfb) for desktop targets on machines without a screen.

``VirtualDisplay`` starts Xvfb on a display number Xvfb picks itself (``-displayfd``: the
server writes the number to a pipe once it accepts connections, so there is no polling and no
race with other servers), listens on the local socket only (``-nolisten tcp``) and stops it
cleanly. ``ensure_display`` reuses ``$DISPLAY`` when one is set and starts a private server
otherwise.

Each server started here requires a random MIT-MAGIC-COOKIE (like ``xvfb-run``), so other
local users cannot connect to it. The cookies live in one private Xauthority file per process
(``VirtualDisplay.env`` names it; ``ensure_display`` exports it while its server runs), never
in ``~/.Xauthority``. ``ensure_xauthority`` makes sure some Xauthority file exists for displays
started elsewhere: python-xlib (and so pyautogui) refuses to connect without one.

``wm="openbox"`` also runs a window manager on the server, so windows get decorations, focus
and stacking as on a desktop (dialogs over their parent, a click focuses and raises). It uses
pixelpilot's own openbox configuration (``data/openbox-rc.xml``): openbox's defaults, minus
every key binding, so no key the agent presses is taken by the window manager.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Literal

from pixelpilot.agent.errors import ConfigError, DeviceError
from pixelpilot.tools._process import terminate

__all__ = [
    "VirtualDisplay",
    "default_wm",
    "ensure_display",
    "ensure_xauthority",
    "xvfb_available",
]

INSTALL_HINT = "install it with: apt-get install xvfb xauth"
WindowManager = Literal["openbox"]
OPENBOX_RC = Path(__file__).parent / "data" / "openbox-rc.xml"


def default_wm() -> WindowManager | None:
    """The window manager virtual displays get: openbox when installed (scripts/setup.sh
    installs it), else none."""
    return "openbox" if shutil.which("openbox") else None


def xvfb_available() -> bool:
    """True when the Xvfb binary is on PATH."""
    return shutil.which("Xvfb") is not None


def ensure_xauthority() -> str:
    """Make sure ``$XAUTHORITY`` (or ``~/.Xauthority``) names an existing file; return its path.

    When neither exists, an empty private file in the temp directory is created and
    ``XAUTHORITY`` is pointed at it. Xvfb started here uses no cookies, so an empty file is
    enough; python-xlib only needs to be able to open it.
    """
    current = os.environ.get("XAUTHORITY")
    if current:
        if os.path.isfile(current):
            return current
        with contextlib.suppress(OSError):
            open(current, "ab").close()  # noqa: SIM115 - touch the file the user named
            return current
    else:
        home = os.path.expanduser("~/.Xauthority")
        if os.path.isfile(home):
            return home
    path = os.path.join(tempfile.gettempdir(), f"pixelpilot-{os.getuid()}.Xauthority")
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)
    os.environ["XAUTHORITY"] = path
    return path


_AUTH_FILE: str | None = None
_AUTH_PREFIX = "pixelpilot-xauth-"


def _auth_file() -> str:
    """The private Xauthority file for the servers this process starts (created once; a child
    process started with it in XAUTHORITY keeps using its parent's)."""
    global _AUTH_FILE
    inherited = os.environ.get("XAUTHORITY", "")
    if _AUTH_FILE is None and _AUTH_PREFIX in inherited and os.path.isfile(inherited):
        _AUTH_FILE = inherited
    if _AUTH_FILE is None:
        folder = tempfile.mkdtemp(prefix=_AUTH_PREFIX)
        _AUTH_FILE = os.path.join(folder, "Xauthority")
        os.close(os.open(_AUTH_FILE, os.O_CREAT | os.O_WRONLY, 0o600))
        atexit.register(shutil.rmtree, folder, True)
    return _AUTH_FILE


def _add_cookie(auth_file: str, display: str, cookie: str) -> None:
    xauth = shutil.which("xauth")
    if xauth is None:
        raise ConfigError(f"xauth is not installed; {INSTALL_HINT}")
    subprocess.run(
        [xauth, "-q", "-f", auth_file, "add", display, "MIT-MAGIC-COOKIE-1", cookie],
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


class VirtualDisplay:
    """An Xvfb server of ``width`` x ``height`` at ``depth`` bits; a context manager.

    ``display`` is its name (":N") once started. Raises ConfigError when Xvfb is not installed
    and DeviceError (with Xvfb's own message) when it fails to start within ``timeout``.
    """

    def __init__(
        self,
        width: int = 1280,
        height: int = 800,
        depth: int = 24,
        *,
        timeout: float = 10.0,
        extra_args: tuple[str, ...] = (),
        wm: WindowManager | None = None,
    ) -> None:
        if width <= 0 or height <= 0 or depth not in (8, 16, 24, 32):
            raise ConfigError(f"bad virtual display {width}x{height}x{depth}")
        if wm not in (None, "openbox"):
            raise ConfigError(f"unknown window manager {wm!r}; pixelpilot runs openbox")
        self.width, self.height, self.depth = width, height, depth
        self.timeout = timeout
        self.extra_args = tuple(extra_args)
        self.wm = wm
        self._wm_proc: subprocess.Popen[bytes] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._number: int | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> VirtualDisplay:
        """Start Xvfb and return once it accepts connections."""
        if self._proc is not None:
            return self
        exe = shutil.which("Xvfb")
        if exe is None:
            raise ConfigError(f"Xvfb is not installed; {INSTALL_HINT}")
        # The server reads its cookies from -auth at start-up, before it knows its display
        # number: register the cookie under a placeholder now, under ":N" once N is known.
        self._cookie = secrets.token_hex(16)
        auth = _auth_file()
        _add_cookie(auth, ":65000", self._cookie)
        read_fd, write_fd = os.pipe()
        self._log = tempfile.TemporaryFile(prefix="xvfb-", suffix=".log")  # noqa: SIM115 - closed in stop()
        argv = [
            exe,
            "-displayfd", str(write_fd),
            "-screen", "0", f"{self.width}x{self.height}x{self.depth}",
            "-nolisten", "tcp",
            "-noreset",  # else it resets (and refuses connections a moment) when its last client leaves
            "-auth", auth,
            *self.extra_args,
        ]  # fmt: skip
        try:
            self._proc = subprocess.Popen(
                argv,
                pass_fds=(write_fd,),
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=self._log,
                start_new_session=True,  # a Ctrl-C in the terminal is ours to handle, not Xvfb's
            )
        finally:
            os.close(write_fd)
        try:
            self._number = self._read_number(read_fd)
            _add_cookie(auth, f":{self._number}", self._cookie)
        except BaseException:
            self.stop()
            raise
        finally:
            os.close(read_fd)
        if self.wm is not None:
            try:
                self._start_wm()
            except BaseException:
                self.stop()
                raise
        return self

    def _start_wm(self) -> None:
        """Start openbox and return once it manages the screen (it has set the root's
        _NET_SUPPORTING_WM_CHECK)."""
        exe = shutil.which("openbox")
        if exe is None:
            raise ConfigError("openbox is not installed; install it with: apt-get install openbox")
        env = {**os.environ, **self.env}
        assert self._log is not None
        self._wm_proc = subprocess.Popen(
            [exe, "--sm-disable", "--config-file", str(OPENBOX_RC)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.timeout
        while True:
            probe = subprocess.run(
                ["xprop", "-root", "_NET_SUPPORTING_WM_CHECK"],
                env=env, capture_output=True, text=True, check=False,
            )  # fmt: skip
            if "window id" in probe.stdout:
                return
            if self._wm_proc.poll() is not None or time.monotonic() > deadline:
                raise DeviceError(f"openbox did not start: {self._log_tail()}")
            time.sleep(0.02)

    def _read_number(self, fd: int) -> int:
        deadline = time.monotonic() + self.timeout
        data = b""
        while not data.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeviceError(
                    f"Xvfb did not become ready within {self.timeout:g}s: {self._log_tail()}"
                )
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 64)
            if not chunk:  # Xvfb closed the pipe: it exited before it was ready
                assert self._proc is not None
                code = self._proc.wait(timeout=self.timeout)
                raise DeviceError(f"Xvfb exited with code {code}: {self._log_tail()}")
            data += chunk
        return int(data.strip())

    def stop(self) -> None:
        """Stop the window manager and the server (SIGTERM, then SIGKILL after 5 s). Safe to
        call twice."""
        wm, self._wm_proc = self._wm_proc, None
        terminate(wm, timeout=5)
        proc, self._proc = self._proc, None
        terminate(proc, timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> VirtualDisplay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- introspection --------------------------------------------------------------------------
    @property
    def display(self) -> str:
        """The X display name, e.g. ':3'."""
        if self._number is None or self._proc is None:
            raise DeviceError("the virtual display is not running; use it as a context manager")
        return f":{self._number}"

    @property
    def env(self) -> dict[str, str]:
        """Environment variables a client (or child process) needs to connect."""
        return {"DISPLAY": self.display, "XAUTHORITY": _auth_file()}

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _log_tail(self, limit: int = 600) -> str:
        if self._log is None:
            return "(no output)"
        self._log.seek(0)
        text = self._log.read().decode(errors="replace").strip()
        return " | ".join(text.splitlines())[-limit:] or "(no output)"

    def __repr__(self) -> str:
        where = f":{self._number}" if self.running else "stopped"
        return f"VirtualDisplay({self.width}x{self.height}x{self.depth}, {where})"


@contextlib.contextmanager
def ensure_display(
    width: int = 1280, height: int = 800, wm: WindowManager | None = None
) -> Iterator[str]:
    """Yield a usable X display name: ``$DISPLAY`` when set, else a private Xvfb (running the
    window manager ``wm``, if given).

    While a private server runs, ``os.environ`` holds its ``DISPLAY`` and ``XAUTHORITY`` (so
    child processes and pyautogui, which binds the display when imported, use it); both are
    restored on exit.
    """
    current = os.environ.get("DISPLAY")
    if current:
        ensure_xauthority()
        yield current
        return
    with VirtualDisplay(width, height, wm=wm) as vd:
        saved = {k: os.environ.get(k) for k in vd.env}
        os.environ.update(vd.env)
        try:
            yield vd.display
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
