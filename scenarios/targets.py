"""Scenario targets and ``--device`` references -> open devices: the one place that wires a
device backend to what it runs against.

``open_target`` starts what a scenario names (the Tk fixture app on the current display, the
phone fixture behind the real adb, a pybullet scene) and yields the open device together with a
function that reads the target's real state for checks. ``open_device`` resolves the CLI's
``desktop[:N][:window=SPEC|:region=X,Y,W,H]``, ``android[:SERIAL]`` and ``robot[:SCENE]``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pixelpilot.agent.errors import ConfigError, ScenarioError
from pixelpilot.scenarios.spec import AndroidTarget, DesktopTarget, RobotTarget, Target
from pixelpilot.tools.base import Device

DEVICE_HELP = (
    "desktop, desktop:N (X display :N), desktop[:N]:window=TITLE|class=WM_CLASS|id=0xID, "
    "desktop[:N]:region=X,Y,W,H, android, android:SERIAL, robot, robot:SCENE"
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

        return DesktopDevice(**desktop_options(arg))
    if kind == "android":
        from pixelpilot.tools.android import AndroidDevice

        return AndroidDevice(arg or None)
    if kind == "robot":
        from pixelpilot.tools.robot import RobotDevice

        return RobotDevice(arg or "tray")
    raise ConfigError(f"unknown device {ref!r}; available: {DEVICE_HELP}")


def desktop_options(arg: str) -> dict[str, Any]:
    """DesktopDevice options for what follows ``desktop:``: ``N`` (X display :N), then
    ``window=SPEC`` (the rest verbatim, so a title may hold ':' and ',') or ``region=X,Y,W,H``.

    >>> desktop_options("1:region=0,0,800,600")
    {'display': ':1', 'region': (0, 0, 800, 600)}
    """
    options: dict[str, Any] = {}
    display, sep, rest = arg.partition(":")
    if display.isdigit():
        options["display"] = f":{display}"  # desktop:1 means X display :1
        arg = rest
    elif arg.startswith(":") and arg[1:].partition(":")[0].isdigit():  # desktop::1
        display, _, arg = arg[1:].partition(":")
        options["display"] = f":{display}"
    key, sep, value = arg.partition("=")
    if not arg:
        return options
    if key == "window" and sep:
        options["window"] = value
    elif key == "region" and sep:
        parts = value.split(",")
        if len(parts) != 4 or not all(p.strip().isdigit() for p in parts):
            raise ConfigError(f"bad region {value!r}; write desktop:region=X,Y,W,H in pixels")
        options["region"] = tuple(int(p) for p in parts)
    else:
        raise ConfigError(f"unknown desktop option {arg!r}; available: {DEVICE_HELP}")
    return options
