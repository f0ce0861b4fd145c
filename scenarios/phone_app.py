"""A small simulated phone, rendered with PIL: the app behind the adb fixture (phone_server).

Screens: ``home`` (launcher icons), ``signin`` (Name and Password fields, a Sign in button),
``shop`` (a 40-row list scrolled by swipes), ``settings`` (three toggles and an About row),
``about``, ``notes`` (a long press opens a context menu: Pin, Share, Delete) and ``note``.
Every widget has a fixed box computed from the screen size and density (dp * density/160), the
same boxes that hit tests, rendering, ``uiautomator dump`` and the state file use, so
scenario generators can derive points from ``PhoneApp(...).widgets()``.

Input arrives as Android's ``input`` command would deliver it: taps, swipes with a duration
(a still finger held >= LONG_PRESS_MS is a long press), key codes, and text (``commit_text``).
After every change the whole state is written atomically to a JSON file: that is what checks read.
"""

from __future__ import annotations

import io
import json
import os
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from PIL import Image

from pixelpilot.scenarios.phone_widgets import APPS, LAUNCHER, SCREEN_PACKAGES, Widget

__all__ = ["APPS", "LONG_PRESS_MS", "SCREENS", "TOUCH_SLOP_DP", "PhoneApp", "Widget"]

LONG_PRESS_MS = 500
"""ViewConfiguration's long-press timeout: a still touch held this long is a long press."""
TOUCH_SLOP_DP = 8
"""A touch that moves less than this (dp) is a tap or a long press, not a swipe."""

SCREENS = ("home", "signin", "shop", "settings", "about", "notes", "note")
ITEMS = [f"Item {i:02d}" for i in range(1, 41)]
NOTES = ["Groceries", "Ideas", "Trip plan"]
NOTE_BODIES = {"Groceries": "Milk, eggs, bread", "Ideas": "A robot that waters plants",
               "Trip plan": "Kyoto in April"}  # fmt: skip
TOGGLES = {
    "wifi": ("Wi-Fi", True),
    "bluetooth": ("Bluetooth", False),
    "dark_mode": ("Dark mode", False),
}
MENU_ENTRIES = ("Pin", "Share", "Delete")
KEY_HOME, KEY_BACK, KEY_TAB, KEY_ENTER, KEY_DEL, KEY_MENU = 3, 4, 61, 66, 67, 82


@dataclass
class _State:
    screen: str = "home"
    stack: list[str] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=lambda: {"name": "", "password": ""})
    focus: str | None = None
    message: str = ""
    signed_in: dict[str, str] | None = None
    sign_in_count: int = 0
    scroll: int = 0
    tapped: list[str] = field(default_factory=list)
    selected: str | None = None
    toggles: dict[str, bool] = field(
        default_factory=lambda: {k: v for k, (_, v) in TOGGLES.items()}
    )
    notes: list[str] = field(default_factory=lambda: list(NOTES))
    pinned: list[str] = field(default_factory=list)
    open_note: str | None = None
    menu: str | None = None
    menu_choice: dict[str, str] | None = None
    launched: list[str] = field(default_factory=list)
    keys: list[int] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


