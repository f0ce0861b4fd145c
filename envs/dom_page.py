"""What the DOM reference policy reads and what it decides, independent of how it acts.

``Page`` reads elements through Selenium, one script per query (each a round trip to
chromedriver). A policy step is one ``Intent``: press (click) an element, hover it, type text,
press keys, drag, turn the wheel, or stop. The same intents are carried out two ways
(``dom_oracle``): through pixels as a dialect's call, or directly with Selenium actions.
Coordinates are CSS pixels of the page's viewport (device scale factor 1).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "Done",
    "DragTo",
    "El",
    "Hover",
    "Intent",
    "Keys",
    "OracleStuck",
    "Page",
    "Press",
    "Wheel",
    "Write",
]


class OracleStuck(Exception):
    """The policy found no step for what the page shows (a missing element, an unknown
    instruction): the episode is a miss of the policy, reported with this reason."""


@dataclass(frozen=True, eq=False)
class El:
    """One element as the page reported it. ``rect`` is (left, top, width, height)."""

    handle: Any
    tag: str
    text: str
    value: str | None
    checked: bool | None
    rect: tuple[float, float, float, float]
    focused: bool
    shown: bool
    """Has a size and is not hidden by CSS."""

    @property
    def center(self) -> tuple[float, float]:
        x, y, w, h = self.rect
        return x + w / 2, y + h / 2

    def inside(self, box: tuple[float, float, float, float]) -> bool:
        """Whether the element's centre lies within ``box`` (left, top, width, height)."""
        cx, cy = self.center
        return box[0] <= cx < box[0] + box[2] and box[1] <= cy < box[1] + box[3]


_QUERY_JS = """
var root = arguments[1] || document, out = [];
root.querySelectorAll(arguments[0]).forEach(function (e) {
  var r = e.getBoundingClientRect(), cs = getComputedStyle(e);
  out.push([e, e.tagName.toLowerCase(), (e.textContent || '').replace(/\\s+/g, ' ').trim(),
            e.value === undefined ? null : String(e.value),
            e.checked === undefined ? null : !!e.checked,
            [r.left, r.top, r.width, r.height], document.activeElement === e,
            r.width > 0 && r.height > 0 && cs.visibility !== 'hidden' && cs.display !== 'none']);
});
return out;
"""


class Page:
    """Reads the live DOM of the page a WebDriver shows."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver

    def all(self, css: str, *, text: str | None = None, within: El | None = None) -> list[El]:
        """Elements matching ``css`` (inside ``within``), optionally with exactly this text."""
        rows = self.driver.execute_script(_QUERY_JS, css, within.handle if within else None)
        els = [El(r[0], r[1], r[2], r[3], r[4], tuple(r[5]), r[6], r[7]) for r in rows]
        return [e for e in els if text is None or e.text == text]

    def shown(self, css: str, *, text: str | None = None, within: El | None = None) -> list[El]:
        return [e for e in self.all(css, text=text, within=within) if e.shown]

    def one(self, css: str, *, text: str | None = None, within: El | None = None) -> El:
        """The first shown element matching; OracleStuck when there is none."""
        found = self.shown(css, text=text, within=within)
        if not found:
            what = css + (f" with text {text!r}" if text is not None else "")
            raise OracleStuck(f"no visible element {what}")
        return found[0]

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def wait_still(self, timeout: float = 1.0, pause: float = 0.02) -> None:
        """Until the page's jQuery animations (dialogs, accordions, menus) have finished: a
        careful person waits for the page to stop moving before reading where things are."""
        deadline = time.monotonic() + timeout
        time.sleep(pause)  # after input: give the handlers a moment to start an animation
        while time.monotonic() < deadline and self.driver.execute_script(_ANIMATED_JS):
            time.sleep(0.02)

    def hit_point(self, el: El) -> tuple[float, float]:
        """A point where ``el`` itself receives a click: the centre of its widest line box (a
        link wrapped over two lines has two), unless something covers it there (overlapping
        elements), else the first uncovered point of a 5x5 grid over it."""
        got = self.driver.execute_script(_HIT_JS, el.handle)
        return (float(got[0]), float(got[1])) if got else el.center


_ANIMATED_JS = "return window.jQuery ? jQuery(':animated').length : 0;"

_HIT_JS = """
var e = arguments[0], r = e.getBoundingClientRect(), pts = [];
function hits(p) { var t = document.elementFromPoint(p[0], p[1]); return t && (t === e || e.contains(t)); }
// a wrapped inline element (a link over two lines) has one box per line: try their centres,
// the widest first, then the bounding box's centre, then a grid over it
[].slice.call(e.getClientRects()).sort(function (a, b) { return b.width - a.width; })
  .forEach(function (c) { pts.push([c.left + c.width / 2, c.top + c.height / 2]); });
pts.push([r.left + r.width / 2, r.top + r.height / 2]);
for (var i = 1; i < 6; i++) for (var j = 1; j < 6; j++)
  pts.push([r.left + r.width * i / 6, r.top + r.height * j / 6]);
for (var k = 0; k < pts.length; k++) if (hits(pts[k])) return pts[k];
return null;
"""


# -- intents ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Press:
    """Click ``target`` (at its centre, or at the page point ``at``); count=2 double-clicks."""

    target: El
    at: tuple[float, float] | None = None
    count: int = 1

    @property
    def point(self) -> tuple[float, float]:
        return self.at if self.at is not None else self.target.center


@dataclass(frozen=True)
class Hover:
    """Move the pointer over ``target`` without clicking."""

    target: El


@dataclass(frozen=True)
class Write:
    """Type ``text`` into the focused element."""

    text: str


@dataclass(frozen=True)
class Keys:
    """Press keys together, e.g. ("ctrl", "a"), or one key, e.g. ("enter",)."""

    keys: tuple[str, ...]


@dataclass(frozen=True)
class DragTo:
    """Press on ``source`` (at ``start``, default its centre), move to the page point ``end``,
    release."""

    source: El
    end: tuple[float, float]
    start: tuple[float, float] | None = None

    @property
    def start_point(self) -> tuple[float, float]:
        return self.start if self.start is not None else self.source.center


@dataclass(frozen=True)
class Wheel:
    """Turn the mouse wheel over ``target`` by ``clicks`` notches towards ``direction``."""

    target: El
    direction: Literal["up", "down"]
    clicks: int = 1


@dataclass(frozen=True)
class Done:
    """Nothing left to do: the page has given its verdict."""


Intent = Press | Hover | Write | Keys | DragTo | Wheel | Done
