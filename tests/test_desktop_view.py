"""The desktop device observing one window or a region: real Xvfb with openbox, real Tk windows
that record where every click lands (scenarios/target_app.py), real pyautogui, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pixelpilot.agent.actions import Click, Drag, Point, Scroll
from pixelpilot.agent.errors import ConfigError, PointOutOfBounds
from pixelpilot.agent.geometry import ScreenGeometry
from pixelpilot.agent.loop import Agent, Budgets
from pixelpilot.agent.trajectory import DirectoryRecorder, load_trajectory
from pixelpilot.agent.viewer import write_report
from pixelpilot.scenarios.fixture import FixtureApp
from pixelpilot.scenarios.targets import desktop_options, open_device
from pixelpilot.tools.desktop import DesktopDevice, load_pyautogui, view_options
from pixelpilot.tools.x11_windows import WindowSpec, X11Windows
from pixelpilot.vlm.scripted import ScriptedModel

CLI = [sys.executable, "-m", "pixelpilot.agent.cli"]
TARGET = [40, 50, 30, "#e53935"]  # x, y, size in the window's own pixels
TITLE = "pixelpilot view test"


def px(x: float, y: float) -> Point:
    return Point(x=x, y=y, space="screen_px")


def target_app(
    *, title: str | None = None, at: tuple[int, int] = (0, 0), size: tuple[int, int] = (300, 200)
) -> FixtureApp:
    """scenarios/target_app.py: full screen (title None) or an ordinary framed window."""
    cmd = [sys.executable, "-m", "pixelpilot.scenarios.target_app", "--state", "{state}",
           "--width", str(size[0]), "--height", str(size[1]), "--targets", json.dumps([TARGET])]
    if title is not None:
        cmd += ["--title", title, "--at", f"{at[0]},{at[1]}"]
    return FixtureApp(command=cmd, width=size[0], height=size[1])  # fmt: skip


@pytest.fixture
def window(display: str) -> Iterator[FixtureApp]:
    with target_app(title=TITLE, at=(100, 120)) as app:
        yield app


def move(app: FixtureApp, x: int, y: int) -> list[int]:
    """Move the window's frame to (x, y) as a user would; its client area once it has moved."""
    before = app.state()["window"]
    subprocess.run(["xdotool", "search", "--name", TITLE, "windowmove", str(x), str(y)], check=True)
    return app.wait_for(lambda s: s["window"] != before)["window"]


def test_window_spec_syntax() -> None:
    assert WindowSpec.parse("Mousepad") == WindowSpec("title", "Mousepad")
    assert WindowSpec.parse("title=a=b") == WindowSpec("title", "a=b")
    assert WindowSpec.parse("class=xterm") == WindowSpec("class", "xterm")
    assert WindowSpec.parse("id=0x1a00003") == WindowSpec("id", "0x1a00003")
    assert str(WindowSpec.parse("class=xterm")) == "class=xterm"
    with pytest.raises(ConfigError, match="bad window id"):
        WindowSpec.parse("id=zz")
    with pytest.raises(ConfigError, match="empty window spec"):
        WindowSpec.parse("class=")


def test_device_references() -> None:
    assert desktop_options("") == {}
    assert desktop_options("1") == {"display": ":1"}
    assert desktop_options("window=Notes: 1, 2") == {"window": "Notes: 1, 2"}
    assert desktop_options("2:window=class=xterm") == {"display": ":2", "window": "class=xterm"}
    assert desktop_options("region=10,20,300,200") == {"region": (10, 20, 300, 200)}
    dev = open_device("desktop:region=10,20,300,200")
    assert isinstance(dev, DesktopDevice) and dev.region == (10, 20, 300, 200)
    with pytest.raises(ConfigError, match="bad region"):
        desktop_options("region=1,2,3")
    with pytest.raises(ConfigError, match="unknown desktop option"):
        desktop_options("size=3")
    with pytest.raises(ConfigError, match="not both"):
        DesktopDevice(region=(0, 0, 10, 10), window="x")
    with pytest.raises(ConfigError, match="width and height > 0"):
        DesktopDevice(region=(0, 0, 0, 10))
    assert view_options({"window": "class=xterm", "id": "0x1"}) == {"window": "class=xterm"}
    assert view_options({"region": [1, 2, 3, 4]}) == {"region": (1, 2, 3, 4)}