class PhoneApp:
    """The simulated phone's UI state machine; thread-safe; writes ``state_path`` on change."""

    def __init__(
        self,
        width: int = 720,
        height: int = 1280,
        density: int = 320,
        start: str = "home",
        state_path: str | None = None,
    ) -> None:
        if start not in SCREENS or start in ("about", "note"):
            raise ValueError(f"unknown start screen {start!r}; use one of: home, signin, shop, "
                             "settings, notes")  # fmt: skip
        self.width, self.height, self.density = width, height, density
        self.s = density / 160
        self.state_path = state_path
        self.lock = threading.RLock()
        self.st = _State(screen=start, stack=[] if start == "home" else ["home"])
        self.extra: dict[str, Any] = {}
        self._version = 0
        self._png: tuple[int, bytes] | None = None

    # -- layout -------------------------------------------------------------------------------
    def dp(self, v: float) -> int:
        return round(v * self.s)

    def _box(self, x: float, y: float, w: float, h: float) -> tuple[int, int, int, int]:
        return self.dp(x), self.dp(y), self.dp(w), self.dp(h)

    @property
    def width_dp(self) -> float:
        return self.width / self.s

    def list_top(self) -> int:
        """Top pixel of the content area below the status bar and the app bar."""
        return self.dp(80)

    def widgets(self) -> list[Widget]:
        """The widgets of the current screen, top to bottom (a menu comes last: it is on top)."""
        st, wd = self.st, self.width_dp
        out: list[Widget] = []
        if st.screen == "home":
            col = wd / 4
            for i, (pkg, (label, _)) in enumerate(APPS.items()):
                out.append(Widget(f"app:{pkg}", "android.widget.TextView", label,
                                  self._box(col * i + (col - 64) / 2, 120, 64, 88)))  # fmt: skip
            return out
        out.append(Widget("title", "android.widget.TextView", _TITLES[st.screen],
                          self._box(0, 24, wd, 56), clickable=False))  # fmt: skip
        if st.screen == "signin":
            for name, label, y in (("name", "Name", 100), ("password", "Password", 188)):
                out.append(Widget(f"{name}_label", "android.widget.TextView", label,
                                  self._box(16, y, wd - 32, 24), clickable=False))  # fmt: skip
                out.append(Widget(name, "android.widget.EditText", st.fields[name],
                                  self._box(16, y + 24, wd - 32, 48), focused=st.focus == name,
                                  password=name == "password"))  # fmt: skip
            out.append(Widget("sign_in", "android.widget.Button", "Sign in",
                              self._box(16, 292, wd - 32, 48)))  # fmt: skip
            out.append(Widget("message", "android.widget.TextView", st.message,
                              self._box(16, 356, wd - 32, 32), clickable=False))  # fmt: skip
        elif st.screen == "shop":
            top, row = self.list_top(), self.dp(56)
            first = st.scroll // row
            for i in range(first, len(ITEMS)):
                y = top + i * row - st.scroll
                if y >= self.height:
                    break
                vis_top = max(y, top)
                out.append(Widget(f"item:{ITEMS[i]}", "android.widget.TextView", ITEMS[i],
                                  (0, vis_top, self.width, y + row - vis_top)))  # fmt: skip
        elif st.screen == "settings":
            for i, (key, (label, _)) in enumerate(TOGGLES.items()):
                y = 80 + 64 * i
                out.append(Widget(f"row:{key}", "android.widget.LinearLayout", label,
                                  self._box(0, y, wd, 64)))  # fmt: skip
                out.append(Widget(f"switch:{key}", "android.widget.Switch", "",
                                  self._box(wd - 68, y + 16, 52, 32), checkable=True,
                                  checked=st.toggles[key]))  # fmt: skip
            out.append(Widget("row:about", "android.widget.LinearLayout", "About phone",
                              self._box(0, 80 + 64 * len(TOGGLES), wd, 64)))  # fmt: skip
        elif st.screen == "about":
            for i, line in enumerate(("Model: PixelPilot Phone", "Android version: 14",
                                      "Build number: PP1A.240101")):  # fmt: skip
                out.append(Widget(f"about:{i}", "android.widget.TextView", line,
                                  self._box(16, 96 + 48 * i, wd - 32, 40), clickable=False))  # fmt: skip
        elif st.screen == "notes":
            for i, note in enumerate(st.notes):
                text = ("★ " if note in st.pinned else "") + note
                out.append(Widget(f"note:{note}", "android.widget.TextView", text,
                                  self._box(0, 80 + 64 * i, wd, 64), long_clickable=True))  # fmt: skip
            if st.menu is not None:
                mtop = (self.height / self.s - 3 * 56) // 2
                out.append(Widget("menu", "android.widget.ListView", st.menu,
                                  self._box(40, mtop - 56, wd - 80, 56 * 4), clickable=False))  # fmt: skip
                for i, entry in enumerate(MENU_ENTRIES):
                    out.append(Widget(f"menu:{entry}", "android.widget.TextView", entry,
                                      self._box(40, mtop + 56 * i, wd - 80, 56)))  # fmt: skip
        elif st.screen == "note":
            note = st.open_note or ""
            out.append(Widget("note_body", "android.widget.TextView", NOTE_BODIES.get(note, ""),
                              self._box(16, 96, wd - 32, 200), clickable=False))  # fmt: skip
        return out

    def widget(self, wid: str) -> Widget:
        """The widget ``wid`` on the current screen (KeyError naming the ones there)."""
        for w in self.widgets():
            if w.id == wid:
                return w
        raise KeyError(f"no widget {wid!r} on {self.st.screen}: "
                       f"{', '.join(w.id for w in self.widgets())}")  # fmt: skip

    # -- input --------------------------------------------------------------------------------
    def tap(self, x: float, y: float) -> None:
        with self.lock:
            self._event({"t": "tap", "x": x, "y": y})
            self._on_tap(x, y)
            self._changed()

    def swipe(self, x1: float, y1: float, x2: float, y2: float, ms: int) -> None:
        """A finger down at (x1, y1), moved to (x2, y2) over ``ms``, then lifted."""
        with self.lock:
            still = max(abs(x2 - x1), abs(y2 - y1)) < self.dp(TOUCH_SLOP_DP)
            if still and ms >= LONG_PRESS_MS:
                self._event({"t": "long_press", "x": x1, "y": y1, "ms": ms})
                self._on_long_press(x1, y1)
            elif still:
                self._event({"t": "tap", "x": x1, "y": y1, "ms": ms})
                self._on_tap(x1, y1)
            else:
                self._event({"t": "swipe", "from": [x1, y1], "to": [x2, y2], "ms": ms})
                if self.st.screen == "shop" and y1 >= self.list_top():
                    limit = max(0, len(ITEMS) * self.dp(56) - (self.height - self.list_top()))
                    self.st.scroll = int(min(max(self.st.scroll + (y1 - y2), 0), limit))
            self._changed()

    def key(self, code: int) -> None:
        with self.lock:
            st = self.st
            self._event({"t": "key", "code": code})
            st.keys.append(code)
            if code == KEY_BACK:
                if st.menu is not None:
                    st.menu = None
                elif st.stack:
                    self._go(st.stack.pop(), push=False)
            elif code == KEY_HOME:
                st.menu, st.stack = None, []
                self._go("home", push=False)
            elif code == KEY_DEL and st.screen == "signin" and st.focus:
                st.fields[st.focus] = st.fields[st.focus][:-1]
            elif code in (KEY_ENTER, KEY_TAB) and st.screen == "signin" and st.focus:
                if st.focus == "name":
                    st.focus = "password"
                elif code == KEY_ENTER:
                    self._sign_in()
            self._changed()

    def commit_text(self, text: str, via: str) -> bool:
        """Text from the keyboard (``via``: 'ime' or 'input'); False when no field has focus."""
        with self.lock:
            st = self.st
            ok = st.screen == "signin" and st.focus is not None
            self._event({"t": "text", "text": text, "via": via, "field": st.focus if ok else None})
            if ok:
                assert st.focus is not None
                st.fields[st.focus] += text
            self._changed()
            return ok

    def launch(self, package: str) -> bool:
        """Open an installed app on its first screen; False when no such package."""
        with self.lock:
            if package not in APPS:
                return False
            self.st.launched.append(package)
            self.st.menu, self.st.stack = None, ["home"]
            self._go(APPS[package][1], push=False)
            self._changed()
            return True

    def note(self, event: dict[str, Any]) -> None:
        """Record a non-input event (e.g. a refused shell line) and write the state."""
        with self.lock:
            self._event(event)
            self._changed()

    # -- behaviour ----------------------------------------------------------------------------
    def _hit(self, x: float, y: float) -> Widget | None:
        hits = [w for w in self.widgets() if w.clickable and w.contains(x, y)]
        return hits[-1] if hits else None

    def _on_tap(self, x: float, y: float) -> None:
        st = self.st
        if st.menu is not None:
            w = self._hit(x, y)
            if w is not None and w.id.startswith("menu:"):
                self._menu_pick(w.text)
            else:
                st.menu = None
            return
        w = self._hit(x, y)
        if w is None:
            if st.screen == "signin":
                st.focus = None
            return
        kind, _, arg = w.id.partition(":")
        if kind == "app":
            self.launch(arg)
        elif w.id in ("name", "password"):
            st.focus = w.id
        elif w.id == "sign_in":
            self._sign_in()
        elif kind == "item":
            st.tapped.append(arg)
            st.selected = arg
        elif kind in ("row", "switch") and arg in st.toggles:
            st.toggles[arg] = not st.toggles[arg]
        elif w.id == "row:about":
            self._go("about")
        elif kind == "note":
            st.open_note = arg
            self._go("note")

    def _on_long_press(self, x: float, y: float) -> None:
        st = self.st
        w = self._hit(x, y)
        if st.menu is None and w is not None and w.long_clickable:
            st.menu = w.id.partition(":")[2]
        elif w is not None:
            self._on_tap(x, y)  # a long press on a plain widget still clicks it

    def _menu_pick(self, entry: str) -> None:
        st = self.st
        note = st.menu or ""
        st.menu_choice = {"note": note, "entry": entry}
        st.menu = None
        if entry == "Delete" and note in st.notes:
            st.notes.remove(note)
        elif entry == "Pin" and note in st.notes:
            st.notes.remove(note)
            st.notes.insert(0, note)
            st.pinned.append(note)

    def _sign_in(self) -> None:
        st = self.st
        if st.fields["name"] and st.fields["password"]:
            st.signed_in = dict(st.fields)
            st.sign_in_count += 1
            st.message = f"Signed in as {st.fields['name']}"
            st.focus = None
        else:
            st.message = "Enter your name and password"

    def _go(self, screen: str, push: bool = True) -> None:
        st = self.st
        if push:
            st.stack.append(st.screen)
        st.screen = screen
        if screen != "signin":
            st.focus = None

    def _event(self, event: dict[str, Any]) -> None:
        self.st.events.append({"screen": self.st.screen, **event})

    def _changed(self) -> None:
        self._version += 1
        if self.state_path:
            self.write_state()

    # -- state and pixels ---------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        with self.lock:
            out = asdict(self.st)
            out.update(self.extra)
            out["ready"] = True
            out["size"] = [self.width, self.height]
            out["density"] = self.density
            out["boxes"] = {w.id: list(w.box) for w in self.widgets()}
            return out

    def save(self) -> None:
        """Write the state now (e.g. after a command that changed only the shell log)."""
        with self.lock:
            if self.state_path:
                self.write_state()

    def write_state(self) -> None:
        """Write the state JSON atomically (a reader never sees half a file)."""
        assert self.state_path
        tmp = f"{self.state_path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.state(), f, ensure_ascii=False)
        os.replace(tmp, self.state_path)

    def png(self) -> bytes:
        """The screen as PNG bytes (cached until the state changes)."""
        with self.lock:
            if self._png is None or self._png[0] != self._version:
                buf = io.BytesIO()
                self.render().save(buf, format="PNG", compress_level=1)
                self._png = (self._version, buf.getvalue())
            return self._png[1]

    def render(self) -> Image.Image:
        """The screen as the phone shows it (status bar, then every widget)."""
        from pixelpilot.scenarios.phone_render import render

        with self.lock:
            return render(self)

    def package(self) -> str:
        """The package in the foreground (the app whose screen is shown)."""
        with self.lock:
            return SCREEN_PACKAGES.get(self.st.screen, LAUNCHER)

    def ui_xml(self) -> str:
        """The screen as ``uiautomator dump`` writes it: a hierarchy of nodes with bounds."""
        from pixelpilot.scenarios.phone_render import ui_xml

        with self.lock:
            return ui_xml(self)


_TITLES = {"signin": "Sign in", "shop": "Shop", "settings": "Settings", "about": "About phone",
           "notes": "Notes", "note": "Note"}  # fmt: skip
