"""The Android device: screencap in, ``input``/``am``/``monkey`` out, through the real adb server.

``android_plan.plan`` turns an action into argv lists (pure); this module runs them with
adbutils, which speaks adb's host protocol to the real ``adb`` server (started with the
``adb`` binary on PATH, or the one adbutils ships, when none is running). Every argv is
joined with ``shlex.quote`` so the device's ``sh`` sees each element as one word: typed text
is data, never a command. Commands go over ``shell,v2`` where the device offers it, so exit
codes and stderr are known.

Speed: every socket to the adb server gets TCP_NODELAY, adbutils' 10 ms sleep on close and its
extra ``host:version`` round trip per command are skipped (``_Client``), so a command costs a
few ms of adb overhead instead of ~20-100 ms. adb failures are mapped once: a device that is
gone (unplugged, ``adb disconnect``, emulator killed) raises DeviceLost saying what to do.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import socket
import struct
import subprocess
import time
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import adbutils
from adbutils._adb import AdbConnection
from PIL import Image

from pixelpilot.agent.actions import MOBILE_KINDS, Action, OpenApp, Point, TypeText
from pixelpilot.agent.errors import (
    ActionRejected,
    ConfigError,
    DeviceError,
    DeviceLost,
    DeviceNotConnected,
    PixelPilotError,
)
from pixelpilot.agent.geometry import ScreenGeometry
from pixelpilot.tools.android_plan import ADB_KEYBOARD_HINT, Argv, plan, shell_line
from pixelpilot.tools.base import Device, Executed, Observation, TargetInfo

__all__ = [
    "ADB_IME",
    "AndroidDevice",
    "adb_client",
    "find_adb",
    "parse_density",
    "parse_focus",
    "parse_wm_size",
]

ADB_IME = "com.android.adbkeyboard/.AdbIME"
ImeMode = Literal["auto", "adbkeyboard", "input_text"]


def find_adb(adb_path: str | None = None) -> str:
    """The adb binary: ``adb_path``, else $ADBUTILS_ADB_PATH, else ``adb`` on PATH, else adbutils'."""
    if adb_path:
        if not (os.path.isfile(adb_path) and os.access(adb_path, os.X_OK)):
            raise ConfigError(f"adb_path {adb_path!r} is not an executable file")
        return adb_path
    try:
        return adbutils.adb_path()
    except adbutils.AdbError:
        raise ConfigError(
            "no adb binary: install it (apt-get install adb, or Android platform-tools) or pass "
            "adb_path="
        ) from None


_NODE = re.compile(r"<node\b[^>]*>")
_BOUNDS = re.compile(r'bounds="\[(-?\d+),(-?\d+)\]\[(-?\d+),(-?\d+)\]"')


def focused_password_boxes(xml: str) -> list[tuple[int, int, int, int]]:
    """(x1, y1, x2, y2) of each focused password field in ``uiautomator dump`` XML: where
    Android may show the last typed character in clear."""
    out = []
    for node in _NODE.findall(xml):
        if 'password="true"' in node and 'focused="true"' in node:
            m = _BOUNDS.search(node)
            if m:
                x1, y1, x2, y2 = (int(v) for v in m.groups())
                out.append((x1, y1, x2, y2))
    return out


