"""The OS-Atlas-Pro and ShowUI dialects: outputs as those models write them, round trips for
every kind they express, bad answers rejected with a reason, prompts listing what is offered."""

from __future__ import annotations

from typing import Any

import pytest
from PIL import Image

from pixelpilot.agent.actions import (
    CONTROL_KINDS,
    DESKTOP_KINDS,
    MOBILE_KINDS,
    ROBOT_KINDS,
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
from pixelpilot.agent.dialects import get_dialect
from pixelpilot.agent.dialects.base import StepContext
from pixelpilot.agent.errors import ParseError
from pixelpilot.agent.geometry import ScreenGeometry, to_device

DESKTOP = StepContext(
    "desktop", DESKTOP_KINDS | CONTROL_KINDS, ScreenGeometry(1920, 1080), (1932, 1092)
)
MOBILE = StepContext(
    "mobile", MOBILE_KINDS | CONTROL_KINDS, ScreenGeometry(1080, 2400), (1092, 2408)
)
ROBOT = StepContext("robot", ROBOT_KINDS | CONTROL_KINDS, ScreenGeometry(640, 480), (644, 476))
CTX = {"desktop": DESKTOP, "mobile": MOBILE, "robot": ROBOT}
TRICKY = 'Zoë — 東京 ✓ said "hi" & [it\'s] C:\\tmp; $(x)'


def N(x: float, y: float) -> Point:
    return Point(x=x, y=y, space="norm1000")


OSATLAS_GOOD = [
    ("thoughts:\nThe search box is at the top.\nactions:\nCLICK <point>[[493,544]]</point>", "desktop", Click(point=N(493, 544))),
    ("Thoughts: tap it\nActions: CLICK <point>[[101, 872]]</point>", "mobile", Tap(point=N(101, 872))),
    ("actions:\nTYPE [Shanghai shopping mall]", "desktop", TypeText(text="Shanghai shopping mall")),
    (f"actions:\nTYPE [{TRICKY}]", "desktop", TypeText(text=TRICKY)),
    ("actions:\nSCROLL [UP]", "desktop", Scroll(direction="up")),
    ("actions:\nSCROLL [DOWN]", "mobile", Swipe(start=N(500, 750), end=N(500, 250))),
    ("actions:\nPRESS_BACK", "mobile", SystemButton(button="back")),
    ("actions:\nENTER", "mobile", SystemButton(button="enter")),
    ("actions:\nENTER", "desktop", Hotkey(keys=["enter"])),
    ("actions:\nLONG_PRESS <point>[[5,6]]</point>", "mobile", LongPress(point=N(5, 6))),
    ("actions:\nOPEN_APP [Settings]", "mobile", OpenApp(app="Settings")),
    ("actions:\nCOMPLETE", "desktop", Finish()),
    ("actions:\nCOMPLETE [42]", "desktop", Finish()),  # COMPLETE carries no answer; ANSWER does
    ("actions:\nANSWER [42]", "desktop", Finish(answer="42")),
    ("actions:\nIMPOSSIBLE", "mobile", Finish(status="failure")),
    ("actions:\nHOTKEY [CTRL_A]", "desktop", Hotkey(keys=["ctrl", "a"])),
    ("actions:\nHOTKEY [ctrl+c]", "desktop", Hotkey(keys=["ctrl", "c"])),
    ("actions:\nDOUBLECLICK <point>[[101,872]]</point>", "desktop", Click(point=N(101, 872), count=2)),
    ("actions:\nRIGHTCLICK <point>[[101, 872]]</point>", "desktop", Click(point=N(101, 872), button="right")),
    ("actions:\nMOVETO <point>[[1,2]]</point>", "desktop", Move(point=N(1, 2))),
    ("actions:\nPRESS_PGDN", "desktop", Hotkey(keys=["pagedown"])),
    ("actions:\nPRESS_RECENT", "mobile", SystemButton(button="recent")),
    ("actions:\nCLICK <point>[[5,6]]</point>\nTYPE [hi]", "desktop", Click(point=N(5, 6))),  # the first line
    ("actions:\nDRAG <point>[[1,2]]</point> <point>[[3,4]]</point>", "mobile", Swipe(start=N(1, 2), end=N(3, 4))),
    ("actions:\nPICK <point>[[300,400]]</point>", "robot", Pick(point=N(300, 400))),
    ("actions:\nMOVE_EFFECTOR <point>[[300,400]]</point> [0.2]", "robot", MoveEffector(point=N(300, 400), height=0.2)),
    # the verb after the LAST actions: marker counts; a CLICK in the thoughts does not
    ("thoughts:\nI should CLICK the box.\nactions:\nTYPE [hi]", "desktop", TypeText(text="hi")),
]  # fmt: skip
OSATLAS_BAD = [
    ("I am not sure what to do.", "desktop", "no action call found"),
    ("actions:\nCLICK somewhere", "desktop", "CLICK: missing argument 'point'"),
    ("actions:\nTYPE", "desktop", "TYPE: missing argument 'text'"),
    ("actions:\nSCROLL [SIDEWAYS]", "desktop", "use one of: UP, DOWN, LEFT, RIGHT"),
    ("actions:\nPICK <point>[[1,2]]</point>", "desktop", "'PICK' is not available on this device"),
    ("actions:\nPRESS_BACK", "desktop", "'PRESS_BACK' is not available"),
]
SHOWUI_GOOD = [
    ("{'action': 'CLICK', 'value': None, 'position': [0.49, 0.42]}", "desktop", Click(point=N(490, 420))),
    ("{'action': 'TAP', 'value': None, 'position': [0.1, 0.9]}", "mobile", Tap(point=N(100, 900))),
    ("{'action': 'CLICK', 'value': None, 'position': [0.1, 0.9]}", "mobile", Tap(point=N(100, 900))),
    ("{'action': 'INPUT', 'value': 'Zoë 東京', 'position': [0.5, 0.5]}", "desktop", TypeText(text="Zoë 東京")),
    ("{'action': 'INPUT', 'value': \"it's\", 'position': None}", "mobile", TypeText(text="it's")),
    ("{'action': 'SCROLL', 'value': 'down', 'position': None}", "desktop", Scroll(direction="down")),
    ("{'action': 'SWIPE', 'value': None, 'position': [[0.5, 0.8], [0.5, 0.2]]}", "mobile", Swipe(start=N(500, 800), end=N(500, 200))),
    ("{'action': 'SELECT', 'value': 'Economy', 'position': [0.3, 0.4]}", "desktop", Click(point=N(300, 400))),
    ("{'action': 'SELECT_TEXT', 'value': None, 'position': [[0.1, 0.2], [0.5, 0.2]]}", "desktop", Drag(start=N(100, 200), end=N(500, 200))),
    ("{'action': 'COPY', 'value': 'Total: $42', 'position': None}", "desktop", Hotkey(keys=["ctrl", "c"])),
    ("{'action': 'ANSWER', 'value': 'task complete', 'position': None}", "mobile", Finish()),
    ("{'action': 'PRESS BACK', 'value': None, 'position': None}", "mobile", SystemButton(button="back")),
    ("{'action': 'ENTER', 'value': None, 'position': None}", "mobile", SystemButton(button="enter")),
    ("{'action': 'ANSWER', 'value': 'Paris', 'position': None}", "desktop", Finish(answer="Paris")),
    ("{'action': 'HOVER', 'value': None, 'position': [0, 1]}", "desktop", Move(point=N(0, 1000))),
    ("[{'action': 'INPUT', 'value': 'a', 'position': None}, {'action': 'ENTER', 'value': None, 'position': None}]", "desktop", TypeText(text="a")),
    ("```python\n{'action': 'PICK', 'value': None, 'position': [0.25, 0.5]}\n```", "robot", Pick(point=N(250, 500))),
]  # fmt: skip
SHOWUI_BAD = [
    ("click the button", "desktop", "no action call found"),
    ("{'action': 'CLICK', 'value': None}", "desktop", "CLICK: missing argument 'position'"),
    ("{'action': 'CLICK', 'value': None, 'position': [1.5, 0.2]}", "desktop", "outside 0..1"),
    ("{'action': 'CLICK', 'value': None, 'position': ['a', 0.2]}", "desktop", "must be [x, y] with two numbers"),
    ("{'action': 'FLY', 'value': 'x', 'position': [0.1, 0.1]}", "desktop", "'FLY' is not"),
    ("{'action': 'CLICK', 'value': None, 'position': [0.1, 0.1]", "desktop", "not valid"),
    ("{'value': None}", "desktop", "needs an 'action' key"),
    ("{'action': 'SWIPE', 'value': None, 'position': [[0.1, 0.2], [0.3, 0.4]]}", "desktop", "'SWIPE' is not available"),
    ("{'action': 'SWIPE', 'value': 'up', 'position': [0.5, 0.8]}", "mobile", "SWIPE: unexpected argument 'value'"),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "ctx", "expected"), OSATLAS_GOOD)
