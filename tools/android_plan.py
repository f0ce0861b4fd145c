"""Android actions -> the exact ``adb shell`` argv lists that perform them: pure, tested by output.

``plan(Tap(point=(135, 246)))`` is ``[['input', 'tap', '135', '246']]``; ``AndroidDevice`` joins
every argv with ``shlex.quote`` (``shell_line``) and runs it through adb, so each element
reaches the device's ``sh`` as exactly one word and nothing in it can act as shell syntax.

Typed text has two routes (see docs/android.md):

- ``ime=True``: the ADBKeyboard input method, ``am broadcast -a ADB_INPUT_B64 --es msg B64``.
  The text travels base64-encoded (``[A-Za-z0-9+/=]``: nothing for any shell to interpret) and
  is committed byte-exact, any Unicode included; long text is sent in chunks of at most
  ``IME_CHUNK_BYTES`` UTF-8 bytes, split between characters.
- ``ime=False``: Android's own ``input text``, which only types printable ASCII, turns every
  ``%s`` into a space and splits on spaces. Spaces are sent as ``%s`` and a literal ``%s`` is
  cut between the ``%`` and the ``s`` into two calls; non-ASCII raises UnsupportedAction
  saying how to install ADBKeyboard.

A newline presses Enter and a tab presses Tab (key events) on both routes.
"""

from __future__ import annotations

import base64
import re
import shlex
from collections.abc import Mapping
from typing import assert_never

from pixelpilot.agent.actions import (
    Action,
    AskUser,
    Click,
    Drag,
    Finish,
    Gripper,
    Home,
    Hotkey,
    LongPress,
    Move,
    MoveEffector,
    OpenApp,
    Pick,
    Place,
    Point,
    Scroll,
    Swipe,
    SystemButton,
    Tap,
    TypeText,
    Wait,
)
from pixelpilot.agent.errors import ActionRejected, UnsupportedAction

__all__ = [
    "ADB_KEYBOARD_HINT",
    "DEFAULT_APPS",
    "IME_CHUNK_BYTES",
    "INPUT_TEXT_CHUNK",
    "KEYCODES",
    "KEYEVENTS",
    "Argv",
    "plan",
    "resolve_app",
    "shell_line",
    "type_text",
]

Argv = list[str]

KEYCODES = {
    "home": 3, "back": 4, "tab": 61, "enter": 66, "del": 67, "menu": 82,
    "recent": 187,  # KEYCODE_APP_SWITCH: the overview of recent apps
}  # fmt: skip
"""android.view.KeyEvent codes of the keys pixelpilot presses (numbers work on every version)."""
KEYEVENTS = {
    **KEYCODES,
    "volume_up": 24, "volume_down": 25, "volume_mute": 164, "power": 26, "camera": 27,
    "clear": 28, "search": 84, "notification": 83, "escape": 111, "dpad_up": 19,
    "dpad_down": 20, "dpad_left": 21, "dpad_right": 22, "dpad_center": 23, "wakeup": 224,
    "sleep": 223,
}  # fmt: skip
"""The KeyEvent code of every SystemButton (its name is the adb keyevent name)."""
IME_CHUNK_BYTES = 512
"""UTF-8 bytes per ADBKeyboard broadcast: keeps each shell line well under adbd's limits."""
INPUT_TEXT_CHUNK = 256
"""Characters per ``input text`` call (after %s-encoding)."""
ADB_KEYBOARD_HINT = (
    "install ADBKeyboard (https://github.com/senzhk/ADBKeyBoard: adb install ADBKeyboard.apk; "
    "adb shell ime enable com.android.adbkeyboard/.AdbIME) and pixelpilot selects it while it runs"
)
DEFAULT_APPS: dict[str, str] = {
    "settings": "com.android.settings", "chrome": "com.android.chrome",
    "camera": "com.android.camera2", "contacts": "com.android.contacts",
    "phone": "com.android.dialer", "messages": "com.google.android.apps.messaging",
    "gmail": "com.google.android.gm", "maps": "com.google.android.apps.maps",
    "youtube": "com.google.android.youtube", "play store": "com.android.vending",
    "calendar": "com.google.android.calendar", "clock": "com.google.android.deskclock",
    "files": "com.google.android.apps.nbu.files", "photos": "com.google.android.apps.photos",
    "calculator": "com.google.android.calculator",
}  # fmt: skip
"""App names (lowercase) a model may use -> packages; a device adds its own (``apps=``)."""

_PACKAGE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)+")
_CONTROL = {"\n": "enter", "\t": "tab"}


