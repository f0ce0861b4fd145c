"""Parallel workers (pixelpilot.agent.workers): real worker processes, each with its own Xvfb
and Chromium, against one process's run of the same seeds; the display/device locks."""

from __future__ import annotations

import subprocess
import sys

from pixelpilot.agent.trajectory import load_trajectory
from pixelpilot.agent.workers import Job, JobBook, JobResult, run_jobs
from pixelpilot.envs.dom_oracle import DomOracle
from pixelpilot.envs.miniwob_bench import BenchConfig, run_bench
from pixelpilot.envs.miniwob_slot import MiniWoBSlotFactory, episode_results, miniwob_jobs
from pixelpilot.tools import locks

SMALL = (640, 480)


def _episode(r):
    """What must not depend on the worker: the page's verdict and every recorded action."""
    actions = [s.action.model_dump() for s in load_trajectory(r.trajectory).steps]
    return (r.task, r.index, r.seed, r.utterance, r.success, r.raw_reward, r.steps, r.status,
            actions)  # fmt: skip


def test_two_workers_run_the_same_episodes_as_one_process(miniwob, tmp_path):
    cfg = BenchConfig(tasks=("click-test", "click-button"), dialect="qwen2vl", episodes=2,
                      observe="task", out=tmp_path / "one")  # fmt: skip
    one = run_bench(cfg, miniwob, DomOracle(miniwob))
    jobs = miniwob_jobs(cfg)
    assert [j.id for j in jobs] == ["click-test/000", "click-test/001", "click-button/000",
                                    "click-button/001"]  # fmt: skip
    seen: list[JobResult] = []
    out = tmp_path / "two" / "episodes"
    results = run_jobs(jobs, MiniWoBSlotFactory(cfg, screen=SMALL), workers=2, out_dir=out,
                       on_result=seen.append, job_timeout_s=120)  # fmt: skip
    assert [r.job_id for r in results] == [j.id for j in jobs]  # job order, whatever finished first
    assert sorted(r.job_id for r in seen) == sorted(j.id for j in jobs)  # each reported once
    assert all(r.status == "ok" and not r.retried and r.attempt == 0 for r in results), results
    assert {r.worker for r in results} == {0, 1}
    two = episode_results(results, jobs, out)
    assert [_episode(r) for r in two] == [_episode(r) for r in one]
    assert all(r.success for r in two)
    assert sorted(p.relative_to(out).as_posix() for p in out.glob("*/*")) == sorted(
        j.id for j in jobs
    )  # one output directory, one folder per episode


def test_a_job_is_counted_once_and_retried_once():
    jobs = [Job("a", "t", {}), Job("b", "t", {})]
    seen: list[str] = []
    book = JobBook(jobs, retries=1, on_result=lambda r: seen.append(f"{r.job_id}{r.attempt}"))
    a = book.next()
    assert a is not None
    book.settle(a, JobResult("a", status="crashed"), env_lost=True)  # back first in line
    again = book.next()
    assert again is not None and (again.id, again.attempt, again.folder) == ("a", 1, "a.retry1")
    book.settle(again, JobResult("a", status="crashed"), env_lost=True)  # no attempts left
    book.settle(again, JobResult("a"))  # a late second result is ignored
    b = book.next()
    assert b is not None
    book.settle(b, JobResult("b"))
    assert book.done and seen == ["a1", "b0"]
    assert [(r.job_id, r.status, r.retried) for r in book.results()] == [
        ("a", "crashed", True), ("b", "ok", False)
    ]  # fmt: skip


def test_a_second_user_of_a_display_is_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PIXELPILOT_LOCK_DIR", str(tmp_path))
    key = locks.display_key(":4242.0")
    assert key == "display:4242"
    code = ("import sys; from pixelpilot.tools import locks\n"
            "try:\n    locks.claim('display:4242', 'a second run')\n"
            "except Exception as e:\n    print(type(e).__name__, e); sys.exit(3)\n")  # fmt: skip
    with locks.claimed(key, "pixelpilot worker 1 (miniwob)"):
        locks.claim(key, "the same process again")  # one process may hold it twice
        locks.release(key)
        busy = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert busy.returncode == 3, busy.stderr
        line = busy.stdout.strip()
        assert len(line.splitlines()) == 1
        assert line.startswith("DeviceBusy display:4242 is in use by pid ")
        assert "(pixelpilot worker 1 (miniwob))" in line
    assert locks.holder_of(key) is None
    free = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert free.returncode == 0, free.stdout
