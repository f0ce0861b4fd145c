"""Parallel workers (pixelpilot.agent.workers): real worker processes, each with its own Xvfb
and Chromium, against one process's run of the same seeds; the display/device locks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from pixelpilot.agent.cli import main
from pixelpilot.agent.trajectory import load_trajectory
from pixelpilot.agent.workers import Job, JobBook, JobResult, run_jobs
from pixelpilot.envs.dom_oracle import DomOracle
from pixelpilot.envs.miniwob_bench import BenchConfig, run_bench
from pixelpilot.envs.miniwob_slot import MiniWoBSlotFactory, episode_results, miniwob_jobs
from pixelpilot.scenarios.runner import run_scenario
from pixelpilot.scenarios.spec import BUILTIN_DIR, load_scenario
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
    # which worker ran what depends on which started first (on a quiet machine one worker may
    # finish all four short episodes before the other is up); the results may not depend on it
    assert {r.worker for r in results} <= {0, 1}
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


# -- faults: a real CLI process, real signals -------------------------------------------------
WAITS = [f'✿FUNCTION✿: wait\n✿ARGS✿: {{"seconds": {s}}}' for s in (1.0, 1.1, 1.2)] + [
    "✿FUNCTION✿: finish\n✿ARGS✿: {}"
]  # ~3.5 s an episode, whichever worker runs it


def _bench(tmp_path, *args):
    """``pixelpilot bench miniwob`` in its own session, with a scripted model that waits."""
    script = tmp_path / "waits.yaml"
    script.write_text(yaml.safe_dump(WAITS, allow_unicode=True), encoding="utf-8")
    env = {**os.environ, "PIXELPILOT_LOCK_DIR": str(tmp_path / "locks")}
    argv = [sys.executable, "-m", "pixelpilot.agent.cli", "bench", "miniwob", "--model",
            f"scripted:{script}", "--tasks", "click-test", "--screen", "640x480",
            "--no-reports", "--out", str(tmp_path / "out"), *args]  # fmt: skip
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)  # fmt: skip


def _until(cond, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not (got := cond()):
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)
    return got


def _steps(folder) -> int:
    path = folder / "steps.jsonl"
    return len(path.read_text(encoding="utf-8").splitlines()) if path.is_file() else 0


def _worker_of(folder) -> psutil.Process:
    """The worker process recording ``folder`` (its run.json names the worker; the worker's
    display lock names its pid)."""
    index = json.loads((folder / "run.json").read_text())["extra"]["worker"]["index"]
    for lock in (folder.parents[3] / "locks").glob("display-*.lock"):
        note = lock.read_text()
        if f"(pixelpilot worker {index} " in note:
            return psutil.Process(int(note.split()[1]))
    raise AssertionError(f"no lock names worker {index}")


def _kill_child(worker: psutil.Process, name: str) -> None:
    """SIGKILL the worker's child process called ``name`` (its Xvfb, its Chromium)."""
    found = [p for p in worker.children(recursive=True) if p.name() == name]
    assert found, [p.name() for p in worker.children(recursive=True)]
    found[0].kill()


def test_a_dead_display_or_browser_is_restarted_and_its_episode_retried_once(tmp_path):
    proc = _bench(tmp_path, "--episodes", "3", "--workers", "2")
    eps = tmp_path / "out" / "episodes" / "click-test"
    try:
        _until(lambda: _steps(eps / "000") >= 1 and _steps(eps / "001") >= 1)
        _kill_child(_worker_of(eps / "000"), "Xvfb")  # the display: a new worker process
        _kill_child(_worker_of(eps / "001"), "chromium")  # the browser: restarted in place
        text, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, text
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    got = [(e["index"], e["status"], e["retried"], Path(e["trajectory"]).name)
           for e in data["episodes"]]  # fmt: skip
    assert got == [(0, "success", True, "000.retry1"), (1, "success", True, "001.retry1"),
                   (2, "success", False, "002")], text  # fmt: skip
    assert data["tasks"][0]["episodes"] == 3  # counted once each
    no_display = load_trajectory(eps / "000")  # the attempt that died stays, readable
    assert no_display.status in ("error", "incomplete") and len(no_display.steps) < 4
    load_trajectory(eps / "001")  # the waits went on without a browser; the verdict did not
    for name in ("000", "001"):
        again = load_trajectory(eps / f"{name}.retry1")
        assert again.status == "success" and len(again.steps) == 4
    assert "click-test/000: ok (retried)" in text and "click-test/001: ok (retried)" in text


