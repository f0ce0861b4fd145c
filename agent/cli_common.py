"""What every ``pixelpilot`` subcommand shares: the console, the one-line step report and the
virtual display (with the window manager) that commands start when ``DISPLAY`` is not set."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Literal

from rich.console import Console
from rich.markup import escape

from pixelpilot.agent.actions import points

out = Console(highlight=False, soft_wrap=True)


def describe_step(step: Any) -> str:
    """A step's action in one line of rich markup: kind, text or keys, points in pixels."""
    a, d = step.action, step.device_action
    where = " ".join(f"({p.x:g},{p.y:g})px" for p in points(d))
    extra = ""
    if a.kind == "type":
        extra = f" {a.text!r}"
    elif a.kind == "hotkey":
        extra = " " + "+".join(a.keys)
    elif a.kind == "finish":
        extra = f" {a.status} {a.answer!r}" if a.answer else f" {a.status}"
    return f"[bold]{a.kind}[/]{escape(extra)} {where}".rstrip()


def progress(step: Any) -> None:
    """One line per step: what was done, where, how long each stage took."""
    t = step.timings
    retry = f" [red]{step.retries} rejected[/]" if step.retries else ""
    if step.error:
        what = f"[red]error: {escape(step.error)}[/]"
    elif step.action is None:
        last = step.attempts[-1].error if step.attempts else ""
        what = f"[red]no valid action[/] ({escape(last or '')})"
    else:
        what = describe_step(step)
    stages = " ".join(
        f"{k} {t.get(k, 0) * 1000:.0f}ms" for k in ("capture", "generate", "parse", "execute")
    )
    out.print(f"step {step.index:>2}  {what}{retry}  [dim]{stages}[/]")


def display(width: int, height: int) -> contextlib.AbstractContextManager[Any]:
    """A virtual display of this size with the window manager, unless ``DISPLAY`` is set."""
    from pixelpilot.tools.xvfb import default_wm, ensure_display

    return ensure_display(width, height, wm=default_wm())


def device_key(device: Any) -> str | None:
    """The lock name of what an open device acts on (``display:N``, ``android:SERIAL``), or
    None for devices nothing else can reach (dry runs, simulated robots)."""
    if device.kind == "desktop":
        from pixelpilot.tools.desktop import DesktopDevice
        from pixelpilot.tools.locks import display_key

        return display_key(device.display) if isinstance(device, DesktopDevice) else None
    if device.kind == "mobile":
        from pixelpilot.tools.android import AndroidDevice

        if isinstance(device, AndroidDevice) and device.serial:
            return f"android:{device.serial}"
    return None


@contextlib.contextmanager
def claimed_device(device: Any, holder: str) -> Iterator[None]:
    """Hold the device's lock while a run acts on it: a second pixelpilot process (another
    run, a parallel worker) is refused with DeviceBusy naming ``holder``'s pid."""
    from pixelpilot.tools.locks import claimed

    key = device_key(device)
    if key is None:
        yield
        return
    with claimed(key, holder):
        yield


RAY_HELP = (
    "Run on a Ray cluster, one actor per --workers slot: a bare --ray starts one "
    "on this machine; --ray ADDRESS joins one (HOST:6379, ray://HOST:10001, auto). Trajectories "
    "go to --out, which every node must see at the same path (docs/parallel.md)."
)
RAY_LOCAL = "local"
"""What a bare ``--ray`` stands for: a private Ray instance on this machine."""


def bare_option(argv: list[str], option: str, value: str) -> list[str]:
    """``argv`` with ``value`` after each ``option`` that has no value of its own (last, or
    followed by another option): how ``--ray`` alone means ``--ray local``."""
    out_args: list[str] = []
    for i, arg in enumerate(argv):
        out_args.append(arg)
        if arg == option and (i + 1 == len(argv) or argv[i + 1].startswith("-")):
            out_args.append(value)
    return out_args


def ray_backend(ray: str | None) -> tuple[Literal["local", "ray"], str | None]:
    """(backend, Ray address) for a ``--ray`` value: local workers without it, a private Ray
    instance for a bare ``--ray``, the cluster at ADDRESS otherwise."""
    if ray is None:
        return "local", None
    return "ray", None if ray == RAY_LOCAL else ray
