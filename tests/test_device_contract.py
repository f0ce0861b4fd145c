"""One contract every device passes: desktop (Xvfb; the whole screen and one window), Android
(real adb + the phone fixture), robot (pybullet) and the dry-run devices (the real planners,
nothing performed). Like Gymnasium's ``check_env``: what any backend must do, checked the same way.

1. ``observe`` returns an image whose size is the device's geometry (physical pixels).
2. A point off the screen is refused with ``PointOutOfBounds`` and nothing is executed.
3. ``execute`` returns what was really done: the action in screen pixels and the commands sent.
4. An action of a kind the device doesn't support gets ``UnsupportedAction``, not a no-op.
5. A device that disappears mid-run ends the run with status ``error`` and the trajectory on
   disk intact (every finished step recorded, ``result.json`` written).
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pixelpilot.agent.actions import (
    Click,
    Home,
    Move,
    Pick,
    Point,
    Tap,
    Wait,
)
from pixelpilot.agent.errors import PointOutOfBounds, UnsupportedAction
from pixelpilot.agent.loop import Agent, Budgets
from pixelpilot.agent.trajectory import DirectoryRecorder, load_trajectory
from pixelpilot.tools.base import Device
from pixelpilot.vlm.scripted import ScriptedModel


def px(x: float, y: float) -> Point:
    return Point(x=x, y=y, space="screen_px")


@dataclass
class Case:
    """One device under the contract: how to open it, how to make it vanish, and actions."""

    open: Callable[[], contextlib.AbstractContextManager[tuple[Device, Callable[[], None]]]]
    supported: Callable[[int, int], Any]
    """An action the device supports, in screen pixels, given the screen size."""
    unsupported: Any


@contextlib.contextmanager
def _desktop() -> Iterator[tuple[Device, Callable[[], None]]]:
    # A private Xvfb, so that killing it leaves the session's display alone. pyautogui binds the
    # session display, so this device only observes and waits here (tests/test_desktop.py covers
    # its input on the session display).
    from pixelpilot.tools.desktop import DesktopDevice
    from pixelpilot.tools.xvfb import VirtualDisplay

    with VirtualDisplay(320, 240) as vd, DesktopDevice(display=vd.display) as dev:
        yield dev, vd.stop


@contextlib.contextmanager
def _desktop_session(display: str) -> Iterator[tuple[Device, Callable[[], None]]]:
    from pixelpilot.tools.desktop import DesktopDevice

    with DesktopDevice(display=display) as dev:
        yield dev, lambda: None


@contextlib.contextmanager
def _desktop_window() -> Iterator[tuple[Device, Callable[[], None]]]:
    # One window of the session display (DesktopDevice(window=...)): it vanishes when its app
    # exits. The app is the click-target window of tests/test_desktop_view.py.
    import json
    import sys

    from pixelpilot.scenarios.fixture import FixtureApp
    from pixelpilot.tools.desktop import DesktopDevice

    cmd = [sys.executable, "-m", "pixelpilot.scenarios.target_app", "--state", "{state}",
           "--width", "240", "--height", "160", "--targets", json.dumps([[10, 10, 20, "#e53935"]]),
           "--title", "pixelpilot contract window", "--at", "200,150"]  # fmt: skip
    with FixtureApp(command=cmd) as app, DesktopDevice(window="contract window") as dev:
        yield dev, app.stop


@contextlib.contextmanager
def _android() -> Iterator[tuple[Device, Callable[[], None]]]:
    from pixelpilot.scenarios.phone import PhoneFixture
    from pixelpilot.tools.android import AndroidDevice

    with (
        PhoneFixture(start="home", width=360, height=640) as phone,
        AndroidDevice(**phone.device_kwargs()) as dev,
    ):
        yield dev, lambda: phone.kill(signal.SIGKILL)


@contextlib.contextmanager
def _robot() -> Iterator[tuple[Device, Callable[[], None]]]:
    import pybullet

    from pixelpilot.tools.robot import RobotDevice

    with RobotDevice("tray", width=160, height=120) as dev:
        yield dev, lambda: pybullet.disconnect(dev.physics_client)


@contextlib.contextmanager
def _dry_run(kind: str) -> Iterator[tuple[Device, Callable[[], None]]]:
    from pixelpilot.tools.dryrun import DryRunDesktop, DryRunPhone

    dev: Device = DryRunPhone(width=360, height=640) if kind == "mobile" else DryRunDesktop()
    with dev:
        yield dev, dev.close  # closed under the run: it is gone


CASES = {
    "desktop": Case(_desktop, lambda w, h: Wait(seconds=0), Pick(point=px(1, 1))),
    "desktop-window": Case(_desktop_window, lambda w, h: Wait(seconds=0), Pick(point=px(1, 1))),
    "android": Case(_android, lambda w, h: Tap(point=px(w // 2, h // 2)), Click(point=px(1, 1))),
    "robot": Case(_robot, lambda w, h: Home(), Click(point=px(1, 1))),
    "dryrun-desktop": Case(
        lambda: _dry_run("desktop"), lambda w, h: Click(point=px(w - 1, h - 1)), Tap(point=px(1, 1))
    ),
    "dryrun-phone": Case(
        lambda: _dry_run("mobile"), lambda w, h: Tap(point=px(w // 2, h // 2)), Pick(point=px(1, 1))
    ),
}


@pytest.fixture(params=list(CASES))
def case(request: pytest.FixtureRequest, display: str) -> Case:
    return CASES[request.param]


def test_observe_matches_geometry(case: Case) -> None:
    with case.open() as (dev, _):
        obs = dev.observe()
        g = obs.geometry
        assert obs.image.size == (g.width, g.height) == (dev.geometry.width, dev.geometry.height)
        assert obs.seconds > 0


def test_off_screen_point_is_refused_and_nothing_runs(case: Case) -> None:
    with case.open() as (dev, _):
        g = dev.geometry
        kind = next(iter(k for k in ("tap", "click", "pick", "move") if k in dev.supported))
        action = {"tap": Tap, "click": Click, "pick": Pick, "move": Move}[kind]
        for point in (px(g.width, 0), px(0, g.height), px(-1, 5)):
            with pytest.raises(PointOutOfBounds) as err:
                dev.execute(action(point=point))
            assert f"{g.width}x{g.height}" in str(err.value)


def test_execute_returns_what_was_done(case: Case) -> None:
    with case.open() as (dev, _):
        g = dev.geometry
        action = case.supported(g.width, g.height)
        done = dev.execute(action)
        assert done.action.kind == action.kind
        assert done.seconds >= 0
        if action.kind != "wait":
            assert done.commands, "a device must report the commands it really issued"


def test_unsupported_kind_is_a_clear_error(case: Case) -> None:
    with case.open() as (dev, _):
        with pytest.raises(UnsupportedAction) as err:
            dev.execute(case.unsupported)
        assert case.unsupported.kind in str(err.value)


SCRIPT = [
    "✿FUNCTION✿: wait\n✿ARGS✿: {\"seconds\": 0}",
    "✿FUNCTION✿: wait\n✿ARGS✿: {\"seconds\": 0}",
    "✿FUNCTION✿: finish\n✿ARGS✿: {}",
]


def test_device_vanishing_mid_run_ends_the_run_with_the_trajectory_intact(
    case: Case, tmp_path: Path
) -> None:
    with case.open() as (dev, vanish):
        steps: list[int] = []

        def on_step(step: Any) -> None:
            steps.append(step.index)
            if step.index == 1:
                vanish()

        agent = Agent(
            model=ScriptedModel(SCRIPT),
            device=dev,
            dialect="qwen2vl",
            budgets=Budgets(max_steps=5, max_seconds=60),
            recorder=DirectoryRecorder(tmp_path / "run"),
            on_step=on_step,
        )
        result = agent.run("wait twice")
    assert result.status == "error", result.reason
    assert result.reason and "\n" not in result.reason
    traj = load_trajectory(tmp_path / "run")
    assert traj.status == "error"
    assert [s.index for s in traj.steps] == steps == [1, 2]
    assert traj.steps[0].executed is not None and traj.steps[1].error
    assert (tmp_path / "run" / "screens" / "0001.png").is_file()