def test_ctrl_c_stops_every_worker_and_keeps_what_finished(tmp_path):
    proc = _bench(tmp_path, "--episodes", "4", "--workers", "2")
    eps = tmp_path / "out" / "episodes" / "click-test"
    try:
        _until(lambda: (eps / "000" / "miniwob.json").is_file())  # one episode finished
        started = psutil.Process(proc.pid).children(recursive=True)  # workers, Xvfb, Chromium
        assert {"Xvfb", "chromium"} <= {p.name() for p in started}
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        text, _ = proc.communicate(timeout=60)
        stopped_in = time.monotonic() - t0
    finally:
        proc.kill()
    assert proc.returncode == 130, text
    assert "interrupted:" in text and "episodes finished" in text
    assert stopped_in < 20
    _, left = psutil.wait_procs(started, timeout=5)  # nothing the run started outlives it
    assert not [p for p in left if p.status() != psutil.STATUS_ZOMBIE], left
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    finished = {e["index"] for e in data["episodes"]}
    assert 0 in finished and len(finished) < 4
    assert all(e["status"] == "success" for e in data["episodes"])
    for folder in sorted(p for p in eps.iterdir() if p.is_dir()):  # every trajectory reads
        traj = load_trajectory(folder)
        done = int(folder.name) in finished
        assert traj.status == ("success" if done else "error"), (folder.name, traj.status)
        if not done:
            assert traj.result is not None and traj.result["reason"] == "interrupted"


def test_an_episode_over_its_time_limit_is_recorded_as_timeout(tmp_path):
    proc = _bench(tmp_path, "--episodes", "2", "--workers", "2", "--timeout", "2")
    text, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, text
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [(e["status"], e["reason"]) for e in data["episodes"]] == [
        ("timeout", "over the 2 s time limit")
    ] * 2
    assert not any(e["retried"] or e["success"] for e in data["episodes"])
    for e in data["episodes"]:  # the stopped run closed its trajectory
        traj = load_trajectory(e["trajectory"])
        assert 1 <= len(traj.steps) < 4 and traj.result is not None


def test_scenario_test_with_two_workers_matches_one_process(display, tmp_path):
    files = [
        BUILTIN_DIR / "desktop" / "click_submit.yaml",
        BUILTIN_DIR / "desktop" / "type_unicode.yaml",
    ]
    one = {}
    for f in files:  # one process, the session's display
        s = load_scenario(f)
        for o in run_scenario(s, out_dir=tmp_path / "one"):
            actions = [st.action.model_dump() for st in load_trajectory(o.result.trajectory).steps]
            one[f"{o.scenario}-{o.dialect}"] = (o.passed, o.result.status, actions)
    assert len(one) == 6 and all(passed for passed, _, _ in one.values())
    code = main(
        ["scenario", "test", *map(str, files), "--workers", "2", "--out", str(tmp_path / "two")]
    )
    assert code == 0
    (folder,) = (tmp_path / "two").iterdir()
    summary = json.loads((folder / "summary.json").read_text())
    assert (summary["failed"], summary["total"], summary["finished"]) == (0, 6, 6)
    two = {}
    for r in summary["runs"]:
        actions = [st.action.model_dump() for st in load_trajectory(folder / r["trajectory"]).steps]
        two[r["job_id"]] = (r["payload"]["passed"], r["payload"]["status"], actions)
    assert two == one
    assert {r["worker"] for r in summary["runs"]} <= {0, 1}  # whichever was free first


# -- pixelpilot batch ---------------------------------------------------------------------------
CLICK = ['✿FUNCTION✿: click\n✿ARGS✿: {"point": [399, 351]}', "✿FUNCTION✿: finish\n✿ARGS✿: {}"]


def _lines(path, *rows):
    path.write_text("".join(r if isinstance(r, str) else json.dumps(r) + "\n" for r in rows))
    return path


