"""The desktop device: mss screenshots in, pyautogui pointer and keys, XTEST typing out (X11).

Executing an action is split in two, as in android_env: ``desktop_plan.plan`` is a pure function that turns
an action (points in screen_px) into the exact commands to run, JSON-able lists such as
``["pyautogui.click", {"x": 640.0, "y": 400.0, "button": "left", "clicks": 1, ...}]`` or
``["xtest.type", {"text": "Zoë"}]``; ``DesktopDevice`` runs them by looking the name up in a
table of allowed callables (never ``eval``, never a shell): typed text is data, never code.

Why not pyautogui for text: its ``write`` drops every non-ASCII character silently and, on the
default X keymap, types '>' for '<'; ``xdotool type`` races with the app under load (it remaps
one spare keycode per character). ``x11_keyboard.KeyTyper`` maps every character of the text
to its own keycode before pressing any, which is exact (see that module).

pyautogui binds the X display when it is first imported, once per process; it is imported
lazily, with ``DISPLAY`` set to the device's display, and a device on another display raises
ConfigError. After the X server dies python-xlib spins forever on the next request, so the
device checks the server's socket before every action and maps failures to DeviceLost.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import socket
import sys
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from PIL import Image

from pixelpilot.agent.actions import (
    DESKTOP_KINDS,
    Action,
    Click,
    Drag,
    Point,
)
from pixelpilot.agent.errors import (
    ConfigError,
    DeviceError,
    DeviceLost,
    DeviceNotConnected,
    FailSafeTriggered,
    PixelPilotError,
)
from pixelpilot.agent.geometry import ScreenGeometry
from pixelpilot.tools.base import Device, Executed, Observation
from pixelpilot.tools.desktop_plan import KNOWN_KEYS, Command, hotkey_keys, plan
from pixelpilot.tools.x11_keyboard import KeyTyper
from pixelpilot.tools.xvfb import ensure_xauthority

__all__ = [
    "KNOWN_KEYS",
    "Command",
    "DesktopDevice",
    "display_alive",
    "hotkey_keys",
    "load_pyautogui",
    "plan",
]

FAILSAFE_MESSAGE = (
    "pyautogui fail-safe: the pointer is in a screen corner, so a human took over; "
    "move it away from the corner and re-run"
)


# -- I/O -----------------------------------------------------------------------------------------
def _parse_display(display: str) -> tuple[str, int]:
    host, _, rest = display.rpartition(":")
    try:
        number = int(rest.split(".", 1)[0])
    except ValueError:
        raise ConfigError(f"bad X display name {display!r}; expected ':N' or 'host:N'") from None
    return ("" if host == "unix" else host), number


def display_alive(display: str) -> bool | None:
    """Whether a local X server accepts connections on ``display`` (None: remote, unknown).

    Only opens and closes the server's Unix socket; no X request is sent.
    """
    host, number = _parse_display(display)
    if host:
        return None
    path = f"/tmp/.X11-unix/X{number}"
    for address in ("\0" + path, path) if sys.platform == "linux" else (path,):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(1.0)
            try:
                s.connect(address)
                return True
            except OSError:
                continue
    return False


_broken: str | None = None
"""Why pyautogui's X connection is unusable in this process (it never reconnects)."""


