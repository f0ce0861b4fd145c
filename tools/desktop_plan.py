"""Desktop actions -> the exact commands that perform them: pure, tested by exact output.

``plan`` turns an action (points in screen_px) into JSON-able commands such as
``["pyautogui.click", {"x": 640.0, "y": 400.0, "button": "left", "clicks": 1, ...}]`` or
``["xtest.type", {"text": "Zoë"}]``. Pointer coordinates become pyautogui's global logical
coordinates (monitor origin + pixels / scale). ``DesktopDevice`` runs the commands.
"""

from __future__ import annotations

from typing import Any, assert_never

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
from pixelpilot.agent.errors import ActionRejected
from pixelpilot.agent.geometry import ScreenGeometry, to_logical
from pixelpilot.agent.keys import KNOWN_KEYS, normalize_key

__all__ = ["KNOWN_KEYS", "Command", "hotkey_keys", "plan"]

Command = list[Any]


# -- pure: action -> commands ---------------------------------------------------------------
def plan(
    action: Action,
    geometry: ScreenGeometry,
    *,
    pointer: tuple[float, float] | None = None,
    drag_steps: int = 10,
    click_interval: float = 0.05,
) -> list[Command]:
    """The exact commands that perform ``action`` (points in screen_px) on ``geometry``.

    Pointer coordinates become pyautogui's global logical coordinates (``to_logical``: origin
    of the monitor plus pixels / scale). ``pointer`` is the current pointer position in
    screen_px, needed only by a drag without a start. Raises ActionRejected for keys or text
    that cannot be typed. Control actions (finish, ask_user) need no commands.
    """
    match action:
        case Click():  # no point: pyautogui clicks where the pointer is
            at = _xy(action.point, geometry) if action.point is not None else {}
            return [[
                "pyautogui.click",
                {**at, "button": action.button, "clicks": action.count,
                 "interval": click_interval if action.count > 1 else 0.0},
            ]]  # fmt: skip
        case Move():
            return [["pyautogui.moveTo", _xy(action.point, geometry)]]
        case Drag():
            return _drag(action, geometry, pointer, drag_steps)
        case Scroll():
            vertical = action.direction in ("up", "down")
            sign = 1 if action.direction in ("up", "right") else -1
            args: dict[str, Any] = {"clicks": sign * action.amount}
            if action.point is not None:
                args.update(_xy(action.point, geometry))
            return [["pyautogui.scroll" if vertical else "pyautogui.hscroll", args]]
        case TypeText():
            return _type(action.text)
        case Hotkey():
            return [["pyautogui.hotkey", {"keys": hotkey_keys(action.keys)}]]
        case Finish() | AskUser() | Wait():
            return []
        case (
            Tap() | LongPress() | Swipe() | SystemButton() | OpenApp()
            | Pick() | Place() | Gripper() | MoveEffector() | Home()
        ):  # fmt: skip
            raise ActionRejected(f"the desktop cannot do {action.kind!r}")
        case _:
            assert_never(action)


def _xy(p: Point, geom: ScreenGeometry) -> dict[str, float]:
    x, y = to_logical(p.x, p.y, geom)  # type: ignore[arg-type]  # float pixels are fine here
    return {"x": round(float(x), 2), "y": round(float(y), 2)}


def _drag(
    action: Drag, geom: ScreenGeometry, pointer: tuple[float, float] | None, steps: int
) -> list[Command]:
    """mouseDown, ``steps`` moveTo steps, mouseUp: apps see real motion events."""
    if steps < 1:
        raise ValueError("drag_steps must be at least 1")
    end = action.end
    if action.start is not None:
        sx, sy = action.start.x, action.start.y
        start = _xy(action.start, geom)
        cmds: list[Command] = [["pyautogui.mouseDown", {**start, "button": action.button}]]
    elif pointer is not None:
        sx, sy = pointer
        cmds = [["pyautogui.mouseDown", {"button": action.button}]]  # press where it is
    else:
        raise ValueError("a drag without a start needs the current pointer position")
    for i in range(1, steps + 1):
        p = Point(x=sx + (end.x - sx) * i / steps, y=sy + (end.y - sy) * i / steps,
                  space="screen_px")  # fmt: skip
        cmds.append(["pyautogui.moveTo", _xy(p, geom)])
    cmds.append(["pyautogui.mouseUp", {**_xy(end, geom), "button": action.button}])
    return cmds


def _type(text: str) -> list[Command]:
    """One XTEST typing command; a newline presses Enter, a tab Tab."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    bad = sorted({c for c in text if (ord(c) < 32 and c not in "\t\n") or 127 <= ord(c) < 160})
    if bad:
        codes = ", ".join(f"U+{ord(c):04X}" for c in bad)
        raise ActionRejected(f"type: text holds control characters ({codes}); use hotkey for keys")
    return [["xtest.type", {"text": text}]]


_BLANK_KEYS = {" ": "space", "\t": "tab", "\n": "enter", "\r": "enter"}


def hotkey_keys(keys: list[str]) -> list[str]:
    """Normalized key names; ActionRejected naming the first key pyautogui cannot press."""
    out = []
    for key in keys:
        k = normalize_key(key) if key.strip() else _BLANK_KEYS.get(key, key)
        if k not in KNOWN_KEYS:
            raise ActionRejected(
                f"hotkey: unknown key {key!r}; use names like ctrl, alt, shift, win, enter, esc, "
                "tab, backspace, delete, up, pagedown, f1..f24, or a single character"
            )
        out.append(k)
    return out
