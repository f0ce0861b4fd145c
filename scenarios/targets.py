"""Scenario targets and ``--device`` references -> open devices: the one place that wires a
device backend to what it runs against.

``open_target`` starts what a scenario names (the Tk fixture app, Chromium on a local page or a
launched program on the current display, the phone fixture behind the real adb, a pybullet
scene) and yields the open device together with what reads the target's real state for checks
(its JSON state, its work directory's files, its page's DOM). ``open_device`` resolves the CLI's
``desktop[:N][:window=SPEC|:region=X,Y,W,H]``, ``android[:SERIAL]``, ``robot[:SCENE]`` and
``dryrun[:desktop|:android][:WxH]``;
``builtin_target`` the built-in targets by NAME (``fixture``, ``phone[:START]``,
``scene:NAME``), the only targets ``replay`` starts: a trajectory is data, so a target recorded
in it is at most a suggestion (``suggest_target``), never a command line to run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixelpilot.agent.errors import ConfigError, ScenarioError
from pixelpilot.scenarios.spec import (
    MISSING,
    AndroidTarget,
    Check,
    DesktopTarget,
    RobotTarget,
    Target,
    Unreadable,
    lookup,
)
from pixelpilot.tools.base import Device
from pixelpilot.tools.robot_scenes import SCENES

DEVICE_HELP = (
    "desktop, desktop:N (X display :N), desktop[:N]:window=TITLE|class=WM_CLASS|id=0xID, "
    "desktop[:N]:region=X,Y,W,H, android, android:SERIAL, robot, robot:SCENE, "
    "dryrun[:desktop|:android][:WxH] (plan every action, perform none)"
)
PHONE_STARTS = ("home", "signin", "shop", "settings", "notes")
TARGET_HELP = (
    "a built-in target by name: fixture (the Tk fixture app), phone or phone:START (the phone "
    "fixture; START: home, signin, shop, settings, notes), scene:NAME (a robot scene)"
)


@dataclass
class OpenTarget:
    """An open device on a started target; ``state`` reads the target's JSON state (or None),
    ``workdir`` is where its files are (launched programs), ``page`` its browser (Chromium)."""

    device: Device
    state: Callable[[], dict[str, Any]] | None
    workdir: Path | None = None
    page: Any = None
    """A ``chromium.ChromiumApp``: ``dom(selector, prop)`` reads the live page."""

    def read(self, checks: Sequence[Check]) -> list[Any]:
        """The value each check reads (MISSING when absent, Unreadable when unreadable)."""
        state = self.state() if self.state is not None and any(
            c.source == "path" for c in checks
        ) else {}  # fmt: skip
        values = []
        for check in checks:
            if check.path is not None:
                values.append(lookup(state, check.path))
            elif check.file is not None:
                values.append(_read_text(self.workdir, check.file))
            else:
                if self.page is None:
                    raise ScenarioError("'dom' checks need a page (app: chromium)")
                values.append(self.page.dom(check.dom, check.prop))
        return values


def _read_text(workdir: Path | None, name: str) -> Any:
    if workdir is None:
        raise ScenarioError("'file' checks need a launched program (launch:) or app: chromium")
    try:
        data = (workdir / name).read_bytes()
    except FileNotFoundError:
        return MISSING
    except OSError as exc:
        return Unreadable(f"cannot read it ({exc.strerror})")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Unreadable(f"not UTF-8 (byte {data[exc.start]:#04x} at offset {exc.start})")


@contextlib.contextmanager
def open_target(
    target: Target, *, name: str = "scenario", check_screen: bool = True
) -> Iterator[OpenTarget]:
    """Start ``target``, open a device on it, check the screen size the scenario assumes
    (replay turns that off: it maps points onto a screen of another size)."""
    with contextlib.ExitStack() as stack:
        opened = _start(target, stack)
        geom = opened.device.geometry
        width, height = target.screen
        full_screen = getattr(target, "view", None) is None
        if check_screen and full_screen and (geom.width, geom.height) != (width, height):
            raise ScenarioError(
                f"{name}: written for a {width}x{height} screen but the {target.kind} target "
                f"is {geom.width}x{geom.height}; run it on a screen of that size"
            )
        yield opened


def _start(target: Target, stack: contextlib.ExitStack) -> OpenTarget:
    if isinstance(target, DesktopTarget):
        return _start_desktop(target, stack)
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


def _start_desktop(target: DesktopTarget, stack: contextlib.ExitStack) -> OpenTarget:
    from pixelpilot.tools.desktop import DesktopDevice

    view: dict[str, Any] = {}
    if target.view is not None:
        view = target.view.model_dump(exclude_none=True)
    if target.app == "chromium":
        from pixelpilot.scenarios.chromium import ChromiumApp, PageServer

        page = Path(target.page or "")
        server = stack.enter_context(PageServer(page.parent))
        browser = stack.enter_context(ChromiumApp(server.url(page.name)))
        device = stack.enter_context(DesktopDevice(**view))
        return OpenTarget(device, None, workdir=browser.workdir, page=browser)
    if target.launch is not None:
        from pixelpilot.scenarios.launch import LaunchedApp

        app = stack.enter_context(LaunchedApp(target.launch, target.ready_window or ""))
        device = stack.enter_context(DesktopDevice(**view))
        return OpenTarget(device, None, workdir=app.workdir)
    from pixelpilot.scenarios.fixture import FixtureApp

    width, height = target.screen
    fixture = stack.enter_context(FixtureApp(width=width, height=height, command=target.command))
    device = stack.enter_context(DesktopDevice(**view))
    if target.app is None:
        return OpenTarget(device, None)
    if target.view is None:  # its boxes are in screen pixels: only for a full-screen view
        device.boxes = fixture.element_boxes
    return OpenTarget(device, fixture.state)


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

        return DesktopDevice(**desktop_options(arg))
    if kind == "android":
        from pixelpilot.tools.android import AndroidDevice

        return AndroidDevice(arg or None)
    if kind == "robot":
        from pixelpilot.tools.robot import RobotDevice

        return RobotDevice(arg or "tray")
    if kind == "dryrun":
        return _dry_run(ref, arg)
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