def blur_boxes(image: Image.Image, boxes: list[tuple[int, int, int, int]]) -> Image.Image:
    """``image`` with each box (clipped to it) blurred past reading."""
    from PIL import ImageFilter

    for x1, y1, x2, y2 in boxes:
        box = (max(0, x1), max(0, y1), min(image.width, x2), min(image.height, y2))
        if box[0] < box[2] and box[1] < box[3]:
            radius = max(4, (box[3] - box[1]) // 2)
            image.paste(image.crop(box).filter(ImageFilter.GaussianBlur(radius)), box[:2])
    return image


def parse_wm_size(text: str) -> tuple[int, int]:
    """(width, height) from ``wm size``; an override size wins over the physical one."""
    found = dict(re.findall(r"(Physical|Override) size:\s*(\d+x\d+)", text))
    size = found.get("Override") or found.get("Physical")
    if size is None:
        raise DeviceError(f"cannot read the screen size from `wm size`: {text.strip()!r}")
    w, h = size.split("x")
    return int(w), int(h)


_FOCUS = re.compile(r"m(?:CurrentFocus|FocusedApp)=\S+\{\S+ \S+ ([A-Za-z][\w.]*)/")


def parse_focus(text: str) -> str | None:
    """The foreground package in ``dumpsys window windows`` output (the window in focus, else
    the focused app), e.g. ``mCurrentFocus=Window{5e1c2a7 u0 com.android.settings/.Settings}``."""
    m = _FOCUS.search(text)
    return m.group(1) if m else None


def parse_density(text: str) -> int:
    """dpi from ``wm density``; an override density wins over the physical one."""
    found = dict(re.findall(r"(Physical|Override) density:\s*(\d+)", text))
    value = found.get("Override") or found.get("Physical")
    if value is None:
        raise DeviceError(f"cannot read the density from `wm density`: {text.strip()!r}")
    return int(value)


class _Connection(AdbConnection):
    """An adbutils connection with TCP_NODELAY that never starts a server behind our back
    (adbutils would run ``adb start-server`` on the default port) and closes without sleeping."""

    def _safe_connect(self) -> socket.socket:
        s = self._create_socket()
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def close(self) -> None:
        sock = getattr(self, "_AdbConnection__conn", None)
        if sock is not None:
            setattr(self, "_AdbConnection__conn", None)  # noqa: B010 - adbutils' private name
            with contextlib.suppress(OSError):
                sock.close()


class _Client(adbutils.AdbClient):
    """adbutils' client with fast connections and the server version asked once."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        super().__init__(host=host, port=port)
        self.timeout = timeout
        self._version: int | None = None

    def make_connection(self, timeout: float | None = None) -> AdbConnection:
        c = _Connection(self.host, self.port)
        c.conn.settimeout(timeout or self.timeout)
        return c

    def server_version(self) -> int:
        if self._version is None:
            self._version = super().server_version()
        return self._version


def adb_client(
    host: str = "127.0.0.1", port: int = 5037, timeout: float = 20.0
) -> adbutils.AdbClient:
    """An adbutils client for the server at host:port: TCP_NODELAY, no sleep on close, and it
    never starts a server itself (adbutils alone would run ``adb start-server`` on 5037)."""
    return _Client(host, port, timeout)


class AndroidDevice(Device):
    """An Android phone or emulator reached through an adb server.

    ``serial``: the device (None: $ANDROID_SERIAL, else the only one attached; a ``host:port``
    not yet attached is ``adb connect``-ed). ``adb_host``/``adb_port``: the adb server (default
    $ANDROID_ADB_SERVER_PORT or 5037); a local one that is not running is started with
    ``adb_path``. ``ime``: how text is typed (see android_plan): 'auto' uses ADBKeyboard when it
    is enabled (selecting it for the run and restoring the previous keyboard on close), else
    ``input text``. ``apps``: app names -> packages for open_app. ``screencap``: 'png' or 'raw'
    (no PNG encoding on the phone: faster on real devices, more bytes over the wire).
    ``timeout``: seconds any adb call may take beyond its gesture's own duration.
    ``blur_passwords``: blur the focused password field in every screenshot, where a
    ``uiautomator dump`` reports one (two more adb calls per observation; on when a run has
    secrets).
    """

    kind = "mobile"
    supported = MOBILE_KINDS

    def __init__(
        self,
        serial: str | None = None,
        *,
        adb_path: str | None = None,
        adb_host: str = "127.0.0.1",
        adb_port: int | None = None,
        ime: ImeMode = "auto",
        apps: Mapping[str, str] | None = None,
        screencap: Literal["png", "raw"] = "png",
        timeout: float = 20.0,
        name: str | None = None,
        blur_passwords: bool = False,
    ) -> None:
        self.serial = serial
        self.blur_passwords = blur_passwords
        self.adb_path = adb_path
        self.adb_host = adb_host
        self.adb_port = adb_port or int(os.environ.get("ANDROID_ADB_SERVER_PORT", "5037"))
        self.ime_mode: ImeMode = ime
        self.apps = dict(apps or {})
        self.screencap = screencap
        self.timeout = timeout
        self.name = name or f"android:{serial or 'default'}"
        self._named = name is not None
        self._client: _Client | None = None
        self._dev: Any = None
        self._v2 = True
        self._geometry: ScreenGeometry | None = None
        self._density = 160
        self._ime_current = ""
        self._ime_enabled = False
        self._ime_restore: str | None = None

    @property
    def geometry(self) -> ScreenGeometry:
        if self._geometry is None:
            raise DeviceNotConnected(f"{self.name} is not open")
        return self._geometry

    @property
    def ime_active(self) -> bool:
        """Whether typing goes through ADBKeyboard (else ``input text``)."""
        return self._ime_current == ADB_IME

    # -- lifecycle -------------------------------------------------------------------------------
    def _open(self) -> None:
        client = _Client(self.adb_host, self.adb_port, self.timeout)
        self._ensure_server(client)
        self._client = client
        serial = self.serial or os.environ.get("ANDROID_SERIAL") or self._only_device(client)
        self._dev = client.device(serial)
        self.serial = serial
        if not self._named:
            self.name = f"android:{serial}"
        with self._adb("connect"):
            state = self._state(client, serial)
            if state is None and ":" in serial:
                reply = client.connect(serial, timeout=self.timeout)
                if "connected to" not in reply:
                    raise DeviceNotConnected(
                        f"adb cannot connect to {serial}: {reply.strip()}; is the device on the "
                        "network with wireless debugging on (`adb tcpip 5555`)? check `adb devices`"
                    )
                state = self._wait_state(client, serial)
            if state != "device":
                raise DeviceNotConnected(_state_hint(serial, state))
            self._v2 = "shell_v2" in self._dev.get_features().split(",")
        size = parse_wm_size(self._sh(["wm", "size"]))
        self._density = parse_density(self._sh(["wm", "density"]))
        self._geometry = ScreenGeometry(*size, scale=self._density / 160)
        self._detect_ime()

    def _close(self) -> None:
        if self._ime_restore is not None and self._dev is not None:
            with contextlib.suppress(Exception):  # best effort: the phone may be gone
                self._sh(["ime", "set", self._ime_restore])
        self._ime_restore = None
        self._client = self._dev = self._geometry = None

    def _ensure_server(self, client: _Client) -> None:
        try:
            client.server_version()
            return
        except adbutils.AdbError as exc:
            if self.adb_host not in ("127.0.0.1", "localhost", "::1"):
                raise DeviceError(
                    f"no adb server at {self.adb_host}:{self.adb_port} ({exc}); start one there "
                    "with `adb -a start-server`"
                ) from None
        adb = find_adb(self.adb_path)
        try:
            subprocess.run([adb, "-P", str(self.adb_port), "start-server"], timeout=30,
                           stdin=subprocess.DEVNULL, capture_output=True, check=True)  # fmt: skip
            client.server_version()
        except (subprocess.SubprocessError, OSError, adbutils.AdbError) as exc:
            raise DeviceError(
                f"cannot start the adb server on port {self.adb_port} with {adb}: {exc}"
            ) from None

    def _only_device(self, client: _Client) -> str:
        with self._adb("list devices"):
            infos = client.list()
        ready = [i.serial for i in infos if i.state == "device"]
        if len(ready) == 1:
            return ready[0]
        if not ready:
            others = ", ".join(f"{i.serial} ({i.state})" for i in infos)
            raise DeviceNotConnected(
                "no Android device is ready"
                + (f" (adb sees: {others})" if others else "")
                + "; connect one with USB debugging on (or `adb connect HOST:PORT`) and check "
                "`adb devices`"
            )
        raise ConfigError(
            f"several Android devices are attached ({', '.join(ready)}); name one: "
            "--device android:SERIAL or AndroidDevice(serial=...)"
        )

    @staticmethod
    def _state(client: _Client, serial: str) -> str | None:
        return next((i.state for i in client.list() if i.serial == serial), None)

    def _wait_state(self, client: _Client, serial: str, timeout: float = 5.0) -> str | None:
        deadline = time.monotonic() + timeout
        state = self._state(client, serial)
        while state != "device" and time.monotonic() < deadline:
            time.sleep(0.05)
            state = self._state(client, serial)
        return state

    def _detect_ime(self) -> None:
        """Which keyboard is current and whether ADBKeyboard is enabled (a failing query: no)."""
        current = self._run(["settings", "get", "secure", "default_input_method"])
        enabled = self._run(["ime", "list", "-s"])
        self._ime_current = current[0].decode("utf-8", "replace").strip() if current[2] == 0 else ""
        self._ime_enabled = (
            enabled[2] == 0 and ADB_IME in enabled[0].decode("utf-8", "replace").split()
        )
        if self.ime_mode == "adbkeyboard" and not self._ime_enabled:
            raise ConfigError(f"ime='adbkeyboard' but ADBKeyboard is not enabled on {self.serial}; "
                              f"{ADB_KEYBOARD_HINT}")  # fmt: skip

    def _use_ime(self) -> bool:
        """Whether this text goes through ADBKeyboard; selects it now if it must and can."""
        if self.ime_mode == "input_text" or not self._ime_enabled:
            return False
        if not self.ime_active:
            previous = self._ime_current
            self._sh(["ime", "set", ADB_IME])
            self._ime_current = ADB_IME
            self._ime_restore = previous if previous and previous != "null" else None
        return True

    # -- observe ---------------------------------------------------------------------------------
    def _observe(self) -> Observation:
        raw = self.screencap == "raw"
        data = self._sh(["screencap"] if raw else ["screencap", "-p"], binary=True)
        try:
            image = _decode_raw(data) if raw else _decode_png(data)
        except (OSError, ValueError, struct.error) as exc:
            raise DeviceError(
                f"{self.name}: screencap returned no image ({len(data)} bytes: {exc}); "
                "is the screen on and unlocked?"
            ) from None
        geom = self.geometry
        if image.size != (geom.width, geom.height):  # rotated, or the size was changed
            self._geometry = geom = ScreenGeometry(*image.size, scale=geom.scale)
        extra: dict[str, Any] = {"bytes": len(data)}
        if self.blur_passwords:
            try:  # after the capture: the field cannot move in between without a new frame
                extra["blurred"] = boxes = focused_password_boxes(self.dump_ui())
                image = blur_boxes(image, boxes)
            except DeviceLost:
                raise
            except DeviceError as exc:  # no dump (an animation, a secure window): nothing known
                extra["blurred"] = f"unknown: {exc}"
        return Observation(image=image, geometry=geom, extra=extra)

    # -- execute ---------------------------------------------------------------------------------
    def _execute(self, action: Action) -> Executed:
        ime = self._use_ime() if isinstance(action, TypeText) else self.ime_active
        commands = plan(action, ime=ime, apps=self.apps)
        for n, argv in enumerate(commands):
            if n:
                self._checkpoint()  # long text goes in chunks: the kill/pause switch acts between
            if isinstance(action, OpenApp):
                self._open_app(argv)
            else:
                self._sh(argv, extra_time=getattr(action, "seconds", 0.0))
        note = "typed with ADBKeyboard" if isinstance(action, TypeText) and ime else ""
        return Executed(action=action, commands=[list(c) for c in commands], note=note)

    def _open_app(self, argv: Argv) -> None:
        out, err, code = self._run(argv)
        text = (out + err).decode("utf-8", "replace")
        if "No activities found" in text or "monkey aborted" in text:
            raise ActionRejected(f"open_app: {argv[2]} is not installed on the device")
        if code != 0:
            raise DeviceError(f"{self.name}: `{shell_line(argv)}` failed with exit code {code}")

    def foreground_package(self) -> str | None:
        """The package of the app in the foreground (None when the phone does not say)."""
        self._require_connected()
        return parse_focus(self._sh(["dumpsys", "window", "windows"]))

    def target_at(self, point: Point | None) -> TargetInfo:
        """The foreground app: whatever the point, a phone acts on the app in front."""
        return TargetInfo(package=self.foreground_package())

    def dump_ui(self) -> str:
        """The screen's view hierarchy as ``uiautomator dump`` XML (node texts and bounds)."""
        self._require_connected()
        path = "/sdcard/window_dump.xml"
        self._sh(["uiautomator", "dump", path])
        try:
            return self._sh(["cat", path])
        finally:
            self._run(["rm", "-f", path])

    # -- adb I/O ---------------------------------------------------------------------------------
    def _run(self, argv: Argv, extra_time: float = 0.0) -> tuple[bytes, bytes, int]:
        """Run one argv on the device, quoted: (stdout, stderr, exit code)."""
        line = shell_line(argv)
        timeout = self.timeout + extra_time
        with self._adb(argv[0]):
            if self._v2:
                r = self._dev.shell2(line, timeout=timeout, encoding=None, v2=True)
                return r.stdout, r.stderr, r.returncode
            return self._dev.shell(line, timeout=timeout, encoding=None), b"", 0

    def _sh(self, argv: Argv, *, binary: bool = False, extra_time: float = 0.0) -> Any:
        """stdout of one argv (str; bytes when ``binary``); DeviceError on a non-zero exit."""
        out, err, code = self._run(argv, extra_time)
        if code != 0:
            msg = (err or out).decode("utf-8", "replace").strip().splitlines()
            raise DeviceError(
                f"{self.name}: `{shell_line(argv)[:120]}` failed with exit code {code}: "
                f"{msg[-1] if msg else 'no output'}"
            )
        return out if binary else out.decode("utf-8", "replace")

    @contextlib.contextmanager
    def _adb(self, what: str) -> Iterator[None]:
        """Map adb failures: the device or server gone -> DeviceLost, others -> DeviceError."""
        try:
            yield
        except PixelPilotError:
            raise
        except (adbutils.AdbError, OSError, EOFError) as exc:
            raise self._failure(what, exc) from exc

    def _failure(self, what: str, exc: BaseException) -> DeviceError:
        detail = f"{type(exc).__name__}: {exc}".strip()
        server = f"{self.adb_host}:{self.adb_port}"
        if self._client is None:
            return DeviceError(f"{self.name}: adb {what} failed ({detail})")
        try:
            state = self._state(_Client(self.adb_host, self.adb_port, 3.0), self.serial or "")
        except (adbutils.AdbError, OSError):
            return DeviceLost(
                f"the adb server at {server} is gone ({detail}); restart it (adb start-server) "
                "and re-run"
            )
        if state != "device":
            return DeviceLost(f"{_state_hint(self.serial or '', state)} (during {what})")
        if isinstance(exc, adbutils.AdbTimeout):
            return DeviceError(f"{self.name}: adb {what} timed out after {self.timeout:g} s")
        return DeviceError(f"{self.name}: adb {what} failed ({detail})")


def _state_hint(serial: str, state: str | None) -> str:
    """One line saying why ``serial`` cannot be used and what to do."""
    if state is None:
        return (f"Android device {serial} is gone from adb; reconnect it (USB cable, or "
                "`adb connect HOST:PORT`), check `adb devices`, and re-run")  # fmt: skip
    if state == "unauthorized":
        return (f"Android device {serial} is unauthorized: accept the 'Allow USB debugging' "
                "prompt on the phone and re-run")  # fmt: skip
    return (f"Android device {serial} is {state}; reconnect it (or `adb reconnect`), check "
            "`adb devices`, and re-run")  # fmt: skip


def _decode_png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image if image.mode == "RGB" else image.convert("RGB")


def _decode_raw(data: bytes) -> Image.Image:
    """An image from raw ``screencap`` output: a 12- or 16-byte header, then RGBA pixels."""
    w, h, fmt = struct.unpack_from("<3I", data)
    header = len(data) - w * h * 4
    if fmt != 1 or header not in (12, 16):
        raise ValueError(f"unsupported raw screencap (format {fmt}, {w}x{h}, {len(data)} bytes)")
    return Image.frombuffer("RGBA", (w, h), data[header:], "raw", "RGBA", 0, 1).convert("RGB")