def test_osatlas_parses(raw: str, ctx: str, expected: Any) -> None:
    assert get_dialect("osatlas").parse(raw, CTX[ctx]) == expected


@pytest.mark.parametrize(("raw", "ctx", "fragment"), OSATLAS_BAD)
def test_osatlas_rejects(raw: str, ctx: str, fragment: str) -> None:
    with pytest.raises(ParseError) as err:
        get_dialect("osatlas").parse(raw, CTX[ctx])
    assert fragment in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(("raw", "ctx", "expected"), SHOWUI_GOOD)
def test_showui_parses(raw: str, ctx: str, expected: Any) -> None:
    assert get_dialect("showui").parse(raw, CTX[ctx]) == expected


@pytest.mark.parametrize(("raw", "ctx", "fragment"), SHOWUI_BAD)
def test_showui_rejects(raw: str, ctx: str, fragment: str) -> None:
    with pytest.raises(ParseError) as err:
        get_dialect("showui").parse(raw, CTX[ctx])
    assert fragment in str(err.value) and "\n" not in str(err.value)


ROUND_TRIPS = [
    *[("desktop", a) for a in [
        Click(point=N(100, 200)), Click(point=N(1, 2), count=2), Click(point=N(1, 2), button="right"),
        Move(point=N(3, 4)), Drag(start=N(1, 2), end=N(3, 4)), Scroll(direction="left"),
        TypeText(text=TRICKY), TypeText(text="two\nlines"), Hotkey(keys=["ctrl", "shift", "t"]),
        Hotkey(keys=["enter"]), Wait(), Finish(), Finish(answer="it's 42"),
        Finish(status="failure"), AskUser(question="Which one?")]],
    *[("mobile", a) for a in [
        Tap(point=N(1, 2)), LongPress(point=N(3, 4)), Swipe(start=N(1, 2), end=N(999, 1000)),
        SystemButton(button="back"), SystemButton(button="home"), SystemButton(button="menu"),
        SystemButton(button="enter"), OpenApp(app="Settings"), TypeText(text=TRICKY)]],
    *[("robot", a) for a in [
        Pick(point=N(1, 2)), Place(point=N(3, 4)), Gripper(state="open"), Gripper(state="close"),
        MoveEffector(point=N(5, 6), height=0.3), Home()]],
]  # fmt: skip


