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

The device observes the whole monitor, a fixed ``region=(x, y, w, h)`` of it, or one
``window=`` (``x11_windows``: by title, ``class=WM_CLASS`` or ``id=``; its client area,
re-read on every grab so the view follows the window when it moves). A view is like a monitor
at an offset: the geometry's ``origin`` is the view's top-left in global coordinates, so model
points map to the screen through the same ``to_logical`` as a second monitor's, and a point
outside the view is refused (PointOutOfBounds) like one off the screen.
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

import numpy as np
from PIL import Image

from pixelpilot.agent.actions import (
    DESKTOP_KINDS,
    Action,
    Click,
    Drag,
    Point,
    Scroll,
)
from pixelpilot.agent.errors import (
    ConfigError,
    DeviceError,
    DeviceLost,
    DeviceNotConnected,
    FailSafeTriggered,
    PixelPilotError,
    PointOutOfBounds,
)
from pixelpilot.agent.geometry import ScreenGeometry, to_logical
from pixelpilot.tools.base import Device, Executed, Observation, TargetInfo
from pixelpilot.tools.desktop_plan import KNOWN_KEYS, Command, hotkey_keys, plan
from pixelpilot.tools.x11_keyboard import KeyTyper
from pixelpilot.tools.x11_windows import WindowSpec, X11Windows
from pixelpilot.tools.xvfb import ensure_xauthority

__all__ = [
    "KNOWN_KEYS",
    "TYPE_CHUNK",
    "Command",
    "DesktopDevice",
    "Region",
    "changed_fraction",
    "display_alive",
    "hotkey_keys",
    "load_pyautogui",
    "plan",
    "view_options",
]

TYPE_CHUNK = 64
"""Characters typed before the device waits for the app to show them and checks the fail-safe
and the run's kill/pause switch: a long text stops within one chunk of either."""

FAILSAFE_MESSAGE = (
    "pyautogui fail-safe: the pointer is in a screen corner, so a human took over; "
    "move it away from the corner and re-run"
)


Region = tuple[int, int, int, int]
"""x, y, width, height in screen pixels of the monitor."""


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


