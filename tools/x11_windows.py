"""Which X11 window is under a point, or has the keyboard focus: its WM_CLASS and title.

For policies ("never type into a terminal"): ``WindowInspector(display).at(x, y)`` walks down
from the root window to the first window that carries a WM_CLASS (the application's top-level
window; a window manager's frame has none), ``focused()`` walks up from the window with the
input focus. Titles come from ``_NET_WM_NAME`` (UTF-8), else ``WM_NAME``. The inspector has its
own X connection, used from one thread. A window that disappears while being read, or a
point over the bare root window, gives an empty ``TargetInfo``.
"""

from __future__ import annotations

from typing import Any

from Xlib import X, error
from Xlib import display as xdisplay

from pixelpilot.tools.base import TargetInfo

MAX_DEPTH = 32
"""Windows nest a few levels deep; a bound keeps a hostile tree from looping."""


class WindowInspector:
    """Reads window classes and titles on one X display through its own connection."""

    def __init__(self, display_name: str) -> None:
        self._d: Any = xdisplay.Display(display_name)
        self._root = self._d.screen().root
        self._net_wm_name = self._d.intern_atom("_NET_WM_NAME")
        self._utf8 = self._d.intern_atom("UTF8_STRING")

    def at(self, x: int, y: int) -> TargetInfo:
        """The application window under root coordinates (x, y)."""
        try:
            win = self._root
            for _ in range(MAX_DEPTH):
                child = win.translate_coords(self._root, x, y).child
                if not child or getattr(child, "id", 0) in (0, X.NONE):
                    return TargetInfo()
                info = self._info(child)
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
                info = self._info(win)
                if info is not None:
                    return info
                win = win.query_tree().parent
        except (error.XError, error.ConnectionClosedError):
            pass
        return TargetInfo()

    def _info(self, win: Any) -> TargetInfo | None:
        cls = win.get_wm_class()
        if not cls:
            return None
        title = None
        prop = win.get_full_property(self._net_wm_name, self._utf8)
        if prop is not None and prop.value:
            raw = prop.value
            title = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        else:
            name = win.get_wm_name()
            if name:
                title = name.decode("latin-1") if isinstance(name, bytes) else str(name)
        return TargetInfo(window_class=tuple(str(c) for c in cls), window_title=title)

    def close(self) -> None:
        self._d.close()
