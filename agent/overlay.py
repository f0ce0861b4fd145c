"""What a step's action looks like drawn on its screenshot: one list of marks, two renderers.

``step_marks`` turns a recorded step into plain shapes in screen pixels (a ring and dot where a
click or tap landed, an arrow for a drag, swipe or scroll, a text label for typed text, keys,
system buttons, pick/place on a robot camera image). ``draw`` paints them with PIL (GIFs);
``svg`` writes the same shapes as SVG for the HTML viewer, where a ``viewBox`` in screen pixels
lets the overlay scale with the image. Both renderers read the same marks, so the viewer and
the animation never disagree about where an action landed.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from html import escape
from typing import Any, Literal

from PIL import Image, ImageDraw, ImageFont

Pt = tuple[float, float]
MarkKind = Literal["ring", "arrow", "cross", "label"]

MARK_COLOR = "#ff00c8"
"""The colour of every point marker: a magenta that user interfaces rarely use."""
COLORS = {
    "act": MARK_COLOR,
    "pick": "#00c853",
    "place": "#2962ff",
    "text": "#111111",
    "error": "#d50000",
}
_FONT_FILE = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


@dataclass(frozen=True)
class Mark:
    """One shape in screen pixels. ``ring``: marker at points[0] (``hold`` draws a second
    ring); ``arrow``: points[0] -> points[1]; ``cross``: crosshair at points[0]; ``label``:
    text whose top-left or anchor is points[0] (``anchor``: 'top' = centred above/below)."""

    kind: MarkKind
    points: tuple[Pt, ...]
    text: str = ""
    color: str = MARK_COLOR
    hold: bool = False
    anchor: Literal["left", "center"] = "left"


def _p(point: Any) -> Pt:
    return (float(point.x), float(point.y))


def _short(text: str, n: int = 48) -> str:
    one = text.replace("\n", "⏎")
    return one if len(one) <= n else one[: n - 1] + "…"


def step_action(step: Any) -> Any | None:
    """The action a step really performed, in screen pixels (executed, else device_action)."""
    if step.executed is not None:
        return step.executed.action
    return step.device_action


def pointer_after(action: Any | None, pointer: Pt | None) -> Pt | None:
    """Where the mouse pointer rests after ``action`` (None when unknown)."""
    if action is None:
        return pointer
    kind = action.kind
    if kind == "click" and action.point is None:
        return pointer
    if kind in ("click", "move", "tap", "long_press"):
        return _p(action.point)
    if kind in ("drag", "swipe"):
        return _p(action.end)
    if kind == "scroll" and action.point is not None:
        return _p(action.point)
    return pointer


def step_marks(step: Any, size: tuple[int, int], pointer: Pt | None = None) -> list[Mark]:
    """Marks for one recorded step on a ``size`` (w, h) screenshot.

    ``pointer`` is where the pointer rested before the step (for a drag from the pointer, a
    scroll under it, or text typed where the last click focused).
    """
    action = step_action(step)
    w, h = size
    if action is None:
        if step.error:
            return [_banner(f"error: {_short(step.error, 80)}", size, COLORS["error"])]
        if step.attempts:
            return [_banner("no valid action", size, COLORS["error"])]
        return []
    return action_marks(action, size, pointer)


def action_marks(action: Any, size: tuple[int, int], pointer: Pt | None = None) -> list[Mark]:
    """Marks for one action whose points are in screen pixels."""
    w, h = size
    unit = max(6.0, min(w, h) / 60)
    kind = action.kind
    if kind in ("click", "tap", "move"):
        if action.point is not None:
            p = _p(action.point)
        elif pointer is not None:  # a click where the pointer is
            p = pointer
        else:
            return [_banner(f"{action.button} click ×{action.count} at the pointer", size)]
        label = ""
        if kind == "click" and (action.button != "left" or action.count != 1):
            label = f"{action.button} ×{action.count}" if action.count > 1 else action.button
        elif kind == "move":
            label = "move"
        return [Mark("ring", (p,))] + ([_near(label, p, unit)] if label else [])
    if kind == "long_press":
        p = _p(action.point)
        return [Mark("ring", (p,), hold=True), _near(f"hold {action.seconds:g}s", p, unit)]
    if kind in ("drag", "swipe"):
        end = _p(action.end)
        start = _p(action.start) if action.start is not None else pointer
        if start is None:
            return [Mark("ring", (end,)), _near(kind, end, unit)]
        return [Mark("arrow", (start, end)), Mark("ring", (start,))]
    if kind == "scroll":
        p = _p(action.point) if action.point is not None else pointer or (w / 2, h / 2)
        dx, dy = {"up": (0, -1), "down": (0, 1), "left": (-1, 0), "right": (1, 0)}[action.direction]
        length = min(w, h) / 6
        end = (p[0] + dx * length, p[1] + dy * length)
        label = f"scroll {action.direction} {action.amount}"
        return [Mark("arrow", (p, end)), Mark("ring", (p,)), _near(label, p, unit, below=dy < 0)]
    if kind == "type":
        text = f"type “{_short(action.text)}”"
        if pointer is not None:
            return [_near(text, pointer, unit)]
        return [_banner(text, size)]
    if kind == "hotkey":
        return [_banner("keys: " + "+".join(action.keys), size)]
    if kind == "system_button":
        return [_banner(f"button: {action.button}", size, at="bottom")]
    if kind == "open_app":
        return [_banner(f"open app: {_short(action.app)}", size)]
    if kind in ("pick", "place"):
        p = _p(action.point)
        color = COLORS[kind]
        return [Mark("cross", (p,), color=color), Mark("ring", (p,), color=color),
                _near(kind, p, unit, color=color)]  # fmt: skip
    if kind == "move_effector":
        p = _p(action.point)
        return [Mark("cross", (p,)), _near(f"move {action.height:g} m above", p, unit)]
    if kind == "gripper":
        return [_banner(f"gripper {action.state}", size)]
    if kind == "home":
        return [_banner("arm home", size)]
    if kind == "wait":
        return [_banner(f"wait {action.seconds:g}s", size)]
    if kind == "finish":
        answer = f": {_short(action.answer)}" if action.answer else ""
        return [_banner(f"finish {action.status}{answer}", size)]
    if kind == "ask_user":
        return [_banner(f"ask: {_short(action.question)}", size)]
    return [_banner(kind, size)]


def _near(text: str, p: Pt, unit: float, below: bool = True, color: str = MARK_COLOR) -> Mark:
    """A label just below (or above) point ``p``."""
    y = p[1] + 2.2 * unit if below else p[1] - 2.2 * unit - 2 * unit
    return Mark("label", ((p[0], y),), text=text, color=color, anchor="center")


def _banner(text: str, size: tuple[int, int], color: str = MARK_COLOR, at: str = "top") -> Mark:
    w, h = size
    unit = max(6.0, min(w, h) / 60)
    y = unit if at == "top" else h - 3.5 * unit
    return Mark("label", ((w / 2, y),), text=text, color=color, anchor="center")


# -- geometry shared by both renderers ---------------------------------------------------------
def sizes(size: tuple[int, int]) -> tuple[float, float, float]:
    """(ring radius, line width, font size) for a screenshot of ``size``."""
    unit = max(6.0, min(size) / 60)
    return 1.6 * unit, max(2.0, unit / 3), max(12.0, 1.6 * unit)


def arrow_head(a: Pt, b: Pt, length: float) -> tuple[Pt, Pt, Pt]:
    """The triangle of an arrowhead at ``b`` for the line ``a`` -> ``b``."""
    ang = math.atan2(b[1] - a[1], b[0] - a[0])
    left = (b[0] - length * math.cos(ang - 0.45), b[1] - length * math.sin(ang - 0.45))
    right = (b[0] - length * math.cos(ang + 0.45), b[1] - length * math.sin(ang + 0.45))
    return b, left, right


def label_box(mark: Mark, font_size: float, text_width: float) -> tuple[float, float, float, float]:
    """(x, y, w, h) of a label's background box."""
    pad = font_size * 0.35
    bw, bh = text_width + 2 * pad, font_size * 1.45
    x, y = mark.points[0]
    if mark.anchor == "center":
        x -= bw / 2
    return x, y, bw, bh


