"""Write scenarios/apps/*.yaml: scripted model outputs for real apps (Chromium, mousepad, xterm)
behind openbox on a 1920x1080 screen.

Points are not typed in by hand: this script starts each target exactly as the scenario runner
does (``open_target``, on a private 1920x1080 Xvfb with openbox) and measures them on the running
app, then writes each dialect's outputs with the dialect's own ``format``:

- Chromium: each control's box from the live DOM (``getBoundingClientRect``) plus where the page
  sits on the screen (the window's position and the browser's bars above the page);
- mousepad: the centre of its window's client area (the text view), wherever openbox put it;
- xterm: observed as a window (``view: {window: class=xterm}``), so its points are relative to
  the window itself: the centre of what the model sees.

The checks read the apps' real results: the page's DOM, the saved file's bytes, the file the
shell wrote. Rerun after changing a page, a command or the window manager's configuration
(needs chromium, mousepad, xterm and openbox: ``bash scripts/setup.sh --test``):

    python scripts/make_app_scenarios.py
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pixelpilot.agent.actions import (
    DESKTOP_KINDS,
    Click,
    Finish,
    Hotkey,
    Point,
    TypeText,
    Wait,
)
from pixelpilot.agent.dialects import get_dialect
from pixelpilot.agent.dialects.base import StepContext
from pixelpilot.agent.geometry import HUB_PIXELS, ScreenGeometry, from_screen
from pixelpilot.scenarios.spec import DesktopTarget
from pixelpilot.scenarios.targets import open_target
from pixelpilot.tools.x11_windows import WindowSpec, X11Windows
from pixelpilot.tools.xvfb import default_wm, ensure_display

OUT = Path(__file__).resolve().parents[1] / "scenarios" / "apps"
SCREEN = (1920, 1080)
DIALECTS = ("qwen2vl", "qwen25vl", "uitars")
TEXT = "Zoë — 東京 ✓"

XTERM = ["xterm", "-T", "pixelpilot terminal", "-u8", "-fa", "Monospace", "-fs", "14",
         "-geometry", "100x30", "-e", "bash", "--norc", "--noprofile"]  # fmt: skip
SHELL_LINE = f"printf '%s\\n' \"{TEXT}\" 'it costs $5, \"quoted\"' \"$((6 * 7))\" > out.txt\n"

TARGETS: dict[str, dict[str, Any]] = {
    "chromium_signup": {"kind": "desktop", "app": "chromium", "page": "pages/signup.html",
                        "screen": list(SCREEN)},
    "mousepad_save": {"kind": "desktop", "launch": ["mousepad"],
                      "ready_window": "class=mousepad", "screen": list(SCREEN)},
    "xterm_printf": {"kind": "desktop", "launch": XTERM, "ready_window": "class=xterm",
                     "view": {"window": "class=xterm"}, "screen": list(SCREEN)},
}  # fmt: skip


def measure() -> dict[str, dict[str, Any]]:
    """Screen points (and the observed size) measured on each running target."""
    found: dict[str, dict[str, Any]] = {}
    with ensure_display(*SCREEN, wm=default_wm()):
        for name, spec in TARGETS.items():
            target = DesktopTarget.model_validate(
                {**spec, "page": str(OUT / spec["page"])} if "page" in spec else spec
            )
            with open_target(target, name=name) as opened:
                geom = opened.device.observe().geometry
                points: dict[str, tuple[int, int]] = {}
                if opened.page is not None:
                    for sel in ("#name", "#subscribe", "#submit"):
                        x, y, w, h = opened.page.rect(sel)
                        points[sel] = (x + w // 2, y + h // 2)
                elif target.view is None:
                    windows = X11Windows(opened.device.display)
                    x, y, w, h = windows.find(WindowSpec.parse(target.ready_window or "")).rect
                    windows.close()
                    points["text"] = (x + w // 2, y + h // 2)
                else:
                    points["centre"] = (geom.width // 2, geom.height // 2)
                found[name] = {"size": (geom.width, geom.height), "points": points}
                print(name, found[name])
    return found


def script(dialect: str, size: tuple[int, int], steps: list[Any]) -> list[str]:
    d = get_dialect(dialect)
    geom = ScreenGeometry(*size)
    ctx = StepContext("desktop", DESKTOP_KINDS, geom, HUB_PIXELS.resize(*size))

    def at(xy: tuple[int, int]) -> Any:
        return from_screen(xy[0], xy[1], d.space, geom, ctx.resized)

    out = []
    for step in steps:
        if isinstance(step, Click):  # a point in screen pixels -> the dialect's space
            step = step.model_copy(update={"point": at((int(step.point.x), int(step.point.y)))})
        if dialect == "uitars" and isinstance(step, Wait):
            step = Wait(seconds=5)  # UI-TARS' wait() always sleeps 5 s
        if dialect == "qwen25vl" and isinstance(step, Finish):
            step = step.model_copy(update={"answer": ""})  # its terminate takes no answer
        out.append(d.format(step, ctx))
    return out


def px(xy: tuple[int, int]) -> Point:
    return Point(x=xy[0], y=xy[1], space="screen_px")


def scenarios(m: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    c, mp, xt = m["chromium_signup"], m["mousepad_save"], m["xterm_printf"]
    return {
        "chromium_signup": dict(
            description="Chromium: type mixed-script text into a page's field, tick a box, "
                        "press a button; the live DOM is the oracle.",
            task=f"Sign up as {TEXT} and subscribe to the newsletter.",
            steps=[Click(point=px(c["points"]["#name"])), TypeText(text=TEXT),
                   Click(point=px(c["points"]["#subscribe"])),
                   Click(point=px(c["points"]["#submit"])), Finish(answer="Signed up.")],
            size=c["size"],
            checks=[{"dom": "#name", "equals": TEXT},
                    {"dom": "#subscribe", "prop": "checked", "equals": True},
                    {"dom": "#result", "prop": "textContent",
                     "equals": f"Welcome, {TEXT} (subscribed)"}],
        ),
        "mousepad_save": dict(
            description="mousepad (GTK): type mixed-script text, save it through the Save "
                        "dialog with ctrl+s; the saved file's bytes are the oracle.",
            task=f"Write '{TEXT}' in the editor and save it as note.txt.",
            steps=[Click(point=px(mp["points"]["text"])), TypeText(text=TEXT + "\n"),
                   Hotkey(keys=["ctrl", "s"]), TypeText(text="note.txt"),
                   Wait(seconds=1.5), Hotkey(keys=["enter"]), Finish(answer="Saved.")],
            size=mp["size"],
            checks=[{"file": "note.txt", "equals": TEXT + "\n"}],
        ),
        "xterm_printf": dict(
            description="xterm, observed as a window: type a shell command with quotes, $ and "
                        "mixed-script text; the file the shell wrote is the oracle.",
            task="In the terminal, write the three lines to out.txt with printf.",
            steps=[Click(point=px(xt["points"]["centre"])), TypeText(text=SHELL_LINE),
                   Finish(answer="Written.")],
            size=xt["size"],
            checks=[{"file": "out.txt", "equals": f"{TEXT}\nit costs $5, \"quoted\"\n42\n"}],
        ),
    }


def _literal(dumper: yaml.Dumper, data: str) -> yaml.Node:
    style = '"' if data.endswith("\n") else "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


def main() -> None:
    measured = measure()
    yaml.add_representer(str, _literal)
    for name, spec in scenarios(measured).items():
        doc = {
            "name": name, "description": spec["description"], "target": TARGETS[name],
            "task": spec["task"], "budgets": {"max_steps": 10, "max_seconds": 120},
            "scripts": {d: script(d, spec["size"], spec["steps"]) for d in DIALECTS},
            "expect": {"status": "success"}, "checks": spec["checks"],
        }  # fmt: skip
        text = yaml.dump(doc, allow_unicode=True, sort_keys=False, width=100)
        (OUT / f"{name}.yaml").write_text(
            "# Written by scripts/make_app_scenarios.py from the running apps; edit there.\n"
            + text,
            encoding="utf-8",
        )
        print("wrote", OUT / f"{name}.yaml")


if __name__ == "__main__":
    main()
