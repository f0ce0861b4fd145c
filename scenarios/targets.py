"""Scenario targets and ``--device`` references -> open devices: the one place that wires a
device backend to what it runs against.

``open_target`` starts what a scenario names (the Tk fixture app on the current display, the
phone fixture behind the real adb, a pybullet scene) and yields the open device together with a
function that reads the target's real state for checks. ``open_device`` resolves the CLI's
``desktop[:N]``, ``android[:SERIAL]`` and ``robot[:SCENE]``; ``builtin_target`` the built-in
targets by NAME (``fixture``, ``phone[:START]``, ``scene:NAME``), the only targets ``replay``
starts: a trajectory is data, so a target recorded in it is at most a suggestion
(``suggest_target``), never a command line to run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pixelpilot.agent.errors import ConfigError, ScenarioError
from pixelpilot.scenarios.spec import AndroidTarget, DesktopTarget, RobotTarget, Target
from pixelpilot.tools.base import Device
from pixelpilot.tools.robot_scenes import SCENES

DEVICE_HELP = "desktop, desktop:N (X display :N), android, android:SERIAL, robot, robot:SCENE"
PHONE_STARTS = ("home", "signin", "shop", "settings", "notes")
TARGET_HELP = (
    "a built-in target by name: fixture (the Tk fixture app), phone or phone:START (the phone "
    "fixture; START: home, signin, shop, settings, notes), scene:NAME (a robot scene)"
)


@dataclass
class OpenTarget:
    """An open device on a started target; ``state`` reads the target's real state (or None)."""

    device: Device
    state: Callable[[], dict[str, Any]] | None


@contextlib.contextmanager
def open_target(target: Target, *, name: str = "scenario") -> Iterator[OpenTarget]:
    """Start ``target``, open a device on it, check the screen size the scenario assumes."""
    with contextlib.ExitStack() as stack:
        opened = _start(target, stack)
        geom = opened.device.geometry
        width, height = target.screen
        if (geom.width, geom.height) != (width, height):
            raise ScenarioError(
                f"{name}: written for a {width}x{height} screen but the {target.kind} target "
                f"is {geom.width}x{geom.height}; run it on a screen of that size"
            )
        yield opened


def _start(target: Target, stack: contextlib.ExitStack) -> OpenTarget:
    if isinstance(target, DesktopTarget):
        from pixelpilot.scenarios.fixture import FixtureApp
        from pixelpilot.tools.desktop import DesktopDevice

        width, height = target.screen
        app = stack.enter_context(FixtureApp(width=width, height=height, command=target.command))
        device: Device = stack.enter_context(DesktopDevice())
        if target.app is None:
            return OpenTarget(device, None)
        device.boxes = app.element_boxes
        return OpenTarget(device, app.state)
    if isinstance(target, AndroidTarget):
        from pixelpilot.scenarios.phone import PhoneFixture
        from pixelpilot.tools.android import AndroidDevice

        width, height = target.screen
        phone = stack.enter_context(
            PhoneFixture(start=target.start, width=width, height=height, density=target.density)
        )
        device = stack.enter_context(AndroidDevice(**phone.device_kwargs()))
        device.boxes = lambda: dict(phone.state().get("boxes", {}))
        return OpenTarget(device, phone.state)
    if isinstance(target, RobotTarget):
        from pixelpilot.tools.robot import RobotDevice

        width, height = target.screen
        robot = stack.enter_context(
            RobotDevice(target.scene, width=width, height=height, seed=target.seed)
        )
        return OpenTarget(robot, robot.state)
    raise ScenarioError(f"unknown target kind {target.kind!r}")  # pragma: no cover - validated


def open_device(ref: str) -> Device:
    """A device (not yet open) for a ``--device`` reference; ConfigError says what to write."""
    kind, _, arg = ref.partition(":")
    if kind == "desktop":
        from pixelpilot.tools.desktop import DesktopDevice

        if arg and not arg.startswith(":"):
            arg = f":{arg}"  # desktop:1 means X display :1
        return DesktopDevice(display=arg or None)
    if kind == "android":
        from pixelpilot.tools.android import AndroidDevice

        return AndroidDevice(arg or None)
    if kind == "robot":
        from pixelpilot.tools.robot import RobotDevice

        return RobotDevice(arg or "tray")
    raise ConfigError(f"unknown device {ref!r}; available: {DEVICE_HELP}")


def builtin_target(
    name: str, *, screen: tuple[int, int] | None = None, recorded: Any = None
) -> Target:
    """The built-in target called ``name``; ConfigError listing the names otherwise.

    ``screen``: the size the recorded actions assume (default: the target's own). ``recorded``:
    the target a trajectory names (untrusted data): only its robot scene seed is used, when it
    is the same scene, so the replay sees the same objects.
    """
    kind, _, arg = name.strip().partition(":")
    size = {"screen": screen} if screen is not None else {}
    try:
        if kind == "fixture" and not arg:
            return DesktopTarget(app="fixture", **size)
        if kind == "phone":
            if arg and arg not in PHONE_STARTS:
                raise ConfigError(
                    f"target {name!r}: unknown start screen {arg!r}; use one of: "
                    + ", ".join(PHONE_STARTS)
                )
            return AndroidTarget(kind="android", start=arg or "home", **size)
        if kind == "scene" and arg:
            if arg not in SCENES:
                raise ConfigError(
                    f"target {name!r}: unknown robot scene; use one of: {', '.join(SCENES)}"
                )
            seed = 0
            if isinstance(recorded, dict) and recorded.get("kind") == "robot":
                same = recorded.get("scene") == arg and isinstance(recorded.get("seed"), int)
                seed = recorded["seed"] if same else 0
            return RobotTarget(kind="robot", scene=arg, seed=seed, **size)
    except ValueError as exc:  # pydantic's ValidationError: a bad size from the recording
        raise ConfigError(f"target {name!r}: {exc}") from None
    raise ConfigError(f"unknown target {name!r}; use {TARGET_HELP}")


def suggest_target(recorded: Any) -> str | None:
    """The built-in target name that matches a recorded target, or None (a custom command,
    or anything unreadable). Shown to the user; nothing in it is ever run."""
    if not isinstance(recorded, dict):
        return None
    kind = recorded.get("kind", "desktop")
    if kind == "desktop" and recorded.get("app") == "fixture":
        return "fixture"
    if kind == "android" and recorded.get("app", "phone") == "phone":
        start = recorded.get("start", "home")
        return f"phone:{start}" if start in PHONE_STARTS else "phone"
    if kind == "robot" and isinstance(recorded.get("scene"), str):
        scene = recorded["scene"]
        return f"scene:{scene}" if scene in SCENES else None
    return None
