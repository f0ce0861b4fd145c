"""Small helpers shared by the dialect parsers.

Text: end-token cutting, code-fence stripping, JSON object extraction, string (un)escaping, a
hand-written scanner for UI-TARS's python-like calls. Actions:
fitting a parsed action to the device's kinds through the families' obvious synonyms (a click on
a phone is a tap). Nothing here evaluates model text: JSON goes through ``json``, the rest is
regexes and explicit scanning. Every ParseError message is one line written for the model.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pixelpilot.agent.actions import (
    Click,
    Drag,
    Hotkey,
    Point,
    Scroll,
    Space,
    Swipe,
    SystemButton,
    Tap,
)
from pixelpilot.agent.dialects.base import StepContext
from pixelpilot.agent.errors import ParseError
from pixelpilot.agent.keys import normalize_key

_END_TOKENS = ("<|im_end|>", "<|endoftext|>")
_FENCE_LINE = re.compile(r"^[ \t]*```[\w+-]*[ \t]*(?:\n|$)", re.MULTILINE)


def clean(raw: str) -> str:
    """``raw`` cut at the first end-of-turn token, without code-fence lines, stripped.

    ``str.find`` first (fast); the regexes run only where a fence is."""
    ends = [i for i in (raw.find(t) for t in _END_TOKENS) if i >= 0]
    text = raw[: min(ends)] if ends else raw
    if "```" not in text:
        return text.strip()
    text = _FENCE_LINE.sub("", text).strip()
    # A one-line answer wrapped in inline fences: ```click(...)```
    text = re.sub(r"^```(?:[A-Za-z]+\s)?", "", text)
    text = re.sub(r"```$", "", text)
    return text.strip()


def starts_line(text: str, pos: int) -> bool:
    """Whether only blanks (at most 64) come between the line's start and ``pos``."""
    start = max(text.rfind("\n", max(pos - 65, 0), pos) + 1, pos - 64)
    return (start == 0 or text[start - 1] == "\n") and not text[start:pos].strip(" \t")


def snippet(text: str, n: int = 40) -> str:
    """A short one-line quotation of model text for an error message."""
    return repr(text if len(text) <= n else text[:n] + "...")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def json_object(text: str, where: str, example: str, exact: bool = False) -> dict[str, Any]:
    """The first JSON object in ``text`` (the whole text when ``exact``); ParseError otherwise.

    ``where`` names the place in the answer, ``example`` is what the model should write.
    """
    start = text.find("{")
    if start < 0 or (exact and text[:start].strip()):
        raise ParseError(f"{where} holds no JSON object; write {example}")
    try:
        obj, end = _DECODER.raw_decode(text, start)
    except RecursionError:
        raise ParseError(f"the JSON in {where} is nested too deeply; write {example}") from None
    except ValueError as err:
        pos = getattr(err, "pos", 0)
        msg = getattr(err, "msg", str(err))
        if pos >= len(text.rstrip()) or msg.startswith("Unterminated string"):
            raise ParseError(
                f"the JSON in {where} is cut off; write the complete {example}"
            ) from None
        where_err = f" at character {pos - start}" if hasattr(err, "pos") else ""
        raise ParseError(f"{where} is not valid JSON ({msg}{where_err}); write {example}") from None
    if exact and text[end:].strip():
        extra = snippet(text[end:].strip(), 20)
        raise ParseError(f"{where} has text after the JSON object ({extra}); write only {example}")
    assert isinstance(obj, dict)  # it started with "{"
    return obj


CALL_CHARS = 16_384
"""The most characters a text syntax reads from where a call starts: no valid call is longer
(typed text is at most 4,000 characters), so reading is bounded whatever follows."""
_UNESCAPE = (("\\n", "\n"), ("\\t", "\t"), ("\\r", "\r"), ("\\'", "'"), ('\\"', '"'))
_ESCAPE = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def unescape(s: str) -> str:
    """The escapes a model writes in a quoted value resolved (``\\n \\t \\r \\' \\" \\\\``),
    left to right; any other backslash stays (``C:\\Users``). Linear, in C: split at escaped
    backslashes, replace the other escapes in each part, join with one backslash."""
    if "\\" not in s:
        return s
    parts = s.split("\\\\")
    for a, b in _UNESCAPE:
        parts = [p.replace(a, b) for p in parts]
    return "\\".join(parts)


def escape_single(s: str) -> str:
    """``s`` escaped for a single-quoted string; ``unescape`` inverts it."""
    return "".join(_ESCAPE.get(c, c) for c in s)


def num(v: float) -> int | float:
    """An int when the coordinate is integral (how models write them), else the float."""
    return int(v) if float(v).is_integer() else float(v)


# -- python-like calls (UI-TARS) ---------------------------------------------------------------
@dataclass
class Call:
    """A call as written: ``name(key='value', ...)``; values are unescaped strings."""

    name: str
    args: dict[str, str] = field(default_factory=dict)
    unterminated: set[str] = field(default_factory=set)
    """Arguments whose quoted value ran to the end of the text."""
    closed: bool = False
    """Whether the closing parenthesis was found."""