# -- PIL renderer ------------------------------------------------------------------------------
@functools.cache
def _font(size: int) -> Any:
    try:
        return ImageFont.truetype(_FONT_FILE, size)
    except OSError:
        return ImageFont.load_default(size=size)


def draw(image: Image.Image, marks: list[Mark]) -> Image.Image:
    """A copy of ``image`` (RGB) with ``marks`` painted on it."""
    out = image.convert("RGB")
    d = ImageDraw.Draw(out)
    radius, line, fsize = sizes(out.size)
    font = _font(round(fsize))
    lw = round(line)
    for m in marks:
        if m.kind == "ring":
            x, y = m.points[0]
            for r in (radius, radius * 1.6) if m.hold else (radius,):
                d.ellipse((x - r, y - r, x + r, y + r), outline=m.color, width=lw)
            dot = max(3.0, radius / 3)
            d.ellipse((x - dot, y - dot, x + dot, y + dot), fill=m.color)
        elif m.kind == "arrow":
            a, b = m.points
            d.line((a, b), fill=m.color, width=lw + 1)
            d.polygon(arrow_head(a, b, radius * 1.4), fill=m.color)
        elif m.kind == "cross":
            x, y = m.points[0]
            r = radius * 1.8
            d.line(((x - r, y), (x + r, y)), fill=m.color, width=lw)
            d.line(((x, y - r), (x, y + r)), fill=m.color, width=lw)
        elif m.kind == "label":
            tw = d.textlength(m.text, font=font)
            x, y, bw, bh = label_box(m, fsize, tw)
            d.rectangle((x, y, x + bw, y + bh), fill="#ffffff", outline=m.color, width=2)
            d.text((x + fsize * 0.35, y + fsize * 0.2), m.text, fill=COLORS["text"], font=font)
    return out


