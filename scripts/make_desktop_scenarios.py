"""Write scenarios/desktop/*.yaml: scripted model outputs for the Tk fixture app.

Outputs are written by each dialect's own ``format`` from the fixture's fixed widget layout
(1280x800), then checked in as plain text; a few are hand-edited to look like real model
answers (prose, code fences). Rerun after changing the fixture's layout:

    python scripts/make_desktop_scenarios.py
"""

from __future__ import annotations

from pathlib import Path

import yaml

from pixelpilot.agent.actions import (
    DESKTOP_KINDS,
    Click,
    Drag,
    Finish,
    Hotkey,
    Move,
    Point,
    Scroll,
    TypeText,
)  # fmt: skip
from pixelpilot.agent.dialects import get_dialect
from pixelpilot.agent.dialects.base import StepContext
from pixelpilot.agent.geometry import HUB_PIXELS, ScreenGeometry, from_screen
from pixelpilot.scenarios import fixture_app

OUT = Path(__file__).resolve().parents[1] / "scenarios" / "desktop"
GEOM = ScreenGeometry(1280, 800)
CTX = StepContext("desktop", DESKTOP_KINDS, GEOM, HUB_PIXELS.resize(1280, 800))
ALL = ("qwen2vl", "qwen25vl", "uitars")


def _centre(x: int, y: int, w: int, h: int) -> tuple[int, int]:
    return x + w // 2, y + h // 2


def _on_canvas(box: tuple[int, int, int, int]) -> tuple[int, int]:
    cx, cy, _, _ = fixture_app.LAYOUT["canvas"]
    return cx + (box[0] + box[2]) // 2, cy + (box[1] + box[3]) // 2


# points on the fixture's widgets, screen px, from its fixed layout (scenarios/fixture_app.py)
W = {
    **{k: _centre(*fixture_app.LAYOUT[k]) for k in
       ("name", "email", "submit", "menu_target", "double_target")},
    "block": _on_canvas(fixture_app.BLOCK), "target": _on_canvas(fixture_app.TARGET),
    # measured on the running app: the checkbox's indicator, a point inside the list, the
    # posted menu's "Rename" entry and row 30 after scrolling 5 wheel clicks (Tk font metrics)
    "subscribe": (463, 225), "items": (870, 200), "menu_rename": (481, 669), "item_030": (870, 193),
}  # fmt: skip


def script(dialect: str, steps: list) -> list[str]:
    d = get_dialect(dialect)
    out = []
    for step in steps:
        if isinstance(step, str):  # a hand-written raw output
            out.append(step)
            continue
        for action in expand(dialect, step):
            out.append(d.format(action, CTX))
    return out


def expand(dialect: str, action):
    """Actions a family cannot write in one call become the calls it would make."""
    if dialect == "qwen25vl" and isinstance(action, Drag) and action.start is not None:
        return [Move(point=action.start), action.model_copy(update={"start": None})]
    if dialect == "qwen25vl" and isinstance(action, Finish) and action.answer:
        return [action.model_copy(update={"answer": ""})]
    return [action]


def at(dialect: str, widget: str, dx: int = 0, dy: int = 0):
    """A model-space point for a widget, in the dialect's own coordinate space."""
    x, y = W[widget]
    return from_screen(x + dx, y + dy, get_dialect(dialect).space, GEOM, CTX.resized)


def off_screen(dialect: str) -> Point:
    space = get_dialect(dialect).space
    return Point(x=1180 if space == "norm1000" else CTX.resized[0] + 40, y=400, space=space)


def per_dialect(build, dialects=ALL):
    return {d: script(d, build(d)) for d in dialects}


