"""Ray workers (pixelpilot.agent.workers_ray) on a real local Ray cluster: a head started by this
module with 2 CPUs (``ray start --head --block``, stopped at the end: only this cluster), one
actor per slot, each with its own Xvfb and Chromium, against one process's run of the same
seeds; an actor process killed (SIGKILL) in the middle of an episode."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import yaml

from pixelpilot.agent.errors import ConfigError
from pixelpilot.agent.jobs import JobResult
from pixelpilot.agent.trajectory import load_trajectory
from pixelpilot.agent.workers import run_jobs
from pixelpilot.envs.dom_oracle import DomOracle
from pixelpilot.envs.miniwob_bench import BenchConfig, run_bench
from pixelpilot.envs.miniwob_slot import MiniWoBSlotFactory, episode_results, miniwob_jobs
from pixelpilot.tools._process import terminate

if importlib.util.find_spec("ray") is None:  # not imported here: Ray reads RAY_AUTH_MODE once
    pytest.skip("the Ray backend needs ray: pip install 'pixelpilot[ray]'", allow_module_level=True)

SMALL = (640, 480)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of a Ray head with 2 CPUs on this machine, started for this module, with
    token authentication on (the default of ``ray start`` on one machine since Ray 2.59): the
    driver is told to use it too, with the token Ray keeps in ~/.ray/auth_token."""
    exe = shutil.which("ray")
    if exe is None:
        pytest.skip("the ray command is not installed: pip install 'pixelpilot[ray]'")
    port = _free_port()
    log = tmp_path_factory.mktemp("ray") / "head.log"
    cmd = [exe, "start", "--head", "--block", "--num-cpus", "2", "--port", str(port),
           "--node-ip-address", "127.0.0.1", "--include-dashboard", "false",
           "--disable-usage-stats"]  # fmt: skip
    mp = pytest.MonkeyPatch()
    mp.setenv("RAY_AUTH_MODE", "token")
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while "Ray runtime started" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ray start --head failed: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield address
    finally:
        terminate(proc, timeout=30)  # --block: stopping it stops the processes it started
        mp.undo()


def _episode(r):
    """What must not depend on the worker: the page's verdict and every recorded action."""
    actions = [s.action.model_dump() for s in load_trajectory(r.trajectory).steps]
    return (r.task, r.index, r.seed, r.utterance, r.success, r.raw_reward, r.steps, r.status,
            actions)  # fmt: skip


def test_ray_actors_run_the_same_episodes_as_one_process(miniwob, ray_head, tmp_path):
    cfg = BenchConfig(tasks=("click-test", "click-button"), dialect="qwen2vl", episodes=2,
                      observe="task", out=tmp_path / "one")  # fmt: skip
    one = run_bench(cfg, miniwob, DomOracle(miniwob))
    jobs = miniwob_jobs(cfg)
    seen: list[JobResult] = []
    out = tmp_path / "ray" / "episodes"
    results = run_jobs(jobs, MiniWoBSlotFactory(cfg, screen=SMALL), workers=2, backend="ray",
                       ray_address=ray_head, out_dir=out, on_result=seen.append,
                       job_timeout_s=120)  # fmt: skip
    assert [r.job_id for r in results] == [j.id for j in jobs]
    assert sorted(r.job_id for r in seen) == sorted(j.id for j in jobs)  # each reported once
    assert all(r.status == "ok" and not r.retried and r.attempt == 0 for r in results), results
    assert {r.worker for r in results} <= {0, 1}  # which actor ran what: whichever was free
    assert [_episode(r) for r in episode_results(results, jobs, out)] == [_episode(r) for r in one]
    assert sorted(p.relative_to(out).as_posix() for p in out.glob("*/*")) == sorted(
        j.id for j in jobs
    )  # one output directory on the shared filesystem, one folder per episode


def _mid_episode(out: Path) -> tuple[psutil.Process, str] | None:
    """An actor process that is running a job and has that episode's steps.jsonl open (the
    recorder holds it from the episode's first record to its result): (process, job id)."""
    for p in psutil.process_iter(["name"]):
        if p.info["name"] != "ray::SlotActor.run":
            continue
        try:
            for f in p.open_files():
                path = Path(f.path)
                if path.name == "steps.jsonl" and path.is_relative_to(out):
                    return p, path.parent.relative_to(out).as_posix()
        except psutil.Error:
            continue
    return None


