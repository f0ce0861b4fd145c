"""The model-family dialects: realistic outputs in and out, round trips, prompts, registry.

Tables give raw text as a model writes it with the exact Action expected, or a fragment of the
one-line reason sent back to the model. No mocks: the dialects are pure.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from pixelpilot.agent.actions import (
    BY_KIND,
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
    arguments_schema,
)
from pixelpilot.agent.dialects import (
    DIALECTS,
    Qwen2VLDialect,
    Qwen25VLDialect,
    UITars15Dialect,
    UITarsDialect,
    get_dialect,
)
from pixelpilot.agent.dialects.base import StepContext
from pixelpilot.agent.errors import ConfigError, ParseError
from pixelpilot.agent.geometry import ScreenGeometry

DESKTOP = StepContext("desktop", DESKTOP_KINDS, ScreenGeometry(1920, 1080), (1932, 1092))
MOBILE = StepContext("mobile", MOBILE_KINDS, ScreenGeometry(1080, 2400), (1092, 2408))
ROBOT = StepContext("robot", ROBOT_KINDS, ScreenGeometry(640, 480), (644, 476))
NO_MOVE = StepContext("desktop", DESKTOP_KINDS - {"move"}, DESKTOP.geometry, DESKTOP.resized)
CTX = {"desktop": DESKTOP, "mobile": MOBILE, "robot": ROBOT}

UNICODE = "Zoë — 東京 ✓"
TRICKY = 'He said "hi" & it\'s C:\\tmp\\new; 100% {ok}'


def N(x: float, y: float) -> Point:
    return Point(x=x, y=y, space="norm1000")


def R(x: float, y: float) -> Point:
    return Point(x=x, y=y, space="resized_px")


def F(name: str, args: dict[str, Any]) -> str:
    """A Qwen-Agent function call as Qwen2-VL writes it."""
    return f"✿FUNCTION✿: {name}\n✿ARGS✿: {json.dumps(args, ensure_ascii=False)}"


def T(name: str, args: dict[str, Any]) -> str:
    """A hermes tool call as Qwen2.5-VL writes it."""
    body = json.dumps({"name": name, "arguments": args}, ensure_ascii=False)
    return f"<tool_call>\n{body}\n</tool_call>"


def CU(**args: Any) -> str:
    return T("computer_use", args)


def MU(**args: Any) -> str:
    return T("mobile_use", args)


# -- qwen2vl -----------------------------------------------------------------------------------
QWEN2VL_GOOD = [
    (F("click", {"point": [500, 300], "count": 2}), "desktop", Click(point=N(500, 300), count=2)),
    ("```\n" + F("click", {"point": [10, 20]}) + "\n```", "desktop", Click(point=N(10, 20))),
    ("I will press OK.\n" + F("click", {"point": [1, 2]}) + "\nDone.", "desktop",
     Click(point=N(1, 2))),
    (F("click", {"point": [1, 2]}) + "\n✿RESULT✿: ok\n✿RETURN✿: Clicked.\n✿FUNCTION✿: type",
     "desktop", Click(point=N(1, 2))),
    # two calls: the first is taken, as Qwen-Agent does with parallel function calls off
    (F("click", {"point": [1, 2]}) + "\n" + F("type", {"text": "a"}), "desktop",
     Click(point=N(1, 2))),
    # a continued assistant turn starts with ": " (after "✿RETURN✿"), a thought may follow
    (": The form is open.\n" + F("click", {"point": [1, 2]}), "desktop", Click(point=N(1, 2))),
    (F("type", {"text": UNICODE}), "desktop", TypeText(text=UNICODE)),
    (F("type", {"text": TRICKY + "\n"}), "desktop", TypeText(text=TRICKY + "\n")),
    (F("hotkey", {"keys": ["ctrl", "c"]}), "desktop", Hotkey(keys=["ctrl", "c"])),
    (F("scroll", {"direction": "down", "amount": 3}), "desktop",
     Scroll(direction="down", amount=3)),
    (F("drag", {"end": [600, 400]}), "desktop", Drag(end=N(600, 400))),
    (F("finish", {}), "desktop", Finish()),
    ("✿FUNCTION✿：finish\n✿ARGS✿：{\"status\": \"failure\", \"answer\": \"no network\"}", "desktop",
     Finish(status="failure", answer="no network")),
    (F("tap", {"point": [120, 340]}), "mobile", Tap(point=N(120, 340))),
    (F("click", {"point": [120, 340]}), "mobile", Tap(point=N(120, 340))),
    (("<|object_ref_start|>OK button<|object_ref_end|><|box_start|>(100,200),(300,400)"
      "<|box_end|><|im_end|>"), "desktop", Click(point=N(200, 300))),
    ("<|box_start|>(120,340)<|box_end|>", "mobile", Tap(point=N(120, 340))),
    ("OK button(100,200),(300,401)", "desktop", Click(point=N(200, 300.5))),
    (F("pick", {"point": [512, 384]}), "robot", Pick(point=N(512, 384))),
    (F("move_effector", {"point": [5, 6], "height": 0.3}), "robot",
     MoveEffector(point=N(5, 6), height=0.3)),
]  # fmt: skip

QWEN2VL_BAD = [
    ("", "desktop", "empty answer"),
    ("   \n ", "desktop", "empty answer"),
    ("I think I should click the OK button.", "desktop", "no tool call found"),
    (F("teleport", {"point": [1, 2]}), "desktop", "'teleport' is not a tool"),
    (F("pick", {"point": [1, 2]}), "desktop", "'pick' is not available on this device"),
    ("✿FUNCTION✿: click", "desktop", "missing ✿ARGS✿"),
    ("✿FUNCTION✿:\n✿ARGS✿: {}", "desktop", "names no tool"),
    (F("move", {}), "desktop", "missing argument 'point'"),
    (F("click", {"point": "500,300"}), "desktop", "'point' must be [x, y]"),
    (F("click", {"point": [1, 2], "count": "two"}), "desktop", "'count'"),
    (F("click", {"point": [1, 2], "force": True}), "desktop", "unexpected argument 'force'"),
    ('✿FUNCTION✿: click\n✿ARGS✿: {"point": [500, 3', "desktop", "cut off"),
    ("✿FUNCTION✿: click\n✿ARGS✿: {point: [1, 2]}", "desktop", "not valid JSON"),
    ('✿FUNCTION✿: click\n✿ARGS✿: {"point": [NaN, 1]}', "desktop", "not valid JSON"),
    ("<|box_start|>(1,2)<|box_end|>", "robot", "not an action on this device"),
    ("<|box_start|>(1,2)<|box_end|> <|box_start|>(3,4)<|box_end|>", "desktop", "one box"),
    ("<|box_start|>(100,200),(300,", "desktop", "not closed"),
    ("<|box_start|>(a,b)<|box_end|>", "desktop", "cannot read the box"),
    (F("type", {"text": ""}), "desktop", "'text'"),
]  # fmt: skip


# -- qwen25vl ----------------------------------------------------------------------------------
QWEN25VL_GOOD = [
    (CU(action="left_click", coordinate=[1294, 811]), "desktop", Click(point=R(1294, 811))),
    (CU(action="double_click", coordinate=[5, 6]), "desktop", Click(point=R(5, 6), count=2)),
    (CU(action="right_click", coordinate=[5, 6]), "desktop", Click(point=R(5, 6), button="right")),
    (CU(action="middle_click", coordinate=[5, 6]), "desktop",
     Click(point=R(5, 6), button="middle")),
    (CU(action="mouse_move", coordinate=[7, 8]), "desktop", Move(point=R(7, 8))),
    (CU(action="left_click_drag", coordinate=[900, 40]), "desktop", Drag(end=R(900, 40))),
    (CU(action="scroll", pixels=5), "desktop", Scroll(direction="up", amount=5)),
    (CU(action="scroll", pixels=-3, coordinate=[10, 20]), "desktop",
     Scroll(direction="down", amount=3, point=R(10, 20))),
    (CU(action="key", keys=["Control", "Return"]), "desktop", Hotkey(keys=["ctrl", "enter"])),
    (CU(action="key", keys=["ctrl+shift+t"]), "desktop", Hotkey(keys=["ctrl", "shift", "t"])),
    (CU(action="type", text=UNICODE), "desktop", TypeText(text=UNICODE)),
    (CU(action="type", text=TRICKY + "\n"), "desktop", TypeText(text=TRICKY + "\n")),
    (CU(action="wait", time=2), "desktop", Wait(seconds=2)),
    (CU(action="terminate", status="failure"), "desktop", Finish(status="failure")),
    ("<thinking>\nThought: type it.\n</thinking>\n" + CU(action="type", text="mPLUG-Owl3")
     + "\n<conclusion>\nTyped it\n</conclusion>", "desktop", TypeText(text="mPLUG-Owl3")),
    ("```\n" + CU(action="left_click", coordinate=[1, 2]) + "\n```", "desktop",
     Click(point=R(1, 2))),
    (('<tool_call>\n{"name": "computer_use", "arguments": "{\\"action\\": \\"left_click\\", '
      '\\"coordinate\\": [3, 4]}"}\n</tool_call>'), "desktop", Click(point=R(3, 4))),
    (T("ask_user", {"question": "Which account?"}), "desktop", AskUser(question="Which account?")),
    (MU(action="click", coordinate=[935, 406]), "mobile", Tap(point=R(935, 406))),
    (MU(action="long_press", coordinate=[5, 6], time=2), "mobile",
     LongPress(point=R(5, 6), seconds=2)),
    (MU(action="swipe", coordinate=[500, 1500], coordinate2=[500, 500]), "mobile",
     Swipe(start=R(500, 1500), end=R(500, 500))),
    (MU(action="system_button", button="Back"), "mobile", SystemButton(button="back")),
    (MU(action="open", text="Settings"), "mobile", OpenApp(app="Settings")),
    (MU(action="key", text="home"), "mobile", SystemButton(button="home")),
    (MU(action="key", text="volume_up"), "mobile", SystemButton(button="volume_up")),
    (MU(action="key", text="KEYCODE_APP_SWITCH"), "mobile", SystemButton(button="recent")),
    (CU(action="left_click"), "desktop", Click()),  # where the cursor is
    (CU(action="left_click", coordinate=[884.5, 920.25]), "desktop", Click(point=R(884.5, 920.25))),
    # the cookbook reads the first call; a bare call object; a block cut after its JSON
    (CU(action="left_click", coordinate=[1, 2]) + "\n" + CU(action="type", text="a"), "desktop",
     Click(point=R(1, 2))),
    ('{"name": "computer_use", "arguments": {"action": "left_click", "coordinate": [1, 2]}}',
     "desktop", Click(point=R(1, 2))),
    ('<tool_call>\n{"name": "computer_use", "arguments": {"action": "left_click", '
     '"coordinate": [1, 2]}}', "desktop", Click(point=R(1, 2))),
    (MU(action="click", coordinate=[1, 2]), "desktop", Click(point=R(1, 2))),  # fitted
    (MU(action="type", text=UNICODE), "mobile", TypeText(text=UNICODE)),
    (T("pick", {"point": [320, 240]}), "robot", Pick(point=R(320, 240))),
    (T("gripper", {"state": "close"}), "robot", Gripper(state="close")),
]  # fmt: skip

QWEN25VL_BAD = [
    ("", "desktop", "empty answer"),
    ("just text", "desktop", "no tool call found"),
    ('<tool_call>\n{"name": "computer_use", "arguments": {"action": "left_cl</tool_call>',
     "desktop", "cut off"),
    ("<tool_call>\n{name: computer_use}\n</tool_call>", "desktop", "not valid JSON"),
    (CU(action="triple_click", coordinate=[1, 2]), "desktop",
     "'triple_click' is not a computer_use action"),
    (CU(action=["left_click"], coordinate=[1, 2]), "desktop", "'action' must name the action"),
    (CU(action="mouse_move"), "desktop", "missing argument 'coordinate'"),
    (CU(action="left_click", coordinate="500,300"), "desktop", "'coordinate'"),
    (CU(action="left_click", coordinate=[1, 2, 3]), "desktop", "'coordinate'"),
    (CU(action="left_click", coordinate=[True, 2]), "desktop", "'coordinate'"),
    (CU(action="wait", time="2"), "desktop", "'time'"),
    (CU(action="type", text="x", submit=True), "desktop", "unexpected argument 'submit'"),
    (CU(action="scroll", pixels=0), "desktop", "must not be 0"),
    (CU(action="wait", time=600), "desktop", "'time'"),
    (CU(action="mouse_move", coordinate=[1, 2]), NO_MOVE, "'mouse_move' is not available"),
    (T("pick", {"point": [1, 2]}), "desktop", "'pick' is not available on this device"),
    (T("teleport", {}), "desktop", "'teleport' is not a tool"),
    (MU(action="key", text="hyperdrive"), "mobile", "'hyperdrive' is not a key pixelpilot presses"),
    ('<tool_call>\n{"name": "computer_use"}\n</tool_call>', "desktop", '{"name": ...'),
    ('<tool_call>\n{"name": "computer_use", "arguments": {}} trailing\n</tool_call>', "desktop",
     "text after the JSON"),
]  # fmt: skip


# -- uitars ------------------------------------------------------------------------------------
UITARS_GOOD = [
    ("Thought: Click OK.\nAction: click(start_box='<|box_start|>(495,30)<|box_end|>')", "uitars",
     "desktop", Click(point=N(495, 30))),
    ("Thought: Click OK.\nAction: click(point='<point>200 300</point>')", "uitars-1.5",
     "desktop", Click(point=R(200, 300))),
    ("Action: left_double(start_box='(23,245)')", "uitars", "desktop",
     Click(point=N(23, 245), count=2)),
    ("Action: right_single(start_box='[10, 20, 30, 40]')", "uitars", "desktop",
     Click(point=N(20, 30), button="right")),
    ("Action: hover(start_box='<bbox>10 20</bbox>')", "uitars", "desktop", Move(point=N(10, 20))),
    ("Action: drag(start_box='(72,74)', end_box='(175,74)')", "uitars", "desktop",
     Drag(start=N(72, 74), end=N(175, 74))),
    ("Action: drag(start_point='<point>1 2</point>', end_point='<point>3 4</point>')",
     "uitars-1.5", "desktop", Drag(start=R(1, 2), end=R(3, 4))),
    ("Action: hotkey(key='ctrl c')", "uitars", "desktop", Hotkey(keys=["ctrl", "c"])),
    ("Action: press(key='Return')", "uitars", "desktop", Hotkey(keys=["enter"])),
    ("Thought: Go.\nAction: type(content='doubao.com\\n')", "uitars", "desktop",
     TypeText(text="doubao.com\n")),
    (f"Action: type(content='{UNICODE}')", "uitars-1.5", "desktop", TypeText(text=UNICODE)),
    ("Action: type(content='He said \\\"hi\\\" & it\\'s C:\\\\tmp\\\\new')", "uitars",
     "desktop", TypeText(text="He said \"hi\" & it's C:\\tmp\\new")),
    ("Action: type(content='don't stop')", "uitars", "desktop", TypeText(text="don't stop")),
    ("Action: scroll(start_box='(500,500)', direction='down')", "uitars", "desktop",
     Scroll(direction="down", point=N(500, 500))),
    ("Action: wait()", "uitars", "desktop", Wait(seconds=5)),
    ("Action: finished(content='42')", "uitars-1.5", "desktop", Finish(answer="42")),
    ("Thought: Which account should I use?\nAction: call_user()", "uitars", "desktop",
     AskUser(question="Which account should I use?")),
    ("```\nThought: x\nAction: click(start_box='(1,2)')\n```", "uitars", "desktop",
     Click(point=N(1, 2))),
    ("Thought: two at once\nAction: click(start_box='(1,2)')\n\ntype(content='a')", "uitars",
     "desktop", Click(point=N(1, 2))),
    ("Action: click(start_box='(395,74)')", "uitars", "mobile", Tap(point=N(395, 74))),
    ("Action: long_press(start_box='(1,2)', time='2')", "uitars", "mobile",
     LongPress(point=N(1, 2), seconds=2)),
    ("Action: open_app(app_name='Settings')", "uitars-1.5", "mobile", OpenApp(app="Settings")),
    ("Action: press_home()", "uitars", "mobile", SystemButton(button="home")),
    ("Action: press_back()", "uitars-1.5", "mobile", SystemButton(button="back")),
    ("Action: scroll(start_box='(500,800)', end_box='(500,200)')", "uitars", "mobile",
     Swipe(start=N(500, 800), end=N(500, 200))),
    ("Action: scroll(point='<point>546 1204</point>', direction='down')", "uitars-1.5", "mobile",
     Swipe(start=R(546, 1806), end=R(546, 602))),
]  # fmt: skip

UITARS_BAD = [
    ("", "uitars", "desktop", "empty answer"),
    ("Thought: I look at the screen.", "uitars", "desktop", "no action found"),
    ("Thought: nothing\nAction:", "uitars", "desktop", "'Action:' is empty"),
    ("Thought: x\nAction: click the OK button", "uitars", "desktop", "holds no call"),
    ("Action: teleport(start_box='(1,2)')", "uitars", "desktop", "'teleport' is not an action"),
    ("Action: click()", "uitars", "desktop", "missing argument 'start_box'"),
    ("Action: click(start_box='')", "uitars-1.5", "desktop", "missing argument 'start_box'"),
    ("Action: scroll(direction='sideways')", "uitars", "desktop", "'direction'"),
    ("Action: click(start_box='(abc)')", "uitars", "desktop", "cannot read start_box"),
    ("Action: click(start_box='(1,2,3)')", "uitars", "desktop", "cannot read start_box"),
    ("Action: type(content='Hello wor", "uitars", "desktop", "cut off"),
    ("Action: click(start_box='(100,2", "uitars", "desktop", "cut off"),
    ("Action: click(start_box='(1,2)', button='left')", "uitars", "desktop",
     "unexpected argument 'button'"),
    ("Action: click(start_box='(1,2)', point='<point>1 2</point>')", "uitars", "desktop",
     "repeats"),
    ("Action: press_home()", "uitars", "desktop", "'press_home' is not available"),
    ("Action: left_double(start_box='(1,2)')", "uitars", "mobile", "'left_double' is not available"),
    ("Action: long_press(start_box='(1,2)', time='soon')", "uitars", "mobile", "not a number"),
    ("Action: click(start_box='<|box_start|>(1290,718)<|box_end|>(1350,747)<|box_end|>')",
     "uitars-1.5", "desktop", "cannot read start_box"),
    ("Action: click(start_box='<point>1 2')", "uitars-1.5", "desktop", "does not close"),
    ("Action: type(content='')", "uitars", "desktop", "missing argument 'content'"),
    ("Action: click(start_box=, x)", "uitars", "desktop", "has no value"),
]  # fmt: skip


def _ctx(c: StepContext | str) -> StepContext:
    return CTX[c] if isinstance(c, str) else c


@pytest.mark.parametrize(("raw", "ctx", "expected"), QWEN2VL_GOOD)
def test_qwen2vl_parses(raw: str, ctx: str, expected: Any) -> None:
    assert Qwen2VLDialect().parse(raw, _ctx(ctx)) == expected


@pytest.mark.parametrize(("raw", "ctx", "fragment"), QWEN2VL_BAD)
def test_qwen2vl_rejects(raw: str, ctx: str, fragment: str) -> None:
    _assert_rejects(Qwen2VLDialect(), raw, _ctx(ctx), fragment)


@pytest.mark.parametrize(("raw", "ctx", "expected"), QWEN25VL_GOOD)
def test_qwen25vl_parses(raw: str, ctx: str, expected: Any) -> None:
    assert Qwen25VLDialect().parse(raw, _ctx(ctx)) == expected


@pytest.mark.parametrize(("raw", "ctx", "fragment"), QWEN25VL_BAD)
def test_qwen25vl_rejects(raw: str, ctx: StepContext | str, fragment: str) -> None:
    _assert_rejects(Qwen25VLDialect(), raw, _ctx(ctx), fragment)


@pytest.mark.parametrize(("raw", "name", "ctx", "expected"), UITARS_GOOD)
def test_uitars_parses(raw: str, name: str, ctx: str, expected: Any) -> None:
    assert get_dialect(name).parse(raw, _ctx(ctx)) == expected


@pytest.mark.parametrize(("raw", "name", "ctx", "fragment"), UITARS_BAD)
def test_uitars_rejects(raw: str, name: str, ctx: str, fragment: str) -> None:
    _assert_rejects(get_dialect(name), raw, _ctx(ctx), fragment)


def _assert_rejects(dialect: Any, raw: str, ctx: StepContext, fragment: str) -> None:
    with pytest.raises(ParseError) as info:
        dialect.parse(raw, ctx)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message and 0 < len(message) < 300, message


def test_uitars_last_action_marker_wins() -> None:
    raw = "Thought: x\nAction: type(content='broken\nAction: click(start_box='(100,200)')"
    assert UITarsDialect().parse(raw, DESKTOP) == Click(point=N(100, 200))


def test_uitars_grounding_answer_is_a_click_or_tap() -> None:
    assert UITarsDialect().parse("(235, 512)", DESKTOP) == Click(point=N(235, 512))
    assert UITarsDialect().parse("(235, 512)", MOBILE) == Tap(point=N(235, 512))


def test_uitars_scroll_on_a_phone_is_a_swipe_kept_on_screen() -> None:
    raw = "Action: scroll(start_box='(500,900)', direction='down')"
    swipe = UITarsDialect().parse(raw, MOBILE)
    assert swipe == Swipe(start=N(500, 1000), end=N(500, 650))  # finger moves up, clipped


# -- round trips -------------------------------------------------------------------------------
COMMON_DESKTOP = [
    TypeText(text=UNICODE), TypeText(text=TRICKY + "\n"), TypeText(text="a\tb\\n"),
    Finish(), AskUser(question="Which account should I use?"),
]  # fmt: skip
ROUND_TRIPS: dict[str, list[tuple[str | StepContext, Any]]] = {
    "qwen2vl": [
        *[
            ("desktop", a)
            for a in [
                Click(point=N(500, 300)),
                Click(point=N(0, 1000), count=2),
                Click(point=N(1, 2), button="right"),
                Move(point=N(3, 4)),
                Drag(start=N(1, 2), end=N(3, 4)),
                Drag(end=N(3, 4)),
                Scroll(direction="down", amount=3, point=N(5, 6)),
                Scroll(direction="left"),
                Hotkey(keys=["ctrl", "shift", "t"]),
                Wait(seconds=2.5),
                Finish(status="failure", answer="no network"),
                *COMMON_DESKTOP,
            ]
        ],
        *[
            ("mobile", a)
            for a in [
                Tap(point=N(1, 2)),
                LongPress(point=N(1, 2), seconds=2),
                Swipe(start=N(1, 2), end=N(3, 4), seconds=0.5),
                SystemButton(button="back"),
                OpenApp(app="Settings"),
                TypeText(text=UNICODE),
                Wait(),
                Finish(),
            ]
        ],
        *[
            ("robot", a)
            for a in [
                Pick(point=N(1, 2)),
                Place(point=N(3, 4)),
                Gripper(state="close"),
                MoveEffector(point=N(5, 6), height=0.3),
                Home(),
                Wait(),
                Finish(),
                AskUser(question="Where?"),
            ]
        ],
    ],
    "qwen25vl": [
        *[
            ("desktop", a)
            for a in [
                Click(point=R(1294, 811)),
                Click(point=R(0, 0), count=2),
                Click(point=R(1, 2), button="right"),
                Click(point=R(1, 2), button="middle"),
                Move(point=R(3, 4)),
                Drag(end=R(3, 4)),
                Scroll(direction="up", amount=5),
                Scroll(direction="down", amount=3, point=R(5, 6)),
                Hotkey(keys=["ctrl", "c"]),
                Wait(seconds=2.5),
                Finish(status="failure"),
                *COMMON_DESKTOP,
            ]
        ],
        *[
            ("mobile", a)
            for a in [
                Tap(point=R(935, 406)),
                LongPress(point=R(1, 2), seconds=2),
                Swipe(start=R(1, 2), end=R(3, 4)),
                *[SystemButton(button=b) for b in ("back", "home", "menu", "enter")],
                OpenApp(app="Settings"),
                TypeText(text=UNICODE),
                Wait(),
                Finish(),
                AskUser(question="Which one?"),
            ]
        ],
        ("mobile", SystemButton(button="volume_up")),  # mobile_use key
        ("mobile", SystemButton(button="recent")),  # key "app_switch"
        *[
            ("robot", a)
            for a in [
                Pick(point=R(1, 2)),
                Place(point=R(3, 4)),
                Gripper(state="open"),
                MoveEffector(point=R(5, 6)),
                Home(),
                Wait(),
                Finish(answer="done"),
            ]
        ],
    ],
}
for _name, _P in (("uitars", N), ("uitars-1.5", R)):
    ROUND_TRIPS[_name] = [
        *[("desktop", a) for a in [
            Click(point=_P(100, 200)), Click(point=_P(1, 2), count=2),
            Click(point=_P(1, 2), button="right"), Move(point=_P(3, 4)),
            Drag(start=_P(1, 2), end=_P(3, 4)), Scroll(direction="down", point=_P(5, 6)),
            Scroll(direction="up"), Hotkey(keys=["ctrl", "c"]), Hotkey(keys=["enter"]),
            Wait(seconds=5), Finish(answer="it's 42\n"), *COMMON_DESKTOP]],
        *[("mobile", a) for a in [
            Tap(point=_P(1, 2)), LongPress(point=_P(1, 2)), LongPress(point=_P(1, 2), seconds=2.5),
            Swipe(start=_P(1, 2), end=_P(3, 4)), *[SystemButton(button=b) for b in
            ("back", "home", "menu", "enter")], OpenApp(app="Settings"),
            TypeText(text=UNICODE), Wait(seconds=5), Finish(), AskUser(question="Which one?")]],
    ]  # fmt: skip


def _round_trip_cases() -> list[Any]:
    return [
        pytest.param(name, ctx, a, id=f"{name}-{a.kind}-{i}")
        for name, rows in ROUND_TRIPS.items()
        for i, (ctx, a) in enumerate(rows)
    ]


@pytest.mark.parametrize(("name", "ctx", "action"), _round_trip_cases())
def test_round_trip(name: str, ctx: str | StepContext, action: Any) -> None:
    dialect = get_dialect(name)
    text = dialect.format(action, _ctx(ctx))
    assert dialect.parse(text, _ctx(ctx)) == action, text


@pytest.mark.parametrize("name", list(ROUND_TRIPS))
def test_round_trip_table_covers_every_kind_the_dialect_expresses(name: str) -> None:
    kinds = {a.kind for _, a in ROUND_TRIPS[name]}
    expected = DESKTOP_KINDS | MOBILE_KINDS
    if not name.startswith("uitars"):
        expected |= ROBOT_KINDS
    assert kinds == expected


def test_uitars_formats_as_each_version_writes() -> None:
    v1 = UITarsDialect().format(Click(point=N(495, 30)), DESKTOP)
    assert v1 == "Thought: I click the target element.\n" + (
        "Action: click(start_box='<|box_start|>(495,30)<|box_end|>')"
    )
    v15 = UITars15Dialect().format(Drag(start=R(1, 2), end=R(3, 4)), DESKTOP)
    assert v15.endswith(
        "Action: drag(start_box='<|box_start|>(1,2)<|box_end|>', "
        "end_box='<|box_start|>(3,4)<|box_end|>')"
    )
    point = UITars15Dialect(notation="point").format(Drag(start=R(1, 2), end=R(3, 4)), DESKTOP)
    assert point.endswith(
        "Action: drag(start_point='<point>1 2</point>', end_point='<point>3 4</point>')"
    )
    typed = UITarsDialect().format(TypeText(text="it's\n"), DESKTOP)
    assert typed.endswith("Action: type(content='it\\'s\\n')")


def test_qwen_formats_as_each_family_writes() -> None:
    assert Qwen2VLDialect().format(Click(point=N(500, 300), count=2), DESKTOP) == (
        '✿FUNCTION✿: click\n✿ARGS✿: {"point": [500, 300], "count": 2}'
    )
    assert Qwen25VLDialect().format(Tap(point=R(935, 406)), MOBILE) == (
        '<tool_call>\n{"name": "mobile_use", "arguments": {"action": "click", '
        '"coordinate": [935, 406]}}\n</tool_call>'
    )


@pytest.mark.parametrize(
    ("name", "ctx", "action", "fragment"),
    [
        ("uitars", "desktop", Click(point=N(1, 2), count=3), "count=3"),
        ("uitars", "desktop", Wait(seconds=1), "seconds=1.0"),
        ("uitars", "desktop", Scroll(direction="up", amount=2), "amount=2"),
        ("uitars", "desktop", Finish(status="failure"), "failure"),
        ("uitars", "desktop", Drag(end=N(1, 2)), "start=None"),
        ("uitars", "robot", Pick(point=N(1, 2)), "cannot express Pick"),
        ("uitars-1.5", "desktop", Click(point=N(1, 2)), "resized_px"),
        ("qwen25vl", "desktop", Drag(start=R(1, 2), end=R(3, 4)), "cannot express"),
        ("qwen25vl", "desktop", Scroll(direction="left"), "cannot express"),
        ("qwen25vl", "desktop", Finish(answer="42"), "cannot express"),
        ("qwen25vl", "mobile", Swipe(start=R(1, 2), end=R(3, 4), seconds=2), "cannot express"),
        ("qwen2vl", "desktop", Click(point=R(1, 2)), "norm1000"),
    ],
)
def test_format_refuses_what_the_family_cannot_express(
    name: str, ctx: str, action: Any, fragment: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        get_dialect(name).format(action, _ctx(ctx))


# -- system prompts ----------------------------------------------------------------------------
@pytest.mark.parametrize("ctx", [DESKTOP, MOBILE, ROBOT], ids=["desktop", "mobile", "robot"])
def test_qwen2vl_prompt_lists_exactly_the_offered_tools(ctx: StepContext) -> None:
    image = Image.new("RGB", (8, 8))
    prompt = Qwen2VLDialect().build_prompt("t", [], image, ctx).messages[0].text
    for kind in BY_KIND:
        assert (f"### {kind}\n" in prompt) == (kind in ctx.kinds), kind
    schema = json.dumps(arguments_schema("click", (0, 1000)))
    assert (schema in prompt) == ("click" in ctx.kinds)
    assert prompt.startswith("You are a helpful assistant.\n\n# Tools\n\n")
    assert "✿FUNCTION✿: The tool to use" in prompt


def _tools(prompt: str) -> dict[str, dict[str, Any]]:
    body = prompt.split("<tools>\n")[1].split("\n</tools>")[0]
    funcs = [json.loads(line)["function"] for line in body.splitlines()]
    return {f["name"]: f for f in funcs}


def _system(ctx: StepContext) -> str:
    return Qwen25VLDialect().build_prompt("t", [], Image.new("RGB", (8, 8)), ctx).messages[0].text


def test_qwen25vl_prompt_offers_the_cookbook_tool_with_the_resolution() -> None:
    tools = _tools(_system(DESKTOP))
    assert set(tools) == {"computer_use", "ask_user"}
    cu = tools["computer_use"]
    assert "The screen's resolution is 1932x1092." in cu["description"]
    actions = cu["parameters"]["properties"]["action"]["enum"]
    assert "left_click" in actions and "mouse_move" in actions
    no_move = _tools(_system(NO_MOVE))["computer_use"]
    assert "mouse_move" not in json.dumps(no_move["parameters"]["properties"]["action"])


def test_qwen25vl_prompt_for_mobile_and_robot() -> None:
    mobile = _tools(_system(MOBILE))
    assert set(mobile) == {"mobile_use", "ask_user"}
    assert "resolution is 1092x2408" in mobile["mobile_use"]["description"]
    assert mobile["mobile_use"]["parameters"]["properties"]["action"]["enum"][0] == "key"
    robot = _tools(_system(ROBOT))
    assert set(robot) == ROBOT_KINDS
    assert "644x476" in robot["pick"]["description"]


@pytest.mark.parametrize("name", ["uitars", "uitars-1.5"])
def test_uitars_prompt_lists_the_device_actions(name: str) -> None:
    dialect = get_dialect(name)
    desktop, mobile = dialect.prompt_text("t", DESKTOP), dialect.prompt_text("t", MOBILE)
    for heading in ("## Output Format", "## Action Space", "## Note", "## User Instruction"):
        assert heading in desktop and heading in mobile
    for verb in ("click(", "left_double(", "right_single(", "drag(", "hotkey(", "scroll(",
                 "type(", "wait()", "finished(", "call_user()"):  # fmt: skip
        assert verb in desktop
    for verb in ("long_press(", "open_app(", "press_home()", "press_back()"):
        assert verb in mobile and verb not in desktop
    assert "left_double(" not in mobile and "hotkey(" not in mobile
    assert "start_box='<|box_start|>(x1,y1)<|box_end|>'" in desktop
    point = UITars15Dialect(notation="point").prompt_text("t", DESKTOP)
    assert "click(point='<point>x1 y1</point>')" in point


PLACEHOLDER_VALUES = [
    ("x1", "11"), ("y1", "12"), ("x2", "13"), ("y2", "14"), ("x3", "13"), ("y3", "14"),
    ("down or up or right or left", "up"), ("key=''", "key='enter'"),
    ("content=''", "content='a'"), ("app_name=''", "app_name='Maps'"),
]  # fmt: skip


@pytest.mark.parametrize("name", ["uitars", "uitars-1.5"])
@pytest.mark.parametrize("ctx", [DESKTOP, MOBILE], ids=["desktop", "mobile"])
def test_uitars_action_space_lines_are_parseable_calls(name: str, ctx: StepContext) -> None:
    dialect = get_dialect(name)
    lines = [v.line for v in dialect.offered_verbs(ctx) if v.line]
    assert lines
    for line in lines:
        call = line.split(" #")[0]
        for var, value in PLACEHOLDER_VALUES:
            call = call.replace(var, value)
        assert dialect.parse(f"Thought: t\nAction: {call}", ctx).kind in ctx.kinds, call


def test_build_prompt_carries_instructions_task_and_screenshot() -> None:
    """Where each goes is the family's layout (OS-Atlas and ShowUI: one user message)."""
    image = Image.new("RGB", (8, 8))
    for name in DIALECTS:
        dialect = get_dialect(name)
        prompt = dialect.build_prompt("Open Settings", [], image, DESKTOP, feedback="bad")
        text = "".join(m.text for m in prompt.messages)
        assert text.index("Open Settings") > 200  # the instructions come first
        assert prompt.images == [image]
        assert "Your last answer was rejected: bad" in text
        assert prompt.meta["dialect"] == name and prompt.sampling == dialect.sampling
        assert prompt.meta["ctx"] is DESKTOP  # for records and test-only oracle backends


