"""The Device boundary: observe a screen, execute one action, report what really happened.

A backend implements ``_open``, ``_close``, ``_observe`` and ``_execute``; the public methods
here check the connection, the action kind and the bounds of every point, time the call and
map unexpected backend exceptions to ``DeviceError`` once, for every device.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

from PIL import Image
from pydantic import BaseModel, ConfigDict

from pixelpilot.agent.actions import Action, Point, points
from pixelpilot.agent.errors import (
    DeviceError,
    DeviceNotConnected,
    PixelPilotError,
    PointOutOfBounds,
    UnsupportedAction,
)
from pixelpilot.agent.geometry import ScreenGeometry

DeviceKind = Literal["desktop", "mobile", "robot"]


@dataclass
class Observation:
    """One screenshot with the geometry needed to turn model points into device pixels."""

    image: Image.Image
    geometry: ScreenGeometry
    captured_at: float = field(default_factory=time.time)
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class Executed(BaseModel):
    """What a device really did: the action in device pixels and the exact commands issued."""

    model_config = ConfigDict(frozen=True)
    action: Action
    commands: list[list[Any]]
    seconds: float = 0.0
    note: str = ""


class Interlock(Protocol):
    """What a device consults during long actions (``RunControl`` is one): ``check`` raises
    to abandon the action (kill or pause switch); ``sleep`` waits but raises the same way."""

    def check(self) -> None: ...

    def sleep(self, seconds: float) -> None: ...


@dataclass(frozen=True)
class TargetInfo:
    """What an action at a point would act on, as far as the device can tell (for policies):
    the X11 window under the point or in focus (WM_CLASS instance and class, title), the
    Android app in the foreground. None where the device does not know."""

    window_class: tuple[str, ...] | None = None
    window_title: str | None = None
    package: str | None = None


class Device(ABC):
    """A target the agent can see and act on. Use as a context manager."""

    kind: ClassVar[DeviceKind]
    supported: ClassVar[frozenset[str]]
    name: str = "device"

    _connected: bool = False
    boxes: Callable[[], dict[str, list[int]]] | None = None
    """Set by whoever knows the target (e.g. a fixture app): element boxes in screen pixels,
    noted on each observation so a trajectory can be scored offline."""
    interlock: Interlock | None = None
    """Set by the loop for the length of a run: long actions call ``interlock.check()``
    between chunks (typed text, drag steps) and waits sleep through ``interlock.sleep``, so
    the kill and pause switches act within one chunk."""

    # -- public API: checks, timing, error mapping ----------------------------------------
    def open(self) -> Device:
        if not self._connected:
            with self._errors("open"):
                self._open()
            self._connected = True
        return self

    def close(self) -> None:
        if self._connected:
            self._connected = False
            self._close()

    def __enter__(self) -> Device:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        return self._connected

    def describe(self) -> dict[str, Any]:
        """What a trajectory records about this device (run.json ``device``): name, kind,
        supported action kinds; a backend adds what else it needs to be found again (the
        desktop's observed ``view``)."""
        return {"name": self.name, "kind": self.kind, "supported": sorted(self.supported)}

    def observe(self) -> Observation:
        """Wait for the screen to settle, capture it and return it with its geometry."""
        self._require_connected()
        t0 = time.perf_counter()
        with self._errors("observe"):
            obs = self._observe()
        obs.seconds = time.perf_counter() - t0
        if self.boxes is not None:  # the target's element boxes, for offline evaluation
            obs.extra["boxes"] = self.boxes()
        return obs

    def execute(self, action: Action) -> Executed:
        """Perform ``action`` (points in screen_px) and return what was really done.

        Raises UnsupportedAction for a kind this device cannot do, PointOutOfBounds for a point
        off the screen (never clamped), DeviceLost when the device went away.
        """
        self._require_connected()
        if action.kind not in self.supported:
            raise UnsupportedAction(
                f"{self.name} ({self.kind}) cannot do {action.kind!r}; "
                f"it supports: {', '.join(sorted(self.supported))}"
            )
        geom = self.geometry
        for p in points(action):
            if p.space != "screen_px":
                raise ValueError(f"device actions take screen_px points, got {p.space}")
            finite = math.isfinite(p.x) and math.isfinite(p.y)
            if not finite or not geom.contains(int(p.x), int(p.y)):
                raise PointOutOfBounds(
                    f"point ({p.x:g}, {p.y:g}) is outside the {geom.width}x{geom.height} screen"
                )
        t0 = time.perf_counter()
        with self._errors(f"execute {action.kind}"):
            if action.kind == "wait":
                self._sleep(action.seconds)
                done = Executed(action=action, commands=[["sleep", action.seconds]])
            else:
                done = self._execute(action)
        return done.model_copy(update={"seconds": time.perf_counter() - t0})

    def target_at(self, point: Point | None) -> TargetInfo:
        """What an action at ``point`` (screen_px; None: where the keyboard goes) would act on.
        Devices that can tell override this; the default knows nothing."""
        return TargetInfo()

    @property
    @abstractmethod
    def geometry(self) -> ScreenGeometry:
        """The geometry the next observation will have."""

    # -- backend hooks ------------------------------------------------------------------------
    @abstractmethod
    def _open(self) -> None: ...

    @abstractmethod
    def _close(self) -> None: ...

    @abstractmethod
    def _observe(self) -> Observation: ...

    @abstractmethod
    def _execute(self, action: Action) -> Executed: ...

    # -- helpers ------------------------------------------------------------------------------
    def _require_connected(self) -> None:
        if not self._connected:
            raise DeviceNotConnected(
                f"{self.name} is not open; use it as a context manager or call open() first"
            )

    def _checkpoint(self) -> None:
        """Between the chunks of a long action: raises when the run's interlock says stop."""
        if self.interlock is not None:
            self.interlock.check()

    def _sleep(self, seconds: float) -> None:
        if self.interlock is not None:
            self.interlock.sleep(seconds)
        else:
            time.sleep(seconds)

    def _errors(self, what: str) -> _ErrorMap:
        return _ErrorMap(self, what)


class _ErrorMap:
    """Turns unexpected backend exceptions into DeviceError, once, for every device."""

    def __init__(self, device: Device, what: str) -> None:
        self.device, self.what = device, what

    def __enter__(self) -> None:
        return None

    def __exit__(self, etype: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        if exc is None or isinstance(exc, (PixelPilotError, KeyboardInterrupt, SystemExit)):
            return False
        raise DeviceError(
            f"{self.device.name}: {self.what} failed: {type(exc).__name__}: {exc}"
        ) from exc
