"""Human control on Xvfb with synthetic key events (XTEST): the kill hotkey ends a run at once
with its trajectory intact, the pause hotkey lets a person take over and tells the model on
resume, long typing and drags stop between chunks (kill switch and pyautogui's fail-safe)."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from typing import Any

import pytest
from Xlib import XK, X
from Xlib import display as xdisplay
from Xlib.ext import xtest

from pixelpilot.agent.actions import Click, Drag, Point, TypeText
from pixelpilot.agent.control import STOPPED_REASON, TOOK_OVER_NOTE, RunControl
from pixelpilot.agent.dialects import get_dialect
from pixelpilot.agent.dialects.base import StepContext
from pixelpilot.agent.errors import ConfigError, StoppedByUser
from pixelpilot.agent.geometry import HUB_PIXELS, ScreenGeometry, from_screen
from pixelpilot.agent.loop import Agent
from pixelpilot.agent.trajectory import DirectoryRecorder, load_trajectory
from pixelpilot.tools.x11_hotkeys import KILL_KEY, PAUSE_KEY, HotkeyListener, parse_combo
from pixelpilot.vlm.scripted import ScriptedModel

GEOM = ScreenGeometry(1280, 800)
CTX = StepContext("desktop", frozenset({"click", "type"}), GEOM, HUB_PIXELS.resize(1280, 800))
NAME = (600, 125)
FINISH = "✿FUNCTION✿: finish\n✿ARGS✿: {}"
LONG = ("pixelpilot types this " * 80)[:1500]


def fmt(action: Any) -> str:
    return get_dialect("qwen2vl").format(action, CTX)


def click(x: int, y: int) -> str:
    return fmt(Click(point=from_screen(x, y, "norm1000", GEOM)))


def press(display: str, combo: str) -> None:
    """Press and release a key combination through XTEST, as a keyboard would."""
    names = {"ctrl": "Control_L", "alt": "Alt_L", "shift": "Shift_L", "super": "Super_L"}
    d = xdisplay.Display(display)
    try:
        codes = [d.keysym_to_keycode(XK.string_to_keysym(names.get(k, k))) for k in combo.split("+")]
        for c in codes:
            xtest.fake_input(d, X.KeyPress, c)
        for c in reversed(codes):
            xtest.fake_input(d, X.KeyRelease, c)
        d.sync()
    finally:
        d.close()


def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@pytest.fixture
def control(display: str):
    control = RunControl()
    with HotkeyListener(display, {KILL_KEY: control.stop, PAUSE_KEY: control.toggle_pause}):
        yield control


def test_the_kill_hotkey_stops_long_typing_at_once(fixture_app, desktop, display, control, tmp_path):
    model = ScriptedModel([click(*NAME), fmt(TypeText(text=LONG)), FINISH])
    agent = Agent(model=model, device=desktop, dialect="qwen2vl", control=control,
                  recorder=DirectoryRecorder(tmp_path / "r"))  # fmt: skip
    box: dict[str, Any] = {}

    def killer() -> None:
        wait_until(lambda: len(fixture_app.state()["name"]) >= 200)
        box["at"] = len(fixture_app.state()["name"])
        box["t0"] = time.monotonic()
        press(display, KILL_KEY)

    thread = threading.Thread(target=killer)
    thread.start()
    result = agent.run("Type a long text")
    returned = time.monotonic()
    thread.join()
    assert result.status == "error" and result.reason == STOPPED_REASON
    assert returned - box["t0"] < 1.0  # measured in bench/bench_kill.py: ~0.1 s
    time.sleep(0.3)
    typed = fixture_app.state()["name"]
    # (the kill keys' modifiers may touch a character or two typed at that very moment)
    assert len(typed) < len(LONG) and typed[:150] == LONG[:150]
    traj = load_trajectory(tmp_path / "r")
    assert traj.status == "error" and [s.index for s in traj.steps] == [1, 2]
    assert traj.steps[1].error == STOPPED_REASON and traj.steps[1].attempts[0].action is not None


def test_pause_lets_a_person_take_over_and_the_model_is_told(
    fixture_app, desktop, display, control, tmp_path
):
    model = ScriptedModel([click(*NAME), fmt(TypeText(text="abc")), FINISH])
    env = {**os.environ, "DISPLAY": display}
    seen: list[str] = []

    def on_step(step: Any) -> None:
        if step.index != 1:
            return
        press(display, PAUSE_KEY)  # the person takes over after the agent's first click
        wait_until(lambda: control.paused)

        def person() -> None:
            try:
                time.sleep(0.3)
                subprocess.run(["xdotool", "type", "--delay", "20", "XY"], env=env, check=True)
                wait_until(lambda: fixture_app.state()["name"] == "XY", 5)
            except BaseException as exc:  # noqa: BLE001 - reported by the test's assertions
                seen.append(f"{exc!r}: {fixture_app.state()}")
            finally:
                press(display, PAUSE_KEY)  # and hands back

        threading.Thread(target=person).start()

    agent = Agent(model=model, device=desktop, dialect="qwen2vl", control=control,
                  on_step=on_step, recorder=DirectoryRecorder(tmp_path / "r"))  # fmt: skip
    result = agent.run("Type abc")
    assert seen == [] and result.status == "success", (seen, result.reason)
    fixture_app.wait_for(lambda s: s["name"] == "XYabc")
    second = "\n".join(m.text for m in model.prompts[1].messages)
    assert TOOK_OVER_NOTE in second
    traj = load_trajectory(tmp_path / "r")
    assert traj.steps[1].took_over_s is not None and traj.steps[1].took_over_s >= 0.3
    assert control.paused_seconds >= 0.3 and not control.paused


def test_the_fail_safe_stops_long_typing_between_chunks(fixture_app, desktop, display):
    model = ScriptedModel([click(*NAME), fmt(TypeText(text=LONG)), FINISH])
    env = {**os.environ, "DISPLAY": display}

    def to_the_corner() -> None:
        wait_until(lambda: len(fixture_app.state()["name"]) >= 200)
        subprocess.run(["xdotool", "mousemove", "0", "0"], env=env, check=True)

    thread = threading.Thread(target=to_the_corner)
    thread.start()
    try:
        result = Agent(model=model, device=desktop, dialect="qwen2vl").run("Type")
    finally:
        thread.join()
        subprocess.run(["xdotool", "mousemove", "640", "400"], env=env, check=True)
    assert result.status == "error" and "fail-safe" in result.reason
    time.sleep(0.3)
    assert len(fixture_app.state()["name"]) < len(LONG)


class _StopAfter:
    """An interlock (what RunControl is to a device) that says stop at its n-th check."""

    def __init__(self, n: int) -> None:
        self.n = n

    def check(self) -> None:
        self.n -= 1
        if self.n <= 0:
            raise StoppedByUser(STOPPED_REASON)

    def sleep(self, seconds: float) -> None:
        self.check()


def test_a_drag_stopped_midway_releases_the_button(fixture_app, desktop, display):
    px = lambda x, y: Point(x=x, y=y, space="screen_px")  # noqa: E731
    desktop.interlock = _StopAfter(4)  # after the press and two moves
    try:
        with pytest.raises(StoppedByUser):
            desktop.execute(Drag(start=px(400, 450), end=px(800, 500)))
    finally:
        desktop.interlock = None
    d = xdisplay.Display(display)
    try:
        mask = d.screen().root.query_pointer().mask
    finally:
        d.close()
    assert not mask & X.Button1Mask


def test_a_stop_before_the_run_or_while_paused_ends_it_cleanly(desktop, tmp_path):
    control = RunControl()
    control.pause()
    threading.Timer(0.2, control.stop).start()
    result = Agent(model=ScriptedModel([FINISH]), device=desktop, dialect="qwen2vl",
                   control=control, recorder=DirectoryRecorder(tmp_path / "r")).run("x")  # fmt: skip
    assert result.status == "error" and result.reason == STOPPED_REASON and result.steps == []
    assert load_trajectory(tmp_path / "r").status == "error"


def test_hotkey_errors_are_one_line(display):
    with pytest.raises(ConfigError, match="unknown modifier 'ctl'"):
        parse_combo("ctl+k")
    with pytest.raises(ConfigError, match="has no modifier"):
        parse_combo("k")
    assert parse_combo("Ctrl+Alt+Shift+K")[1] == "k"
    with (
        HotkeyListener(display, {KILL_KEY: lambda: None}),
        pytest.raises(ConfigError, match="is taken by another program"),
    ):
        HotkeyListener(display, {KILL_KEY: lambda: None}).start()
    with pytest.raises(ConfigError, match="no key on this keyboard"):
        HotkeyListener(display, {"ctrl+notakey": lambda: None}).start()
    # released on close: the combination can be grabbed again
    HotkeyListener(display, {KILL_KEY: lambda: None}).start().close()
