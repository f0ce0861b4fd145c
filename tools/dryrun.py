"""Dry-run devices: every action is checked and planned with the real pure planners, none is
performed.

``DryRunDesktop`` plans with ``desktop_plan.plan`` (the exact pyautogui/XTEST commands a
``DesktopDevice`` would run) and ``DryRunPhone`` with ``android_plan.plan`` (the exact adb shell
argv lists); neither touches a screen, a phone or the network. ``observe`` returns a fixed
screen (a blank one, or the image you give). They are what ``--device dryrun`` runs against:
see what a model would do, and which actions a policy would stop, without letting it act; and
what the loop's fuzz benchmark drives 100,000 adversarial answers through.

Like every device they pass tests/test_device_contract.py: the base class refuses off-screen
points and unsupported kinds; ``executed`` keeps what was planned, in order.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

import pixelpilot.tools.android_plan as android_plan
import pixelpilot.tools.desktop_plan as desktop_plan
from pixelpilot.agent.actions import (
    DESKTOP_KINDS,
    MOBILE_KINDS,
    Action,
    Click,
    Drag,
    Move,
    Scroll,
)
from pixelpilot.agent.errors import DeviceNotConnected
from pixelpilot.agent.geometry import ScreenGeometry
from pixelpilot.tools.base import Device, Executed, Observation

__all__ = ["DryRunDesktop", "DryRunDevice", "DryRunPhone"]

BLANK = (236, 239, 241)
"""The colour of the blank screen a dry run observes unless given an image."""


class DryRunDevice(Device):
    """Base of the dry-run devices: a fixed screen, planned but unperformed actions."""

    def __init__(
        self,
        *,
        width: int = 1280,
        height: int = 800,
        scale: float = 1.0,
        image: Image.Image | None = None,
        name: str | None = None,
    ) -> None:
        if image is not None:
            width, height = image.size
        if width < 1 or height < 1:
            raise ValueError(f"a screen needs a positive size, got {width}x{height}")
        self._size = (width, height)
        self._scale = scale
        self._image = image.convert("RGB") if image is not None else None
        self.name = name or f"dryrun:{self.kind}"
        self._geom: ScreenGeometry | None = None
        self.executed: list[Executed] = []
        """Every action planned so far, in order, with its commands."""

    @property
    def geometry(self) -> ScreenGeometry:
        if self._geom is None:
            raise DeviceNotConnected(f"{self.name} is not open")
        return self._geom

    def _open(self) -> None:
        self._geom = ScreenGeometry(*self._size, scale=self._scale)
        if self._image is None:
            self._image = Image.new("RGB", self._size, BLANK)

    def _close(self) -> None:
        self._geom = None

    def _observe(self) -> Observation:
        assert self._image is not None
        # the same frame every time; "change": None says the effect of an action is unknown
        return Observation(image=self._image, geometry=self.geometry, extra={"change": None})

    def _execute(self, action: Action) -> Executed:
        done = Executed(action=action, commands=self._plan(action), note="dry run: not performed")
        self.executed.append(done)
        return done

    def _plan(self, action: Action) -> list[list[Any]]:
        raise NotImplementedError

    def _sleep(self, seconds: float) -> None:
        """A wait is planned, not performed: no time passes (the switches are still read)."""
        self._checkpoint()


class DryRunDesktop(DryRunDevice):
    """A desktop that plans with ``desktop_plan.plan``; the pointer is tracked for drags
    without a start point."""

    kind = "desktop"
    supported = DESKTOP_KINDS

    def _open(self) -> None:
        super()._open()
        self._pointer = (self._size[0] / 2, self._size[1] / 2)

    def _plan(self, action: Action) -> list[list[Any]]:
        commands = desktop_plan.plan(action, self.geometry, pointer=self._pointer)
        if isinstance(action, (Click, Move)) or (
            isinstance(action, Scroll) and action.point is not None
        ):
            self._pointer = (action.point.x, action.point.y)  # type: ignore[union-attr]
        elif isinstance(action, Drag):
            self._pointer = (action.end.x, action.end.y)
        return commands


class DryRunPhone(DryRunDevice):
    """A phone that plans with ``android_plan.plan`` (ADBKeyboard typing, the default apps)."""

    kind = "mobile"
    supported = MOBILE_KINDS

    def __init__(self, *, width: int = 1080, height: int = 2400, **kwargs: Any) -> None:
        kwargs.setdefault("scale", 420 / 160)
        super().__init__(width=width, height=height, **kwargs)

    def _plan(self, action: Action) -> list[list[Any]]:
        return [list(argv) for argv in android_plan.plan(action, ime=True)]
