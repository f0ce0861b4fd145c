"""Key names: the canonical names, their aliases, and the keys a desktop can press.

The bottom layer (like actions, geometry and errors): it imports nothing else of pixelpilot's.
Dialects read key names from here for their grammars, the desktop device for what it can press,
evaluation for comparing hotkeys.
"""

from __future__ import annotations

import string

__all__ = ["GRAMMAR_KEYS", "KEY_ALIASES", "KNOWN_KEYS", "normalize_key"]

KEY_ALIASES: dict[str, str] = {
    "control": "ctrl", "ctl": "ctrl", "return": "enter", "escape": "esc", "del": "delete",
    "cmd": "command", "super": "win", "meta": "win", "windows": "win", "option": "alt",
    "arrowup": "up", "arrowdown": "down", "arrowleft": "left", "arrowright": "right",
    "page_up": "pageup", "page_down": "pagedown", "pgup": "pageup", "pgdn": "pagedown",
    "spacebar": "space", " ": "space", "bksp": "backspace",
}  # fmt: skip
"""Other spellings of a key -> its canonical name."""


def normalize_key(key: str) -> str:
    """Canonical lowercase key name ('Control' -> 'ctrl', 'Return' -> 'enter')."""
    k = key.lower()
    k = KEY_ALIASES.get(k, k.strip())
    return KEY_ALIASES.get(k, k)


_NAMED_KEYS = """
    add alt altleft altright apps backspace capslock ctrl ctrlleft ctrlright decimal del delete
    divide down end enter esc escape execute help home insert left multiply numlock pagedown
    pageup pause pgdn pgup print printscreen prntscrn prtsc prtscr return right scrolllock
    select separator shift shiftleft shiftright space subtract tab up win winleft winright
""".split()  # noqa: SIM905 - a word list reads better than 50 quoted strings
KNOWN_KEYS: frozenset[str] = frozenset(
    _NAMED_KEYS
    + [f"f{i}" for i in range(1, 25)]
    + [f"num{i}" for i in range(10)]
    + [c for c in string.printable if c not in "\x0b\x0c"]
)
"""Key names pyautogui can press on X11 (its KEY_NAMES minus those with no X11 keysym)."""

_UNSAFE = frozenset("'\"\\<")
GRAMMAR_KEYS: tuple[str, ...] = tuple(
    sorted(k for k in KNOWN_KEYS if k.strip() == k and k and not set(k) & _UNSAFE)
)
"""Key names a decoding grammar offers: the known keys without blanks and quote characters
(which would end or cut a quoted value)."""