def plan(action: Action, *, ime: bool, apps: Mapping[str, str] | None = None) -> list[Argv]:
    """The ``adb shell`` argv lists that perform ``action`` (points in screen_px).

    ``ime``: whether ADBKeyboard is the active input method. ``apps``: extra app names ->
    packages for open_app. Control actions (finish, ask_user, wait) need no commands.
    """
    match action:
        case Tap():
            return [["input", "tap", *_xy(action.point)]]
        case LongPress():
            p = _xy(action.point)
            return [["input", "swipe", *p, *p, _ms(action.seconds)]]
        case Swipe():
            return [["input", "swipe", *_xy(action.start), *_xy(action.end), _ms(action.seconds)]]
        case SystemButton():
            return [["input", "keyevent", str(KEYEVENTS[action.button])]]
        case TypeText():
            return type_text(action.text, ime=ime)
        case OpenApp():
            pkg = resolve_app(action.app, apps)
            return [["monkey", "-p", pkg, "-c", "android.intent.category.LAUNCHER", "1"]]
        case Finish() | AskUser() | Wait():
            return []
        case (
            Click() | Move() | Drag() | Scroll() | Hotkey()
            | Pick() | Place() | Gripper() | MoveEffector() | Home()
        ):  # fmt: skip
            raise ActionRejected(f"an Android device cannot do {action.kind!r}")
        case _:
            assert_never(action)


def shell_line(argv: Argv) -> str:
    """The command line the device's sh runs: every element quoted as exactly one word."""
    return " ".join(shlex.quote(a) for a in argv)


def _xy(p: Point) -> list[str]:
    if p.space != "screen_px":
        raise ValueError(f"android actions take screen_px points, got {p.space}")
    return [str(int(p.x)), str(int(p.y))]


def _ms(seconds: float) -> str:
    return str(max(1, round(seconds * 1000)))


def type_text(text: str, *, ime: bool) -> list[Argv]:
    """Commands that type ``text`` byte-exact; newline -> Enter, tab -> Tab key events."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    bad = sorted({c for c in text if (ord(c) < 32 and c not in _CONTROL) or 127 <= ord(c) < 160})
    if bad:
        codes = ", ".join(f"U+{ord(c):04X}" for c in bad)
        raise ActionRejected(f"type: text holds control characters ({codes}); type only text")
    if not ime and any(ord(c) > 126 for c in text):
        raise UnsupportedAction(
            "this device has no ADBKeyboard input method, and Android's `input text` cannot type "
            f"non-ASCII text; {ADB_KEYBOARD_HINT}"
        )
    out: list[Argv] = []
    for part in re.split(r"([\n\t])", text):
        if part in _CONTROL:
            out.append(["input", "keyevent", str(KEYCODES[_CONTROL[part]])])
        elif part:
            out.extend(_broadcasts(part) if ime else _input_text(part))
    return out


def _broadcasts(text: str) -> list[Argv]:
    out: list[Argv] = []
    chunk: list[str] = []
    size = 0
    for c in text:
        n = len(c.encode("utf-8"))
        if size + n > IME_CHUNK_BYTES:
            out.append(_b64(chunk))
            chunk, size = [], 0
        chunk.append(c)
        size += n
    out.append(_b64(chunk))
    return out


def _b64(chars: list[str]) -> Argv:
    msg = base64.b64encode("".join(chars).encode("utf-8")).decode("ascii")
    return ["am", "broadcast", "-a", "ADB_INPUT_B64", "--es", "msg", msg]


def _input_text(text: str) -> list[Argv]:
    """``input text`` calls for printable ASCII: ' ' -> '%s'; a literal '%s' split in two."""
    out: list[Argv] = []
    for piece in re.split(r"(?<=%)(?=s)", text):  # no call may hold a literal '%' before 's'
        encoded = piece.replace(" ", "%s")
        i = 0
        while i < len(encoded):
            j = min(i + INPUT_TEXT_CHUNK, len(encoded))
            if encoded[j - 1 : j + 1] == "%s":  # never cut an encoded space in half
                j -= 1
            out.append(["input", "text", encoded[i:j]])
            i = j
    return out


def resolve_app(app: str, apps: Mapping[str, str] | None = None) -> str:
    """The package for an app name or package; ActionRejected naming the known ones."""
    name = app.strip()
    table = {**DEFAULT_APPS, **{k.lower(): v for k, v in (apps or {}).items()}}
    pkg = table.get(name.lower())
    if pkg is None and _PACKAGE.fullmatch(name):
        pkg = name
    if pkg is None:
        known = ", ".join(sorted({k for k in (apps or {})} or set(DEFAULT_APPS)))
        raise ActionRejected(
            f"open_app: unknown app {app!r}; give a package name (com.example.app) or one of: "
            f"{known}"
        )
    if not _PACKAGE.fullmatch(pkg):
        raise ActionRejected(f"open_app: {pkg!r} is not a package name")
    return pkg
