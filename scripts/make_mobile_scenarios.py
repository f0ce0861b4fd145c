"""Write scenarios/mobile/*.yaml: scripted model outputs for the simulated phone (phone_app).

Points come from the phone's own layout: each script is played on an in-memory ``PhoneApp``
while it is written, so a point is the centre of the widget as it is on screen at that step
(after a scroll, in an open menu). Outputs are written by each dialect's own ``format``
(qwen25vl: the cookbook's mobile_use tool; qwen2vl: ✿FUNCTION✿ calls); a few malformed ones are
hand-written. Rerun after changing the phone's layout:

    python scripts/make_mobile_scenarios.py
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from pixelpilot.agent.actions import (
    MOBILE_KINDS,
    Finish,
    LongPress,
    OpenApp,
    Point,
    Swipe,
    SystemButton,
    Tap,
    TypeText,
    map_points,
)
from pixelpilot.agent.dialects import get_dialect
from pixelpilot.agent.dialects.base import StepContext
from pixelpilot.agent.geometry import HUB_PIXELS, ScreenGeometry, from_screen
from pixelpilot.scenarios.phone_app import APPS, PhoneApp
from pixelpilot.tools.android_plan import KEYCODES

OUT = Path(__file__).resolve().parents[1] / "scenarios" / "mobile"
W, H, DENSITY = 720, 1280, 320
GEOM = ScreenGeometry(W, H, scale=DENSITY / 160)
CTX = StepContext("mobile", MOBILE_KINDS, GEOM, HUB_PIXELS.resize(W, H))
DIALECTS = ("qwen25vl", "qwen2vl")
LABELS = {label: pkg for pkg, (label, _) in APPS.items()}

NAME = "Zoë 東京"
PASSWORD = 'p@ss w0rd\' "%s" & ; $(id) `ls` \\ | > <'


class Player:
    """Plays screen_px actions on an in-memory phone as the real one would receive them."""

    def __init__(self, start: str) -> None:
        self.app = PhoneApp(W, H, DENSITY, start)
        self.actions: list[Any] = []

    def at(self, widget: str) -> Point:
        x, y = self.app.widget(widget).center
        return Point(x=x, y=y, space="screen_px")

    def do(self, action: Any) -> Player:
        a, app = action, self.app
        if isinstance(a, Tap):
            app.tap(a.point.x, a.point.y)
        elif isinstance(a, LongPress):
            app.swipe(a.point.x, a.point.y, a.point.x, a.point.y, round(a.seconds * 1000))
        elif isinstance(a, Swipe):
            app.swipe(a.start.x, a.start.y, a.end.x, a.end.y, round(a.seconds * 1000))
        elif isinstance(a, TypeText):
            app.commit_text(a.text, via="ime")
        elif isinstance(a, SystemButton):
            app.key(KEYCODES[a.button])
        elif isinstance(a, OpenApp):
            app.launch(LABELS[a.app])
        self.actions.append(a)
        return self

    def tap(self, widget: str) -> Player:
        return self.do(Tap(point=self.at(widget)))


def script(dialect: str, actions: list[Any]) -> list[str]:
    """Each screen_px action in the dialect's own space and text."""
    d = get_dialect(dialect)

    def convert(p: Point) -> Point:
        return from_screen(int(p.x), int(p.y), d.space, GEOM, CTX.resized)

    return [d.format(map_points(a, convert), CTX) for a in actions]


def both(play: Callable[[], Player]) -> dict[str, list[str]]:
    actions = play().actions
    return {d: script(d, actions) for d in DIALECTS}


def signin() -> Player:
    p = Player("signin")
    p.tap("name").do(TypeText(text=NAME)).tap("password").do(TypeText(text=PASSWORD))
    return p.tap("sign_in").do(Finish())


def scroll_list() -> Player:
    p = Player("home").do(OpenApp(app="Shop"))
    up = Swipe(
        start=Point(x=360, y=1100, space="screen_px"), end=Point(x=360, y=500, space="screen_px")
    )
    p.do(up)
    return p.tap("item:Item 14").do(Finish())


def settings_back() -> Player:
    p = Player("settings").tap("row:dark_mode").tap("row:about")
    return p.do(SystemButton(button="back")).do(SystemButton(button="back")).do(Finish())


def long_press_menu() -> Player:
    p = Player("notes")
    p.do(LongPress(point=p.at("note:Ideas"), seconds=1.0))
    return p.tap("menu:Delete").do(Finish())


def wifi_tap(dialect: str) -> str:
    return script(dialect, [Tap(point=Player("settings").at("row:wifi"))])[0]


