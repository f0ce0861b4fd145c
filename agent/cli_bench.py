"""``pixelpilot bench miniwob``: a thin layer over ``pixelpilot.envs.miniwob_bench``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from pixelpilot.agent.cli_common import RAY_HELP, out, ray_backend
from pixelpilot.agent.errors import ConfigError, UserError
from pixelpilot.agent.geometry import PixelBudget

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks with their own success checks.")
ORACLE = "dom-oracle"


def _screen(value: str) -> tuple[int, int]:
    w, sep, h = value.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit() or int(w) < 320 or int(h) < 240:
        raise ConfigError(f"--screen {value!r}: use WIDTHxHEIGHT, at least 320x240, e.g. 1920x1080")
    return int(w), int(h)


@bench_app.command("miniwob")
def miniwob(
    model: Annotated[
        str | None,
        typer.Option(
            help="Model reference (see 'pixelpilot model list'), or dom-oracle: the DOM "
            "reference policy, for testing the pixel path only."
        ),
    ] = None,
    dialect: Annotated[
        str | None, typer.Option(help="Dialect (default: the model's own; qwen2vl for dom-oracle).")
    ] = None,
    tasks: Annotated[str | None, typer.Option(help="Comma-separated task names.")] = None,
    suite: Annotated[str | None, typer.Option(help="demo (default) | oracle | all.")] = None,
    episodes: Annotated[int, typer.Option(min=1, help="Episodes per task.")] = 5,
    seed: Annotated[int, typer.Option(help="Episode i of a task uses seed SEED + i.")] = 0,
    observe: Annotated[
        str,
        typer.Option(help="What the model sees: task (the 160x210 task area) | window | screen."),
    ] = "task",
    direct: Annotated[
        bool,
        typer.Option(
            "--direct", help="dom-oracle only: act with Selenium on the DOM instead of pixels."
        ),
    ] = False,
    max_steps: Annotated[int, typer.Option(min=1)] = 25,
    max_seconds: Annotated[
        float, typer.Option(min=1, help="Agent time budget per episode.")
    ] = 120.0,
    episode_seconds: Annotated[
        float | None,
        typer.Option(min=1, help="Replace the tasks' own time limits (mostly 10 s)."),
    ] = None,
    max_pixels: Annotated[int | None, typer.Option(min=3136)] = None,
    min_pixels: Annotated[int, typer.Option(min=3136)] = 3136,
    screen: Annotated[
        str, typer.Option(help="Virtual display size, when one is started.")
    ] = "1920x1080",
    out_dir: Annotated[Path | None, typer.Option("--out", help="Output directory.")] = None,
    list_tasks: Annotated[
        bool, typer.Option("--list", help="List tasks and suites, then exit.")
    ] = False,
    reports: Annotated[bool, typer.Option(help="Write each episode's HTML report.")] = True,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Run episodes in this many worker processes, each with its own virtual "
            "display, Chromium and model (docs/parallel.md).",
        ),
    ] = 1,
    timeout: Annotated[
        float | None,
        typer.Option(
            min=1,
            help="With --workers > 1: an episode running longer is recorded as timeout and "
            "its worker replaced (default: --max-seconds + 60).",
        ),
    ] = None,
    ray: Annotated[
        str | None, typer.Option("--ray", metavar="[ADDRESS]", help=RAY_HELP)
    ] = None,
) -> None:
    """Run MiniWoB++ episodes through the real agent loop on Chromium, scored by MiniWoB's own
    reward: a table per task, JSON, every episode's trajectory and an HTML index."""
    from pixelpilot.agent.dialects import get_dialect
    from pixelpilot.envs.miniwob_bench import SUITES, BenchConfig, resolve_tasks

    if list_tasks:
        _list(SUITES)
        return
    if model is None:
        raise ConfigError(f"--model is required: a model reference, or {ORACLE}")
    if observe not in ("task", "window", "screen"):
        raise ConfigError(f"--observe {observe!r}: use task, window or screen")
    if direct and model != ORACLE:
        raise ConfigError(f"--direct acts on the DOM and needs --model {ORACLE}")
    if max_pixels is not None and max_pixels < min_pixels:
        raise ConfigError(f"--max-pixels {max_pixels} is below --min-pixels {min_pixels}")
    names = resolve_tasks(tasks, suite)
    size = _screen(screen)
    if dialect is None:
        from pixelpilot.vlm.registry import default_dialect

        dialect = "qwen2vl" if model == ORACLE else default_dialect(model)
    get_dialect(dialect)  # a bad name fails before anything starts
    folder = out_dir or Path("runs") / f"miniwob-{time.strftime('%Y%m%d-%H%M%S')}"
    cfg = BenchConfig(
        tasks=names, dialect=dialect, episodes=episodes, seed=seed, observe=observe,  # type: ignore[arg-type]
        direct=direct, max_steps=max_steps, max_seconds=max_seconds,
        episode_seconds=episode_seconds, out=folder,
    )  # fmt: skip
    pixels = PixelBudget(min_pixels, max_pixels) if max_pixels is not None else None
    if workers > 1 or ray is not None:
        if model != ORACLE:  # a bad reference fails before a worker starts
            from pixelpilot.vlm.registry import check_reference

            check_reference(model)
        _run_parallel(cfg, model, pixels, size, reports, workers, timeout or max_seconds + 60, ray)
        return
    loaded = None
    if model != ORACLE:  # a bad reference fails before a browser starts
        from pixelpilot.vlm.registry import load_model

        loaded = load_model(model, **({"pixels": pixels} if pixels is not None else {}))
    _run(cfg, model, loaded, pixels, size, reports)