def test_region_sees_and_acts_only_there(display: str) -> None:
    with target_app(size=(1280, 800)) as app, DesktopDevice() as full:
        whole = full.observe().image
        with DesktopDevice(region=(20, 30, 200, 100)) as dev:
            obs = dev.observe()
            assert obs.geometry == ScreenGeometry(200, 100, 1.0, (20.0, 30.0))
            assert obs.image.tobytes() == whole.crop((20, 30, 220, 130)).tobytes()
            x, y, size, _ = TARGET  # full screen: window pixels are screen pixels
            dev.execute(Click(point=px(x + size // 2 - 20, y + size // 2 - 30)))
            app.wait_for(lambda s: s["clicks"] == [[x + size // 2, y + size // 2]])
            with pytest.raises(PointOutOfBounds, match="outside the 200x100"):
                dev.execute(Click(point=px(200, 50)))
            assert dev.describe()["view"] == {"region": [20, 30, 200, 100]}
        with pytest.raises(ConfigError, match="does not fit monitor"):
            DesktopDevice(region=(1200, 0, 100, 100)).open()
        assert len(app.state()["clicks"]) == 1  # the refused point clicked nothing


def test_window_is_its_client_area_and_followed_when_it_moves(window: FixtureApp) -> None:
    x, y, size, _ = TARGET
    with DesktopDevice(window=TITLE) as dev:
        rect = window.state()["window"]
        obs = dev.observe()
        assert obs.geometry == ScreenGeometry(300, 200, 1.0, (float(rect[0]), float(rect[1])))
        assert obs.image.getpixel((x + 2, y + 2)) == (0xE5, 0x39, 0x35)
        assert rect[:2] != [100, 120]  # the window manager's frame is around it, not in it
        dev.execute(Click(point=px(x + 5, y + 5)))
        window.wait_for(lambda s: s["local"] == [[x + 5, y + 5]])

        moved = move(window, 500, 400)
        obs = dev.observe()
        assert obs.geometry.origin == (float(moved[0]), float(moved[1]))
        dev.execute(Click(point=px(x + 6, y + 6)))
        state = window.wait_for(lambda s: len(s["local"]) == 2)
        assert state["local"][1] == [x + 6, y + 6]
        assert state["clicks"][1] == [moved[0] + x + 6, moved[1] + y + 6]
        under = dev.target_at(px(x + 6, y + 6))  # for policies: view pixels, where it is now
        assert under.window_title == TITLE
        assert "pixelpilotwindow" in [c.casefold() for c in under.window_class or ()]
        with pytest.raises(PointOutOfBounds, match="outside the 300x200"):
            dev.execute(Click(point=px(300, 10)))
        view = dev.describe()["view"]
        assert view["window"] == TITLE and view["title"] == TITLE and view["id"].startswith("0x")


def test_pointer_actions_without_a_point_need_the_pointer_in_the_view(window: FixtureApp) -> None:
    with DesktopDevice(window=TITLE) as dev:
        pag = load_pyautogui(dev.display)
        pag.moveTo(900, 700)  # outside the window
        with pytest.raises(PointOutOfBounds, match="pointer is outside"):
            dev.execute(Scroll(direction="down"))
        with pytest.raises(PointOutOfBounds, match="pointer is outside"):
            dev.execute(Drag(end=px(10, 10)))
        with pytest.raises(PointOutOfBounds, match="pointer is outside"):
            dev.execute(Click())  # Qwen2.5-VL's left_click without a coordinate
        geom = dev.observe().geometry
        pag.moveTo(geom.origin[0] + 10, geom.origin[1] + 10)
        done = dev.execute(Drag(end=px(60, 60)))
        assert done.action.start == px(10, 10)
        pag.moveTo(geom.origin[0] + 20, geom.origin[1] + 30)
        assert dev.execute(Click()).action.point == px(20, 30)  # recorded where it clicked
        window.wait_for(lambda s: s["local"][-1:] == [[20, 30]])


def test_window_manager_barrier(display: str) -> None:
    """wm_sync returns once openbox has handled everything sent before it (the device calls it
    after typing that remapped keycodes: a click right after was otherwise lost)."""
    windows = X11Windows(display)
    try:
        assert windows.wm_running() is True  # the session display runs openbox
        assert windows.wm_sync(timeout=2.0) is True
        assert windows.screen_size() == (1280, 800)
    finally:
        windows.close()


def test_window_by_class_ambiguity_and_absence(window: FixtureApp) -> None:
    with DesktopDevice(window="class=PixelpilotWindow") as dev:
        assert dev.observe().geometry.width == 300
    with pytest.raises(ConfigError, match="no window matches 'nothing here'.*pixelpilot view test"):
        DesktopDevice(window="nothing here", window_timeout=0.2).open()
    with target_app(title=TITLE + " 2", at=(600, 100)):
        with pytest.raises(ConfigError, match="2 windows match 'view test'"):
            DesktopDevice(window="view test").open()
        with DesktopDevice(window=TITLE + " 2") as dev:  # a longer title picks one
            assert dev.describe()["view"]["title"] == TITLE + " 2"


def test_window_closing_mid_run_ends_it_with_the_trajectory_intact(
    display: str, tmp_path: Path
) -> None:
    app = target_app(title=TITLE, at=(100, 120)).start()
    try:
        model = ScriptedModel(['✿FUNCTION✿: click\n✿ARGS✿: {"point": [500, 500]}'] * 3)
        with DesktopDevice(window=TITLE) as dev:
            agent = Agent(
                model=model, device=dev, dialect="qwen2vl", budgets=Budgets(max_steps=3),
                recorder=DirectoryRecorder(tmp_path / "run"),
                on_step=lambda step: app.stop(),  # the window goes away after the first step
            )  # fmt: skip
            result = agent.run("Click the middle")
    finally:
        app.stop()
    assert result.status == "error" and "is gone: it was closed" in result.reason
    traj = load_trajectory(tmp_path / "run")
    assert traj.status == "error" and len(traj.steps) == 2
    assert traj.steps[0].executed is not None and traj.steps[1].error
    assert traj.meta.device["view"]["window"] == TITLE
    assert traj.steps[0].geometry["width"] == 300
    report = write_report(tmp_path / "run").read_text(encoding="utf-8")
    assert f"window &#x27;{TITLE}&#x27;" in report and "(view at " in report


def test_cli_runs_in_a_window_and_replay_finds_it_again(window: FixtureApp, tmp_path: Path) -> None:
    """--device desktop:window=TITLE: the model's norm1000 point is on the window; replay after
    the window moved (the user names it again: a trajectory is data) clicks the same spot of the
    window, found again by its title."""
    outputs = tmp_path / "outputs.json"
    x, y, size, _ = TARGET
    nx, ny = round((x + size / 2) * 1000 / 300), round((y + size / 2) * 1000 / 200)
    outputs.write_text(json.dumps([
        f'✿FUNCTION✿: click\n✿ARGS✿: {{"point": [{nx}, {ny}]}}', "✿FUNCTION✿: finish\n✿ARGS✿: {}",
    ]), encoding="utf-8")  # fmt: skip
    env = {**os.environ}
    r = subprocess.run(
        [*CLI, "run", "Click the red square", "--model", f"scripted:{outputs}", "--dialect",
         "qwen2vl", "--device", f"desktop:window={TITLE}", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    first = window.wait_for(lambda s: len(s["local"]) == 1)["local"][0]
    assert abs(first[0] - (x + size // 2)) <= 1 and abs(first[1] - (y + size // 2)) <= 1
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert json.loads((run_dir / "run.json").read_text())["device"]["view"]["window"] == TITLE

    moved = move(window, 640, 420)
    r = subprocess.run([*CLI, "replay", str(run_dir), "--device", f"desktop:window={TITLE}"],
                       capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
    assert r.returncode == 0 and "replayed 1 actions" in r.stdout, r.stdout + r.stderr
    state = window.wait_for(lambda s: len(s["local"]) == 2)
    assert state["local"][1] == first
    assert state["clicks"][1] == [moved[0] + first[0], moved[1] + first[1]]
