"""AndroidDevice through the real adb binary and adbutils, against the simulated phone.

The phone (scenarios/phone_server.py) speaks the device side of adb's protocol; a private adb
server (the real binary, on its own port) connects to it, and AndroidDevice talks to that
server with adbutils. Tests act only through AndroidDevice (or the adb binary) and read the
phone's JSON state as the oracle; nothing calls the phone's Python directly. Tests against a
real phone run only when PIXELPILOT_ANDROID_SERIAL is set.
"""

from __future__ import annotations

import os
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pixelpilot.agent.actions import (
    LongPress,
    OpenApp,
    Point,
    Swipe,
    SystemButton,
    Tap,
    TypeText,
)
from pixelpilot.agent.errors import (
    ActionRejected,
    DeviceLost,
    DeviceNotConnected,
    UnsupportedAction,
)
from pixelpilot.agent.loop import Agent, Budgets
from pixelpilot.agent.trajectory import DirectoryRecorder, load_trajectory
from pixelpilot.scenarios.phone import AdbServer, PhoneFixture
from pixelpilot.scenarios.runner import run_scenario
from pixelpilot.scenarios.spec import discover, load_scenario
from pixelpilot.tools.android import AndroidDevice, find_adb
from pixelpilot.vlm.scripted import ScriptedModel

MOBILE_DIR = Path(__file__).resolve().parents[1] / "scenarios" / "mobile"


def px(xy: tuple[int, int]) -> Point:
    return Point(x=xy[0], y=xy[1], space="screen_px")


def _adb_or_skip() -> str:
    try:
        return find_adb()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no adb binary ({exc}); install it with: apt-get install adb")


@pytest.fixture(scope="module")
def adb_server() -> Iterator[AdbServer]:
    _adb_or_skip()
    with AdbServer() as server:
        yield server


Phone = Callable[..., tuple[PhoneFixture, AndroidDevice]]


@pytest.fixture
def phone(adb_server: AdbServer) -> Iterator[Phone]:
    """Start a fresh phone on the shared adb server and open an AndroidDevice on it."""
    opened: list[tuple[PhoneFixture, AndroidDevice]] = []

    def make(start: str = "home", **kw: Any) -> tuple[PhoneFixture, AndroidDevice]:
        dev_kw = kw.pop("device", {})
        fixture = PhoneFixture(start=start, adb=adb_server, **kw).start()
        device = AndroidDevice(**fixture.device_kwargs(), **dev_kw)
        opened.append((fixture, device))
        device.open()
        return fixture, device

    yield make
    for fixture, device in opened:
        device.close()
        fixture.stop()


def no_injections(state: dict[str, Any]) -> None:
    assert state["injections"] == [], state["injections"]


# -- observe -------------------------------------------------------------------------------------
def test_observe_has_the_device_geometry_and_pixels(phone: Phone) -> None:
    fixture, dev = phone("home", width=720, height=1280, density=320)
    g = dev.geometry
    assert (g.width, g.height, g.scale) == (720, 1280, 2.0)
    obs = dev.observe()
    assert obs.image.mode == "RGB" and obs.image.size == (720, 1280)
    assert obs.image.getpixel((10, 10)) == (25, 103, 210)  # the status bar
    x, y = fixture.center("app:com.android.settings")
    assert obs.image.getpixel((x - 40, y - 30)) == (96, 125, 139)  # the Settings icon
    shell = fixture.state()["shell"]
    assert ["wm", "size"] in shell and ["wm", "density"] in shell and ["screencap", "-p"] in shell


def test_raw_screencap_gives_the_same_image(phone: Phone) -> None:
    fixture, dev = phone(
        "settings", width=360, height=640, density=160, device={"screencap": "raw"}
    )
    assert dev.geometry.scale == 1.0
    raw = dev.observe()
    assert ["screencap"] in fixture.state()["shell"]
    dev.screencap = "png"
    assert raw.image.tobytes() == dev.observe().image.tobytes()


