"""Scenario targets and ``--device`` references -> open devices: the one place that wires a
device backend to what it runs against.

``open_target`` starts what a scenario names (the Tk fixture app on the current display, the
phone fixture behind the real adb, a pybullet scene) and yields the open device together with a
function that reads the target's real state for checks. ``open_device`` resolves the CLI's
``desktop[:N]``, ``android[:SERIAL]`` and ``robot[:SCENE]``.
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
    "desktop, desktop:N (X display :N), android, android:SERIAL, robot, robot:SCENE, "
    "dryrun[:desktop|:android][:WxH] (plan every action, perform none)"
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


def _dry_run(ref: str, arg: str) -> Device:
    from pixelpilot.tools.dryrun import DryRunDesktop, DryRunPhone

    parts = [p for p in arg.split(":") if p]
    kind = parts.pop(0) if parts and parts[0] in ("desktop", "android") else "desktop"
    size: dict[str, int] = {}
    if parts:
        w, _, h = parts.pop(0).partition("x")
        if not (w.isdigit() and h.isdigit()) or parts:
            raise ConfigError(f"bad device {ref!r}; write dryrun[:desktop|:android][:WIDTHxHEIGHT]")
        size = {"width": int(w), "height": int(h)}
    return DryRunPhone(**size) if kind == "android" else DryRunDesktop(**size)


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
    if kind == "dryrun":
        return _dry_run(ref, arg)
    raise ConfigError(f"unknown device {ref!r}; available: {DEVICE_HELP}")