def test_an_actor_killed_mid_episode_is_replaced_and_its_episode_retried(ray_head, tmp_path):
    cfg = BenchConfig(tasks=("enter-text", "click-button"), dialect="qwen2vl", episodes=2,
                      observe="task", out=tmp_path)  # fmt: skip
    jobs = miniwob_jobs(cfg)
    out = tmp_path / "episodes"
    seen: list[JobResult] = []
    done: list[list[JobResult] | BaseException] = []

    def drive() -> None:
        try:
            done.append(run_jobs(jobs, MiniWoBSlotFactory(cfg, screen=SMALL), workers=2,
                                 backend="ray", ray_address=ray_head, out_dir=out,
                                 on_result=seen.append, job_timeout_s=120))  # fmt: skip
        except BaseException as exc:  # noqa: BLE001 - reported below
            done.append(exc)

    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    victim = None
    deadline = time.monotonic() + 120
    while victim is None and driver.is_alive() and time.monotonic() < deadline:
        victim = _mid_episode(out)
        time.sleep(0.005)
    assert victim is not None, "no actor was ever seen in the middle of an episode"
    proc, killed_job = victim
    family = proc.children(recursive=True)  # what the actor started: Xvfb, Chromium, ...
    os.kill(proc.pid, signal.SIGKILL)
    driver.join(240)
    assert done and isinstance(done[0], list), done
    results = done[0]
    assert [r.job_id for r in results] == [j.id for j in jobs]  # nothing lost
    assert sorted(r.job_id for r in seen) == sorted(j.id for j in jobs)  # nothing counted twice
    by_id = {r.job_id: r for r in results}
    retried = by_id[killed_job]
    assert (retried.status, retried.retried, retried.attempt) == ("ok", True, 1), retried
    assert retried.trajectory == f"{killed_job}.retry1"
    assert all(not r.retried and r.status == "ok" for r in results if r.job_id != killed_job)
    episodes = episode_results(results, jobs, out)
    assert all(e.success for e in episodes), [(e.task, e.reason) for e in episodes]
    assert next(e for e in episodes if e.retried).trajectory == str(out / f"{killed_job}.retry1")
    # the killed attempt's trajectory stays as it was: readable, its result never written
    assert (out / killed_job / "run.json").is_file()
    assert not (out / killed_job / "result.json").exists()
    assert load_trajectory(out / f"{killed_job}.retry1").status == "success"
    # the reaper ended what the killed actor had started
    end = time.monotonic() + 15
    while any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in family):
        assert time.monotonic() < end, [p for p in family if p.is_running()]
        time.sleep(0.2)


def test_an_address_where_no_cluster_answers_is_one_line(tmp_path):
    cfg = BenchConfig(tasks=("click-test",), dialect="qwen2vl", episodes=1, out=tmp_path)
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match=r"^no Ray cluster answers at 127\.0\.0\.1:1 .*ray start --head"):
        run_jobs(miniwob_jobs(cfg), MiniWoBSlotFactory(cfg), backend="ray",
                 ray_address="127.0.0.1:1", out_dir=tmp_path)  # fmt: skip
    assert time.monotonic() - t0 < 10
    with pytest.raises(ConfigError, match="bad Ray address"):
        run_jobs(miniwob_jobs(cfg), MiniWoBSlotFactory(cfg), backend="ray",
                 ray_address="nowhere", out_dir=tmp_path)  # fmt: skip


def test_an_episode_over_the_time_limit_ends_as_timeout_with_its_trajectory_closed(
    ray_head, tmp_path
):
    """The actor's own timer ends the episode (the loop closes its trajectory) and the actor
    goes on with the next job."""
    from pixelpilot.vlm.registry import load_model

    script = tmp_path / "waits.yaml"
    script.write_text(yaml.safe_dump([WAIT] * 4), encoding="utf-8")
    cfg = BenchConfig(tasks=("click-test",), dialect="qwen2vl", episodes=2, observe="task",
                      out=tmp_path)  # fmt: skip
    jobs = miniwob_jobs(cfg)
    out = tmp_path / "episodes"
    factory = MiniWoBSlotFactory(cfg, model=f"scripted:{script}", loader=load_model, screen=SMALL)
    t0 = time.monotonic()
    results = run_jobs(jobs, factory, workers=1, backend="ray", ray_address=ray_head,
                       out_dir=out, job_timeout_s=2.5)  # fmt: skip
    assert [(r.status, r.retried, r.worker) for r in results] == [("timeout", False, 0)] * 2
    assert all(r.error == "over the 2.5 s time limit" for r in results)
    for r in results:
        traj = load_trajectory(out / r.trajectory)
        assert traj.result is not None and traj.result["reason"] == "interrupted"  # closed
        assert 1 <= len(traj.steps) <= 3
    assert time.monotonic() - t0 < 40  # one actor for both: no restart between them


WAIT = '✿FUNCTION✿: wait\n✿ARGS✿: {"seconds": 1}'


def test_bare_ray_means_a_private_instance():
    from pixelpilot.agent.cli_common import bare_option, ray_backend

    assert bare_option(["bench", "miniwob", "--ray"], "--ray", "local")[-1] == "local"
    assert bare_option(["--ray", "--workers", "2"], "--ray", "local") == [
        "--ray", "local", "--workers", "2"
    ]  # fmt: skip
    assert bare_option(["--ray", "h:6379", "--x"], "--ray", "local") == ["--ray", "h:6379", "--x"]
    assert ray_backend(None) == ("local", None)
    assert ray_backend("local") == ("ray", None)
    assert ray_backend("10.0.0.5:6379") == ("ray", "10.0.0.5:6379")