# -- touches and keys ----------------------------------------------------------------------------
def test_tap_lands_on_the_widget(phone: Phone) -> None:
    fixture, dev = phone("home")
    done = dev.execute(Tap(point=px(fixture.center("app:com.android.settings"))))
    assert done.commands == [["input", "tap", "450", "328"]]
    state = fixture.wait_for(lambda s: s["screen"] == "settings")
    assert state["events"][0] == {"screen": "home", "t": "tap", "x": 450.0, "y": 328.0}


def test_swipe_scrolls_by_the_distance_and_the_hidden_row_is_tappable(phone: Phone) -> None:
    fixture, dev = phone("shop")
    assert "item:Item 14" not in fixture.state()["boxes"]
    done = dev.execute(Swipe(start=px((360, 1100)), end=px((360, 500)), seconds=0.2))
    assert done.commands == [["input", "swipe", "360", "1100", "360", "500", "200"]]
    assert done.seconds >= 0.2  # the gesture took its time on the device
    fixture.wait_for(lambda s: s["scroll"] == 600)
    dev.execute(Tap(point=px(fixture.center("item:Item 14"))))
    assert fixture.wait_for(lambda s: s["tapped"] == ["Item 14"])["selected"] == "Item 14"


def test_long_press_opens_the_menu_and_a_tap_picks(phone: Phone) -> None:
    fixture, dev = phone("notes")
    dev.execute(LongPress(point=px(fixture.center("note:Trip plan")), seconds=0.6))
    fixture.wait_for(lambda s: s["menu"] == "Trip plan")
    dev.execute(Tap(point=px(fixture.center("menu:Pin"))))
    state = fixture.wait_for(lambda s: s["menu_choice"] is not None)
    assert state["notes"][0] == "Trip plan" and state["pinned"] == ["Trip plan"]
    # a short press is a tap: it opens the note instead
    dev.execute(LongPress(point=px(fixture.center("note:Ideas")), seconds=0.1))
    assert fixture.wait_for(lambda s: s["screen"] == "note")["open_note"] == "Ideas"


def test_system_buttons_navigate(phone: Phone) -> None:
    fixture, dev = phone("settings")
    dev.execute(Tap(point=px(fixture.center("row:about"))))
    fixture.wait_for(lambda s: s["screen"] == "about")
    dev.execute(SystemButton(button="back"))
    fixture.wait_for(lambda s: s["screen"] == "settings")
    dev.execute(SystemButton(button="menu"))
    dev.execute(SystemButton(button="home"))
    state = fixture.wait_for(lambda s: s["screen"] == "home")
    assert state["keys"] == [4, 82, 3]
    done = dev.execute(SystemButton(button="volume_down"))  # a key: one adb keyevent
    assert done.commands == [["input", "keyevent", "25"]]
    assert fixture.wait_for(lambda s: len(s["keys"]) == 4)["keys"] == [4, 82, 3, 25]


# -- typing --------------------------------------------------------------------------------------
HOSTILE = [
    "Zoë 東京",
    'O\'Brien "Bob"',
    "100%s done %s%s %%s %",
    "a & b && c; reboot",
    "$(reboot) ${HOME} $HOME $$ `id`",
    "back\\slash \\\\ \\n \\'",
    "pipe | redirect > < 2>&1 * ? [a] {a,b} ~ #x !y",
    "  leading and trailing  ",
    "emoji 🚀👍🏽 مرحبا e\u0301",
    "-dash --option",
]