_KEY = re.compile(r"[\s,]*([A-Za-z_]\w{0,63})[ \t]*=[ \t]*")
_BARE = re.compile(r"[^,)\s]{1,200}")
# A quote closes a value only when what follows can follow a value: a comma, the closing
# parenthesis, the end, or (a missing comma) the next ``key=``; so ``don't`` stays in the text.
# Atomic groups and possessive loops: no backtracking, linear.
_CLOSES = r"\s*(?:[,)]|$)|\s+[A-Za-z_]\w{0,63}\s*="
_VALUE = {
    q: re.compile(rf"((?>[^{q}\\]++|\\.|{q}(?!{_CLOSES}))*+){q}(?={_CLOSES})", re.DOTALL)
    for q in "'\""
}


def scan_call(text: str, name: str, start: int) -> Call:
    """Read the arguments of a call whose ``name(`` ends at ``start`` (at most CALL_CHARS
    characters of them). Raises ParseError. Linear."""
    call = Call(name)
    text = text[start : start + CALL_CHARS]
    i, n = 0, len(text)
    while True:
        while i < n and (text[i].isspace() or text[i] == ","):
            i += 1
        if i >= n:
            return call
        if text[i] == ")":
            call.closed = True
            return call
        m = _KEY.match(text, i)
        if not m:
            raise ParseError(
                f"cannot read the arguments of {name}() at {snippet(text[i:], 20)}; "
                f"write {name}(key='value', ...)"
            )
        key, i = m.group(1), m.end()
        if key in call.args:
            raise ParseError(f"{name}() repeats the argument {key!r}; give it once")
        if i < n and text[i] in "'\"":
            v = _VALUE[text[i]].match(text, i + 1)
            if v is None:  # the value runs to the end
                value, i = unescape(text[i + 1 :]), n
                call.unterminated.add(key)
            else:
                value, i = unescape(v.group(1)), v.end()
        else:
            b = _BARE.match(text, i)
            if not b:
                raise ParseError(f"{name}(): {key}= has no value; write {key}='...'")
            value, i = b.group(0), b.end()
        call.args[key] = value


# -- fitting an action to the device -----------------------------------------------------------
SYSTEM_KEYS = frozenset({"back", "home", "enter", "menu"})
SWIPE_SHARE = 0.5
"""A scroll turned into a swipe moves the finger over this share of the screen."""


def extent(space: Space, ctx: StepContext) -> tuple[float, float]:
    """Size of the model's coordinate space: (1000, 1000) or the resized image."""
    return (
        (1000.0, 1000.0) if space == "norm1000" else (float(ctx.resized[0]), float(ctx.resized[1]))
    )


def swipe_for_scroll(action: Scroll, size: tuple[float, float], space: Space) -> Swipe:
    """The swipe that scrolls a touch screen like ``action``: 'down' reveals content below,
    so the finger moves up. Centred on the scroll's point (or the screen), kept on screen."""
    w, h = size
    p = action.point
    cx, cy = (p.x, p.y) if p is not None else (w / 2, h / 2)
    dx, dy = {"down": (0, -1), "up": (0, 1), "left": (1, 0), "right": (-1, 0)}[action.direction]
    half = SWIPE_SHARE / 2 * (w if dx else h)

    def at(sign: int) -> Point:
        x = min(max(cx + sign * dx * half, 0), w)
        y = min(max(cy + sign * dy * half, 0), h)
        return Point(x=round(x), y=round(y), space=space)

    return Swipe(start=at(-1), end=at(1))


def fit(action: Any, ctx: StepContext, space: Space) -> Any | None:
    """``action`` if the device offers its kind, else its obvious synonym there, else None.

    Synonyms: click <-> tap (left, single), drag -> swipe (from a given start), scroll -> swipe
    on a touch screen, one system key (back/home/enter/menu) -> system_button.
    """
    kinds = ctx.kinds
    if action.kind in kinds:
        return action
    if (
        isinstance(action, Click)
        and "tap" in kinds
        and action.point is not None
        and (action.button, action.count) == ("left", 1)
    ):
        return Tap(point=action.point)
    if isinstance(action, Tap) and "click" in kinds:
        return Click(point=action.point)
    if isinstance(action, Drag) and "swipe" in kinds and action.start and action.button == "left":
        return Swipe(start=action.start, end=action.end)
    if isinstance(action, Scroll) and "swipe" in kinds:
        return swipe_for_scroll(action, extent(space, ctx), space)
    if isinstance(action, Hotkey) and "system_button" in kinds and len(action.keys) == 1:
        key = action.keys[0]
        return SystemButton(button=key) if key in SYSTEM_KEYS else None
    return None


def require(action: Any, ctx: StepContext, space: Space, called: str, offered: list[str]) -> Any:
    """``fit(action)``, or a ParseError naming what the model may use instead."""
    out = fit(action, ctx, space)
    if out is None:
        raise ParseError(
            f"{called} is not available on this device; use one of: {', '.join(offered)}"
        )
    return out


# -- formatting --------------------------------------------------------------------------------
def xy(p: Point, space: Space, dialect: str) -> list[int | float]:
    """``[x, y]`` of a point that must already be in the dialect's space."""
    if p.space != space:
        raise ValueError(f"{dialect} writes points in {space}, got {p}; convert it first")
    return [num(p.x), num(p.y)]


def split_keys(keys: list[str]) -> list[str]:
    """Key names, with a combo written as one token ('ctrl+c') split, normalised ('Return' ->
    'enter')."""
    out: list[str] = []
    for k in keys:
        parts = k.split("+") if "+" in k.strip("+") else [k]
        out.extend(normalize_key(p) for p in parts if p.strip() or p == " ")
    return out
