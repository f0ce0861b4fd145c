"""Per-step time by stage for scripted desktop scenarios on a real (virtual) X display.

    python bench/bench_loop.py [--repeat 5] [--scenario scenarios/desktop/demo.yaml]

Stages: capture (settle + mss grab), prompt (dialect builds messages), generate (scripted: ~0),
parse (dialect + geometry + policy), execute (pyautogui/xdotool + X round trip), record (JSON
line; PNG encoding runs on the recorder's thread). "loop overhead" is the step's wall time minus
capture, generate and execute: what pixelpilot itself adds per step.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from pixelpilot.agent.loop import Agent, Budgets
from pixelpilot.agent.trajectory import DirectoryRecorder
from pixelpilot.scenarios.fixture import FixtureApp
from pixelpilot.scenarios.spec import BUILTIN_DIR, discover, load_scenario
from pixelpilot.tools.desktop import DesktopDevice
from pixelpilot.tools.xvfb import ensure_display
from pixelpilot.vlm.scripted import ScriptedModel

STAGES = ("capture", "prompt", "generate", "parse", "execute", "record")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--scenario", action="append", type=Path)
    args = ap.parse_args()
    files = args.scenario or [
        f for f in discover(BUILTIN_DIR / "desktop") if not load_scenario(f).expect.retries
    ]
    scenarios = [s for s in map(load_scenario, files) if s.expect.status == "success"]
    samples: dict[str, list[float]] = {k: [] for k in (*STAGES, "wall", "overhead")}
    with ensure_display(1280, 800), tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeat):
            for s in scenarios:
                for dialect, outputs in s.scripts.items():
                    with FixtureApp(), DesktopDevice() as dev:
                        marks: list[float] = []
                        agent = Agent(
                            model=ScriptedModel(outputs),
                            device=dev,
                            dialect=dialect,
                            budgets=Budgets(**s.budgets.model_dump()),
                            recorder=DirectoryRecorder(Path(tmp) / f"{rep}-{s.name}-{dialect}"),
                            on_step=lambda _s, m=marks: m.append(time.perf_counter()),
                        )
                        t0 = time.perf_counter()
                        result = agent.run(s.task)
                        starts = [t0, *marks[:-1]]
                        for step, a, b in zip(result.steps, starts, marks, strict=True):
                            for k in STAGES:
                                samples[k].append(step.timings.get(k, 0.0))
                            wall = b - a
                            samples["wall"].append(wall)
                            t = step.timings
                            samples["overhead"].append(
                                wall - t["capture"] - t["generate"] - t["execute"]
                            )
    n = len(samples["wall"])
    print(f"{n} steps ({len(scenarios)} scenarios x dialects x {args.repeat} repeats), ms per step")
    print(f"{'stage':<10} {'median':>8} {'p90':>8} {'max':>8}")
    for k, v in samples.items():
        v = sorted(v)
        p90 = v[min(len(v) - 1, int(0.9 * len(v)))]
        print(f"{k:<10} {statistics.median(v) * 1e3:8.2f} {p90 * 1e3:8.2f} {v[-1] * 1e3:8.2f}")


if __name__ == "__main__":
    main()
