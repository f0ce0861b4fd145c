"""Type any Unicode text into X11 apps, byte-exact, through the XTEST extension.

pyautogui's ``write`` drops non-ASCII characters, and ``xdotool type`` remaps one spare keycode
per character while the app may still be translating earlier key events with the old map: under
load, characters come out wrong or missing ("東京" -> "東"). ``KeyTyper`` avoids the race:

1. every character of the text gets its own keycode before the first key is pressed — a key
   that already produces it without modifiers, else a spare keycode mapped to it (the same
   keysym on both shift levels, so modifier state does not matter);
2. only then are the keys pressed. The server sends MappingNotify to every client before the
   key events that follow it, so the app translates each key with the final map.
Spare keycodes keep their mapping for later texts (a cache); they are reused, least recently
used first, and restored on close. All the keycodes a chunk remaps change in ONE
ChangeKeyboardMapping request (the unchanged keycodes between them are rewritten as they are),
so every client gets one MappingNotify per chunk, not one per character: a window manager
reloads its key bindings on each (openbox took seconds to work through one per character of a
60-character text, and managed no new window meanwhile), and GTK and Chromium reload the keymap. A text with more distinct characters than spare keycodes is
typed in chunks, and a chunk must not remap a key before the app has read the previous chunk:
an app that handles the previous chunk's MappingNotify late fetches the map as it is THEN and
would translate the previous keys with the next chunk's map (seen under CPU load: CJK text came
out scrambled). So between such chunks ``type`` calls ``between_chunks`` — the desktop device
passes "wait until the screen shows the keys" — or pauses EVICT_PAUSE_S without one.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from Xlib import XK, X
from Xlib import display as xdisplay
from Xlib.ext import xtest

SPECIAL = {"\n": XK.XK_Return, "\t": XK.XK_Tab}
EVICT_PAUSE_S = 0.05
"""Pause before remapping a spare keycode that earlier keys of the same text used."""


def keysym_for(ch: str) -> int:
    """The X keysym that produces ``ch``: Latin-1 keysyms equal the code point; every other
    character is 0x01000000 + its code point (X11 Unicode keysyms)."""
    if ch in SPECIAL:
        return SPECIAL[ch]
    code = ord(ch)
    if 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xFF:
        return code
    return 0x01000000 | code


class KeyTyper:
    """Types text on one X display through its own connection."""

    def __init__(self, display_name: str) -> None:
        self._d: Any = xdisplay.Display(display_name)
        if not self._d.has_extension("XTEST"):
            raise RuntimeError(f"X display {display_name} has no XTEST extension")
        lo, hi = self._d.display.info.min_keycode, self._d.display.info.max_keycode
        mapping = self._d.get_keyboard_mapping(lo, hi - lo + 1)
        self._lo = lo
        self._rows: list[list[int]] = [list(syms) for syms in mapping]
        """The keyboard map as this typer left it: keysyms per keycode from ``lo``."""
        self._direct: dict[int, int] = {}
        spare: list[int] = []
        for keycode, syms in zip(range(lo, hi + 1), mapping, strict=True):
            if not any(syms):
                spare.append(keycode)
            elif syms[0] and syms[0] not in self._direct:
                self._direct[syms[0]] = keycode
        if not spare:
            raise RuntimeError(f"X display {display_name} has no spare keycode to type with")
        self._spare = spare
        self._mapped: OrderedDict[int, int] = OrderedDict()  # keysym -> spare keycode, LRU
        self._free = list(spare)
        self._evicted = False
        self.remaps = 0
        """How many times this typer changed the keyboard map (one per chunk that needed it)."""

    def type(self, text: str, between_chunks: Callable[[], None] | None = None) -> None:
        """Press and release one key per character; returns once the server has them all.

        ``between_chunks`` is called after a chunk whose keys the next chunk would remap, and
        should return once the app has handled that chunk's keys."""
        syms = [keysym_for(c) for c in text]
        start = 0
        while start < len(syms):
            if start and between_chunks is not None:
                between_chunks()
                self._evicted = True  # the app has read the keys: no extra pause needed
            # as many characters as the spare keycodes can hold at once: a chunk never
            # remaps a key that it uses itself
            end, distinct = start, set[int]()
            while end < len(syms):
                s = syms[end]
                if s not in self._direct and s not in distinct:
                    if len(distinct) == len(self._spare):
                        break
                    distinct.add(s)
                end += 1
            codes = self._keycodes(syms[start:end])
            for keycode in codes:
                xtest.fake_input(self._d, X.KeyPress, keycode)
                xtest.fake_input(self._d, X.KeyRelease, keycode)
            self._d.sync()
            self._evicted = False
            start = end

    def _keycodes(self, syms: list[int]) -> list[int]:
        changes: dict[int, int] = {}  # keycode -> its new keysym
        in_use = {self._mapped[s] for s in syms if s in self._mapped}
        codes = []
        for s in syms:
            if s in self._direct:
                codes.append(self._direct[s])
                continue
            if s in self._mapped:
                self._mapped.move_to_end(s)
            else:
                keycode = self._take(in_use)
                changes[keycode] = s
                self._mapped[s] = keycode
                in_use.add(keycode)
            codes.append(self._mapped[s])
        if changes:
            self._remap(changes)
            self._d.sync()  # the new map is in place (and announced) before any key below
        return codes

    def _remap(self, changes: dict[int, int]) -> None:
        """Map each keycode to its keysym (on both shift levels) in one request."""
        width = max(2, len(self._rows[0]))
        for keycode, sym in changes.items():
            self._rows[keycode - self._lo] = [sym, sym] + [X.NoSymbol] * (width - 2)
        first, last = min(changes), max(changes)
        rows = [(list(r) + [X.NoSymbol] * width)[:width] for r in self._rows[first - self._lo :
                                                                             last - self._lo + 1]]
        self._d.change_keyboard_mapping(first, rows)
        self.remaps += 1

    def _take(self, in_use: set[int]) -> int:
        if self._free:
            return self._free.pop()
        for sym, keycode in self._mapped.items():  # least recently used first
            if keycode not in in_use:
                del self._mapped[sym]
                if not self._evicted:  # let apps read keys typed with it before it changes
                    time.sleep(EVICT_PAUSE_S)
                    self._evicted = True
                return keycode
        raise RuntimeError("more distinct characters than spare keycodes in one chunk")

    def close(self) -> None:
        """Unmap the spare keycodes this typer used and close its connection."""
        try:
            if self._mapped:
                self._remap(dict.fromkeys(self._mapped.values(), X.NoSymbol))
                self._d.sync()
        finally:
            self._d.close()
