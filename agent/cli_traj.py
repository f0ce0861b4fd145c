"""CLI commands over trajectory directories: ``view``, ``eval`` and ``export``.

``register(app)`` adds them to the ``pixelpilot`` Typer app; each is a thin layer over
``viewer.write_report``, ``animate.write_gif``, ``evaluate.evaluate`` and ``export.export_sft``.
Bad input raises pixelpilot errors, which ``cli.main`` prints as one line with an exit code.
"""

from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from pixelpilot.agent.errors import UserError

out = Console(highlight=False, soft_wrap=True)


def _dirs(paths: list[Path]) -> list[Path]:
    """Trajectory directories: each PATH itself when it holds run.json, else its run
    directories one level down (so ``runs/`` works)."""
    found: list[Path] = []
    for p in paths:
        if (p / "run.json").is_file():
            found.append(p)
        elif p.is_dir():
            kids = sorted(c for c in p.iterdir() if (c / "run.json").is_file())
            if not kids:
                raise UserError(
                    f"{p}: no trajectory here (no run.json in it or its subdirectories)"
                )
            found.extend(kids)
        else:
            raise UserError(f"{p}: not a trajectory directory")
    return found


def view(
    trajectory: Annotated[Path, typer.Argument(help="A run directory.")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="HTML file (default: DIR/report.html).")
    ] = None,
    open_it: Annotated[bool, typer.Option("--open", help="Open it in a browser.")] = False,
    gif: Annotated[
        Path | None,
        typer.Option("--gif", help="Also render an animation (.gif; .mp4 needs imageio-ffmpeg)."),
    ] = None,
    link: Annotated[
        bool, typer.Option("--link", help="Refer to the screenshots instead of embedding them.")
    ] = False,
    fps: Annotated[float, typer.Option(min=0.1, help="Animation steps per second.")] = 1.0,
) -> None:
    """Write an HTML report of a run (screenshots with the actions drawn on them)."""
    from pixelpilot.agent.viewer import write_report

    (trajectory,) = _dirs([trajectory])
    report = write_report(trajectory, out_file, images="link" if link else "embed")
    out.print(f"report: {escape(str(report))}")
    if gif is not None:
        from pixelpilot.agent.animate import write_gif

        out.print(f"animation: {escape(str(write_gif(trajectory, gif, fps=fps)))}")
    if open_it:
        webbrowser.open(report.resolve().as_uri())


def eval_cmd(
    trajectories: Annotated[
        list[Path], typer.Argument(help="Run directories (or folders of them).")
    ],
    model: Annotated[str, typer.Option(help="Model reference, e.g. scripted:outputs.yaml")],
    dialect: Annotated[
        str | None, typer.Option(help="Dialect to prompt in (default: each run's own).")
    ] = None,
    tolerance: Annotated[
        str | None, typer.Option(help="Point tolerance without a target box: '14px' or '14%'.")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the report as JSON.")
    ] = None,
) -> None:
    """Score a model on recorded steps offline (no device): type match, exact match, invalid."""
    from pixelpilot.agent.evaluate import evaluate, parse_tolerance
    from pixelpilot.vlm.registry import load_model

    dirs = _dirs(trajectories)
    if tolerance is not None:
        parse_tolerance(tolerance)  # a bad value fails before the model loads
    the_model = load_model(model)
    try:
        report = evaluate(the_model, dirs, dialect=dialect, tolerance=tolerance)
    finally:
        the_model.close()
    out.print(report.table())
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(report.model_dump_json(indent=2), encoding="utf-8")
        out.print(f"json: {escape(str(json_out))}")


def export_cmd(
    trajectories: Annotated[
        list[Path], typer.Argument(help="Run directories (or folders of them).")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Output directory.")],
    dialect: Annotated[
        str | None, typer.Option(help="Target dialect (default: each run's own).")
    ] = None,
    all_runs: Annotated[
        bool, typer.Option("--all", help="Include runs that did not succeed.")
    ] = False,
    keep_retried: Annotated[
        bool, typer.Option("--keep-retried", help="Keep steps with rejected answers.")
    ] = False,
    link: Annotated[
        bool, typer.Option("--link", help="Symlink images instead of copying.")
    ] = False,
) -> None:
    """Write supervised fine-tuning data (Qwen2-VL chat, LLaMA-Factory sharegpt JSONL)."""
    from pixelpilot.agent.export import export_sft

    stats = export_sft(
        _dirs(trajectories),
        out_dir,
        dialect=dialect,
        only_success=not all_runs,
        drop_retried=not keep_retried,
        images="link" if link else "copy",
    )
    skipped = ", ".join(f"{k}: {v}" for k, v in sorted(stats.skipped.items())) or "none"
    out.print(
        f"wrote {stats.written} of {stats.steps} steps from {stats.trajectories} runs to "
        f"{escape(stats.out)} ({stats.bytes / 1e6:.1f} MB, {stats.seconds:.2f} s); "
        f"skipped: {escape(skipped)}"
    )


def register(app: typer.Typer) -> None:
    """Add ``view``, ``eval`` and ``export`` to ``app``."""
    app.command("view")(view)
    app.command("eval")(eval_cmd)
    app.command("export")(export_cmd)