def changed_fraction(before: bytes, after: bytes) -> float:
    """The fraction of pixels that differ between two frames of 4-byte pixels (BGRX), 0..1:
    a byte comparison when nothing changed, one vectorised pass when something did."""
    if before == after:
        return 0.0
    if len(before) != len(after) or len(before) % 4:
        return 1.0
    a = np.frombuffer(before, dtype=np.uint32)
    b = np.frombuffer(after, dtype=np.uint32)
    return float(np.count_nonzero(a != b)) / a.size


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
    monitor, 0 all of them), ``region`` ((x, y, w, h) of the monitor: observe and act only
    there), ``window`` (a window spec: observe and act only in that window's client area,
    followed when it moves; it is found when the device opens, waiting up to
    ``window_timeout`` s for it to appear, then raised and focused), ``settle_timeout``/``settle_interval``/``settle_quiet`` (how long and
    how often observe polls, and how long the frame must stay the same: longer than one frame of
    a 60 Hz animation, 16.7 ms, or two grabs between its frames pass as settled), ``change_timeout`` (after an action, how long observe
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
        settle_quiet: float = 0.025,
        change_timeout: float = 0.2,
        drag_steps: int = 10,
        name: str = "desktop",
        region: Region | None = None,
        window: str | None = None,
        window_timeout: float = 5.0,
    ) -> None:
        if region is not None and window is not None:
            raise ConfigError("give a region or a window to observe, not both")
        if region is not None:
            region = _check_region(region)
        self._display = display
        self.monitor = monitor
        self.region: Region | None = region
        self.window: WindowSpec | None = WindowSpec.parse(window) if window is not None else None
        self.window_timeout = window_timeout
        self._windows: X11Windows | None = None
        self._window_id: int | None = None
        self._window_title = ""
        self.settle_timeout, self.settle_interval = settle_timeout, settle_interval
        self.settle_quiet = settle_quiet
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
        self._seen: bytes | None = None
        """The frame the last observation returned: what ``change`` is measured against."""
        self.waited: dict[str, float] = {"observe": 0.0, "execute": 0.0, "image": 0.0}
        """Seconds the last observe and execute spent waiting for the screen to settle (polling
        grabs and sleeps, typing's pauses between chunks): not SDK work, reported apart; and
        ``image``: the last observe's conversion of the grab into an image."""
        self._grab_s = 0.0

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
        try:
            self._open_view(monitors)
            self._grab()
        except BaseException:
            self._close()
            raise

    def _open_view(self, monitors: list[dict[str, int]]) -> None:
        if self.region is not None:
            x, y, w, h = self.region
            mon = monitors[self.monitor]
            if x + w > mon["width"] or y + h > mon["height"]:
                raise ConfigError(
                    f"region {w}x{h}+{x}+{y} does not fit monitor {self.monitor} "
                    f"({mon['width']}x{mon['height']})"
                )
        if self.window is not None:
            info = self._x11().find(self.window, timeout=self.window_timeout)
            self._window_id, self._window_title = info.id, info.title
            self._x11().activate(info.id)

    def describe(self) -> dict[str, Any]:
        """Adds what is observed: ``view`` {"screen": monitor}, {"region": [x, y, w, h]} or
        {"window": spec, "id": "0x..", "title": title when found}; and ``screen``, the
        monitor's [width, height] (the view's geometry is the view's own size)."""
        view: dict[str, Any] = {"screen": self.monitor}
        if self.region is not None:
            view = {"region": list(self.region)}
        elif self.window is not None:
            view = {"window": str(self.window)}
            if self._window_id is not None:
                view.update(id=hex(self._window_id), title=self._window_title)
        mon = self._sct.monitors[self.monitor] if self._sct is not None else None
        screen = {"screen": [mon["width"], mon["height"]]} if mon else {}
        return {**super().describe(), "view": view, **screen}

    def _close(self) -> None:
        self._seen = None
        typer, self._typer = self._typer, None
        if typer is not None and not self._lost:
            with contextlib.suppress(Exception):
                typer.close()
        sct, self._sct = self._sct, None
        if sct is not None:
            with contextlib.suppress(Exception):  # mss raises on a connection that died
                sct.close()
        windows, self._windows = self._windows, None
        if windows is not None:
            windows.close()
        self._geometry = None

    # -- observe ---------------------------------------------------------------------------------
    def _wait_for_drawing(self) -> None:
        """Until the screen changed since the last grab and then settled (bounded): the app has
        handled the input sent so far."""
        t0 = time.perf_counter()
        self._last = self._settle(self._last, self.settle_timeout)[0].raw
        self.waited["execute"] += time.perf_counter() - t0

    def _settle(
        self, before: bytes | None, change_timeout: float
    ) -> tuple[Any, int, bool | None, bool]:
        """Grab until the frame differs from ``before`` (if given; at most ``change_timeout``),
        then until the frame has stayed the same for ``settle_quiet`` s, grabbing every
        ``settle_interval`` s (at most ``settle_timeout``). Returns (last grab, grabs taken,
        changed, settled)."""
        shot, grabs, changed = self._grab(), 1, None
        if before is not None:
            changed = shot.raw != before
            until = time.monotonic() + change_timeout
            while not changed and time.monotonic() < until:
                time.sleep(self.settle_interval)
                shot, grabs = self._grab(), grabs + 1
                changed = shot.raw != before
        deadline = since = time.monotonic()  # since: when the frame in ``shot`` was first seen
        deadline += self.settle_timeout
        while time.monotonic() < deadline:
            time.sleep(self.settle_interval)
            nxt = self._grab()
            grabs += 1
            if nxt.raw != shot.raw:
                shot, since = nxt, time.monotonic()
            elif time.monotonic() - since >= self.settle_quiet:
                return nxt, grabs, changed, True
        return shot, grabs, changed, False

    def _grab(self) -> Any:
        """One mss grab of the view; updates the geometry (scale = physical / logical)."""
        box = self._box()
        t0 = time.perf_counter()
        try:
            shot = self._sct.grab(box)
        except Exception as exc:
            self._check_alive(exc)
            raise
        self._geometry = ScreenGeometry(
            width=shot.width,
            height=shot.height,
            scale=shot.width / box["width"],
            origin=(float(box["left"]), float(box["top"])),
        )
        self._grab_s = time.perf_counter() - t0
        return shot

    def view_origin(self) -> tuple[int, int]:
        """The screen pixel at the top-left of what is observed now (the monitor's, the
        region's or the window's): a point (x, y) of an observation is screen pixel
        (x + left, y + top)."""
        box = self._box()
        return int(box["left"]), int(box["top"])

    def _box(self) -> dict[str, int]:
        """The screen rectangle observed now: the monitor, the region on it, or the window's
        client area (read again each time: it may have moved) cut to the screen."""
        mon = self._sct.monitors[self.monitor]
        if self.region is not None:
            x, y, w, h = self.region
            return {"left": mon["left"] + x, "top": mon["top"] + y, "width": w, "height": h}
        if self._windows is None or self._window_id is None:  # the whole monitor
            return dict(mon)
        try:
            x, y, w, h = self._windows.rect(self._window_id, repr(str(self.window)))
        except PixelPilotError:
            raise
        except Exception as exc:  # the X connection itself broke
            self._check_alive(exc)
            raise
        screen = self._sct.monitors[0]
        left, top = max(x, screen["left"]), max(y, screen["top"])
        right = min(x + w, screen["left"] + screen["width"])
        bottom = min(y + h, screen["top"] + screen["height"])
        if right <= left or bottom <= top:
            raise DeviceError(
                f"window {str(self.window)!r} ({hex(self._window_id)}) is entirely off the "
                f"screen ({w}x{h}+{x}+{y}); move it back and re-run"
            )
        return {"left": left, "top": top, "width": right - left, "height": bottom - top}

    def _observe(self) -> Observation:
        if self._lost:
            raise DeviceLost(f"X display {self._display} is gone")
        before, self._acted = (self._last if self._acted else None), False
        t0 = time.perf_counter()
        shot, grabs, changed, settled = self._settle(before, self.change_timeout)
        # all but the last grab only waited for the screen to settle
        self.waited["observe"] = time.perf_counter() - t0 - self._grab_s
        self._last = shot.raw
        change = None if self._seen is None else changed_fraction(self._seen, shot.raw)
        self._seen = shot.raw
        t1 = time.perf_counter()
        image = Image.frombytes("RGB", (shot.width, shot.height), shot.raw, "raw", "BGRX")
        self.waited["image"] = time.perf_counter() - t1
        extra = {"settled": settled, "grabs": grabs, "changed": changed, "change": change}
        return Observation(image=image, geometry=self.geometry, extra=extra)

    def target_at(self, point: Point | None) -> TargetInfo:
        """The X11 window under ``point`` (screen_px of the view), or the one with the keyboard
        focus."""
        self._require_connected()
        if point is None:
            return self._x11().focused()
        x, y = to_logical(int(point.x), int(point.y), self.geometry)
        return self._x11().at(int(x), int(y))

    # -- execute ---------------------------------------------------------------------------------
    def _execute(self, action: Action) -> Executed:
        if self._lost or display_alive(self._display or "") is False:
            self._lost = True
            raise DeviceLost(f"X display {self._display} is gone; restart it and re-run")
        pag = load_pyautogui(self._display or "")
        geom = self.geometry
        done_action = action
        self.waited["execute"] = 0.0
        try:
            pointer = None
            at_pointer = (
                (isinstance(action, Drag) and action.start is None)
                or (isinstance(action, Click) and action.point is None)
                or (isinstance(action, Scroll) and action.point is None)
            )
            if at_pointer:  # acts where the pointer is: that must be in the view
                lx, ly = pag.position()
                pointer = ((lx - geom.origin[0]) * geom.scale, (ly - geom.origin[1]) * geom.scale)
                if not geom.contains(int(pointer[0]), int(pointer[1])):
                    raise PointOutOfBounds(
                        f"{action.kind}: the pointer is outside the {geom.width}x{geom.height} "
                        "screen; give the point where it should act"
                    )
                if isinstance(action, (Drag, Click)):  # record where it acted
                    here = Point(x=pointer[0], y=pointer[1], space="screen_px")
                    field = "start" if isinstance(action, Drag) else "point"
                    done_action = action.model_copy(update={field: here})
            commands = plan(
                action, geom, pointer=pointer,
                drag_steps=self.drag_steps,
            )  # fmt: skip
            try:
                self._run_all(commands, pag)
            finally:
                self._acted = True  # the next observe waits for this action's drawing
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

    def _run_all(self, commands: list[Command], pag: ModuleType) -> None:
        """Run ``commands`` in order, checking the fail-safe and the run's interlock between
        them; a mouse button pressed by a command is released if a later one is stopped."""
        calls = self._calls(pag)
        held: str | None = None
        try:
            for n, cmd in enumerate(commands):
                if n:
                    self._between(pag)
                self._run(cmd, pag, calls)
                if cmd[0] == "pyautogui.mouseDown":
                    held = cmd[1].get("button", "left")
                elif cmd[0] == "pyautogui.mouseUp":
                    held = None
        except BaseException:
            if held is not None:
                _release(pag, held)
            raise

    def _between(self, pag: ModuleType) -> None:
        """Between two chunks of an action: the run's kill/pause switch, then pyautogui's
        corner fail-safe (a human who took the pointer stops the action)."""
        self._checkpoint()
        pag.failSafeCheck()

    def _type(self, text: str, pag: ModuleType) -> None:
        """Type ``text`` in chunks of TYPE_CHUNK characters; after each, wait until the app
        shows them (so that a stop leaves no keys queued) and check the switches."""
        if self._typer is None:
            self._typer = KeyTyper(self._display or "")
        self._last = self._grab().raw  # what "the app has drawn the keys" is judged against
        remaps = self._typer.remaps
        for start in range(0, len(text), TYPE_CHUNK):
            if start:
                t0 = time.perf_counter()
                self._last = self._settle(self._last, self.change_timeout)[0].raw
                self.waited["execute"] += time.perf_counter() - t0
            self._between(pag)  # a human in the corner stops typing too
            self._typer.type(text[start : start + TYPE_CHUNK], between_chunks=self._wait_for_drawing)
        if self._typer.remaps != remaps:
            self._x11().wm_sync()  # the WM has reloaded its bindings: no click gets lost

    def _run(self, cmd: Command, pag: ModuleType, calls: dict[str, Callable[..., Any]]) -> None:
        name = cmd[0]
        if name == "xtest.type":
            self._type(cmd[1]["text"], pag)
            return
        fn = calls.get(name)
        if fn is None:
            raise DeviceError(f"unknown desktop command {name!r}")
        fn(**cmd[1])

    def _x11(self) -> X11Windows:
        """This device's python-xlib connection for windows and the window manager."""
        if self._windows is None:
            self._windows = X11Windows(self._display or "")
        return self._windows

    def _check_alive(self, exc: BaseException) -> None:
        """Raise DeviceLost (from ``exc``) when the X server no longer answers."""
        if display_alive(self._display or "") is False:
            self._lost = True
            raise DeviceLost(
                f"X display {self._display} is gone ({type(exc).__name__}); "
                "restart the X server and re-run"
            ) from exc