def _connection_error(exc: BaseException) -> BaseException | None:
    """The socket error behind ``exc`` when python-xlib lost its connection, else None."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) or type(seen).__name__ == "ConnectionClosedError":
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def load_pyautogui(display: str) -> ModuleType:
    """pyautogui bound to ``display``: imported now with DISPLAY set, or checked if imported.

    Raises DeviceLost once its connection broke (e.g. the X server restarted on the same
    number): python-xlib does not reconnect, and its next request would spin forever.
    """
    if _broken is not None:
        raise DeviceLost(
            f"pyautogui's X connection broke ({_broken}); it cannot reconnect in this process: "
            "restart the process"
        )
    mod = sys.modules.get("pyautogui")
    if mod is None:
        ensure_xauthority()
        saved = os.environ.get("DISPLAY")
        os.environ["DISPLAY"] = display
        try:
            mod = importlib.import_module("pyautogui")
        except Exception as exc:
            raise DeviceError(f"pyautogui cannot use display {display}: {exc}") from exc
        finally:
            if saved is None:
                os.environ.pop("DISPLAY", None)
            else:
                os.environ["DISPLAY"] = saved
    x11 = sys.modules.get("pyautogui._pyautogui_x11")
    if x11 is not None:
        bound = x11._display.get_display_name()
        if _parse_display(bound) != _parse_display(display):
            raise ConfigError(
                f"pyautogui is bound to display {bound} (it binds one display per process, when "
                f"first imported); this device is on {display}; use one display per process"
            )
    # no sleep after every call: observe waits for the screen to settle instead
    mod.PAUSE = 0  # type: ignore[attr-defined]
    return mod


class DesktopDevice(Device):
    """An X11 desktop: observe with mss, act with pyautogui (pointer, keys) and XTEST (text).

    Options: ``display`` (default ``$DISPLAY`` at open), ``monitor`` (mss index; 1 is the first
    monitor, 0 all of them), ``settle_timeout``/``settle_interval`` (how long and how often
    observe polls for two identical grabs), ``change_timeout`` (after an action, how long observe
    first waits for the screen to differ from the frame before it: an app draws a moment after
    input arrives, and two identical grabs of the OLD frame would otherwise pass as settled),
    ``drag_steps`` (pointer moves between press and release).
    """

    kind = "desktop"
    supported = DESKTOP_KINDS

    def __init__(
        self,
        *,
        display: str | None = None,
        monitor: int = 1,
        settle_timeout: float = 1.5,
        settle_interval: float = 0.01,
        change_timeout: float = 0.2,
        drag_steps: int = 10,
        name: str = "desktop",
    ) -> None:
        self._display = display
        self.monitor = monitor
        self.settle_timeout, self.settle_interval = settle_timeout, settle_interval
        self.change_timeout = change_timeout
        self._acted = False
        """An action ran since the last observe: it may still be drawing over ``_last``."""
        self.drag_steps = drag_steps
        self._typer: KeyTyper | None = None
        self.name = name
        self._sct: Any = None
        self._geometry: ScreenGeometry | None = None
        self._lost = False
        self._last: bytes | None = None

    @property
    def display(self) -> str:
        """The X display this device uses (resolved from ``$DISPLAY`` when opened)."""
        d = self._display or os.environ.get("DISPLAY")
        if not d:
            raise ConfigError(
                "no X display: set DISPLAY, or name one (CLI: --device desktop:N; "
                "Python: DesktopDevice(display=':N')); pixelpilot.tools.xvfb starts a virtual one"
            )
        return d

    @property
    def geometry(self) -> ScreenGeometry:
        if self._geometry is None:
            raise DeviceNotConnected(f"{self.name} is not open")
        return self._geometry

    # -- lifecycle -------------------------------------------------------------------------------
    def _open(self) -> None:
        import mss

        self._display = self.display
        ensure_xauthority()
        try:
            self._sct = mss.MSS(display=self._display)
        except mss.ScreenShotError as exc:
            raise DeviceError(
                f"cannot open X display {self._display}: {exc}; is the X server (Xvfb) running?"
            ) from exc
        monitors = self._sct.monitors
        if not 0 <= self.monitor < len(monitors):
            self._sct.close()
            raise ConfigError(
                f"no monitor {self.monitor} on {self._display}; it has 0..{len(monitors) - 1}"
            )
        self._lost = False
        self._grab()

    def _close(self) -> None:
        typer, self._typer = self._typer, None
        if typer is not None and not self._lost:
            with contextlib.suppress(Exception):
                typer.close()
        sct, self._sct = self._sct, None
        if sct is not None:
            with contextlib.suppress(Exception):  # mss raises on a connection that died
                sct.close()
        self._geometry = None

    # -- observe ---------------------------------------------------------------------------------
    def _wait_for_drawing(self) -> None:
        """Until the screen changed since the last grab and then settled (bounded): the app has
        handled the input sent so far."""
        self._last = self._settle(self._last, self.settle_timeout)[0].raw

    def _settle(
        self, before: bytes | None, change_timeout: float
    ) -> tuple[Any, int, bool | None, bool]:
        """Grab until the frame differs from ``before`` (if given; at most ``change_timeout``),
        then until two grabs ``settle_interval`` apart are identical (at most
        ``settle_timeout``). Returns (last grab, grabs taken, changed, settled)."""
        shot, grabs, changed = self._grab(), 1, None
        if before is not None:
            changed = shot.raw != before
            until = time.monotonic() + change_timeout
            while not changed and time.monotonic() < until:
                time.sleep(self.settle_interval)
                shot, grabs = self._grab(), grabs + 1
                changed = shot.raw != before
        deadline = time.monotonic() + self.settle_timeout
        while time.monotonic() < deadline:
            time.sleep(self.settle_interval)
            nxt = self._grab()
            grabs += 1
            if nxt.raw == shot.raw:
                return nxt, grabs, changed, True
            shot = nxt
        return shot, grabs, changed, False

    def _grab(self) -> Any:
        """One mss grab of the monitor; updates the geometry (scale = physical / logical)."""
        mon = self._sct.monitors[self.monitor]
        try:
            shot = self._sct.grab(mon)
        except Exception as exc:
            self._check_alive(exc)
            raise
        self._geometry = ScreenGeometry(
            width=shot.width,
            height=shot.height,
            scale=shot.width / mon["width"],
            origin=(float(mon["left"]), float(mon["top"])),
        )
        return shot

    def _observe(self) -> Observation:
        if self._lost:
            raise DeviceLost(f"X display {self._display} is gone")
        before, self._acted = (self._last if self._acted else None), False
        shot, grabs, changed, settled = self._settle(before, self.change_timeout)
        self._last = shot.raw
        image = Image.frombytes("RGB", (shot.width, shot.height), shot.raw, "raw", "BGRX")
        extra = {"settled": settled, "grabs": grabs, "changed": changed}
        return Observation(image=image, geometry=self.geometry, extra=extra)

    # -- execute ---------------------------------------------------------------------------------
    def _execute(self, action: Action) -> Executed:
        if self._lost or display_alive(self._display or "") is False:
            self._lost = True
            raise DeviceLost(f"X display {self._display} is gone; restart it and re-run")
        pag = load_pyautogui(self._display or "")
        geom = self.geometry
        done_action = action
        try:
            pointer = None
            at_pointer = (isinstance(action, Drag) and action.start is None) or (
                isinstance(action, Click) and action.point is None
            )
            if at_pointer:
                lx, ly = pag.position()
                pointer = ((lx - geom.origin[0]) * geom.scale, (ly - geom.origin[1]) * geom.scale)
                if geom.contains(int(pointer[0]), int(pointer[1])):  # record where it acted
                    here = Point(x=pointer[0], y=pointer[1], space="screen_px")
                    field = "start" if isinstance(action, Drag) else "point"
                    done_action = action.model_copy(update={field: here})
            commands = plan(
                action, geom, pointer=pointer,
                drag_steps=self.drag_steps,
            )  # fmt: skip
            calls = self._calls(pag)
            for cmd in commands:
                self._run(cmd, pag, calls)
        except pag.FailSafeException:
            raise FailSafeTriggered(FAILSAFE_MESSAGE) from None
        except PixelPilotError:
            raise
        except Exception as exc:
            self._check_alive(exc)
            lost = _connection_error(exc)
            if lost is None:
                raise
            global _broken
            _broken = f"{self._display}: {type(lost).__name__}: {lost}"
            raise DeviceLost(
                f"pyautogui lost its connection to X display {self._display} "
                f"({type(lost).__name__}); restart the process"
            ) from exc
        self._acted = True  # the next observe waits for this action's drawing
        return Executed(action=done_action, commands=commands)

    @staticmethod
    def _calls(pag: ModuleType) -> dict[str, Callable[..., Any]]:
        """The only in-process callables a command may name."""
        return {
            "pyautogui.click": pag.click,
            "pyautogui.moveTo": pag.moveTo,
            "pyautogui.mouseDown": pag.mouseDown,
            "pyautogui.mouseUp": pag.mouseUp,
            "pyautogui.scroll": pag.scroll,
            "pyautogui.hscroll": pag.hscroll,
            "pyautogui.press": pag.press,
            "pyautogui.hotkey": lambda keys: pag.hotkey(*keys),
        }

    def _run(self, cmd: Command, pag: ModuleType, calls: dict[str, Callable[..., Any]]) -> None:
        name = cmd[0]
        if name == "xtest.type":
            pag.failSafeCheck()  # a human in the corner stops typing too
            if self._typer is None:
                self._typer = KeyTyper(self._display or "")
            self._last = self._grab().raw  # what "the app has drawn the keys" is judged against
            self._typer.type(cmd[1]["text"], between_chunks=self._wait_for_drawing)
            return
        fn = calls.get(name)
        if fn is None:
            raise DeviceError(f"unknown desktop command {name!r}")
        fn(**cmd[1])

    def _check_alive(self, exc: BaseException) -> None:
        """Raise DeviceLost (from ``exc``) when the X server no longer answers."""
        if display_alive(self._display or "") is False:
            self._lost = True
            raise DeviceLost(
                f"X display {self._display} is gone ({type(exc).__name__}); "
                "restart the X server and re-run"
            ) from exc