SCENARIOS: dict[str, dict[str, Any]] = {
    "signin_unicode": dict(
        description="Sign in with a non-ASCII name and a password full of shell syntax.",
        start="signin",
        task=f"Sign in with the name “{NAME}” and the password “{PASSWORD}”.",
        scripts=both(signin),
        checks=[
            {"path": "signed_in.name", "equals": NAME},
            {"path": "signed_in.password", "equals": PASSWORD},
            {"path": "sign_in_count", "equals": 1},
            {"path": "injections", "equals": []},
        ],
    ),
    "scroll_list": dict(
        description="Open the Shop app, swipe the list up, tap an item that was hidden.",
        start="home",
        task="Open the Shop app and tap Item 14.",
        scripts=both(scroll_list),
        checks=[
            {"path": "launched", "equals": ["com.pixelpilot.shop"]},
            {"path": "scroll", "equals": 600},
            {"path": "tapped", "equals": ["Item 14"]},
        ],
    ),
    "settings_toggle_back": dict(
        description="Turn a setting on, open a sub-screen, go back twice with the Back button.",
        start="settings",
        task="Turn on Dark mode, look at About phone, then go back to the home screen.",
        scripts=both(settings_back),
        checks=[
            {"path": "toggles.dark_mode", "equals": True},
            {"path": "toggles.wifi", "equals": True},
            {"path": "screen", "equals": "home"},
            {"path": "keys", "equals": [4, 4]},
        ],
    ),
    "long_press_menu": dict(
        description="A long press opens a note's context menu; a tap picks Delete.",
        start="notes",
        task="Delete the note 'Ideas' with its long-press menu.",
        scripts=both(long_press_menu),
        checks=[
            {"path": "menu_choice", "equals": {"note": "Ideas", "entry": "Delete"}},
            {"path": "notes", "equals": ["Groceries", "Trip plan"]},
        ],
    ),
    # -- bad model output: recovered by a retry, or a clear failure ----------------------------
    "recover_malformed": dict(
        description="A cut-off call and a desktop action on a phone are rejected; the retry lands.",
        start="settings",
        task="Turn Wi-Fi off.",
        scripts={
            "qwen25vl": [
                '<tool_call>\n{"name": "mobile_use", "arguments": {"action": "left_click", '
                '"coordinate": [364, 231]}}\n</tool_call>',
                wifi_tap("qwen25vl"),
                script("qwen25vl", [Finish()])[0],
            ],
            "qwen2vl": [
                '✿FUNCTION✿: tap\n✿ARGS✿: {"point": [500, ',
                wifi_tap("qwen2vl"),
                script("qwen2vl", [Finish()])[0],
            ],
        },
        expect={"status": "success", "retries": 1},
        checks=[{"path": "toggles.wifi", "equals": False}, {"path": "keys", "equals": []}],
    ),
    "give_up_malformed": dict(
        description="A model that never writes a valid call: the run fails, the phone is untouched.",
        start="settings",
        task="Turn Wi-Fi off.",
        budgets={"max_steps": 3, "max_retries": 2},
        scripts={
            "qwen25vl": [
                "I will tap the Wi-Fi switch.",
                '<tool_call>\n{"name": "mobile_use", "arguments": {"action": "tap", '
                '"coordinate": [364, 231]}}\n</tool_call>',
                '<tool_call>\n{"name": "mobile_use", "arguments": {"action": "click"}}\n</tool_call>',
            ],
            "qwen2vl": [
                "Wi-Fi is at the top of the list.",
                '✿FUNCTION✿: tap\n✿ARGS✿: {"point": [500]}',
                '✿FUNCTION✿: swipe\n✿ARGS✿: {"start": [500, 500]}',
            ],
        },
        expect={"status": "failure", "retries": 3},
        checks=[{"path": "toggles.wifi", "equals": True}, {"path": "events", "equals": []}],
    ),
}


def _literal(dumper: yaml.Dumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


def main() -> None:
    yaml.add_representer(str, _literal)
    OUT.mkdir(parents=True, exist_ok=True)
    for name, spec in SCENARIOS.items():
        doc = {
            "name": name,
            "description": spec["description"],
            "target": {"kind": "android", "app": "phone", "start": spec["start"], "screen": [W, H]},
            "task": spec["task"],
            "budgets": spec.get("budgets", {"max_steps": 10}),
            "scripts": spec["scripts"],
            "expect": spec.get("expect", {"status": "success"}),
            "checks": spec["checks"],
        }
        text = yaml.dump(doc, allow_unicode=True, sort_keys=False, width=100)
        (OUT / f"{name}.yaml").write_text(
            "# Written by scripts/make_mobile_scenarios.py; edit there.\n" + text, encoding="utf-8"
        )
        print("wrote", OUT / f"{name}.yaml")


if __name__ == "__main__":
    main()
