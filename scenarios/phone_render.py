"""Drawing the simulated phone and dumping its view hierarchy: what ``screencap`` and
``uiautomator dump`` return. Both read the same widget boxes the app hit-tests with."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageDraw, ImageFont

from pixelpilot.scenarios.phone_widgets import LAUNCHER, SCREEN_PACKAGES, Widget

if TYPE_CHECKING:
    from pixelpilot.scenarios.phone_app import PhoneApp

_FONT_PATH = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
_ICON_COLOURS = {"app:com.pixelpilot.signin": (25, 103, 210), "app:com.pixelpilot.shop": (230, 81, 0),
                 "app:com.android.settings": (96, 125, 139), "app:com.pixelpilot.notes": (251, 188, 4)}  # fmt: skip


@functools.lru_cache(maxsize=32)
def _font_px(px: int) -> Any:
    try:
        return ImageFont.truetype(_FONT_PATH, px)
    except OSError:
        return ImageFont.load_default(px)


def _font(app: PhoneApp, size_dp: float) -> Any:
    return _font_px(app.dp(size_dp))


def render(app: PhoneApp) -> Image.Image:
    """The screen as the phone shows it: status bar, then every widget."""
    dark = app.st.toggles["dark_mode"]
    bg, fg = ((32, 33, 36), (232, 234, 237)) if dark else ((250, 250, 250), (32, 33, 36))
    img = Image.new("RGB", (app.width, app.height), bg)
    d = ImageDraw.Draw(img)
    d.rectangle((0, 0, app.width, app.dp(24)), fill=(25, 103, 210))
    d.text((app.dp(12), app.dp(4)), "12:00", fill="white", font=_font(app, 13))
    d.text((app.width - app.dp(52), app.dp(4)), "100%", fill="white", font=_font(app, 13))
    for w in app.widgets():
        _draw(app, d, w, fg, bg)
    return img


def _draw(app: PhoneApp, d: ImageDraw.ImageDraw, w: Widget, fg: Any, bg: Any) -> None:
    x, y, bw, bh = w.box
    box = (x, y, x + bw - 1, y + bh - 1)
    mid = y + bh // 2
    if w.id == "title":
        d.rectangle(box, fill=(66, 133, 244))
        d.text((x + app.dp(16), mid), w.text, fill="white", font=_font(app, 20), anchor="lm")
    elif w.id.startswith("app:"):
        d.rounded_rectangle((x, y, x + bw - 1, y + app.dp(64)), radius=app.dp(14),
                            fill=_ICON_COLOURS[w.id])  # fmt: skip
        d.text((x + bw // 2, y + app.dp(32)), w.text[0], fill="white", font=_font(app, 28),
               anchor="mm")  # fmt: skip
        d.text((x + bw // 2, y + app.dp(78)), w.text, fill=fg, font=_font(app, 12), anchor="mm")
    elif w.cls == "android.widget.EditText":
        d.rectangle(box, outline=(66, 133, 244) if w.focused else (150, 150, 150),
                    width=app.dp(2 if w.focused else 1))  # fmt: skip
        shown = "•" * len(w.text) if w.password else w.text
        d.text((x + app.dp(12), mid), shown, fill=fg, font=_font(app, 16), anchor="lm")
    elif w.cls == "android.widget.Button":
        d.rounded_rectangle(box, radius=app.dp(8), fill=(25, 103, 210))
        d.text((x + bw // 2, mid), w.text, fill="white", font=_font(app, 16), anchor="mm")
    elif w.cls == "android.widget.Switch":
        on = w.checked
        d.rounded_rectangle(box, radius=bh // 2, fill=(66, 133, 244) if on else (170, 170, 170))
        kx = x + bw - bh // 2 if on else x + bh // 2
        r = bh // 2 - app.dp(3)
        d.ellipse((kx - r, mid - r, kx + r, mid + r), fill="white")
    elif w.id == "menu":
        d.rectangle(box, fill=(255, 255, 255), outline=(120, 120, 120), width=app.dp(1))
        d.text((x + app.dp(16), y + bh // 8), w.text, fill=(32, 33, 36), font=_font(app, 18),
               anchor="lm")  # fmt: skip
    elif w.id.startswith("menu:"):
        d.text((x + app.dp(16), mid), w.text, fill=(32, 33, 36), font=_font(app, 16), anchor="lm")
    else:
        if w.clickable:
            d.line((x, y + bh - 1, x + bw, y + bh - 1), fill=(200, 200, 200))
        if w.text:
            d.text((x + app.dp(16), mid), w.text, fill=fg, font=_font(app, 16), anchor="lm")


def ui_xml(app: PhoneApp) -> str:
    """The screen as ``uiautomator dump`` writes it: a hierarchy of nodes with bounds."""
    from xml.sax.saxutils import quoteattr

    pkg = SCREEN_PACKAGES.get(app.st.screen, LAUNCHER)
    b = lambda x, y, w, h: f"[{x},{y}][{x + w},{y + h}]"  # noqa: E731
    nodes = [
        f'<node index="{i}" text={quoteattr(w.text)} resource-id={quoteattr(pkg + ":id/" + w.id)} '
        f'class="{w.cls}" package="{pkg}" content-desc="" checkable="{_b(w.checkable)}" '
        f'checked="{_b(w.checked)}" clickable="{_b(w.clickable)}" enabled="true" '
        f'focusable="{_b(w.clickable)}" focused="{_b(w.focused)}" scrollable="false" '
        f'long-clickable="{_b(w.long_clickable)}" password="{_b(w.password)}" '
        f'selected="false" bounds="{b(*w.box)}" />'
        for i, w in enumerate(app.widgets())
    ]
    root = (f'<node index="0" text="" resource-id="" class="android.widget.FrameLayout" '
            f'package="{pkg}" content-desc="" checkable="false" checked="false" '
            f'clickable="false" enabled="true" focusable="false" focused="false" '
            f'scrollable="false" long-clickable="false" password="false" selected="false" '
            f'bounds="{b(0, 0, app.width, app.height)}">')  # fmt: skip
    return ("<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>"
            f'<hierarchy rotation="0">{root}{"".join(nodes)}</node></hierarchy>')  # fmt: skip


def _b(v: bool) -> str:
    return "true" if v else "false"