CANNOT = {
    # the family has no way to write these (docs/models.md): format refuses them
    "osatlas": [TypeText(text="two\nlines"), Swipe(start=N(1, 2), end=N(999, 1000)), SystemButton(button="menu")],
    "showui": [Finish(status="failure"), SystemButton(button="menu")],
}  # fmt: skip


@pytest.mark.parametrize("name", ["osatlas", "showui"])
@pytest.mark.parametrize(
    ("ctx", "action"),
    ROUND_TRIPS,
    ids=[f"{c}-{a.kind}-{i}" for i, (c, a) in enumerate(ROUND_TRIPS)],
)
def test_round_trip(name: str, ctx: str, action: Any) -> None:
    dialect = get_dialect(name)
    if action in CANNOT[name]:
        with pytest.raises(ValueError, match="cannot express"):
            dialect.format(action, CTX[ctx])
        return
    text = dialect.format(action, CTX[ctx])
    assert dialect.parse(text, CTX[ctx]) == action, text


def test_round_trips_cover_every_kind() -> None:
    assert {
        a.kind for _, a in ROUND_TRIPS
    } == DESKTOP_KINDS | MOBILE_KINDS | ROBOT_KINDS | CONTROL_KINDS


@pytest.mark.parametrize("name", ["osatlas", "showui"])
def test_format_refuses_what_the_family_cannot_express(name: str) -> None:
    with pytest.raises(ValueError):
        get_dialect(name).format(Click(point=N(1, 2), button="middle"), DESKTOP)
    with pytest.raises(ValueError):
        get_dialect(name).format(Click(point=Point(x=1, y=2, space="resized_px")), DESKTOP)


@pytest.mark.parametrize(("name", "offered", "absent"), [
    ("osatlas", {"desktop": ["CLICK", "TYPE", "SCROLL", "HOTKEY"], "mobile": ["LONG_PRESS", "PRESS_BACK", "OPEN_APP"], "robot": ["PICK", "PLACE", "GRIPPER"]},
     {"desktop": ["PRESS_BACK", "PICK"], "mobile": ["HOTKEY", "PICK"], "robot": ["TYPE", "LONG_PRESS"]}),
    ("showui", {"desktop": ["`CLICK`", "`INPUT`", "`SCROLL`"], "mobile": ["`TAP`", "`SWIPE`", "`PRESS BACK`"], "robot": ["`PICK`", "`GRIPPER`"]},
     {"desktop": ["`TAP`", "`PICK`"], "mobile": ["`HOVER`", "`PICK`"], "robot": ["`INPUT`", "`TAP`"]}),
])  # fmt: skip
def test_prompt_lists_exactly_what_the_device_offers(name, offered, absent) -> None:
    screenshot = Image.new("RGB", (32, 32))
    for device, ctx in CTX.items():
        messages = get_dialect(name).build_prompt("a task", [], screenshot, ctx).messages
        prompt = "".join(m.text for m in messages)
        assert all(v in prompt for v in offered[device]), (device, prompt)
        assert not any(v in prompt for v in absent[device]), (device, prompt)


def test_showui_fractions_land_on_the_same_pixels_as_norm1000() -> None:
    """0.5 of a 1920-wide screen is pixel 960, whichever way the model wrote it."""
    action = get_dialect("showui").parse(
        "{'action': 'CLICK', 'value': None, 'position': [0.5, 1.0]}", DESKTOP
    )
    device = to_device(action, DESKTOP.geometry, DESKTOP.resized)
    assert (device.point.x, device.point.y) == (960, 1079)


def test_showui_never_evaluates_the_answer() -> None:
    raw = "{'action': 'INPUT', 'value': __import__('os').system('touch /tmp/pp-pwned'), 'position': None}"
    with pytest.raises(ParseError):
        get_dialect("showui").parse(raw, DESKTOP)
