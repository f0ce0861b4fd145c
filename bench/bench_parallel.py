"""Episodes per minute with parallel workers, local processes and Ray actors, on MiniWoB++.

    python bench/bench_parallel.py [--episodes 12] [--workers 1,2] [--backends local,ray]
        [--models dom-oracle,served] [--tasks click-test,click-button] [--out DIR]

For each (model, backend, workers): ``--episodes`` MiniWoB++ episodes (split over ``--tasks``,
seeds from 0) through ``run_jobs``, each worker with its own Xvfb (640x480), Chromium and model,
the model seeing the 160x210 task area. Models: ``dom-oracle`` (the DOM reference policy, no
model time) and ``served`` (the tiny Qwen2-VL checkpoint behind a real ``transformers serve`` on
this machine's CPU, ``openai:URL``, dialect qwen25vl, answers of at most 48 tokens; random
weights: every episode is one step of 3 rejected answers, so it measures the path, not the
model). Ray runs on a head this script
starts (``ray start --head --num-cpus W``; the driver joins it with ``--ray ADDRESS``), so the
cluster's own start is reported once, apart.

Per row, from the time each result reached the driver (``on_result``) and the seconds each job
took inside its worker (``JobResult.seconds``):

- start: from ``run_jobs`` to the first result, less that episode's own seconds (workers
  starting: a process or an actor, its Xvfb, Chromium and model);
- ep/min: steady state, (N - 1) results over the time from the first result to the last;
- episode s: the median seconds of an episode inside its worker;
- dispatch ms: per worker, the gap between two of its results less the second one's own
  seconds, median: handing a job over and its result back (a pipe, or a Ray actor call);
- wall s: the whole ``run_jobs`` call.

Prints a Markdown table; writes results.json under --out.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pixelpilot.agent.jobs import JobResult
from pixelpilot.agent.workers import run_jobs
from pixelpilot.envs.miniwob_bench import BenchConfig
from pixelpilot.envs.miniwob_slot import ORACLE, MiniWoBSlotFactory, miniwob_jobs
from pixelpilot.tools._process import terminate
from pixelpilot.vlm.registry import load_model

SCREEN = (640, 480)
ANSWER_TOKENS = 48
"""The served model's answer budget: a real call is 30-50 tokens; the tiny model's random
weights would otherwise write the dialect's whole 2048-token budget every time."""


def served_loader(ref: str, **options: Any) -> Any:
    """The worker's model: ``load_model`` with the answer budget (picklable: a module function)."""
    return load_model(ref, max_tokens=ANSWER_TOKENS, **options)


