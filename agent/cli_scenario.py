"""CLI commands over scenario files: ``scenario run``, ``test`` and ``list``.

Desktop scenarios need an X display of their screen size: one is started when ``DISPLAY`` is
not set, and scenarios written for different sizes run in one child process per size
(pyautogui binds one display per process).
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from pixelpilot.agent.cli_common import display as _display
from pixelpilot.agent.cli_common import out
from pixelpilot.agent.cli_common import progress as _progress
from pixelpilot.agent.cli_control import PolicyOption, guards
from pixelpilot.agent.errors import UserError

scenario_app = typer.Typer(no_args_is_help=True, help="Run, test and list scenario files.")
DEFAULT_RUNS = Path("runs")


@scenario_app.command("run")
def scenario_run(
    file: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    dialect: Annotated[str | None, typer.Option(help="Only this dialect's script.")] = None,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Where run directories go.")
    ] = DEFAULT_RUNS,
    policy: PolicyOption = None,
) -> None:
    """Run one scenario (every dialect it has a script for) and check the outcome."""
    the_policy = guards(policy, False, hotkeys=False).policy
    run_files([file], dialect=dialect, out_dir=out_dir, policy=the_policy)


@scenario_app.command("test")
def scenario_test(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files or directories (default: built-in).")
    ] = None,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Where run directories go.")
    ] = DEFAULT_RUNS,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="A line per step.")] = False,
) -> None:
    """Run every scenario under PATHS; exit 0 only when every check holds.

    Desktop scenarios written for different screen sizes run in one child process per size
    (each on its own virtual display: pyautogui binds one display per process)."""
    from pixelpilot.scenarios.spec import BUILTIN_DIR, discover

    files = [f for path in paths or [BUILTIN_DIR] for f in discover(path)]
    if not files:
        raise UserError(f"{', '.join(map(str, paths or [BUILTIN_DIR]))}: no scenario files found")
    groups = _by_screen(files)
    if len(groups) > 1:
        _run_groups(groups, out_dir, verbose)
    run_files(files, dialect=None, out_dir=out_dir, verbose=verbose)


def _by_screen(files: list[Path]) -> list[list[Path]]:
    """Files grouped by the desktop screen size they need (non-desktop ones with the first)."""
    from pixelpilot.scenarios.spec import load_scenario

    groups: dict[Any, list[Path]] = {}
    for f in files:
        s = load_scenario(f)  # every file must load before anything runs
        groups.setdefault(s.target.screen if s.target.kind == "desktop" else None, []).append(f)
    other = groups.pop(None, [])
    out = list(groups.values()) or [[]]
    out[0] = other + out[0]
    return out


def _run_groups(groups: list[list[Path]], out_dir: Path, verbose: bool) -> None:
    """Each group in a child process with a display of its own; exit 1 if any failed."""
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    failed = 0
    for group in groups:
        argv = [sys.executable, "-m", "pixelpilot.agent.cli", "scenario", "test",
                *map(str, group), "--out", str(out_dir), *(["-v"] if verbose else [])]  # fmt: skip
        code = subprocess.run(argv, env=env, check=False).returncode
        if code not in (0, 1):
            raise typer.Exit(code)
        failed += code
    out.print(f"{'[red]' if failed else '[green]'}{failed} of {len(groups)} groups failed[/]")
    raise typer.Exit(1 if failed else 0)


@scenario_app.command("list")
def scenario_list(
    path: Annotated[
        Path | None, typer.Argument(help="File or directory (default: built-in).")
    ] = None,
) -> None:
    """List scenarios with their target, dialects and description."""
    from rich.table import Table

    from pixelpilot.scenarios.spec import BUILTIN_DIR, discover, load_scenario

    table = Table("scenario", "target", "dialects", "description", box=None)
    for file in discover(path or BUILTIN_DIR):
        s = load_scenario(file)
        table.add_row(s.name, s.target.kind, ", ".join(s.scripts), escape(s.description))
    out.print(table)


def run_files(
    files: list[Path], dialect: str | None, out_dir: Path, verbose: bool = True, policy: Any = None
) -> None:
    """Run the scenarios in ``files`` (under ``policy``, a ``Policy``, when given) on one
    display; print a line per outcome; exit 1 if any failed."""
    from pixelpilot.scenarios.runner import run_scenario
    from pixelpilot.scenarios.spec import load_scenario

    scenarios = [load_scenario(f) for f in files]  # every file must load before anything runs
    sizes = {s.target.screen for s in scenarios if s.target.kind == "desktop"}
    if len(sizes) > 1:
        raise UserError(
            f"desktop scenarios need different screens {sorted(sizes)}; run them separately"
        )
    failed = 0
    with _display(*sizes.pop()) if sizes else contextlib.nullcontext():
        for s in scenarios:
            for o in run_scenario(
                s,
                dialects=[dialect] if dialect else None,
                out_dir=out_dir,
                on_step=_progress if verbose else None,
                policy=policy,
            ):
                mark = "[green]PASS[/]" if o.passed else "[red]FAIL[/]"
                what = escape(f"{o.scenario} [{o.dialect}] {o.result.status}: {o.result.reason}")
                out.print(f"{mark} {what}")
                for line in o.failures:
                    out.print(f"     [red]✗[/] {escape(line)}")
                if o.result.trajectory:
                    out.print(f"     trajectory: {escape(o.result.trajectory)}")
                failed += not o.passed
    out.print(f"{'[red]' if failed else '[green]'}{failed} failed[/] of {len(scenarios)} scenarios")
    raise typer.Exit(1 if failed else 0)