# -- registry and safety -----------------------------------------------------------------------
def test_registry() -> None:
    assert DIALECTS == ("qwen2vl", "qwen25vl", "uitars", "uitars-1.5", "osatlas", "showui")
    for name in DIALECTS:
        dialect = get_dialect(name)
        assert dialect.name == name
    assert get_dialect("uitars").space == "norm1000"
    assert get_dialect("uitars-1.5").space == "resized_px"
    assert isinstance(get_dialect("uitars-1.5"), UITarsDialect)
    assert get_dialect("qwen25vl").space == "resized_px"


def test_unknown_dialect_is_a_config_error_listing_the_names() -> None:
    with pytest.raises(ConfigError) as info:
        get_dialect("qwen3vl")
    message = str(info.value)
    assert "\n" not in message and "'qwen3vl'" in message
    assert all(name in message for name in DIALECTS)


def test_no_dialect_evaluates_model_text() -> None:
    """Reads our own sources (never model text) with ``ast`` to find evaluating calls."""
    root = Path(__file__).resolve().parents[1] / "agent" / "dialects"
    sources = sorted(root.glob("*.py"))
    assert len(sources) >= 5
    banned = {"eval", "exec", "compile", "literal_eval", "__import__"}
    for path in sources:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                owner = getattr(getattr(func, "value", None), "id", "")
                assert name not in banned or owner == "re", f"{path.name}:{node.lineno} {name}"
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [a.name for a in node.names] + [getattr(node, "module", "") or ""]
                assert "ast" not in modules, f"{path.name} imports ast"