SCENARIOS = {
    "demo": dict(
        description="Fill in the fixture form (name, e-mail, subscribe) and submit it.",
        task="Sign up as Ada Lovelace with ada@example.com, subscribe to the newsletter, submit.",
        scripts=per_dialect(lambda d: [
            Click(point=at(d, "name")), TypeText(text="Ada Lovelace"),
            Click(point=at(d, "email")), TypeText(text="ada@example.com"),
            Click(point=at(d, "subscribe")), Click(point=at(d, "submit")),
            Finish(answer="Signed up."),
        ], dialects=("qwen2vl",)),
        checks=[
            {"path": "submitted.name", "equals": "Ada Lovelace"},
            {"path": "submitted.email", "equals": "ada@example.com"},
            {"path": "submitted.subscribe", "equals": True},
            {"path": "submit_count", "equals": 1},
        ],
    ),
    "click_submit": dict(
        description="A single left click on a button.",
        task="Click the Submit button.",
        scripts=per_dialect(lambda d: [Click(point=at(d, "submit")), Finish()]),
        checks=[{"path": "submit_count", "equals": 1}],
    ),
    "double_click": dict(
        description="A double click on a label and on a list row.",
        task="Double-click the 'Double-click me' box, then open Item 003 by double-clicking it.",
        scripts=per_dialect(lambda d: [
            Click(point=at(d, "double_target"), count=2),
            Click(point=at(d, "items", dy=-52), count=2),  # row 3 of the list
            Finish(),
        ]),
        checks=[{"path": "double_clicks", "equals": 1}, {"path": "opened", "equals": "Item 003"}],
    ),
    "right_click_menu": dict(
        description="A right click opens a context menu; a left click picks an entry.",
        task="Open the context menu of 'Right-click me' and choose Rename.",
        scripts=per_dialect(lambda d: [
            Click(point=at(d, "menu_target"), button="right"),
            Click(point=at(d, "menu_rename")), Finish(),
        ]),
        checks=[{"path": "menu_choice", "equals": "Rename"}],
    ),
    "type_ascii": dict(
        description="Typing ASCII with shell and quoting characters, which must arrive as data.",
        task="Type the given text into the Name field.",
        scripts=per_dialect(lambda d: [
            Click(point=at(d, "name")),
            TypeText(text="O'Brien \"Bob\" <b@x.io> & $(id); `ls` \\ 100%"), Finish(),
        ]),
        checks=[{"path": "name", "equals": "O'Brien \"Bob\" <b@x.io> & $(id); `ls` \\ 100%"}],
    ),
    "type_unicode": dict(
        description="Typing non-ASCII text (pyautogui alone would drop it).",
        task="Type 'Zoë — 東京 ✓' into the Name field and 'zoë@例え.jp' into E-mail.",
        scripts=per_dialect(lambda d: [
            Click(point=at(d, "name")), TypeText(text="Zoë — 東京 ✓"),
            Click(point=at(d, "email")), TypeText(text="zoë@例え.jp"), Finish(),
        ]),
        checks=[{"path": "name", "equals": "Zoë — 東京 ✓"}, {"path": "email", "equals": "zoë@例え.jp"}],
    ),
    "hotkeys": dict(
        description="Key combinations: ctrl+s saves, Escape, and Enter after typing in a field.",
        task="Save with Ctrl+S, press Escape, then type Grace as the name and press Enter.",
        scripts=per_dialect(lambda d: [
            Hotkey(keys=["ctrl", "s"]), Hotkey(keys=["esc"]),
            Click(point=at(d, "name")), TypeText(text="Grace"), Hotkey(keys=["enter"]), Finish(),
        ]),
        checks=[
            {"path": "saved_count", "equals": 1}, {"path": "escaped", "equals": True},
            {"path": "name", "equals": "Grace"}, {"path": "enter_count", "equals": 1},
        ],
    ),
    "scroll_list": dict(
        description="Scroll a list down with the wheel, then select a row that was hidden.",
        task="Scroll the list down and select Item 030.",
        scripts=per_dialect(lambda d: [
            Scroll(direction="down", amount=5, point=at(d, "items")),
            Click(point=at(d, "item_030")), Finish(),
        ]),
        checks=[{"path": "items_first", "at_least": 20}, {"path": "selected", "equals": "Item 030"}],
    ),
    "drag_block": dict(
        description="Drag the blue square into the orange drop zone.",
        task="Drag the blue square into the orange box.",
        scripts=per_dialect(lambda d: [
            Drag(start=at(d, "block"), end=at(d, "target")), Finish(),
        ]),
        checks=[{"path": "block_in_target", "equals": True}],
    ),
    # -- bad model output: recovered by a retry, or a clear failure ------------------------
    "recover_malformed": dict(
        description="Prose and a broken call are rejected with a reason; the retry succeeds.",
        task="Click the Submit button.",
        scripts={
            "qwen2vl": [
                "I think the Submit button is in the middle of the form.",
                script("qwen2vl", [Click(point=at("qwen2vl", "submit"))])[0],
                script("qwen2vl", [Finish()])[0],
            ],
            "qwen25vl": [
                '<tool_call>\n{"name": "computer_use", "arguments": {"action": "left_click", '
                '"coordinate": [5',
                "```\n" + script("qwen25vl", [Click(point=at("qwen25vl", "submit"))])[0] + "\n```",
                script("qwen25vl", [Finish()])[0],
            ],
            "uitars": [
                "Thought: 点击提交按钮。\nAction: tap_twice(start_box='(1,2)')",
                script("uitars", [Click(point=at("uitars", "submit"))])[0],
                script("uitars", [Finish()])[0],
            ],
        },
        expect={"status": "success", "retries": 1},
        checks=[{"path": "submit_count", "equals": 1}],
    ),
    "recover_off_screen": dict(
        description="A point off the screen is refused (never clamped); the retry lands.",
        task="Click the Submit button.",
        scripts=per_dialect(lambda d: [
            Click(point=off_screen(d)), Click(point=at(d, "submit")), Finish(),
        ], dialects=("qwen2vl", "qwen25vl", "uitars", "uitars-1.5")),
        expect={"status": "success", "retries": 1},
        checks=[{"path": "submit_count", "equals": 1}],
    ),
    "give_up_malformed": dict(
        description="A model that never writes a valid call: the run fails, nothing is executed.",
        task="Click the Submit button.",
        budgets={"max_steps": 3, "max_retries": 2},
        scripts={
            "qwen2vl": ["Sure! Clicking Submit now.", "✿FUNCTION✿: click\n✿ARGS✿: {point: 5}",
                        "✿FUNCTION✿: explode\n✿ARGS✿: {}"],
            "uitars": ["Thought: 我要点击。", "Action: click(start_box='(510,",
                       "Thought: x\nAction: hotkey()"],
        },  # fmt: skip
        expect={"status": "failure", "retries": 3},
        checks=[{"path": "submit_count", "equals": 0}],
    ),
}


class _Literal(str):
    pass


def _literal(dumper: yaml.Dumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


def main() -> None:
    yaml.add_representer(str, _literal)
    OUT.mkdir(parents=True, exist_ok=True)
    for name, spec in SCENARIOS.items():
        doc = {"name": name, "description": spec["description"],
               "target": {"kind": "desktop", "app": "fixture", "screen": [1280, 800]},
               "task": spec["task"], "budgets": spec.get("budgets", {"max_steps": 10}),
               "scripts": spec["scripts"], "expect": spec.get("expect", {"status": "success"}),
               "checks": spec["checks"]}  # fmt: skip
        text = yaml.dump(doc, allow_unicode=True, sort_keys=False, width=100)
        (OUT / f"{name}.yaml").write_text(
            "# Written by scripts/make_desktop_scenarios.py; edit there.\n" + text, encoding="utf-8"
        )
        print("wrote", OUT / f"{name}.yaml")


if __name__ == "__main__":
    main()