# -- SVG renderer ------------------------------------------------------------------------------
def svg(marks: list[Mark], size: tuple[int, int]) -> str:
    """An ``<svg>`` element drawing ``marks``, its viewBox the screenshot's pixels: laid over
    the image at 100% width and height it scales with it. Every text is HTML-escaped."""
    w, h = size
    radius, line, fsize = sizes(size)
    parts = [
        f'<svg class="overlay" viewBox="0 0 {w} {h}" preserveAspectRatio="none" '
        'xmlns="http://www.w3.org/2000/svg" aria-hidden="true">'
    ]
    for m in marks:
        c = escape(m.color)
        if m.kind == "ring":
            x, y = m.points[0]
            for r in (radius, radius * 1.6) if m.hold else (radius,):
                parts.append(
                    f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="none" '
                    f'stroke="{c}" stroke-width="{line:.1f}"/>'
                )
            dot = max(3.0, radius / 3)
            parts.append(
                f'<circle class="mark" cx="{x:.1f}" cy="{y:.1f}" r="{dot:.1f}" fill="{c}"/>'
            )
        elif m.kind == "arrow":
            (ax, ay), (bx, by) = m.points
            head = " ".join(
                f"{px:.1f},{py:.1f}"
                for px, py in arrow_head(m.points[0], m.points[1], radius * 1.4)
            )
            parts.append(
                f'<line x1="{ax:.1f}" y1="{ay:.1f}" x2="{bx:.1f}" y2="{by:.1f}" stroke="{c}" '
                f'stroke-width="{line + 1:.1f}"/><polygon points="{head}" fill="{c}"/>'
            )
        elif m.kind == "cross":
            x, y = m.points[0]
            r = radius * 1.8
            parts.append(
                f'<path d="M{x - r:.1f} {y:.1f}H{x + r:.1f}M{x:.1f} {y - r:.1f}V{y + r:.1f}" '
                f'stroke="{c}" stroke-width="{line:.1f}"/>'
            )
        elif m.kind == "label":
            tw = _font(round(fsize)).getlength(m.text)
            x, y, bw, bh = label_box(m, fsize, tw)
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw:.1f}" height="{bh:.1f}" fill="#fff" '
                f'stroke="{c}" stroke-width="2"/><text x="{x + fsize * 0.35:.1f}" '
                f'y="{y + fsize * 1.05:.1f}" font-size="{fsize:.1f}" '
                f'font-family="DejaVu Sans, sans-serif" fill="{COLORS["text"]}">'
                f"{escape(m.text)}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)