def _list(suites: tuple[str, ...]) -> None:
    from pixelpilot.envs.miniwob_bench import resolve_tasks

    for s in suites:
        out.print(f"[bold]{s}[/]: {' '.join(resolve_tasks(None, s))}")


def _run(
    cfg: Any,
    model_ref: str,
    model: Any,
    pixels: PixelBudget | None,
    size: tuple[int, int],
    reports: bool,
) -> None:
    """Start the display and the browser, run with progress, print the table, write files.
    ``model`` is the loaded model, or None for the DOM oracle (it needs the browser)."""
    from pixelpilot.envs.miniwob_bench import run_bench
    from pixelpilot.envs.miniwob_env import MiniWoBEnv
    from pixelpilot.tools.xvfb import ensure_display

    _fresh(cfg.out)
    total = len(cfg.tasks) * cfg.episodes
    won = 0
    with ensure_display(*size) as display, MiniWoBEnv(
        display, episode_seconds=cfg.episode_seconds
    ) as env, _progress() as progress:  # fmt: skip
        if model is None and not cfg.direct:
            from pixelpilot.envs.dom_oracle import DomOracle

            model = DomOracle(env)
            if pixels is not None:
                model.pixels = pixels
        bar = progress.add_task("starting", total=total)

        def started(task: str, i: int) -> None:
            progress.update(bar, description=f"{task} #{i}  [green]{won} won[/]")

        def finished(r: Any) -> None:
            nonlocal won
            won += r.success
            progress.advance(bar)

        try:
            results = run_bench(cfg, env, model, on_episode=finished, on_start=started)
        finally:
            if model is not None:
                model.close()
    _report(cfg, model_ref, results, reports)


def _fresh(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        raise UserError(f"--out {folder} is not empty; name a new directory")


def _progress() -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=out, transient=True,
    )  # fmt: skip


def _run_parallel(
    cfg: Any,
    model_ref: str,
    pixels: PixelBudget | None,
    size: tuple[int, int],
    reports: bool,
    workers: int,
    timeout: float,
    ray: str | None = None,
) -> None:
    """The episodes as jobs for ``workers`` processes, each with its own display, browser and
    model; the same table and files as one process writes. Ctrl-C keeps what finished."""
    from pixelpilot.agent.workers import JobResult, RunInterrupted, run_jobs
    from pixelpilot.envs.miniwob_slot import MiniWoBSlotFactory, episode_results, miniwob_jobs
    from pixelpilot.vlm.registry import load_model

    _fresh(cfg.out)
    jobs = miniwob_jobs(cfg)
    factory = MiniWoBSlotFactory(
        cfg, model=model_ref, loader=None if model_ref == ORACLE else load_model,
        pixels=pixels, screen=size,
    )  # fmt: skip
    won = 0
    with _progress() as progress:
        bar = progress.add_task(f"{workers} workers starting", total=len(jobs))

        def finished(r: JobResult) -> None:
            nonlocal won
            won += bool(r.payload and r.payload.get("success"))
            progress.update(bar, advance=1, description=f"{workers} workers  [green]{won} won[/]")
            if r.status != "ok" or r.retried:
                note = f"{r.status}{' (retried)' if r.retried else ''}"
                progress.console.print(
                    f"[yellow]{escape(r.job_id)}[/]: {note} {escape(r.error or '')}"
                )

        try:
            backend, address = ray_backend(ray)
            results = run_jobs(jobs, factory, workers=workers, out_dir=cfg.out / "episodes",
                               on_result=finished, job_timeout_s=timeout,
                               backend=backend, ray_address=address)  # fmt: skip
            stopped = None
        except RunInterrupted as exc:
            results, stopped = exc.results, exc
    _report(cfg, model_ref, episode_results(results, jobs, cfg.out / "episodes"), reports)
    if stopped is not None:
        out.print(
            f"[red]interrupted[/]: {len(results)} of {len(jobs)} episodes finished; "
            "their trajectories and results are above"
        )
        raise typer.Exit(130)


def _report(cfg: Any, model_ref: str, results: list[Any], reports: bool) -> None:
    """The table, the SDK overhead line, results.json, the reports and the index."""
    from pixelpilot.envs.bench_report import overhead_stats, write_all

    mode = "direct (Selenium)" if cfg.direct else f"{cfg.dialect}, observe {cfg.observe}"
    name = model_ref if not cfg.direct else f"{model_ref} --direct"
    _table(results, f"MiniWoB++ — {name} ({mode})")
    stats = overhead_stats(results)
    if stats:
        parts = ", ".join(f"{k} {v:.1f}" for k, v in stats["parts_median"].items())
        out.print(
            f"SDK overhead per step (no model, no settle wait): median {stats['median']:.1f} ms, "
            f"p90 {stats['p90']:.1f} ms over {stats['steps']} steps; medians: {parts}"
        )
    index = write_all(cfg, name, results, reports=reports)
    out.print(f"results: {escape(str(cfg.out / 'results.json'))}  index: {escape(str(index))}")


def _table(results: list[Any], title: str) -> None:
    from pixelpilot.envs.bench_report import summarize

    table = Table("task", "success", "mean reward", "steps", "s/step", "invalid", "overhead ms",
                  title=title, box=None)  # fmt: skip
    for r in summarize(results):
        table.add_row(
            escape(r.task), f"{100 * r.success_rate:.0f}% ({r.episodes})", f"{r.mean_reward:.3f}",
            f"{r.mean_steps:.1f}", f"{r.seconds_per_step:.2f}", f"{100 * r.invalid_rate:.1f}%",
            f"{r.overhead_ms:.1f}",
        )  # fmt: skip
    out.print(table)
