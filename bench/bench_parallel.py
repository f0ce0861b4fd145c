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
process, no pool: the ``bench miniwob`` path without --workers), ``local`` (run_jobs with
local processes) and ``ray`` (run_jobs on Ray actors: on ``--ray ADDRESS``, or on a head this
script starts with ``ray start --head --num-cpus W`` for the largest W, so a row does not pay
for the cluster's start, which is reported once, with the time a driver takes to join it).
For the pools, ``dispatch`` is the per-episode cost of the pool itself: per worker, the gap
between two of its results reaching the driver less the second job's own seconds in the
worker (handing the job over and the result back: a pipe, or a Ray actor call), median.

``--model served`` serves the tiny Qwen2-VL checkpoint with a real ``transformers serve`` on
this machine's CPU and gives every worker a client to it (``openai:URL#MODEL``, dialect
qwen25vl, answers of at most 48 tokens: a real call is 30-50; random weights would otherwise
write the whole 2048-token budget). Its answers are never valid calls, so each episode is one
step of three rejected answers: it measures the path (screenshot, request, server, re-asks),
not a model. ``--model openai:URL#NAME`` uses a server of yours.

    python bench/bench_parallel.py --backends local,ray --workers 1,2 --episodes 5
    python bench/bench_parallel.py --backends local,ray --model served --episodes 2
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pixelpilot.envs.miniwob_bench import BenchConfig, EpisodeResult
from pixelpilot.tools._process import terminate


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
    dispatch_ms: float | None = None
    """Pools: per-episode seconds of handing a job over and its result back, median (ms)."""

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
    return _run_pool(args, workers, "local")


def run_ray(args: argparse.Namespace, workers: int) -> Row:
    """``workers`` Ray actors, each with its own display, Chromium and model."""
    return _run_pool(args, workers, "ray")


def _run_pool(args: argparse.Namespace, workers: int, backend: str) -> Row:
    from pixelpilot.agent.jobs import JobResult
    from pixelpilot.agent.workers import run_jobs
    from pixelpilot.envs.miniwob_slot import MiniWoBSlotFactory, episode_results, miniwob_jobs

    load, t0 = os.getloadavg()[0], time.monotonic()
    done: list[float] = []
    seen: list[tuple[float, JobResult]] = []

    def arrived(r: JobResult) -> None:
        done.append(time.monotonic() - t0)
        seen.append((time.monotonic(), r))

    with tempfile.TemporaryDirectory() as tmp:
        cfg = _config(args, Path(tmp))
        jobs = miniwob_jobs(cfg)
        factory = MiniWoBSlotFactory(cfg, model=args.model, screen=args.size,
                                     loader=None if args.model == "dom-oracle" else load_answers)  # fmt: skip
        results = run_jobs(jobs, factory, workers=workers, out_dir=Path(tmp) / "episodes",
                           on_result=arrived, backend=backend,  # type: ignore[arg-type]
                           ray_address=args.ray_address if backend == "ray" else None)  # fmt: skip
        episodes = episode_results(results, jobs, Path(tmp) / "episodes")
    row = _row(backend, workers, episodes, time.monotonic() - t0, done, load)
    row.dispatch_ms = _dispatch_ms(seen)
    return row


def _dispatch_ms(seen: list[tuple[float, Any]]) -> float | None:
    """Median over workers' consecutive results: arrival gap less the later job's seconds."""
    gaps = []
    for w in {r.worker for _, r in seen}:
        mine = [(t, r) for t, r in seen if r.worker == w]
        gaps += [(b - a) - r.seconds for (a, _), (b, r) in zip(mine, mine[1:], strict=False)]
    return round(1000 * statistics.median(gaps), 1) if gaps else None


ANSWER_TOKENS = 48
"""The served model's answer budget (a real call is 30-50 tokens)."""


