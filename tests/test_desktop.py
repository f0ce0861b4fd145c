"""DesktopDevice against a real Xvfb, the real Tk fixture app, real pyautogui and XTEST.

The first half tests ``plan`` (pure: action -> exact commands) without any display; the rest
drives the fixture app and reads its JSON state as the oracle.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from pixelpilot.agent.actions import (
    Click,
    Drag,
    Finish,
    Hotkey,
    Move,
    Point,
    Scroll,
    Tap,
    TypeText,
)
from pixelpilot.agent.errors import (
    ActionRejected,
    ConfigError,
    DeviceError,
    DeviceLost,
    DeviceNotConnected,
    FailSafeTriggered,
    PointOutOfBounds,
    UnsupportedAction,
)
from pixelpilot.agent.geometry import ScreenGeometry
from pixelpilot.scenarios.fixture import FixtureApp, StateTimeout
from pixelpilot.scenarios.fixture_app import BLOCK_COLOUR
from pixelpilot.tools.desktop import KNOWN_KEYS, DesktopDevice, load_pyautogui, plan
from pixelpilot.tools.xvfb import VirtualDisplay, ensure_display

GEOM = ScreenGeometry(1280, 800)
HIDPI = ScreenGeometry(2560, 1600, scale=2.0, origin=(1920.0, -200.0))


def px(x: float, y: float) -> Point:
    return Point(x=x, y=y, space="screen_px")


def at(xy: tuple[int, int]) -> Point:
    return px(*xy)


# -- plan: pure, exact outputs ------------------------------------------------------------------
def test_plan_click_single_and_double() -> None:
    assert plan(Click(point=px(640, 400)), GEOM) == [
        ["pyautogui.click", {"x": 640.0, "y": 400.0, "button": "left", "clicks": 1,
                             "interval": 0.0}],
    ]  # fmt: skip
    assert plan(Click(point=px(10, 20), button="right", count=2), GEOM) == [
        ["pyautogui.click", {"x": 10.0, "y": 20.0, "button": "right", "clicks": 2,
                             "interval": 0.05}],
    ]  # fmt: skip


def test_plan_click_where_the_pointer_is() -> None:
    """A click without a point (Qwen2.5-VL's computer_use ``left_click`` / ``right_click`` /
    ``double_click``, which click the mouse button where the cursor is)."""
    assert plan(Click(), GEOM) == [
        ["pyautogui.click", {"button": "left", "clicks": 1, "interval": 0.0}],
    ]
    assert plan(Click(button="right", count=2), HIDPI) == [
        ["pyautogui.click", {"button": "right", "clicks": 2, "interval": 0.05}],
    ]


def test_plan_hidpi_and_monitor_origin() -> None:
    # pixel (641, 401) of a scale-2 monitor whose top-left is at logical (1920, -200)
    assert plan(Click(point=px(641, 401)), HIDPI) == [
        ["pyautogui.click", {"x": 2240.5, "y": 0.5, "button": "left", "clicks": 1,
                             "interval": 0.0}],
    ]  # fmt: skip
    assert plan(Move(point=px(0, 0)), HIDPI) == [["pyautogui.moveTo", {"x": 1920.0, "y": -200.0}]]
    assert plan(Scroll(direction="down", amount=2, point=px(2558, 1598)), HIDPI) == [
        ["pyautogui.scroll", {"clicks": -2, "x": 3199.0, "y": 599.0}]
    ]


def test_plan_move() -> None:
    assert plan(Move(point=px(1279, 799)), GEOM) == [
        ["pyautogui.moveTo", {"x": 1279.0, "y": 799.0}]
    ]


def test_plan_drag_with_start() -> None:
    action = Drag(start=px(100, 100), end=px(300, 200))
    assert plan(action, GEOM, drag_steps=2) == [
        ["pyautogui.mouseDown", {"x": 100.0, "y": 100.0, "button": "left"}],
        ["pyautogui.moveTo", {"x": 200.0, "y": 150.0}],
        ["pyautogui.moveTo", {"x": 300.0, "y": 200.0}],
        ["pyautogui.mouseUp", {"x": 300.0, "y": 200.0, "button": "left"}],
    ]
    assert len(plan(action, GEOM)) == 12  # default: 10 motion steps between press and release


def test_plan_drag_from_pointer() -> None:
    action = Drag(end=px(20, 10), button="middle")
    assert plan(action, HIDPI, pointer=(10.0, 10.0), drag_steps=2) == [
        ["pyautogui.mouseDown", {"button": "middle"}],
        ["pyautogui.moveTo", {"x": 1927.5, "y": -195.0}],
        ["pyautogui.moveTo", {"x": 1930.0, "y": -195.0}],
        ["pyautogui.mouseUp", {"x": 1930.0, "y": -195.0, "button": "middle"}],
    ]
    with pytest.raises(ValueError, match="pointer"):
        plan(action, GEOM)


def test_plan_scroll_directions() -> None:
    assert plan(Scroll(direction="up"), GEOM) == [["pyautogui.scroll", {"clicks": 5}]]
    assert plan(Scroll(direction="down", amount=3, point=px(5, 6)), GEOM) == [
        ["pyautogui.scroll", {"clicks": -3, "x": 5.0, "y": 6.0}]
    ]
    assert plan(Scroll(direction="right", amount=2), GEOM) == [["pyautogui.hscroll", {"clicks": 2}]]
    assert plan(Scroll(direction="left", amount=1), GEOM) == [["pyautogui.hscroll", {"clicks": -1}]]


def test_plan_type() -> None:
    assert plan(TypeText(text="a<b> $(x); 'q'"), GEOM) == [["xtest.type", {"text": "a<b> $(x); 'q'"}]]
    assert plan(TypeText(text="Zoë\r\nok\n"), GEOM) == [["xtest.type", {"text": "Zoë\nok\n"}]]
    assert plan(TypeText(text="-n"), GEOM) == [["xtest.type", {"text": "-n"}]]
    with pytest.raises(ActionRejected, match="U\\+0007"):
        plan(TypeText(text="bell\x07"), GEOM)
    with pytest.raises(ActionRejected, match="U\\+009B"):
        plan(TypeText(text="csi\x9b"), GEOM)


def test_typing_more_distinct_characters_than_spare_keycodes(
    fixture_app: FixtureApp, desktop: DesktopDevice
) -> None:
    """Xvfb has ~19 spare keycodes; a text with 60 distinct non-Latin-1 characters must still
    arrive exactly (the typer works in chunks and never remaps a key it still needs)."""
    text = "".join(chr(c) for c in range(0x3041, 0x3041 + 60)) + " ✓ Zoë"
    _focus_name(fixture_app, desktop)
    desktop.execute(TypeText(text=text))
    assert fixture_app.wait_for(lambda s: s["name"] == text)["name"] == text


def test_plan_hotkey() -> None:
    assert plan(Hotkey(keys=["Control", "S"]), GEOM) == [
        ["pyautogui.hotkey", {"keys": ["ctrl", "s"]}]
    ]
    assert plan(Hotkey(keys=["Return"]), GEOM) == [["pyautogui.hotkey", {"keys": ["enter"]}]]
    assert plan(Hotkey(keys=[" "]), GEOM) == [["pyautogui.hotkey", {"keys": ["space"]}]]
    with pytest.raises(ActionRejected, match="'cmd'"):
        plan(Hotkey(keys=["cmd", "c"]), GEOM)
    with pytest.raises(ActionRejected, match="'hyper'"):
        plan(Hotkey(keys=["ctrl", "hyper"]), GEOM)


def test_plan_control_and_json() -> None:
    assert plan(Finish(), GEOM) == []
    every = [
        Click(point=px(1, 2)), Move(point=px(3, 4)), Drag(start=px(1, 1), end=px(9, 9)),
        Scroll(direction="down"), TypeText(text="東京\n✓"), Hotkey(keys=["alt", "f4"]),
    ]  # fmt: skip
    for action in every:
        cmds = plan(action, HIDPI)
        assert json.loads(json.dumps(cmds)) == cmds


# -- the real desktop ------------------------------------------------------------------------------
def test_known_keys_are_pressable(desktop: DesktopDevice) -> None:
    pag = load_pyautogui(desktop.display)
    assert pag.PAUSE == 0 and pag.FAILSAFE is True
    assert sorted(k for k in KNOWN_KEYS if not pag.isValidKey(k)) == []


def test_observe_shows_the_app(fixture_app: FixtureApp, desktop: DesktopDevice) -> None:
    obs = desktop.observe()
    assert obs.geometry == ScreenGeometry(1280, 800, 1.0, (0.0, 0.0)) == desktop.geometry
    assert obs.image.size == (1280, 800) and obs.image.mode == "RGB"
    assert obs.extra["settled"] is True
    x, y = fixture_app.center("block")
    colour = tuple(int(BLOCK_COLOUR[i : i + 2], 16) for i in (1, 3, 5))
    assert obs.image.getpixel((x, y)) == colour
    assert obs.image.getpixel((1, 1)) != colour  # the window background, not the block


def test_click_submit(fixture_app: FixtureApp, desktop: DesktopDevice) -> None:
    done = desktop.execute(Click(point=at(fixture_app.center("submit"))))
    assert done.commands[0][0] == "pyautogui.click" and done.seconds > 0
    state = fixture_app.wait_for(lambda s: s["submit_count"] == 1)
    assert state["submitted"] == {"name": "", "email": "", "subscribe": False}


def test_move_then_click_where_the_pointer_is(
    fixture_app: FixtureApp, desktop: DesktopDevice
) -> None:
    """mouse_move, then left_click without a coordinate: the click lands at the pointer, and
    what was executed records that point."""
    target = at(fixture_app.center("submit"))
    desktop.execute(Move(point=target))
    before = fixture_app.state()["submit_count"]
    done = desktop.execute(Click())
    assert done.action == Click(point=target)
    assert done.commands == [["pyautogui.click", {"button": "left", "clicks": 1, "interval": 0.0}]]
    fixture_app.wait_for(lambda s: s["submit_count"] == before + 1)


def test_double_click(fixture_app: FixtureApp, desktop: DesktopDevice) -> None:
    desktop.execute(Click(point=at(fixture_app.center("double_target")), count=2))
    fixture_app.wait_for(lambda s: s["double_clicks"] == 1)


def test_right_click_menu(fixture_app: FixtureApp, desktop: DesktopDevice) -> None:
    desktop.execute(Click(point=at(fixture_app.center("menu_target")), button="right"))
    state = fixture_app.wait_for(lambda s: s["menu_posted"])
    assert list(state["menu_entries"]) == ["Copy", "Rename", "Delete"]
    x, y, w, h = state["menu_entries"]["Delete"]
    desktop.execute(Click(point=px(x + w // 2, y + h // 2)))
    state = fixture_app.wait_for(lambda s: s["menu_choice"] == "Delete")
    assert not state["menu_posted"]


def _focus_name(app: FixtureApp, device: DesktopDevice) -> None:
    device.execute(Click(point=at(app.center("name"))))
    app.wait_for(lambda s: s["focus"] == "name")


@pytest.mark.parametrize(
    "text",
    [
        "Hello, World <3> ~!@#%^&*_+=[]{}|",
        "Zoë — 東京 ✓",
        'it\'s "quoted" \\back\\slash $(rm -rf ~); `id` && echo $HOME | cat > /tmp/x',
    ],
    ids=["ascii", "unicode", "shell-metacharacters"],
)
def test_type_arrives_exactly(text: str, fixture_app: FixtureApp, desktop: DesktopDevice) -> None:
    _focus_name(fixture_app, desktop)
    desktop.execute(TypeText(text=text))
    state = fixture_app.wait_for(lambda s: s["name"] == text)
    assert state["name"].encode() == text.encode()


def test_type_newline_presses_enter(fixture_app: FixtureApp, desktop: DesktopDevice) -> None:
    _focus_name(fixture_app, desktop)
    desktop.execute(TypeText(text="ab\ncd"))
    fixture_app.wait_for(lambda s: s["name"] == "abcd" and s["enter_count"] == 1)


def test_hotkeys(fixture_app: FixtureApp, desktop: DesktopDevice) -> None:
    desktop.execute(Hotkey(keys=["ctrl", "s"]))
    fixture_app.wait_for(lambda s: s["saved_count"] == 1)
    desktop.execute(Hotkey(keys=["Escape"]))
    fixture_app.wait_for(lambda s: s["escaped"])


def test_scroll_list(fixture_app: FixtureApp, desktop: DesktopDevice) -> None:
    point = at(fixture_app.center("items"))
    desktop.execute(Scroll(direction="down", amount=2, point=point))
    # Tk's listbox scrolls 5 rows per wheel click on X11: both clicks must have arrived
    state = fixture_app.wait_for(lambda s: s["items_first"] == 10)
    assert "Item 011" in state["item_boxes"]
    desktop.execute(Scroll(direction="up", amount=1))  # under the pointer, still on the list
    fixture_app.wait_for(lambda s: s["items_first"] == 5)


def test_drag_block_into_target(fixture_app: FixtureApp, desktop: DesktopDevice) -> None:
    bx, by = fixture_app.center("block")
    tx, ty = fixture_app.center("target")
    midway = px((bx + tx) // 2, by)
    desktop.execute(Drag(start=px(bx, by), end=midway))
    state = fixture_app.wait_for(lambda s: s["block"] == [midway.x, midway.y])
    assert not state["block_in_target"]
    done = desktop.execute(Drag(end=px(tx, ty)))  # from where the pointer is
    assert done.action.start == midway and done.commands[0] == [
        "pyautogui.mouseDown",
        {"button": "left"},
    ]
    state = fixture_app.wait_for(lambda s: s["block_in_target"])
    assert state["block"] == [tx, ty]


def test_rejections(desktop: DesktopDevice) -> None:
    with pytest.raises(PointOutOfBounds):
        desktop.execute(Click(point=px(1280, 10)))
    with pytest.raises(PointOutOfBounds):
        desktop.execute(Move(point=px(5, -1)))
    with pytest.raises(UnsupportedAction, match="tap"):
        desktop.execute(Tap(point=px(10, 10)))
    with pytest.raises(ActionRejected, match="'nokey'"):
        desktop.execute(Hotkey(keys=["nokey"]))


def test_failsafe_corner(desktop: DesktopDevice) -> None:
    pag = load_pyautogui(desktop.display)
    pag.moveTo(0, 0)  # a move INTO a corner is allowed; the next action is not
    try:
        with pytest.raises(FailSafeTriggered, match="corner"):
            desktop.execute(Click(point=px(640, 400)))
        with pytest.raises(FailSafeTriggered):
            desktop.execute(TypeText(text="never typed"))
    finally:
        subprocess.run(["xdotool", "mousemove", "640", "760"], check=True)
    assert tuple(pag.position()) == (640, 760)


def test_closed_device(display: str) -> None:
    device = DesktopDevice(display=display)
    with pytest.raises(DeviceNotConnected):
        device.execute(Move(point=px(1, 1)))
    with device:
        assert device.connected
    with pytest.raises(DeviceNotConnected):
        device.observe()


def test_dead_display_is_device_lost(desktop: DesktopDevice) -> None:
    load_pyautogui(desktop.display)  # bind pyautogui to the session display first
    with VirtualDisplay(320, 240) as private:
        other = DesktopDevice(display=private.display)
        other.open()
        assert other.observe().image.size == (320, 240)
        with pytest.raises(ConfigError, match="bound to display"):
            other.execute(Move(point=px(1, 1)))
        name = private.display
        private.stop()
        with pytest.raises(DeviceLost, match=re.escape(f"X display {name} is gone")):
            other.observe()
        with pytest.raises(DeviceLost, match=re.escape(name)):
            other.execute(Move(point=px(1, 1)))
        other.close()


RESTART_SCRIPT = textwrap.dedent(
    """
    from pixelpilot.agent.actions import Move, Point
    from pixelpilot.agent.errors import DeviceLost
    from pixelpilot.tools.desktop import DesktopDevice
    from pixelpilot.tools.xvfb import VirtualDisplay

    p = Point(x=5, y=5, space="screen_px")
    first = VirtualDisplay(320, 240).start()
    device = DesktopDevice(display=first.display).open()
    device.execute(Move(point=p))  # pyautogui binds this server
    first.stop()
    with VirtualDisplay(320, 240) as second:  # often the same number: the socket is alive
        for _ in range(2):  # python-xlib would spin forever on a second call; we must not
            try:
                device.execute(Move(point=p))
            except DeviceLost as err:
                print("DeviceLost", err)
    """
)


def test_pyautogui_display_gone_is_device_lost_not_a_hang(display: str) -> None:
    # pyautogui binds one display per process and never reconnects: test it in a fresh process
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    done = subprocess.run(
        [sys.executable, "-c", RESTART_SCRIPT], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("DeviceLost") == 2, done.stdout + done.stderr


def test_open_errors(display: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="no monitor 5"):
        DesktopDevice(display=display, monitor=5).open()
    with pytest.raises(DeviceError, match="cannot open X display :4242"):
        DesktopDevice(display=":4242").open()
    monkeypatch.delenv("DISPLAY")
    with pytest.raises(ConfigError, match="no X display"):
        DesktopDevice().open()


def test_virtual_display_and_ensure_display(display: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with ensure_display() as name:  # DISPLAY is set: reuse it
        assert name == display
    monkeypatch.delenv("DISPLAY")
    with ensure_display(200, 100) as name:
        assert os.environ["DISPLAY"] == name != display
        with DesktopDevice(display=name) as device:
            assert device.observe().image.size == (200, 100)
    assert "DISPLAY" not in os.environ
    with pytest.raises(ConfigError, match="bad virtual display"):
        VirtualDisplay(0, 10)


def test_wait_for_times_out_with_the_state(fixture_app: FixtureApp) -> None:
    with pytest.raises(StateTimeout, match="submit_count") as err:
        fixture_app.wait_for(lambda s: s["submit_count"] == 99, timeout=0.05)
    assert isinstance(err.value, AssertionError)


def test_fixture_app_reports_boxes(fixture_app: FixtureApp) -> None:
    boxes: dict[str, Any] = fixture_app.boxes
    for name in ("title", "name", "email", "subscribe", "submit", "reset", "items", "canvas",
                 "block", "target", "menu_target", "double_target", "status"):  # fmt: skip
        x, y, w, h = boxes[name]
        assert 0 < x < x + w < 1280 and 0 < y < y + h < 800, name
    assert fixture_app.center("submit") == (510, 280)
    assert fixture_app.state()["items_first"] == 0


def test_keysyms_for_typing() -> None:
    from Xlib import XK

    from pixelpilot.tools.x11_keyboard import keysym_for

    assert [keysym_for(c) for c in "a<é"] == [0x61, 0x3C, 0xE9]
    assert keysym_for("東") == 0x01006771 and keysym_for("✓") == 0x01002713
    assert keysym_for("\n") == XK.XK_Return and keysym_for("\t") == XK.XK_Tab


def test_observe_after_an_action_shows_its_drawing(
    fixture_app: FixtureApp, desktop: DesktopDevice
) -> None:
    """The frame after typing shows the typed text: observe waits for the screen to change
    before it waits for it to settle (two identical grabs of the old frame are not 'settled')."""
    _focus_name(fixture_app, desktop)
    x, y, w, h = fixture_app.box("name")
    for i in range(3):
        before = desktop.observe().image.crop((x, y, x + w, y + h))
        desktop.execute(TypeText(text="W"))
        obs = desktop.observe()
        assert obs.extra["changed"] is True, i
        assert obs.image.crop((x, y, x + w, y + h)).tobytes() != before.tobytes(), i
    assert desktop.observe().extra["changed"] is None  # no action since the last observe