def test_bench_miniwob_on_a_ray_cluster_from_the_cli(ray_head, tmp_path):
    import json

    from pixelpilot.agent.cli import main

    out = tmp_path / "bench"
    rc = main(["bench", "miniwob", "--model", "dom-oracle", "--tasks", "click-button",
               "--episodes", "2", "--workers", "2", "--ray", ray_head, "--screen", "640x480",
               "--observe", "task", "--out", str(out), "--no-reports"])  # fmt: skip
    assert rc == 0
    episodes = json.loads((out / "results.json").read_text())["episodes"]
    assert [(e["task"], e["seed"], e["success"], e["retried"]) for e in episodes] == [
        ("click-button", 0, True, False), ("click-button", 1, True, False)
    ]  # fmt: skip
    assert {e["worker"] for e in episodes} <= {0, 1}


def test_ctrl_c_stops_every_actor_and_keeps_what_finished(ray_head, tmp_path):
    """SIGINT to ``bench miniwob --ray``: exit 130, the finished episodes reported, the ones in
    flight closed as interrupted (the actors run here: SIGTERM), nothing the actors started
    left running."""
    import json
    import sys

    script = tmp_path / "waits.yaml"
    script.write_text(yaml.safe_dump([WAIT] * 3 + [FINISH]), encoding="utf-8")
    argv = [sys.executable, "-m", "pixelpilot.agent.cli", "bench", "miniwob", "--model",
            f"scripted:{script}", "--tasks", "click-test", "--episodes", "4", "--workers", "2",
            "--ray", ray_head, "--screen", "640x480", "--no-reports", "--out",
            str(tmp_path / "out")]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # fmt: skip
    eps = tmp_path / "out" / "episodes" / "click-test"
    try:
        deadline = time.monotonic() + 120
        while not (eps / "000" / "miniwob.json").is_file():  # one episode finished
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        actors = [p for p in psutil.process_iter(["name"])
                  if (p.info["name"] or "").startswith("ray::SlotActor")]  # fmt: skip
        started = [c for a in actors for c in a.children(recursive=True)]
        assert {"Xvfb", "chromium"} <= {p.name() for p in started}
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        text, _ = proc.communicate(timeout=60)
        stopped_in = time.monotonic() - t0
    finally:
        proc.kill()
    assert proc.returncode == 130, text
    assert "interrupted:" in text and stopped_in < 25, (stopped_in, text)
    _, left = psutil.wait_procs(actors + started, timeout=10)
    assert not [p for p in left if p.status() != psutil.STATUS_ZOMBIE], left
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    finished = {e["index"] for e in data["episodes"]}
    assert 0 in finished and len(finished) < 4
    for folder in sorted(p for p in eps.iterdir() if p.is_dir()):  # every trajectory reads
        traj = load_trajectory(folder)
        if int(folder.name) not in finished:  # in flight: ended by SIGTERM, trajectory closed
            assert traj.result is not None and traj.result["reason"] == "interrupted", folder


FINISH = "✿FUNCTION✿: finish\n✿ARGS✿: {}"


def test_batch_lines_on_a_ray_cluster(ray_head, tmp_path, capsys):
    """``pixelpilot batch --ray ADDRESS``: each line on a fresh fixture app of an actor's own
    display, judged by its checks; one folder per line and batch.json in --out."""
    import json

    from pixelpilot.agent.cli import main

    script = tmp_path / "click.yaml"
    script.write_text(yaml.safe_dump(CLICK, allow_unicode=True), encoding="utf-8")
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("".join(json.dumps(r) + "\n" for r in [
        {"task": "Click Submit.", "target": "fixture", "id": "once",
         "checks": [{"path": "submit_count", "equals": 1}]},
        {"task": "Click Submit twice.", "target": "fixture", "id": "twice",
         "checks": [{"path": "submit_count", "equals": 2}]},
    ]))  # fmt: skip
    out = tmp_path / "out"
    code = main(["batch", str(tasks), "--model", f"scripted:{script}", "--workers", "2",
                 "--ray", ray_head, "--out", str(out)])  # fmt: skip
    text = capsys.readouterr().out
    assert code == 1, text  # the second line's check does not hold
    runs = json.loads((out / "batch.json").read_text())["runs"]
    assert [(r["job_id"], r["payload"]["status"], r["payload"]["achieved"]) for r in runs] == [
        ("once", "success", True), ("twice", "success", False)
    ]  # fmt: skip
    assert load_trajectory(out / "twice").meta.task == "Click Submit twice."


CLICK = ['✿FUNCTION✿: click\n✿ARGS✿: {"point": [399, 351]}', "✿FUNCTION✿: finish\n✿ARGS✿: {}"]
