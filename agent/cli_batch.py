"""``pixelpilot batch TASKS.jsonl``: many tasks, each on a fresh target, over parallel workers.

For collecting runs (training data, evaluations): every line of the file is a task on a
built-in target or a device (``pixelpilot.scenarios.batch``); the lines are jobs for N worker
processes, each with its own virtual display, target and model; every run's trajectory and one
``batch.json`` land in one output directory.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from pixelpilot.agent.cli_common import RAY_HELP, out, ray_backend
from pixelpilot.agent.errors import ConfigError, UserError


def batch(
    tasks: Annotated[
        Path, typer.Argument(help="A JSONL file: one task per line (docs/parallel.md).")
    ],
    model: Annotated[
        str, typer.Option(help="Model reference (see 'pixelpilot model list'), for every line.")
    ],
    dialect: Annotated[str | None, typer.Option(help="Dialect (default: the model's own).")] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes, each with its own display and target.")
    ] = 1,
    max_steps: Annotated[int, typer.Option(min=1, help="Per line, unless it says.")] = 15,
    max_seconds: Annotated[float, typer.Option(min=1, help="Per line, unless it says.")] = 300.0,
    timeout: Annotated[
        float | None,
        typer.Option(
            min=1,
            help="A line running longer is recorded as timeout (default: its max seconds + 60).",
        ),
    ] = None,
    screen: Annotated[str, typer.Option(help="Each worker's virtual display.")] = "1280x800",
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Output directory (default runs/batch-TIME).")
    ] = None,
    ray: Annotated[
        str | None, typer.Option("--ray", metavar="[ADDRESS]", help=RAY_HELP)
    ] = None,
) -> None:
    """Run every task of TASKS.jsonl with MODEL on its target or device, in WORKERS parallel
    processes; a line per task, every trajectory and batch.json in one directory. Exit 0 when
    every task ended in success (and its checks held), 1 otherwise, 130 on Ctrl-C."""
    from pixelpilot.agent.cli_bench import _screen
    from pixelpilot.agent.dialects import get_dialect
    from pixelpilot.agent.workers import JobResult, RunInterrupted, run_jobs
    from pixelpilot.scenarios.batch import load_batch
    from pixelpilot.scenarios.slots import TaskSlotFactory, batch_jobs
    from pixelpilot.vlm.registry import check_reference, default_dialect

    lines = load_batch(tasks)
    if workers > 1:
        _one_worker_per_device(tasks, lines)
    size = _screen(screen)
    the_dialect = get_dialect(dialect or default_dialect(model)).name
    check_reference(model)
    folder = out_dir or Path("runs") / f"batch-{time.strftime('%Y%m%d-%H%M%S')}"
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        raise UserError(f"--out {folder} is not empty; name a new directory")
    jobs = batch_jobs(lines)
    longest = max(line.max_seconds or max_seconds for line in lines)
    factory = TaskSlotFactory(model, the_dialect, size, max_steps, max_seconds)
    try:
        backend, address = ray_backend(ray)
        results: list[JobResult] = run_jobs(
            jobs, factory, workers=workers, out_dir=folder, on_result=_show,
            job_timeout_s=timeout or longest + 60, backend=backend, ray_address=address,
        )  # fmt: skip
        stopped = False
    except RunInterrupted as exc:
        results, stopped = exc.results, True
    ok = sum(_ok(r) for r in results)
    summary: dict[str, Any] = {
        "tasks": str(tasks), "model": model, "dialect": the_dialect, "workers": workers,
        "total": len(jobs), "finished": len(results), "ok": ok,
        "runs": [r.to_dict() for r in results],
    }  # fmt: skip
    (folder / "batch.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    colour = "[green]" if ok == len(jobs) else "[red]"
    note = f" ({len(jobs) - len(results)} not run: interrupted)" if stopped else ""
    out.print(f"{colour}{ok} of {len(jobs)} tasks succeeded[/]{note}; trajectories and "
              f"batch.json in {escape(str(folder))}")  # fmt: skip
    raise typer.Exit(130 if stopped else 0 if ok == len(jobs) else 1)


def _one_worker_per_device(tasks: Path, lines: list[Any]) -> None:
    """A device that exists once (a phone by serial) can serve one worker at a time: with
    several workers, one line per such device."""
    first: dict[str, int] = {}
    for line in lines:
        dev = line.exclusive
        if dev is not None and dev in first:
            raise ConfigError(
                f"{tasks} line {line.line}: {dev} is also line {first[dev]}'s device; a device "
                "serves one worker at a time: run these lines with --workers 1"
            )
        if dev is not None:
            first[dev] = line.line


def _ok(r: Any) -> bool:
    p = r.payload
    return bool(r.status == "ok" and p and p["status"] == "success" and p["achieved"] is not False)


def _show(r: Any) -> None:
    p = r.payload
    retried = " (retried)" if r.retried else ""
    if r.status != "ok" or p is None:
        out.print(f"[red]✗[/] {escape(r.job_id)} {r.status}{retried}: {escape(r.error or '')}")
        return
    mark = "[green]✓[/]" if _ok(r) else "[red]✗[/]"
    judged = {True: ", achieved", False: ", NOT achieved", None: ""}[p["achieved"]]
    out.print(f"{mark} {escape(r.job_id)} (line {p['line']}) {p['status']}{judged}: "
              f"{escape(p['reason'])}{retried} [dim]worker {r.worker}, {p['steps']} steps[/]")  # fmt: skip
    for line in p["checks"]:
        out.print(f"     [red]✗[/] {escape(line)}")
