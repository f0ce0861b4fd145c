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

from pixelpilot.agent.cli_common import RAY_HELP, out, ray_backend
from pixelpilot.agent.cli_common import display as _display
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
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Run the scenarios in this many worker processes, each with its own virtual "
            "display; trajectories and summary.json go to one folder under --out.",
        ),
    ] = 1,
    timeout: Annotated[
        float,
        typer.Option(min=1, help="With --workers > 1: a run taking longer is recorded as timeout."),
    ] = 300.0,
    ray: Annotated[
        str | None, typer.Option("--ray", metavar="[ADDRESS]", help=RAY_HELP)
    ] = None,
) -> None:
    """Run every scenario under PATHS; exit 0 only when every check holds.

    Desktop scenarios written for different screen sizes run in one child process per size
    (each on its own virtual display: pyautogui binds one display per process)."""
    from pixelpilot.scenarios.spec import BUILTIN_DIR, discover

    files = [f for path in paths or [BUILTIN_DIR] for f in discover(path)]
    if not files:
        raise UserError(f"{', '.join(map(str, paths or [BUILTIN_DIR]))}: no scenario files found")
    if workers > 1 or ray is not None:
        _run_parallel(files, out_dir, workers, timeout, ray)
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


def _screen_of(file: Path) -> tuple[int, int] | None:
    from pixelpilot.scenarios.spec import load_scenario

    s = load_scenario(file)
    return s.target.screen if s.target.kind == "desktop" else None


def _run_parallel(
    files: list[Path], out_dir: Path, workers: int, timeout: float, ray: str | None = None
) -> None:
    """Every (scenario, dialect) as a job for ``workers`` processes with displays of the
    scenarios' size (one pool per size); a line per run, summary.json; exit 1 if any failed,
    130 on Ctrl-C (what finished is kept)."""
    import json
    import time

    from pixelpilot.agent.workers import JobResult, RunInterrupted, run_jobs
    from pixelpilot.scenarios.slots import ScenarioSlotFactory, scenario_jobs

    jobs = scenario_jobs(files)  # every file loads before anything runs
    folder = out_dir / f"scenario-test-{time.strftime('%Y%m%d-%H%M%S')}"
    screen = {str(f.resolve()): _screen_of(f) for f in files}
    sizes = list(dict.fromkeys(s for s in screen.values() if s is not None)) or [(1280, 800)]
    results: list[JobResult] = []
    stopped = False
    try:
        for n, size in enumerate(sizes):  # scenarios without a display go with the first size
            group = [j for j in jobs if (screen[j.spec["file"]] or sizes[0]) == size]
            if n or len(sizes) > 1:
                out.print(f"[dim]{len(group)} runs on {size[0]}x{size[1]} displays[/]")
            backend, address = ray_backend(ray)
            results += run_jobs(group, ScenarioSlotFactory(size), workers=workers,
                                out_dir=folder, on_result=_show, job_timeout_s=timeout,
                                backend=backend, ray_address=address)  # fmt: skip
    except RunInterrupted as exc:
        results += exc.results
        stopped = True
    failed = sum(not (r.payload and r.payload["passed"]) for r in results)
    summary = {"runs": [r.to_dict() for r in results], "failed": failed, "total": len(jobs),
               "finished": len(results), "workers": workers}  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    colour = "[red]" if failed or stopped else "[green]"
    out.print(f"{colour}{failed} failed[/] of {len(results)} runs"
              f"{f' ({len(jobs) - len(results)} not run: interrupted)' if stopped else ''}; "
              f"trajectories and summary.json in {escape(str(folder))}")  # fmt: skip
    raise typer.Exit(130 if stopped else 1 if failed else 0)


def _show(r: Any) -> None:
    """One parallel run's line, as ``run_files`` prints it."""
    p = r.payload
    retried = " (retried)" if r.retried else ""
    if r.status != "ok" or p is None:
        out.print(f"[red]FAIL[/] {escape(r.job_id)} {r.status}{retried}: {escape(r.error or '')}")
        return
    mark = "[green]PASS[/]" if p["passed"] else "[red]FAIL[/]"
    what = f"{p['scenario']} [{p['dialect']}] {p['status']}: {p['reason']}"
    out.print(f"{mark} {escape(what)}{retried} [dim]worker {r.worker}[/]")
    for line in p["failures"]:
        out.print(f"     [red]✗[/] {escape(line)}")


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
