"""The CLI's guardrails: ``--policy FILE`` and ``--confirm`` (ask on the terminal before an
action a confirm rule matches, showing what and where), and the X11 kill and pause hotkeys
(``--kill-key``, ``--pause-key``, ``--no-hotkeys``) for a run in progress."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from pixelpilot.agent.control import RunControl
from pixelpilot.agent.policy import Confirmation, Policy
from pixelpilot.tools.x11_hotkeys import KILL_KEY, PAUSE_KEY

PolicyOption = Annotated[
    Path | None,
    typer.Option("--policy", help="A YAML policy: actions to deny or confirm (docs/policy.md)."),
]
ConfirmOption = Annotated[
    bool,
    typer.Option(
        "--confirm",
        help="Ask on the terminal before each action a policy's confirm rule matches "
        "(with no --policy: before every action on the device).",
    ),
]
KillKeyOption = Annotated[
    str, typer.Option("--kill-key", help="X11 hotkey that stops the run at once.")
]
PauseKeyOption = Annotated[
    str,
    typer.Option(
        "--pause-key",
        help="X11 hotkey that pauses the agent so you can take over; press again to hand back.",
    ),
]
NoHotkeysOption = Annotated[
    bool, typer.Option("--no-hotkeys", help="Grab no X11 hotkeys (Ctrl+C still stops the run).")
]


@dataclass
class Guards:
    """What the CLI wires around one run: a policy, a confirm hook, the human switches."""

    policy: Policy | None = None
    confirm: Any = None
    control: RunControl = field(default_factory=RunControl)
    kill_key: str = KILL_KEY
    pause_key: str = PAUSE_KEY
    hotkeys: bool = True


def guards(
    policy: Path | None,
    confirm: bool,
    kill_key: str = KILL_KEY,
    pause_key: str = PAUSE_KEY,
    hotkeys: bool = True,
) -> Guards:
    """Read the policy file (ConfigError, exit 2, when it is bad) and build the run's guards."""
    from pixelpilot.agent.errors import ConfigError
    from pixelpilot.tools.x11_hotkeys import parse_combo

    if hotkeys and parse_combo(kill_key) == parse_combo(pause_key):
        raise ConfigError(f"--kill-key and --pause-key are the same key ({kill_key})")
    the_policy = Policy.from_file(policy) if policy is not None else None
    if confirm and the_policy is None:
        the_policy = Policy.confirm_all()
    return Guards(
        policy=the_policy,
        confirm=terminal_confirm if confirm else None,
        kill_key=kill_key,
        pause_key=pause_key,
        hotkeys=hotkeys,
    )


def terminal_confirm(c: Confirmation) -> bool:
    """Ask on the terminal; anything but y/yes (or no terminal input at all) means no."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    err.print(f"[yellow]confirm:[/] {escape(c.describe())} — run it? \\[y/N] ", end="")
    line = sys.stdin.readline()
    if not sys.stdin.isatty():  # the answer was not typed: show it, so the log reads right
        err.print(escape(line.strip()) if line else "(no answer: refused)")
    return line.strip().lower() in ("y", "yes")


def hotkey_display(device: Any) -> str | None:
    """Where to grab the hotkeys: the desktop device's display, else $DISPLAY (a person at a
    desktop watching a phone or a robot), else nowhere."""
    display = getattr(device, "display", None)
    if isinstance(display, str) and display:
        return display
    return os.environ.get("DISPLAY") or None


@contextlib.contextmanager
def listening(g: Guards, device: Any, out: Console) -> Iterator[None]:
    """The kill and pause hotkeys grabbed for the length of the run (when there is a display)."""
    display = hotkey_display(device) if g.hotkeys else None
    if display is None:
        yield
        return
    from pixelpilot.tools.x11_hotkeys import HotkeyListener

    control = g.control

    def pause() -> None:
        control.toggle_pause()
        if control.paused:
            out.print(f"[yellow]paused[/]: the agent stopped acting; press {g.pause_key} to hand "
                      "back control")  # fmt: skip
        else:
            out.print("[green]resumed[/]: the agent looks at the screen again")

    def kill() -> None:
        control.stop()
        out.print("[red]stopping[/]: stopped by user")

    with HotkeyListener(display, {g.kill_key: kill, g.pause_key: pause}):
        out.print(f"[dim]{g.kill_key}: stop the run · {g.pause_key}: take over / hand back "
                  f"(display {display})[/]")  # fmt: skip
        yield