def test_typing_is_byte_exact_through_adbkeyboard(phone: Phone) -> None:
    fixture, dev = phone("signin")
    assert dev.ime_active
    dev.execute(Tap(point=px(fixture.center("name"))))
    typed = ""
    for text in HOSTILE:
        done = dev.execute(TypeText(text=text))
        assert done.note == "typed with ADBKeyboard"
        typed += text
        fixture.wait_for(lambda s, t=typed: s["fields"]["name"] == t)  # type: ignore[misc]
    long = "長い" * 600  # several broadcasts
    dev.execute(TypeText(text=long))
    state = fixture.wait_for(lambda s: s["fields"]["name"] == typed + long)
    assert all(e["via"] == "ime" for e in state["events"] if e["t"] == "text")
    no_injections(state)


def test_a_newline_presses_enter(phone: Phone) -> None:
    fixture, dev = phone("signin")
    dev.execute(Tap(point=px(fixture.center("name"))))
    dev.execute(TypeText(text="Ada\nsecret; $(id)\n"))
    state = fixture.wait_for(lambda s: s["signed_in"] is not None)
    assert state["signed_in"] == {"name": "Ada", "password": "secret; $(id)"}
    no_injections(state)


def test_typing_without_the_ime_uses_input_text_for_ascii(phone: Phone) -> None:
    fixture, dev = phone("signin", ime="none")
    assert not dev.ime_active
    dev.execute(Tap(point=px(fixture.center("password"))))
    ascii_only = [t for t in HOSTILE if t.isascii()]
    for text in ascii_only:
        done = dev.execute(TypeText(text=text))
        assert done.note == "" and all(c[:2] == ["input", "text"] for c in done.commands)
    state = fixture.wait_for(lambda s: s["fields"]["password"] == "".join(ascii_only))
    assert all(e["via"] == "input" for e in state["events"] if e["t"] == "text")
    with pytest.raises(UnsupportedAction, match="ADBKeyboard"):
        dev.execute(TypeText(text="Zoë"))
    no_injections(fixture.state())


def test_auto_selects_an_enabled_adbkeyboard_and_restores_the_keyboard(phone: Phone) -> None:
    fixture, dev = phone("signin", ime="enabled")
    assert not dev.ime_active
    dev.execute(Tap(point=px(fixture.center("name"))))
    dev.execute(TypeText(text="Zoë"))
    fixture.wait_for(lambda s: s["fields"]["name"] == "Zoë")
    dev.close()
    sets = [e["ime"] for e in fixture.state()["events"] if e["t"] == "ime_set"]
    assert sets == ["com.android.adbkeyboard/.AdbIME", "com.android.inputmethod.latin/.LatinIME"]


# -- apps and the view hierarchy -----------------------------------------------------------------
def test_open_app_by_label_and_by_package(phone: Phone) -> None:
    fixture, dev = phone("home")
    done = dev.execute(OpenApp(app="Notes"))
    assert done.commands == [["monkey", "-p", "com.pixelpilot.notes", "-c",
                              "android.intent.category.LAUNCHER", "1"]]  # fmt: skip
    fixture.wait_for(lambda s: s["screen"] == "notes")
    dev.execute(OpenApp(app="com.pixelpilot.shop"))
    assert fixture.wait_for(lambda s: s["screen"] == "shop")["launched"] == [
        "com.pixelpilot.notes", "com.pixelpilot.shop"]  # fmt: skip
    with pytest.raises(ActionRejected, match="com.nope.app is not installed"):
        dev.execute(OpenApp(app="com.nope.app"))


def test_uiautomator_dump_lists_nodes_with_bounds(phone: Phone) -> None:
    fixture, dev = phone("signin")
    root = ET.fromstring(dev.dump_ui())
    nodes = {n.get("resource-id", "").rpartition("/")[2]: n for n in root.iter("node")}
    x, y, w, h = fixture.state()["boxes"]["sign_in"]
    assert nodes["sign_in"].get("bounds") == f"[{x},{y}][{x + w},{y + h}]"
    assert nodes["sign_in"].get("text") == "Sign in" and nodes["password"].get("password") == "true"


