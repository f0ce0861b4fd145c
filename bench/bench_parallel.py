"""Episodes per minute with parallel workers: MiniWoB++ with the DOM policy (dom-oracle) through
pixels, in one process and over N local worker processes.

    python bench/bench_parallel.py                              # serial, local 1 and 2 workers
    python bench/bench_parallel.py --episodes 5 --workers 1,2,4 --backends local

Each row runs the same episodes (tasks x episodes, seeds 0..E-1) from a cold start: the wall
time includes starting the workers (a Python process, an Xvfb, a Chromium each). Reported per
row: episodes per minute over the wall time, the time to the first finished episode (start-up
plus one episode), the steady rate from the first finished episode to the last, the mean
seconds of an episode's agent run, and the load average before and after (the machine may be
shared: read the numbers beside it).

Backends are entries of ``BACKENDS`` (name -> function(args, workers) -> Row): ``serial`` (one
process, no pool: the ``bench miniwob`` path without --workers) and ``local`` (run_jobs with
local processes). A Ray backend or a served model adds its own entry or ``--model``
(``--model openai:URL#NAME`` runs every worker's agent against one server).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pixelpilot.envs.miniwob_bench import BenchConfig, EpisodeResult


@dataclass
class Row:
    backend: str
    workers: int
    episodes: int
    won: int
    wall_s: float
    first_s: float
    """Seconds from the start to the first finished episode (start-up plus one episode)."""
    steady_per_minute: float
    """Episodes per minute from the first finished episode to the last (start-up left out)."""
    episode_s: float
    """Mean seconds of an episode's agent run (observe, model, act, record; not the reset)."""
    load_before: float
    load_after: float

    @property
    def per_minute(self) -> float:
        return 60 * self.episodes / self.wall_s


def _config(args: argparse.Namespace, out: Path) -> BenchConfig:
    return BenchConfig(tasks=tuple(args.tasks.split(",")), dialect=args.dialect,
                       episodes=args.episodes, observe=args.observe, out=out)  # fmt: skip


def _row(backend: str, workers: int, results: list[EpisodeResult], wall: float,
         done: list[float], load: float) -> Row:  # fmt: skip
    steady = 60 * (len(done) - 1) / (done[-1] - done[0]) if len(done) > 1 else 0.0
    return Row(backend, workers, len(results), sum(r.success for r in results), wall, done[0],
               steady, statistics.fmean(r.seconds for r in results), load, os.getloadavg()[0])  # fmt: skip


def run_serial(args: argparse.Namespace, workers: int) -> Row:
    """One process: one display, one Chromium, the episodes one after another."""
    from pixelpilot.envs.dom_oracle import DomOracle
    from pixelpilot.envs.miniwob_bench import run_bench
    from pixelpilot.envs.miniwob_env import MiniWoBEnv
    from pixelpilot.tools.xvfb import VirtualDisplay, default_wm

    load, t0 = os.getloadavg()[0], time.monotonic()
    done: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, VirtualDisplay(*args.size, wm=default_wm()) as vd:
        os.environ.update(vd.env)
        with MiniWoBEnv(vd.display) as env:
            if args.model.startswith("scripted:"):
                raise SystemExit("serial: a scripted model holds one episode's answers; "
                                 "use --backends local")  # fmt: skip
            model = DomOracle(env) if args.model == "dom-oracle" else _load(args.model)
            results = run_bench(_config(args, Path(tmp)), env, model,
                                on_episode=lambda r: done.append(time.monotonic() - t0))  # fmt: skip
    return _row("serial", 1, results, time.monotonic() - t0, done, load)


def run_local(args: argparse.Namespace, workers: int) -> Row:
    """``workers`` local processes, each with its own display, Chromium and model."""
    from pixelpilot.agent.workers import run_jobs
    from pixelpilot.envs.miniwob_slot import MiniWoBSlotFactory, episode_results, miniwob_jobs
    from pixelpilot.vlm.registry import load_model

    load, t0 = os.getloadavg()[0], time.monotonic()
    done: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        cfg = _config(args, Path(tmp))
        jobs = miniwob_jobs(cfg)
        factory = MiniWoBSlotFactory(cfg, model=args.model, screen=args.size,
                                     loader=None if args.model == "dom-oracle" else load_model)  # fmt: skip
        results = run_jobs(jobs, factory, workers=workers, out_dir=Path(tmp) / "episodes",
                           on_result=lambda r: done.append(time.monotonic() - t0))  # fmt: skip
        episodes = episode_results(results, jobs, Path(tmp) / "episodes")
    return _row("local", workers, episodes, time.monotonic() - t0, done, load)


def _load(ref: str) -> Any:
    from pixelpilot.vlm.registry import load_model

    return load_model(ref)


BACKENDS: dict[str, Callable[[argparse.Namespace, int], Row]] = {
    "serial": run_serial,
    "local": run_local,
}
"""Backend name -> a function running the configured episodes on it with N workers."""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default="click-test,click-button,focus-text,enter-text")
    p.add_argument("--episodes", type=int, default=3, help="per task")
    p.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    p.add_argument("--backends", default="serial,local", help=f"of: {', '.join(BACKENDS)}")
    p.add_argument("--model", default="dom-oracle")
    p.add_argument("--dialect", default="qwen2vl")
    p.add_argument("--observe", default="task")
    p.add_argument("--screen", default="800x600")
    p.add_argument("--json", type=Path, help="also write the rows here")
    args = p.parse_args()
    w, _, h = args.screen.partition("x")
    args.size = (int(w), int(h))
    rows: list[Row] = []
    for backend in args.backends.split(","):
        counts = [1] if backend == "serial" else [int(n) for n in args.workers.split(",")]
        for n in counts:
            row = BACKENDS[backend](args, n)
            rows.append(row)
            print(f"{row.backend:>7} x{row.workers}: {row.episodes} episodes ({row.won} won) in "
                  f"{row.wall_s:5.1f} s = {row.per_minute:5.1f}/min (steady "
                  f"{row.steady_per_minute:5.1f}/min); first after {row.first_s:4.1f} s; agent run "
                  f"{row.episode_s:.2f} s/episode; load {row.load_before:.2f} -> "
                  f"{row.load_after:.2f}", flush=True)  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps([{**asdict(r), "per_minute": r.per_minute} for r in rows],
                                        indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
