"""The DOM reference policy on MiniWoB++: through pixels in each dialect vs directly on the DOM.

    python bench/bench_miniwob.py [--episodes 10] [--seed 0] [--observe task|window|screen]
        [--dialects qwen2vl,qwen25vl,uitars,uitars-1.5] [--tasks a,b] [--out DIR]

One Xvfb (1920x1080) and one Chromium; for every task of the oracle suite, ``--episodes``
episodes (seeds SEED..SEED+N-1) with Selenium actions on the DOM, then the same seeds through the
real agent loop in each dialect (screenshots, the dialect's call format and coordinate space, real
X pointer and keyboard events). Prints a Markdown table of success rates per task (direct, then
each dialect), the misses with their reasons, and the SDK overhead per step at 1920x1080 (median,
p90, and the median of each part); writes every run's results.json under --out.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from pixelpilot.envs.bench_report import overhead_stats, summarize, write_all
from pixelpilot.envs.dom_oracle import DomOracle
from pixelpilot.envs.miniwob_bench import BenchConfig, resolve_tasks, run_bench
from pixelpilot.envs.miniwob_env import MiniWoBEnv
from pixelpilot.tools.xvfb import ensure_display

DIALECTS = ("qwen2vl", "qwen25vl", "uitars", "uitars-1.5")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--observe", default="task", choices=("task", "window", "screen"))
    ap.add_argument("--dialects", default=",".join(DIALECTS))
    ap.add_argument("--tasks", default=None)
    ap.add_argument(
        "--out", type=Path, default=Path(f"runs/oracle-{time.strftime('%Y%m%d-%H%M%S')}")
    )
    args = ap.parse_args()
    tasks = resolve_tasks(args.tasks, None if args.tasks else "oracle")
    modes = ["direct", *args.dialects.split(",")]
    rates: dict[str, dict[str, float]] = {}
    misses: list[str] = []
    overhead: dict[str, dict] = {}
    with ensure_display(1920, 1080) as display, MiniWoBEnv(display) as env:
        for mode in modes:
            direct = mode == "direct"
            cfg = BenchConfig(
                tasks=tasks, dialect="qwen2vl" if direct else mode, episodes=args.episodes,
                seed=args.seed, observe=args.observe, direct=direct, out=args.out / mode,  # type: ignore[arg-type]
            )  # fmt: skip
            t0 = time.monotonic()
            results = run_bench(cfg, env, None if direct else DomOracle(env))
            seconds = time.monotonic() - t0
            write_all(cfg, "dom-oracle", results, reports=False)
            rates[mode] = {r.task: r.success_rate for r in summarize(results)}
            if len(tasks) == 1:
                rates[mode]["all"] = rates[mode][tasks[0]]
            misses += [
                f"- {mode} {r.task} seed {r.seed}: {r.reason}" for r in results if not r.success
            ]
            if not direct:
                overhead[mode] = overhead_stats(results)
            print(f"{mode}: {100 * rates[mode]['all']:.1f}% in {seconds:.0f} s", flush=True)
    print(f"\n| task | {' | '.join(modes)} |\n|---|{'---|' * len(modes)}")
    for task in (*tasks, "all"):
        cells = " | ".join(f"{100 * rates[m][task]:.0f}" for m in modes)
        print(f"| {'**all**' if task == 'all' else task} | {cells} |")
    print("\nmisses:" if misses else "\nmisses: none")
    print("\n".join(misses))
    print(f"\nSDK overhead per step, observing {args.observe} on a 1920x1080 screen (ms):")
    for mode, s in overhead.items():
        parts = ", ".join(f"{k} {v:.1f}" for k, v in s.get("parts_median", {}).items())
        print(
            f"- {mode}: median {s['median']:.1f}, p90 {s['p90']:.1f} over {s['steps']} steps ({parts})"
        )
    (args.out / "table.json").write_text(json.dumps({"rates": rates, "misses": misses,
                                                      "overhead": overhead}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