def test_batch_runs_every_line_on_a_target_of_its_own(tmp_path, capsys):
    script = tmp_path / "click.yaml"
    script.write_text(yaml.safe_dump(CLICK, allow_unicode=True), encoding="utf-8")
    once = [{"path": "submit_count", "equals": 1}]
    tasks = _lines(
        tmp_path / "tasks.jsonl",
        {"task": "Click Submit.", "target": "fixture", "checks": once},
        {"task": "Click Submit twice.", "target": "fixture", "id": "twice",
         "checks": [{"path": "submit_count", "equals": 2}]},
        "\n",
        {"task": "Click Submit.", "target": "fixture", "checks": once, "max_steps": 1},
    )  # fmt: skip
    out = tmp_path / "out"
    code = main(["batch", str(tasks), "--model", f"scripted:{script}", "--workers", "2",
                 "--out", str(out)])  # fmt: skip
    text = capsys.readouterr().out
    assert code == 1, text  # not every task succeeded
    summary = json.loads((out / "batch.json").read_text())
    got = [(r["job_id"], r["payload"]["line"], r["payload"]["status"], r["payload"]["achieved"])
           for r in summary["runs"]]  # fmt: skip
    assert got == [("line-0001", 1, "success", True), ("twice", 2, "success", False),
                   ("line-0004", 4, "step_budget", True)]  # fmt: skip
    assert (summary["ok"], summary["total"]) == (1, 3)
    assert sorted(p.name for p in out.iterdir()) == ["batch.json", "line-0001", "line-0004", "twice"]
    traj = load_trajectory(out / "twice")
    assert traj.meta.task == "Click Submit twice." and traj.meta.extra["batch"]["line"] == 2
    assert "✗ submit_count == 2 (got 1)" in text and "1 of 3 tasks succeeded" in text


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (['{"task": "x", "target": "fixture"}\n', "{oops}\n"], "line 2: not JSON"),
        ([{"target": "fixture"}], "line 1: task: Field required"),
        ([{"task": "x"}], "line 1: give exactly one of 'target'"),
        ([{"task": "x", "target": "fixture", "device": "dryrun"}], "line 1: give exactly one"),
        ([{"task": "x", "target": "moon"}], "line 1: unknown target 'moon'"),
        ([{"task": "x", "device": "desktop:3"}], "line 1: device 'desktop:3': a batch line acts"),
        ([{"task": "x", "device": "dryrun", "checks": [{"path": "a", "equals": 1}]}],
         "line 1: 'checks' read a target's state"),
        ([{"task": "x", "target": "fixture", "colour": "red"}], "line 1: colour: unknown field"),
        ([{"task": "x", "target": "fixture", "id": "a"}, {"task": "y", "target": "fixture", "id": "a"}],
         "line 2: id 'a' is also line 1's"),
        ([{"task": "x", "device": "android:S1"}, {"task": "y", "device": "android:S1"}],
         "line 2: android:S1 is also line 1's device"),
        (["\n"], "no tasks"),
    ],
)  # fmt: skip
def test_a_bad_batch_line_is_one_error_naming_it_and_exit_2(rows, message, tmp_path, capsys):
    tasks = _lines(tmp_path / "tasks.jsonl", *rows)
    code = main(["batch", str(tasks), "--model", "dom-oracle-is-no-model", "--workers", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err


def test_a_run_on_a_display_a_worker_holds_is_refused(display, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PIXELPILOT_LOCK_DIR", str(tmp_path / "locks"))
    number = display.lstrip(":").partition(".")[0]
    hold = ("import sys, time; from pixelpilot.tools import locks\n"
            f"locks.claim('display:{number}', 'pixelpilot worker 7 (miniwob)'); print('held', flush=True)\n"
            "sys.stdin.read()\n")  # fmt: skip
    holder = subprocess.Popen([sys.executable, "-c", hold], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        script = tmp_path / "click.yaml"
        script.write_text(yaml.safe_dump(CLICK, allow_unicode=True), encoding="utf-8")
        code = main(["run", "Click Submit.", "--model", f"scripted:{script}", "--device",
                     f"desktop:{number}", "--no-hotkeys", "--out", str(tmp_path / "runs")])  # fmt: skip
    finally:
        holder.communicate("")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3 and len(err) == 1, err
    assert err[0].startswith(f"device error: display:{number} is in use by pid {holder.pid} "
                             "(pixelpilot worker 7 (miniwob))")  # fmt: skip
