"""Kill `pixelpilot run` with SIGKILL at random points and resume each run to success.

Each run is a real subprocess (``pixelpilot run --model scripted:FILE``) clicking the Tk fixture
app's Submit button on Xvfb; it is killed at a random moment between the creation of its
run.json and the time an uninterrupted run takes to write result.json, then continued with
``pixelpilot run --resume DIR`` and checked: status success, steps numbered 1..n without a gap,
the model's answers used exactly once each and in order (the script resumes where the record
ends), one resume noted in run.json, and Submit pressed once per recorded click (plus at most the
one click the killed step may have done before its record was written).

    python bench/bench_resume.py --runs 20 [--seed 1]

tests/test_resume.py runs a 5-run slice of it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pixelpilot.agent.trajectory import load_trajectory
from pixelpilot.scenarios.fixture import FixtureApp
from pixelpilot.tools.xvfb import ensure_display

CLI = [sys.executable, "-m", "pixelpilot.agent.cli"]
SUBMIT = '✿FUNCTION✿: click\n✿ARGS✿: {"point": [399, 351]}'  # (510, 280) on 1280x800
SCRIPT = [
    SUBMIT,
    "I will press it again.",  # rejected (no call): the retry is part of the record too
    SUBMIT,
    '✿FUNCTION✿: wait\n✿ARGS✿: {"seconds": 0.1}',
    SUBMIT,
    SUBMIT,
    '✿FUNCTION✿: finish\n✿ARGS✿: {"answer": "pressed"}',
]
CLICKS = sum(s == SUBMIT for s in SCRIPT)


@dataclass
class Report:
    runs: int = 0
    resumed_ok: int = 0
    finished_before_kill: int = 0
    steps_at_kill: list[int] = field(default_factory=list)
    cut_tails: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    window: float = 0.0
    resume_seconds: list[float] = field(default_factory=list)

    def line(self) -> str:
        at = ", ".join(str(n) for n in self.steps_at_kill)
        return (
            f"{self.runs} runs killed: {self.resumed_ok} resumed to success, "
            f"{self.finished_before_kill} had finished before the kill, "
            f"{len(self.failures)} failures; steps recorded at the kill: [{at}]; "
            f"{self.cut_tails} cut mid-line; kills within {self.window:.2f} s of run.json; "
            f"{self.seconds:.1f} s in all, resume "
            f"{sum(self.resume_seconds) / max(1, len(self.resume_seconds)):.2f} s on average"
        )


def _start(script: Path, out: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*CLI, "run", "Press Submit four times", "--model", f"scripted:{script}",
         "--dialect", "qwen2vl", "--out", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip


def _wait_for_run_dir(out: Path, proc: subprocess.Popen[bytes]) -> Path:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = list(out.glob("*/run.json"))
        if found:
            return found[0].parent
        if proc.poll() is not None:
            raise RuntimeError(
                f"the run exited before recording: {proc.stderr and proc.stderr.read()}"
            )
        time.sleep(0.01)
    raise RuntimeError("the run did not start recording within 60 s")


def kill_and_resume(
    runs: int, seed: int, work: Path, app: FixtureApp, window: float | None = None
) -> Report:
    """``runs`` runs, each killed at a random point and resumed; the figures. The kills fall
    within ``window`` seconds of run.json appearing (default: as long as an uninterrupted run
    records, measured first)."""
    rng = random.Random(seed)
    env = os.environ.copy()
    script = work / "script.yaml"
    script.write_text(yaml.safe_dump(SCRIPT, allow_unicode=True), encoding="utf-8")
    report = Report()
    t0 = time.perf_counter()
    if window is None:  # one uninterrupted run: how long a run records for
        before = app.state()["submit_count"]
        proc = _start(script, work / "calibrate", env)
        run_dir = _wait_for_run_dir(work / "calibrate", proc)
        t_rec = time.perf_counter()
        while not (run_dir / "result.json").exists() and proc.poll() is None:
            time.sleep(0.005)
        window = time.perf_counter() - t_rec
        proc.wait(timeout=120)
        app.wait_for(lambda s: s["submit_count"] == before + CLICKS)
    report.window = window
    for n in range(runs):
        out = work / f"run{n:02d}"
        before = app.state()["submit_count"]
        proc = _start(script, out, env)
        run_dir = _wait_for_run_dir(out, proc)
        time.sleep(rng.uniform(0, window))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        report.runs += 1
        if proc.returncode == 0 or (run_dir / "result.json").exists():  # it had ended
            report.finished_before_kill += 1
            continue
        data = (run_dir / "steps.jsonl").read_bytes() if (run_dir / "steps.jsonl").exists() else b""
        report.steps_at_kill.append(data.count(b"\n"))
        report.cut_tails += bool(data) and not data.endswith(b"\n")
        t1 = time.perf_counter()
        r = subprocess.run(
            [*CLI, "run", "--resume", str(run_dir), "--model", f"scripted:{script}"],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip
        report.resume_seconds.append(time.perf_counter() - t1)
        problem = _check(run_dir, r, app, before)
        if problem:
            report.failures.append(f"run {n}: {problem}")
        else:
            report.resumed_ok += 1
    report.seconds = time.perf_counter() - t0
    return report


def _check(run_dir: Path, r: subprocess.CompletedProcess[str], app: FixtureApp, before: int) -> str:
    if r.returncode != 0:
        return f"resume exited {r.returncode}: {r.stdout[-300:]} {r.stderr[-300:]}"
    traj = load_trajectory(run_dir)
    if traj.status != "success" or traj.truncated:
        return f"status {traj.status}, truncated {traj.truncated}"
    if [s.index for s in traj.steps] != list(range(1, len(traj.steps) + 1)):
        return f"step numbers {[s.index for s in traj.steps]}"
    answers = [a.raw for s in traj.steps for a in s.attempts]
    if answers != SCRIPT:
        return f"answers used {answers}"
    if len(traj.meta.resumes) != 1:
        return f"{len(traj.meta.resumes)} resumes noted"
    result = json.loads((run_dir / "result.json").read_text(encoding="utf-8"))
    if result["step_count"] != len(traj.steps):
        return f"result.json counts {result['step_count']} steps, the record {len(traj.steps)}"
    clicks = sum(1 for s in traj.steps if s.action is not None and s.action.kind == "click")
    try:
        state = app.wait_for(lambda s: s["submit_count"] - before >= clicks, timeout=3)
    except AssertionError:
        state = app.state()
    pressed = state["submit_count"] - before
    if not clicks <= pressed <= clicks + 1:
        return f"Submit pressed {pressed} times for {clicks} recorded clicks"
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with (
        ensure_display(1280, 800),
        FixtureApp() as app,
        tempfile.TemporaryDirectory(prefix="pixelpilot-resume-") as work,
    ):
        report = kill_and_resume(args.runs, args.seed, Path(work), app)
    print(report.line())
    for f in report.failures:
        print("  FAIL", f)
    sys.exit(1 if report.failures else 0)


if __name__ == "__main__":
    main()
