"""Global hotkeys on an X11 display: grabbed from the X server, handled on a background thread.

``HotkeyListener(display, {"ctrl+alt+shift+k": control.stop, "ctrl+alt+shift+p":
control.toggle_pause})`` grabs each key combination on the root window (XGrabKey, with every
combination of the Caps Lock and Num Lock modifiers, so the keys work whatever their state) on
its own X connection, and calls the function from its thread when the combination is pressed:
the key reaches no application, whichever window has the focus. A combination another client
has grabbed already raises ConfigError naming it (choose another). Auto-repeat is ignored: a
held combination counts once (X repeats a held key as a release and a press with the same
timestamp, or as presses alone; both are recognised).

The defaults, ctrl+alt+shift+k (kill) and ctrl+alt+shift+p (pause/take over), are not bound by
GNOME, KDE Plasma, Xfce or the X server itself (ctrl+alt+backspace, ctrl+alt+F1..F12).
"""

from __future__ import annotations

import contextlib
import select
import threading
from collections.abc import Callable, Mapping
from typing import Any

from Xlib import XK, X, error
from Xlib import display as xdisplay

from pixelpilot.agent.errors import ConfigError
from pixelpilot.tools.xvfb import ensure_xauthority

KILL_KEY = "ctrl+alt+shift+k"
PAUSE_KEY = "ctrl+alt+shift+p"
MODIFIERS = {
    "ctrl": X.ControlMask, "control": X.ControlMask, "shift": X.ShiftMask,
    "alt": X.Mod1Mask, "super": X.Mod4Mask, "win": X.Mod4Mask, "meta": X.Mod4Mask,
}  # fmt: skip
LOCKS = (0, X.LockMask, X.Mod2Mask, X.LockMask | X.Mod2Mask)
"""Caps Lock and Num Lock (Mod2 on every common keymap) must not stop a hotkey."""


def parse_combo(text: str) -> tuple[int, str]:
    """'ctrl+alt+shift+k' -> (modifier mask, key name); ConfigError for what is not one."""
    parts = [p.strip().lower() for p in text.split("+")]
    *mods, key = parts
    if not key or not all(parts):
        raise ConfigError(f"hotkey {text!r}: write modifiers and one key joined by '+'")
    mask = 0
    for m in mods:
        if m not in MODIFIERS:
            raise ConfigError(
                f"hotkey {text!r}: unknown modifier {m!r}; use ctrl, alt, shift or super"
            )
        mask |= MODIFIERS[m]
    if not mask:
        raise ConfigError(f"hotkey {text!r} has no modifier; it would steal an ordinary key")
    return mask, key


class HotkeyListener:
    """Grabs key combinations on one X display and calls their functions when pressed."""

    def __init__(self, display_name: str, bindings: Mapping[str, Callable[[], None]]) -> None:
        self.display_name = display_name
        self._specs = {combo: parse_combo(combo) for combo in bindings}
        self._bindings = dict(bindings)
        self._d: Any = None
        self._keys: dict[tuple[int, int], str] = {}
        self._held: set[int] = set()
        self._released: dict[int, int] = {}
        self._thread: threading.Thread | None = None
        self._closing = False
        self.errors: list[str] = []
        """Exceptions the bound functions raised (the thread keeps listening)."""

    def start(self) -> HotkeyListener:
        """Grab every combination (ConfigError if one is taken) and start listening."""
        ensure_xauthority()
        try:
            self._d = xdisplay.Display(self.display_name)
        except (error.DisplayError, error.ConnectionClosedError, error.XauthError, OSError) as exc:
            raise ConfigError(f"cannot open X display {self.display_name} for hotkeys: {exc}") from None
        root = self._d.screen().root
        try:
            for combo, (mask, key) in self._specs.items():
                keycode = self._keycode(combo, key)
                catch = error.CatchError(error.BadAccess)
                for lock in LOCKS:
                    root.grab_key(keycode, mask | lock, True, X.GrabModeAsync, X.GrabModeAsync,
                                  onerror=catch)  # fmt: skip
                self._d.sync()
                if catch.get_error() is not None:
                    raise ConfigError(
                        f"hotkey {combo} is taken by another program on display "
                        f"{self.display_name}; choose another (--kill-key / --pause-key)"
                    )
                self._keys[(keycode, mask)] = combo
        except BaseException:
            self._release()
            raise
        self._thread = threading.Thread(target=self._listen, name="pixelpilot-hotkeys",
                                        daemon=True)  # fmt: skip
        self._thread.start()
        return self

    def _keycode(self, combo: str, key: str) -> int:
        sym = XK.string_to_keysym(key) or XK.string_to_keysym(key.capitalize())
        if not sym and len(key) == 1:
            sym = ord(key)
        keycode = self._d.keysym_to_keycode(sym) if sym else 0
        if not keycode:
            raise ConfigError(f"hotkey {combo}: no key on this keyboard types {key!r}")
        return int(keycode)

    def _listen(self) -> None:
        fd = self._d.fileno()
        while not self._closing:
            with contextlib.suppress(OSError, ValueError):
                select.select([fd], [], [], 0.05)
            try:
                while self._d.pending_events():
                    event = self._d.next_event()
                    try:
                        self._handle(event)
                    except Exception as exc:  # noqa: BLE001 - keep listening whatever happens
                        self.errors.append(f"{type(exc).__name__}: {exc}")
            except (error.ConnectionClosedError, OSError):
                return  # the display went away: nothing left to listen to

    def _handle(self, event: Any) -> None:
        if event.type not in (X.KeyPress, X.KeyRelease):
            return  # MappingNotify (a typer remapped spare keys), errors, ...
        key = event.detail
        if event.type == X.KeyRelease:
            self._held.discard(key)
            self._released[key] = event.time
            return
        repeat = key in self._held or self._released.get(key) == event.time
        self._held.add(key)
        mask = event.state & ~(X.LockMask | X.Mod2Mask)
        combo = self._keys.get((key, mask))
        if combo is None or repeat:
            return
        try:
            self._bindings[combo]()
        except Exception as exc:  # noqa: BLE001 - a failing callback must not end listening
            self.errors.append(f"{combo}: {type(exc).__name__}: {exc}")

    def close(self) -> None:
        """Stop listening and release the grabs."""
        self._closing = True
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        self._release()

    def _release(self) -> None:
        d, self._d = self._d, None
        if d is None:
            return
        with contextlib.suppress(Exception):
            root = d.screen().root
            for keycode, mask in self._keys:
                for lock in LOCKS:
                    root.ungrab_key(keycode, mask | lock)
            d.sync()
        with contextlib.suppress(Exception):
            d.close()
        self._keys.clear()

    def __enter__(self) -> HotkeyListener:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