def test_the_focused_password_field_is_blurred_in_screenshots(phone: Phone) -> None:
    """With blur_passwords (on in `pixelpilot run` with secrets), the focused password field's
    box, as the uiautomator dump reports it, is blurred; the rest of the screen is untouched."""
    from PIL import ImageChops, ImageStat

    fixture, dev = phone("signin", device={"blur_passwords": True})
    dev.execute(Tap(point=px(fixture.center("password"))))
    dev.execute(TypeText(text="hunter2-long-secret"))
    fixture.wait_for(lambda s: s["fields"]["password"] == "hunter2-long-secret")
    dev.blur_passwords = False
    plain = dev.observe().image
    dev.blur_passwords = True
    obs = dev.observe()
    x, y, w, h = fixture.state()["boxes"]["password"]
    assert obs.extra["blurred"] == [(x, y, x + w, y + h)]
    diff = ImageChops.difference(plain, obs.image)
    assert diff.getbbox() is not None and diff.crop((0, 0, 720, y)).getbbox() is None
    inside = (x + 4, y + 4, x + w - 4, y + h - 4)
    assert ImageStat.Stat(obs.image.crop(inside).convert("L")).stddev[0] < (
        ImageStat.Stat(plain.crop(inside).convert("L")).stddev[0] / 2
    )
    dev.execute(Tap(point=px(fixture.center("name"))))  # the password field loses the focus
    assert dev.observe().extra["blurred"] == []


def test_the_adb_binary_sees_the_phone(phone: Phone, adb_server: AdbServer) -> None:
    fixture, _ = phone("home")
    adb = [adb_server.adb_path, "-P", str(adb_server.port), "-s", fixture.serial]
    out = subprocess.run([*adb, "shell", "getprop", "ro.product.model"], capture_output=True,
                         text=True, timeout=20, check=True)  # fmt: skip
    assert out.stdout.strip() == "PixelPilot Phone"
    hostile = subprocess.run([*adb, "shell", "input text a;reboot"], capture_output=True,
                             text=True, timeout=20)  # fmt: skip
    assert hostile.returncode != 0  # the fixture refuses shell syntax and records it
    assert fixture.state()["injections"][0]["line"] == "input text a;reboot"


# -- failures ------------------------------------------------------------------------------------
def test_a_serial_that_is_not_there_says_what_to_do(adb_server: AdbServer) -> None:
    dev = AndroidDevice("127.0.0.1:1", adb_port=adb_server.port, timeout=5)
    with pytest.raises(DeviceNotConnected, match="cannot connect to 127.0.0.1:1.*adb devices"):
        dev.open()
    assert not dev.connected


def test_a_phone_that_vanishes_raises_device_lost(phone: Phone) -> None:
    fixture, dev = phone("home")
    fixture.kill()
    with pytest.raises(DeviceLost, match="gone|offline") as err:
        dev.observe()
    assert "\n" not in str(err.value) and fixture.serial in str(err.value)


def test_an_adb_server_that_dies_raises_device_lost() -> None:
    _adb_or_skip()
    with (
        PhoneFixture("home", width=360, height=640) as fixture,
        AndroidDevice(**fixture.device_kwargs()) as dev,
    ):
        dev.observe()
        fixture.adb.stop()
        with pytest.raises(DeviceLost, match="adb server .* is gone"):
            dev.execute(Tap(point=px((10, 10))))


def test_a_run_whose_phone_vanishes_ends_in_error_with_the_trajectory(
    phone: Phone, tmp_path: Path
) -> None:
    fixture, dev = phone("settings")
    tap = '✿FUNCTION✿: tap\n✿ARGS✿: {"point": [500, 162]}'

    def on_step(step: Any) -> None:
        if step.index == 1:
            fixture.kill()

    agent = Agent(
        model=ScriptedModel([tap, tap, "✿FUNCTION✿: finish\n✿ARGS✿: {}"]),
        device=dev,
        dialect="qwen2vl",
        budgets=Budgets(max_steps=5, max_seconds=30),
        recorder=DirectoryRecorder(tmp_path / "run"),
        on_step=on_step,
    )
    result = agent.run("Turn Wi-Fi off")
    assert result.status == "error" and ("gone" in result.reason or "offline" in result.reason)
    traj = load_trajectory(tmp_path / "run")
    assert [s.index for s in traj.steps] == [1, 2]
    assert traj.steps[0].executed is not None and traj.steps[0].executed.commands[0][:2] == [
        "input", "tap"]  # fmt: skip
    assert traj.steps[1].error and traj.result is not None
    end: Any = traj.result
    assert (end["status"] if isinstance(end, dict) else end.status) == "error"


