"""X11 windows: find a top-level window by title, WM_CLASS or id and read where its client
area is; tell which window is under a point or has the keyboard focus.

The desktop device observes one window with this (``DesktopDevice(window=...)``). A window
spec is one of::

    Mousepad            a title containing "Mousepad" (case-insensitive); also title=Mousepad
    class=mousepad      WM_CLASS instance or class name equal to "mousepad" (case-insensitive)
    id=0x1a00003        that exact window id (decimal works too)

Candidates are the top-level client windows: the window manager's ``_NET_CLIENT_LIST`` when it
keeps one (EWMH: openbox, xfwm4, ...), else the root's mapped children (no window manager).
Only windows that are shown count. Titles come from ``_NET_WM_NAME`` (UTF-8), else
``WM_NAME``.

Geometry is the CLIENT area (the app's own window) in root coordinates, never the frame the
window manager draws around it: what the app draws does not depend on the window manager or its
theme, so points on it stay the same under openbox, xfwm4 or none; the title bar and borders
belong to the window manager, not to the task.

For policies ("never type into a terminal"), ``at(x, y)`` walks down from the root window to
the first window that carries a WM_CLASS (the application's top-level window; a window
manager's frame has none) and ``focused()`` walks up from the window with the input focus; both
give a ``TargetInfo`` (WM_CLASS, title), empty for a window that disappears while being read or
a point over the bare root window. One connection, used from one thread.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any, Literal

from Xlib import X, Xatom, error
from Xlib import display as xdisplay

from pixelpilot.agent.errors import ConfigError, DeviceError, DeviceLost
from pixelpilot.tools.base import TargetInfo
from pixelpilot.tools.xvfb import ensure_xauthority

__all__ = ["WindowInfo", "WindowSpec", "X11Windows"]

MAX_DEPTH = 32
"""Windows nest a few levels deep; a bound keeps a hostile tree from looping."""


@dataclass(frozen=True)
class WindowSpec:
    """How to recognise a window: ``by`` title (substring), class (exact) or id."""

    by: Literal["title", "class", "id"]
    value: str

    @classmethod
    def parse(cls, text: str) -> WindowSpec:
        """``TITLE``, ``title=TITLE``, ``class=NAME`` or ``id=0xHEX``; ConfigError if empty."""
        key, sep, rest = text.partition("=")
        if sep and key in ("title", "class", "id"):
            by, value = key, rest
        else:
            by, value = "title", text
        if not value.strip():
            raise ConfigError(
                f"empty window spec {text!r}; write TITLE, title=TITLE, class=WM_CLASS or id=0xHEX"
            )
        if by == "id":
            try:
                int(value, 0)
            except ValueError:
                raise ConfigError(f"bad window id {value!r}; write id=0x1a00003") from None
        return cls(by, value)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return self.value if self.by == "title" else f"{self.by}={self.value}"

    def matches(self, info: WindowInfo) -> bool:
        if self.by == "id":
            return info.id == int(self.value, 0)
        if self.by == "class":
            return self.value.casefold() in (c.casefold() for c in info.wm_class)
        return self.value.casefold() in info.title.casefold()


@dataclass(frozen=True)
class WindowInfo:
    """A top-level window: its id, title, WM_CLASS (instance, class) and client rectangle."""

    id: int
    title: str
    wm_class: tuple[str, ...]
    rect: tuple[int, int, int, int]
    """x, y (root coordinates of the client area's top-left), width, height."""

    def describe(self) -> str:
        cls = ".".join(self.wm_class) or "no class"
        x, y, w, h = self.rect
        return f"{hex(self.id)} {self.title!r} ({cls}) {w}x{h}+{x}+{y}"


class X11Windows:
    """One python-xlib connection for finding and following windows (not pyautogui's)."""

    def __init__(self, display_name: str) -> None:
        self.display_name = display_name
        ensure_xauthority()
        try:
            self._d: Any = xdisplay.Display(display_name)
        except Exception as exc:  # Xlib raises its own DisplayError family
            raise DeviceError(f"cannot open X display {display_name}: {exc}") from exc
        self._root = self._d.screen().root
        self._probe: Any = None
        self._atoms = {
            name: self._d.intern_atom(name)
            for name in ("_NET_CLIENT_LIST", "_NET_WM_NAME", "UTF8_STRING", "_NET_ACTIVE_WINDOW",
                         "_NET_SUPPORTING_WM_CHECK")
        }  # fmt: skip

    def wm_sync(self, timeout: float = 2.0) -> bool:
        """Return once the window manager has handled every event sent before this call (False
        after ``timeout``; True at once without one).

        A barrier through the WM's own event queue: ask it for the frame extents of a small
        window of ours (``_NET_REQUEST_FRAME_EXTENTS``, EWMH) and wait for its answer, the
        ``_NET_FRAME_EXTENTS`` property. Used after typing remapped keycodes: openbox then
        reloads its bindings, and a click arriving meanwhile was lost (see ``desktop``).
        """
        if not self.wm_running():
            return True
        atom = self._d.intern_atom("_NET_FRAME_EXTENTS")
        if self._probe is None:
            self._probe = self._root.create_window(
                -10, -10, 1, 1, 0, X.CopyFromParent, event_mask=X.PropertyChangeMask
            )
        from Xlib.protocol import event

        msg = event.ClientMessage(
            window=self._probe,
            client_type=self._d.intern_atom("_NET_REQUEST_FRAME_EXTENTS"),
            data=(32, [0, 0, 0, 0, 0]),
        )
        self._root.send_event(msg, event_mask=X.SubstructureRedirectMask | X.SubstructureNotifyMask)
        self._d.flush()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while self._d.pending_events():
                ev = self._d.next_event()
                if ev.type == X.PropertyNotify and ev.atom == atom and ev.window == self._probe:
                    return True
            time.sleep(0.002)
        return False

    def screen_size(self) -> tuple[int, int]:
        """The root window's (the whole screen's) width and height."""
        screen = self._d.screen()
        return int(screen.width_in_pixels), int(screen.height_in_pixels)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._d.close()

    # -- finding ---------------------------------------------------------------------------------
    def windows(self) -> list[WindowInfo]:
        """Every shown top-level client window, in stacking order of the client list."""
        out = []
        for wid in self._client_ids():
            with contextlib.suppress(error.XError):
                info = self.info(wid)
                if info is not None:
                    out.append(info)
        return out

    def find(self, spec: WindowSpec, timeout: float = 0.0) -> WindowInfo:
        """The one shown window matching ``spec``, waiting up to ``timeout`` s for it to appear.

        ConfigError when none matches in time (listing the windows there are) or when several
        match (listing them: use a longer title, class= or id=).
        """
        deadline = time.monotonic() + timeout
        while True:
            shown = self.windows()
            found = [w for w in shown if spec.matches(w)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                listed = "; ".join(w.describe() for w in found[:5])
                raise ConfigError(
                    f"{len(found)} windows match {str(spec)!r}: {listed}; name one by a longer "
                    "title, class=WM_CLASS or id=0xHEX"
                )
            if time.monotonic() >= deadline:
                there = "; ".join(w.describe() for w in shown[:8]) or "none"
                raise ConfigError(
                    f"no window matches {str(spec)!r} on {self.display_name} after {timeout:g} s "
                    f"(windows shown: {there})"
                )
            time.sleep(0.05)

    def _client_ids(self) -> list[int]:
        prop = self._root.get_full_property(self._atoms["_NET_CLIENT_LIST"], Xatom.WINDOW)
        if prop is not None and self.wm_running():
            return [int(w) for w in prop.value]
        return [int(c.id) for c in self._root.query_tree().children]  # no window manager

    def wm_running(self) -> bool:
        """Whether an EWMH window manager runs (it names its check window on the root)."""
        prop = self._root.get_full_property(self._atoms["_NET_SUPPORTING_WM_CHECK"], Xatom.WINDOW)
        return prop is not None and bool(prop.value)

    def info(self, wid: int) -> WindowInfo | None:
        """The window's title, class and client rectangle; None when it is not shown or has
        neither a title nor a class (an app's helper window). Raises Xlib's BadWindow when it
        no longer exists."""
        win = self._d.create_resource_object("window", wid)
        attrs = win.get_attributes()
        if attrs.map_state != X.IsViewable or attrs.override_redirect:
            return None
        title = self._title(win)
        wm_class = tuple(win.get_wm_class() or ())
        if not title and not wm_class:
            return None
        return WindowInfo(wid, title, wm_class, self._rect(win))

    def _title(self, win: Any) -> str:
        prop = win.get_full_property(self._atoms["_NET_WM_NAME"], self._atoms["UTF8_STRING"])
        if prop is not None and prop.value:
            value = prop.value
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        name = win.get_wm_name()
        if isinstance(name, bytes):
            return name.decode("latin-1")
        return name or ""

    def _rect(self, win: Any) -> tuple[int, int, int, int]:
        geo = win.get_geometry()
        pos = win.translate_coords(self._root, 0, 0)  # root -> window: minus its root position
        return -int(pos.x), -int(pos.y), int(geo.width), int(geo.height)

    # -- what an action acts on (policies) -------------------------------------------------------
    def at(self, x: int, y: int) -> TargetInfo:
        """The application window under root coordinates (x, y)."""
        try:
            win = self._root
            for _ in range(MAX_DEPTH):
                child = win.translate_coords(self._root, x, y).child
                if not child or getattr(child, "id", 0) in (0, X.NONE):
                    return TargetInfo()
                info = self._target(child)
                if info is not None:
                    return info
                win = child
        except (error.XError, error.ConnectionClosedError):
            pass
        return TargetInfo()

    def focused(self) -> TargetInfo:
        """The application window that has the keyboard focus."""
        try:
            win = self._d.get_input_focus().focus
            if isinstance(win, int):  # PointerRoot or None: the window under the pointer
                p = self._root.query_pointer()
                return self.at(p.root_x, p.root_y)
            for _ in range(MAX_DEPTH):
                if win is None or win.id == self._root.id:
                    break
                info = self._target(win)
                if info is not None:
                    return info
                win = win.query_tree().parent
        except (error.XError, error.ConnectionClosedError):
            pass
        return TargetInfo()

    def _target(self, win: Any) -> TargetInfo | None:
        """The window's class and title if it carries a WM_CLASS (an application's window)."""
        cls = win.get_wm_class()
        if not cls:
            return None
        return TargetInfo(window_class=tuple(str(c) for c in cls), window_title=self._title(win) or None)

    # -- following ------------------------------------------------------------------------------
    def rect(self, wid: int, label: str) -> tuple[int, int, int, int]:
        """Where window ``wid`` is now (client area, root coordinates).

        DeviceLost when it no longer exists (closed, or its app exited); DeviceError when it is
        not shown (minimised or unmapped).
        """
        try:
            win = self._d.create_resource_object("window", wid)
            attrs = win.get_attributes()
            rect = self._rect(win)
        except (error.BadWindow, error.BadDrawable):
            raise DeviceLost(
                f"window {label} ({hex(wid)}) is gone: it was closed or its app exited; "
                "start it again and re-run"
            ) from None
        if attrs.map_state != X.IsViewable:
            raise DeviceError(
                f"window {label} ({hex(wid)}) is not shown (minimised or unmapped); "
                "show it and re-run"
            )
        return rect

    def activate(self, wid: int) -> None:
        """Raise the window and give it the keyboard focus (through the window manager when one
        runs, as a pager would; directly otherwise)."""
        win = self._d.create_resource_object("window", wid)
        if self.wm_running():
            from Xlib.protocol import event

            msg = event.ClientMessage(
                window=win,
                client_type=self._atoms["_NET_ACTIVE_WINDOW"],
                data=(32, [2, X.CurrentTime, 0, 0, 0]),  # source 2: a pager / user action
            )
            mask = X.SubstructureRedirectMask | X.SubstructureNotifyMask
            self._root.send_event(msg, event_mask=mask)
        else:
            win.configure(stack_mode=X.Above)
            win.set_input_focus(X.RevertToParent, X.CurrentTime)
        self._d.sync()
