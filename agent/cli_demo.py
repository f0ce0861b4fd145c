"""``pixelpilot demo``: the main job. A trained model does a MiniWoB++ task it learned, on a seed
it never saw, judged by MiniWoB's own reward.

The default model is the built-in demo model (``demo``: a small Qwen2-VL trained from scratch on
this project's recorded episodes, shipped in the package; docs/training.md has how it was made
and how well it does). Any other model reference runs the same way (``--model tiny``: random
weights, for comparison). ``--scripted`` replays the fixture app's scripted demo scenario
instead, with no model at all.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from pixelpilot.agent.cli_common import out
from pixelpilot.agent.errors import UserError

DEMO_SEEDS = 100_000
"""Fresh seeds are drawn below this; the demo model's episodes were recorded from it up."""
FALLBACK_TASKS = ("click-test",)


def demo(
    model: Annotated[
        str, typer.Option(help="Model reference (default: the built-in demo model).")
    ] = "demo",
    task: Annotated[
        str | None,
        typer.Option(help="MiniWoB++ task (default: one the demo model was trained on, at random)."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help=f"Episode seed (default: a fresh one below {DEMO_SEEDS}).")
    ] = None,
    scripted: Annotated[
        bool,
        typer.Option(help="Replay the fixture app's scripted demo scenario instead (no model)."),
    ] = False,
    max_steps: Annotated[int, typer.Option(min=1)] = 5,
    out_dir: Annotated[Path, typer.Option("--out", help="Where run directories go.")] = Path(
        "runs"
    ),
) -> None:
    """Run a trained model on a MiniWoB++ task it learned, on a fresh seed, in a real Chromium on
    a virtual display: one line per step, then MiniWoB's own verdict (its reward), and where the
    trajectory went. Exit 0 unless the run hit an error."""
    if scripted:
        from pixelpilot.agent.cli_scenario import run_files
        from pixelpilot.scenarios.spec import BUILTIN_DIR

        run_files([BUILTIN_DIR / "desktop" / "demo.yaml"], dialect=None, out_dir=out_dir)
        return
    from pixelpilot.envs.miniwob_bench import BenchConfig, run_bench
    from pixelpilot.envs.miniwob_env import MiniWoBEnv, all_tasks
    from pixelpilot.tools.xvfb import ensure_display
    from pixelpilot.vlm.registry import default_dialect, load_model, local_checkpoint

    trained = trained_tasks(model)
    chosen = task or random.choice(trained)
    if chosen not in all_tasks():
        raise UserError(f"unknown MiniWoB task {chosen!r}; see 'pixelpilot bench miniwob --list'")
    seed = seed if seed is not None else random.randrange(DEMO_SEEDS)
    the_model = load_model(model)
    if model == "demo":
        where = local_checkpoint(model).where
        out.print(f"model: the built-in demo model ({escape(where)}), trained on "
                  f"{', '.join(trained)}")  # fmt: skip
    folder = out_dir / f"demo-{chosen}-{seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    cfg = BenchConfig(tasks=(chosen,), dialect=default_dialect(model), episodes=1, seed=seed,
                      observe="task", max_steps=max_steps, max_seconds=120.0, out=folder)  # fmt: skip
    with ensure_display(1280, 800) as display, MiniWoBEnv(display) as env:
        try:
            (result,) = run_bench(cfg, env, the_model)
        finally:
            the_model.close()
    out.print(f"task: [bold]{escape(chosen)}[/] seed {seed}: {escape(result.utterance)!r}")
    _steps(result.trajectory)
    verdict = "[green]success[/]" if result.success else "[red]failure[/]"
    out.print(f"MiniWoB verdict: {verdict} (reward {result.reward:.3f}; the agent's run: "
              f"{escape(result.status)})")  # fmt: skip
    out.print(f"trajectory: {escape(str(result.trajectory))}  "
              f"(pixelpilot view {escape(str(result.trajectory))})")  # fmt: skip
    raise typer.Exit(3 if result.status == "error" else 0)


def trained_tasks(model: str) -> list[str]:
    """The MiniWoB tasks a model's ``pixelpilot-train.json`` says it was trained on
    (``tasks``), else click-test."""
    from pixelpilot.vlm.checkpoint import TRAIN_RECORD
    from pixelpilot.vlm.registry import local_checkpoint

    if model.startswith(("scripted:", "openai:")):
        return list(FALLBACK_TASKS)
    try:
        where = Path(local_checkpoint(model).where)
        record = json.loads((where / TRAIN_RECORD).read_text(encoding="utf-8"))
        tasks = [str(t) for t in record.get("tasks", [])]
    except (OSError, ValueError, AttributeError):
        return list(FALLBACK_TASKS)
    return tasks or list(FALLBACK_TASKS)


def _steps(trajectory: str | None) -> None:
    """One line per recorded step: the model's call as parsed and what was executed."""
    if trajectory is None:
        return
    from pixelpilot.agent.trajectory import load_trajectory

    for s in load_trajectory(trajectory).steps:
        raw = s.attempts[-1].raw if s.attempts else ""
        done = s.device_action.model_dump(exclude_none=True) if s.device_action else s.error
        out.print(f"  step {s.index}: {escape(raw)!r} -> {escape(str(done))}")