# -- the mobile scenarios, end to end ------------------------------------------------------------
def _run_scenario(path: Path) -> list[str]:
    """Every dialect of one scenario through the scenario runner (the real loop, a fresh phone
    fixture behind the real adb per run); failures as lines (empty: passed)."""
    return [
        f"{o.dialect}: {line}" for o in run_scenario(load_scenario(path)) for line in o.failures
    ]


def test_mobile_scenarios_cover_the_issue() -> None:
    names = {p.stem for p in discover(MOBILE_DIR)}
    assert {"signin_unicode", "scroll_list", "settings_toggle_back", "long_press_menu",
            "recover_malformed", "give_up_malformed"} <= names  # fmt: skip
    for path in discover(MOBILE_DIR):
        scenario = load_scenario(path)
        assert scenario.target.kind == "android"
        assert {"qwen25vl", "qwen2vl"} <= set(scenario.scripts)


@pytest.mark.parametrize("path", discover(MOBILE_DIR), ids=lambda p: p.stem)
def test_mobile_scenario_end_to_end(path: Path) -> None:
    assert _run_scenario(path) == []


# -- a real phone --------------------------------------------------------------------------------
REAL = os.environ.get("PIXELPILOT_ANDROID_SERIAL")


@pytest.mark.skipif(
    not REAL, reason="no real Android device: set PIXELPILOT_ANDROID_SERIAL=<serial from "
    "`adb devices`> (USB debugging on) to run these"
)  # fmt: skip
def test_real_device_observe_and_home() -> None:
    with AndroidDevice(REAL) as dev:
        g = dev.geometry
        obs = dev.observe()
        assert obs.image.size == (g.width, g.height) and g.scale > 0
        assert "<hierarchy" in dev.dump_ui()
        done = dev.execute(SystemButton(button="home"))
        assert done.commands == [["input", "keyevent", "3"]]


@pytest.mark.skipif(not REAL, reason="no real Android device: set PIXELPILOT_ANDROID_SERIAL")
def test_real_device_types_ascii_or_unicode_exactly_as_planned() -> None:
    with AndroidDevice(REAL) as dev:
        dev.execute(SystemButton(button="home"))  # on the launcher the text reaches no field
        text = "pixelpilot 'a' \"b\" %s $(id) ; & | \\" + (" Zoë 東京" if dev.ime_active else "")
        done = dev.execute(TypeText(text=text))
        assert done.commands and (done.note == "typed with ADBKeyboard") == dev.ime_active


def test_the_adb_binary_adbutils_ships_works_too() -> None:
    import adbutils

    bundled = Path(adbutils.__file__).parent / "binaries" / "adb"
    if not os.access(bundled, os.X_OK):
        pytest.skip("this adbutils wheel ships no adb binary")
    with (
        PhoneFixture("settings", width=360, height=640, density=160,
                     adb=AdbServer(str(bundled))) as fixture,
        AndroidDevice(**fixture.device_kwargs()) as dev,
    ):  # fmt: skip
        assert fixture.adb.adb_path == str(bundled) and dev.observe().image.size == (360, 640)
        dev.execute(Tap(point=px(fixture.center("row:wifi"))))
        assert fixture.wait_for(lambda s: s["toggles"]["wifi"] is False)
