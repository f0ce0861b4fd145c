"""The flywheel with larger numbers than tests/test_flywheel.py: record, export, train, evaluate.

    python bench/flywheel.py [--tasks A,B] [--episodes N] [--held N] [--steps K] [--lr LR]
                             [--dialect D] [--model tiny] [--keep DIR]

1. ``pixelpilot bench miniwob --model dom-oracle`` records N episodes per task (seeds 0..N-1)
   and, separately, the held-out episodes (seeds 1000..);
2. ``pixelpilot export`` turns the training episodes into SFT data;
3. ``pixelpilot train`` fine-tunes the base (default: the tiny checkpoint, random weights) on
   the export for K steps;
4. ``pixelpilot eval --tolerance 0px`` scores the base and the trained model on the held-out
   steps (a click counts only inside the element that holds the recorded point).

Every command is printed as run (the real CLI, one process each, ``OMP_NUM_THREADS=1``), then a
table per task: type match and exact match, untrained -> trained.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CLI = [sys.executable, "-m", "pixelpilot.agent.cli"]


def run(args: list[str], env: dict[str, str]) -> float:
    """Run ``pixelpilot ARGS``; its seconds. Exits with its output when it fails."""
    print("$ pixelpilot " + shlex.join(args), flush=True)
    t0 = time.perf_counter()
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return time.perf_counter() - t0


def per_task(report: dict[str, Any]) -> dict[str, tuple[int, float, float, str]]:
    """{MiniWoB task: (steps, type match, exact, "clicks in their element/clicks")} from an eval
    report of bench episodes (their directories are episodes/TASK/NNN); "all" for every step."""
    task_of = {t["path"]: Path(t["path"]).parent.name for t in report["trajectories"]}
    groups: dict[str, list[dict[str, Any]]] = {}
    for s in report["steps"]:
        groups.setdefault(task_of[s["trajectory"]], []).append(s)
    groups["all"] = report["steps"]
    rows = {}
    for task, ss in sorted(groups.items(), key=lambda kv: kv[0] == "all"):
        clicks = [s for s in ss if s["expected"] == "click"]
        hit = f"{sum(s['exact'] for s in clicks)}/{len(clicks)}"
        n = len(ss)
        rows[task] = (n, sum(s["type_match"] for s in ss) / n, sum(s["exact"] for s in ss) / n, hit)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tasks", default="click-test,focus-text,click-button,enter-text")
    ap.add_argument("--episodes", type=int, default=10, help="training episodes per task")
    ap.add_argument("--held", type=int, default=3, help="held-out episodes per task")
    ap.add_argument("--steps", type=int, default=400, help="training steps")
    ap.add_argument("--lr", default="3e-3")
    ap.add_argument("--dialect", default="uitars-1.5")
    ap.add_argument("--model", default="tiny", help="the base checkpoint")
    ap.add_argument("--keep", type=Path, help="work here (kept) instead of a temp folder")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="pp-flywheel-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    train, held, sft, model = (str(work / n) for n in ("train", "held", "sft", "model"))
    bench = ["bench", "miniwob", "--model", "dom-oracle", "--dialect", args.dialect,
             "--tasks", args.tasks, "--no-reports"]  # fmt: skip
    secs = {
        "record": run(
            [*bench, "--episodes", str(args.episodes), "--seed", "0", "--out", train], env
        ),
        "held-out": run(
            [*bench, "--episodes", str(args.held), "--seed", "1000", "--out", held], env
        ),
        "export": run(["export", train, "--out", sft], env),
        "train": run(
            [
                "train",
                sft,
                "--out",
                model,
                "--model",
                args.model,
                "--max-steps",
                str(args.steps),
                "--lr",
                args.lr,
                "--log-steps",
                "50",
            ],
            env,
        ),  # fmt: skip
    }
    reports = {}
    for name, ref in (("untrained", args.model), ("trained", model)):
        out = work / f"eval-{name}.json"
        secs[f"eval {name}"] = run(
            ["eval", held, "--model", ref, "--tolerance", "0px", "--json", str(out)], env
        )
        reports[name] = per_task(json.loads(out.read_text(encoding="utf-8")))
    rec = json.loads((Path(model) / "pixelpilot-train.json").read_text(encoding="utf-8"))
    print(f"\ntrained on {rec['examples']} steps of {args.episodes} episodes per task; "
          f"{rec['steps']} steps, final loss {rec['final_loss']:.3f}, {rec['s_per_step']:.3f} s/step")  # fmt: skip
    print(f"{'task':<14} {'held-out steps':>14} {'type match':>15} {'exact match':>15} "
          f"{'clicks in element':>18}")  # fmt: skip
    for task, (n, t0, e0, c0) in reports["untrained"].items():
        _, t1, e1, c1 = reports["trained"][task]
        print(f"{task:<14} {n:>14} {t0:>6.0%} -> {t1:>4.0%} {e0:>6.0%} -> {e1:>4.0%} "
              f"{c0:>9} -> {c1:<5}")  # fmt: skip
    print("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in secs.items()))
    print(f"files: {work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