def _release(pag: ModuleType, button: str) -> None:
    """Release a mouse button after an action was stopped mid-drag (the fail-safe off for this
    one call: the pointer may sit in the corner that fired it)."""
    saved = pag.FAILSAFE  # type: ignore[attr-defined]
    pag.FAILSAFE = False  # type: ignore[attr-defined]
    try:
        pag.mouseUp(button=button)
    except Exception:  # noqa: BLE001 - best effort: the display may be gone
        pass
    finally:
        pag.FAILSAFE = saved  # type: ignore[attr-defined]


def _check_region(region: Region) -> Region:
    try:
        x, y, w, h = (int(v) for v in region)
    except (TypeError, ValueError):
        raise ConfigError(f"bad region {region!r}; give (x, y, width, height) in pixels") from None
    if x < 0 or y < 0 or w <= 0 or h <= 0:
        raise ConfigError(
            f"bad region {w}x{h}+{x}+{y}: x and y must be >= 0, width and height > 0"
        )
    return x, y, w, h


def view_options(view: dict[str, Any] | None) -> dict[str, Any]:
    """DesktopDevice options that observe the view a trajectory recorded (``describe()``'s
    ``view``): the same region, or the window found again by its spec (not its old id)."""
    if not view:
        return {}
    if "region" in view:
        return {"region": tuple(view["region"])}
    if "window" in view:
        return {"window": view["window"]}
    return {"monitor": int(view.get("screen", 1))}