def measure(
    model: str, dialect: str, backend: str, workers: int, episodes: int, tasks: tuple[str, ...],
    out: Path, address: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """One row: ``episodes`` episodes on ``workers`` workers of ``backend``."""
    per_task = max(1, episodes // len(tasks))
    cfg = BenchConfig(tasks=tasks, dialect=dialect, episodes=per_task, observe="task", out=out)
    jobs = miniwob_jobs(cfg)
    factory = MiniWoBSlotFactory(cfg, model=model, loader=None if model == ORACLE else served_loader,
                                 screen=SCREEN)  # fmt: skip
    arrivals: list[tuple[float, JobResult]] = []
    t0 = time.monotonic()
    results = run_jobs(jobs, factory, workers=workers, backend=backend, ray_address=address,  # type: ignore[arg-type]
                       out_dir=out / "episodes", job_timeout_s=300,
                       on_result=lambda r: arrivals.append((time.monotonic(), r)))  # fmt: skip
    wall = time.monotonic() - t0
    bad = [r for r in results if r.status != "ok" or r.retried]
    first_t, first = arrivals[0]
    span = arrivals[-1][0] - first_t
    gaps = []
    for w in {r.worker for _, r in arrivals}:
        mine = [(t, r) for t, r in arrivals if r.worker == w]
        gaps += [
            (t1 - t0_) - r1.seconds for (t0_, _), (t1, r1) in zip(mine, mine[1:], strict=False)
        ]
    return {
        "model": model, "backend": backend, "workers": workers, "episodes": len(results),
        "failed_jobs": len(bad),
        "start_s": round(first_t - t0 - first.seconds, 2),
        "ep_per_min": round(60 * (len(arrivals) - 1) / span, 1) if span > 0 else None,
        "episode_s": round(statistics.median(r.seconds for r in results), 3),
        "dispatch_ms": round(1000 * statistics.median(gaps), 1) if gaps else None,
        "wall_s": round(wall, 1),
    }  # fmt: skip


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def start_ray_head(cpus: int, log: Path) -> Iterator[tuple[str, float]]:
    """(address, seconds it took to start) of a Ray head on this machine with ``cpus`` CPUs,
    token authentication on; stopped (only it) at the end."""
    exe = shutil.which("ray")
    if exe is None:
        raise SystemExit("ray is not installed: pip install 'pixelpilot[ray]'")
    os.environ["RAY_AUTH_MODE"] = "token"  # before ray is imported in this process
    port = _free_port()
    cmd = [exe, "start", "--head", "--block", "--num-cpus", str(cpus), "--port", str(port),
           "--node-ip-address", "127.0.0.1", "--include-dashboard", "false",
           "--disable-usage-stats"]  # fmt: skip
    t0 = time.monotonic()
    with open(log, "wb") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)  # fmt: skip
    try:
        while "Ray runtime started" not in log.read_text(errors="replace"):
            if proc.poll() is not None:
                raise SystemExit(f"ray start failed: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield f"127.0.0.1:{port}", time.monotonic() - t0
    finally:
        terminate(proc, timeout=30)


def ray_connect_s(address: str) -> float:
    """Seconds for a driver to join the cluster (and leave it), as every --ray ADDRESS run does."""
    import ray

    t0 = time.monotonic()
    ray.init(address=address, include_dashboard=False, log_to_driver=False,
             logging_level=logging.WARNING)  # fmt: skip
    seconds = time.monotonic() - t0
    ray.shutdown()
    return seconds


@contextmanager
def served_tiny(root: Path) -> Iterator[str]:
    """``openai:URL#MODEL`` of the tiny checkpoint behind ``transformers serve`` on this CPU."""
    from pixelpilot.vlm.tiny import ensure_tiny
    from pixelpilot.vlm.transformers_serve import TransformersServe

    model_dir = ensure_tiny("small", root / "tiny")
    with TransformersServe(model_dir, log=root / "serve.log") as server:
        yield f"openai:{server.url}#{server.model}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--episodes", type=int, default=12)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--backends", default="local,ray")
    ap.add_argument("--models", default="dom-oracle,served")
    ap.add_argument("--tasks", default="click-test,click-button")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-parallel-"))
    counts = [int(w) for w in args.workers.split(",")]
    backends, models = args.backends.split(","), args.models.split(",")
    tasks = tuple(args.tasks.split(","))
    rows: list[dict[str, Any]] = []
    extra: dict[str, float] = {}
    with (
        _maybe_ray(backends, max(counts), out) as (address, head_s),
        _maybe_served(models, out) as served,
    ):
        if address is not None:
            extra["ray_head_start_s"] = round(head_s, 1)
            extra["ray_driver_join_s"] = round(ray_connect_s(address), 2)
        for model in models:
            ref, dialect = (ORACLE, "qwen2vl") if model == "dom-oracle" else (served, "qwen25vl")
            for backend in backends:
                for w in counts:
                    row_out = out / f"{model}-{backend}-{w}"
                    row = measure(ref, dialect, backend, w, args.episodes, tasks, row_out,
                                  address if backend == "ray" else None)  # fmt: skip
                    row["model"] = model
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    print()
    print("| model | backend | workers | ep/min | start s | episode s | dispatch ms | wall s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['backend']} | {r['workers']} | {r['ep_per_min']} | "
              f"{r['start_s']} | {r['episode_s']} | {r['dispatch_ms']} | {r['wall_s']} |")  # fmt: skip
    for k, v in extra.items():
        print(f"{k}: {v}")
    (out / "results.json").write_text(json.dumps({"rows": rows, **extra}, indent=2))
    print(f"results: {out / 'results.json'}")


@contextmanager
def _maybe_ray(backends: list[str], cpus: int, out: Path) -> Iterator[tuple[str | None, float]]:
    if "ray" not in backends:
        yield None, 0.0
        return
    out.mkdir(parents=True, exist_ok=True)
    with start_ray_head(cpus, out / "ray-head.log") as started:
        yield started


@contextmanager
def _maybe_served(models: list[str], out: Path) -> Iterator[str]:
    if "served" not in models:
        yield ""
        return
    with served_tiny(out) as ref:
        yield ref


if __name__ == "__main__":
    main()
