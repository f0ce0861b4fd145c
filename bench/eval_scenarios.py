"""Offline evaluation tables for the shipped desktop scenarios.

    python bench/eval_scenarios.py [RUNS_DIR] [--tiny] [--json OUT]

Without RUNS_DIR the scenarios are recorded first (Xvfb + Tk fixture app, with element boxes).
Models: ``scripted (recorded)`` replays the accepted answers (must score 100%);
``scripted (+100 px)`` answers the recorded actions with every point moved 100 px right (inside
the element box it still counts, outside it misses: the 14 px tolerance is exceeded);
``--tiny`` adds the tiny random-weight Qwen2-VL checkpoint through the local backend with
grammar-constrained decoding (pixel budget 256*28*28 to keep the CPU prefill short).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console

sys.path.insert(0, str(Path(__file__).parent))

from pixelpilot.agent.actions import Point, map_points  # noqa: E402
from pixelpilot.agent.dialects import get_dialect  # noqa: E402
from pixelpilot.agent.evaluate import (  # noqa: E402
    EvalReport,
    accepted_raw,
    evaluate,
    recorded_outputs,
    step_context,
    to_space,
)
from pixelpilot.agent.geometry import HUB_PIXELS, PixelBudget  # noqa: E402
from pixelpilot.agent.trajectory import load_trajectory  # noqa: E402
from pixelpilot.vlm.scripted import ScriptedModel  # noqa: E402


def shifted_outputs(runs: list[Path], dx: int = 100) -> list[str]:
    """Every scored step's recorded action, points moved ``dx`` px right, in the run's dialect."""
    out = []
    for r in runs:
        traj = load_trajectory(r)
        dialect = get_dialect(traj.meta.dialect)
        for step in traj.steps:
            raw = accepted_raw(step)
            if raw is None or step.device_action is None:
                continue
            w = int(step.geometry["width"])
            ctx = step_context(traj, step, HUB_PIXELS.resize(w, int(step.geometry["height"])))

            def move(p: Point, w: int = w) -> Point:
                return Point(x=min(p.x + dx, w - 1), y=p.y, space=p.space)

            moved = map_points(step.device_action, move)
            try:
                out.append(dialect.format(to_space(moved, dialect, ctx), ctx))
            except ValueError:
                out.append(raw)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("runs", nargs="?", type=Path)
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pp-bench-eval-"))
    console = Console(width=110)
    reports: dict[str, Any] = {}
    try:
        from record_runs import recorded_runs

        _, runs = recorded_runs(args.runs, work)
        models: list[tuple[str, Any]] = [
            (
                "scripted (recorded)",
                ScriptedModel(recorded_outputs(runs), name="scripted-recorded"),
            ),
            ("scripted (+100 px)", ScriptedModel(shifted_outputs(runs), name="scripted-shifted")),
        ]
        if args.tiny:
            from pixelpilot.vlm.local import LocalModel
            from pixelpilot.vlm.tiny import ensure_tiny

            tiny = LocalModel(str(ensure_tiny("small")), pixels=PixelBudget(3136, 256 * 28 * 28))
            models.append(("tiny (random weights, constrained)", tiny))
        for label, model in models:
            report: EvalReport = evaluate(model, runs)
            console.print(report.table())
            o = report.overall
            console.print(
                f"[bold]{label}[/]: {o.steps} steps, type {o.type_match:.1%}, exact "
                f"{o.exact:.1%}, invalid {o.invalid:.1%}, {o.seconds_per_step:.3f} s/step\n"
            )
            reports[label] = report.model_dump()
        if args.json:
            args.json.write_text(json.dumps(reports, indent=2), encoding="utf-8")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
