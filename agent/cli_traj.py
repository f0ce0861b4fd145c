"""CLI commands over trajectory directories: ``view``, ``eval``, ``export`` and ``replay``.

``register(app)`` adds them to the ``pixelpilot`` Typer app; each is a thin layer over
``viewer.write_report``, ``animate.write_gif``, ``evaluate.evaluate``, ``export.export_sft`` and
``replay.replay``. A trajectory is data: nothing it names is started or run.
Bad input raises pixelpilot errors, which ``cli.main`` prints as one line with an exit code.
"""

from __future__ import annotations

import contextlib
import webbrowser
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from pixelpilot.agent.cli_common import describe_step, display, out
from pixelpilot.agent.errors import UserError
from pixelpilot.scenarios.targets import DEVICE_HELP, TARGET_HELP

SecretOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--secret",
        help="NAME=VALUE or NAME=env:VARIABLE (repeatable): the model writes "
        "<secret>NAME</secret>, the device types the value, no record or output holds it.",
    ),
]
SecretsFileOpt = Annotated[
    list[Path] | None,
    typer.Option("--secrets-file", help="Secrets as .env lines (NAME=VALUE) or a YAML mapping."),
]


def _dirs(paths: list[Path]) -> list[Path]:
    """Trajectory directories: each PATH itself when it holds run.json, else the run
    directories below it at any depth (``runs/``, a bench's ``--out``: episodes/TASK/NNN)."""
    from pixelpilot.agent.train_data import runs_below

    found: list[Path] = []
    for p in paths:
        if (p / "run.json").is_file():
            found.append(p)
        elif p.is_dir():
            kids = runs_below(p)
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

    found = _dirs([trajectory])
    if len(found) > 1:
        raise UserError(f"{trajectory} holds {len(found)} runs; view one of them")
    trajectory = found[0]
    report = write_report(trajectory, out_file, images="link" if link else "embed")
    out.print(f"report: {escape(str(report))}")
    if gif is not None:
        from pixelpilot.agent.animate import write_gif

        out.print(f"animation: {escape(str(write_gif(trajectory, gif, fps=fps)))}")
    if open_it:
        webbrowser.open(report.resolve().as_uri())


def eval_cmd(
    trajectories: Annotated[
        list[Path], typer.Argument(help="Run directories, or folders holding them at any depth.")
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
        list[Path], typer.Argument(help="Run directories, or folders holding them at any depth.")
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


def replay_cmd(
    trajectory: Annotated[Path, typer.Argument(help="A run directory.")],
    target: Annotated[str | None, typer.Option(help=f"Replay on {TARGET_HELP}.")] = None,
    device: Annotated[
        str | None, typer.Option(help=f"Or replay on this device: {DEVICE_HELP}.")
    ] = None,
    secret: SecretOpt = None,
    secrets_file: SecretsFileOpt = None,
) -> None:
    """Re-execute a trajectory's executed actions on a target you name: a built-in one
    (--target) or a device (--device). Nothing the trajectory names is started or run."""
    from pixelpilot.agent.replay import replay
    from pixelpilot.agent.secrets import Secrets
    from pixelpilot.agent.trajectory import load_trajectory
    from pixelpilot.scenarios.targets import builtin_target, open_device, open_target
    from pixelpilot.scenarios.targets import suggest_target as suggest

    traj = load_trajectory(trajectory)
    hint = suggest(traj.meta.extra.get("target"))
    if (target is None) == (device is None):
        said = f"; it was recorded on the built-in target {hint!r} (--target {hint})" if hint else ""
        raise UserError(f"say where to replay: --target NAME or --device REF, one of them{said}")
    secrets = Secrets.from_cli(secret or [], secrets_file or [])
    missing = secrets.missing([s.device_action for s in traj.steps if s.executed is not None])
    if missing:
        raise UserError(f"the run types the secrets {', '.join(missing)}: give --secret NAME=...")
    size = (int(traj.meta.device.get("width") or 0), int(traj.meta.device.get("height") or 0))
    with contextlib.ExitStack() as stack:
        if target is not None:
            spec = builtin_target(
                target, screen=size if all(size) else None, recorded=traj.meta.extra.get("target")
            )
            if spec.kind == "desktop":
                stack.enter_context(display(*spec.screen))
            dev = stack.enter_context(open_target(spec, name=target)).device
        elif device is not None:
            if device.startswith("desktop") and all(size):
                stack.enter_context(display(*size))  # only when no display is set
            dev = stack.enter_context(open_device(device))
        if hint and target != hint:
            out.print(f"[dim]recorded on the built-in target {escape(hint)}[/]")
        done = replay(
            traj, dev, secrets=secrets,
            on_step=lambda s, e: out.print(f"step {s.index:>2}  {describe_step(s)}"),
        )  # fmt: skip
    out.print(f"replayed {len(done)} actions from {escape(str(trajectory))}")


def register(app: typer.Typer) -> None:
    """Add ``view``, ``eval``, ``export`` and ``replay`` to ``app``."""
    app.command("view")(view)
    app.command("eval")(eval_cmd)
    app.command("export")(export_cmd)
    app.command("replay")(replay_cmd)