def load_answers(ref: str, **options: Any) -> Any:
    """A worker's model: ``load_model``, a server's answers bounded to ``ANSWER_TOKENS``
    (a module function: workers and actors unpickle it by name)."""
    from pixelpilot.vlm.registry import load_model

    if ref.startswith("openai:"):
        options.setdefault("max_tokens", ANSWER_TOKENS)
    return load_model(ref, **options)


def _load(ref: str) -> Any:
    return load_answers(ref)


BACKENDS: dict[str, Callable[[argparse.Namespace, int], Row]] = {
    "serial": run_serial,
    "local": run_local,
    "ray": run_ray,
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
    p.add_argument("--ray", dest="ray_address", default=None,
                   help="the ray backend's cluster (default: a head started here)")  # fmt: skip
    args = p.parse_args()
    w, _, h = args.screen.partition("x")
    args.size = (int(w), int(h))
    backends = args.backends.split(",")
    counts = [int(n) for n in args.workers.split(",")]
    rows: list[Row] = []
    with contextlib.ExitStack() as stack:
        if args.model == "served":
            args.model = stack.enter_context(served_tiny())
            args.dialect = "qwen25vl" if args.dialect == "qwen2vl" else args.dialect
            print(f"served tiny model: {args.model}", flush=True)
        if "ray" in backends and args.ray_address is None:
            args.ray_address, head_s = stack.enter_context(ray_head(max(counts)))
            print(f"ray head ({max(counts)} CPUs) started in {head_s:.1f} s; a driver joins it "
                  f"in {ray_join_s(args.ray_address):.2f} s", flush=True)  # fmt: skip
        for backend in backends:
            for n in [1] if backend == "serial" else counts:
                row = BACKENDS[backend](args, n)
                rows.append(row)
                dispatch = f"; dispatch {row.dispatch_ms} ms" if row.dispatch_ms is not None else ""
                print(f"{row.backend:>7} x{row.workers}: {row.episodes} episodes ({row.won} won) in "
                      f"{row.wall_s:5.1f} s = {row.per_minute:5.1f}/min (steady "
                      f"{row.steady_per_minute:5.1f}/min); first after {row.first_s:4.1f} s; agent "
                      f"run {row.episode_s:.2f} s/episode{dispatch}; load {row.load_before:.2f} -> "
                      f"{row.load_after:.2f}", flush=True)  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps([{**asdict(r), "per_minute": r.per_minute} for r in rows],
                                        indent=2))  # fmt: skip


@contextlib.contextmanager
def ray_head(cpus: int) -> Iterator[tuple[str, float]]:
    """(address, seconds it took to start) of a Ray head with ``cpus`` CPUs on this machine,
    token authentication on (Ray's default here); only it is stopped at the end."""
    exe = shutil.which("ray")
    if exe is None:
        raise SystemExit("the ray backend needs ray: pip install 'pixelpilot[ray]'")
    os.environ["RAY_AUTH_MODE"] = "token"  # read once, when ray is first imported
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = Path(tempfile.mkdtemp(prefix="ray-head-")) / "head.log"
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


def ray_join_s(address: str) -> float:
    """Seconds a driver takes to join the cluster, as each --ray ADDRESS run does once."""
    import ray

    t0 = time.monotonic()
    ray.init(address=address, include_dashboard=False, log_to_driver=False,
             logging_level=logging.WARNING)  # fmt: skip
    seconds = time.monotonic() - t0
    ray.shutdown()
    return seconds


@contextlib.contextmanager
def served_tiny() -> Iterator[str]:
    """``openai:URL#MODEL`` of the tiny checkpoint behind ``transformers serve`` on this CPU."""
    from pixelpilot.vlm.tiny import ensure_tiny
    from pixelpilot.vlm.transformers_serve import TransformersServe

    root = Path(tempfile.mkdtemp(prefix="served-tiny-"))
    with TransformersServe(ensure_tiny("small", root / "tiny"), log=root / "serve.log") as server:
        yield f"openai:{server.url}#{server.model}"


if __name__ == "__main__":
    main()
