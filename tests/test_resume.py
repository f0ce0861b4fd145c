"""Resume: a killed or budget-ended run goes on from its last recorded step with the history the
loop had, appending to the same trajectory; a 5-run slice of bench/bench_resume.py kills real
`pixelpilot run` processes with SIGKILL and resumes each one."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from pixelpilot.agent.errors import ConfigError, UserError
from pixelpilot.agent.loop import Agent, Budgets
from pixelpilot.agent.resume import consumed_outputs, history_of
from pixelpilot.agent.trajectory import DirectoryRecorder, load_trajectory
from pixelpilot.vlm.scripted import ScriptedModel

BENCH = Path(__file__).parent.parent / "bench" / "bench_resume.py"
CLICK_NAME = '✿FUNCTION✿: click\n✿ARGS✿: {"point": [469, 157]}'
SCRIPT = [
    CLICK_NAME,
    '✿FUNCTION✿: type\n✿ARGS✿: {"text": "Zoë"}',
    "no call in this answer",
    '✿FUNCTION✿: click\n✿ARGS✿: {"point": [469, 219]}',  # the Email field
    '✿FUNCTION✿: type\n✿ARGS✿: {"text": "Ada"}',
    '✿FUNCTION✿: finish\n✿ARGS✿: {"answer": "typed"}',
]


def texts(model: ScriptedModel) -> list[list[str]]:
    return [[m.text for m in p.messages] for p in model.prompts]


def test_a_budget_ended_run_goes_on_with_the_same_history(fixture_app, desktop, tmp_path):
    whole = ScriptedModel(SCRIPT)
    Agent(model=whole, device=desktop, dialect="qwen2vl").run("Type a name")
    first = ScriptedModel(SCRIPT)
    agent = Agent(model=first, device=desktop, dialect="qwen2vl", budgets=Budgets(max_steps=2),
                  recorder=DirectoryRecorder(tmp_path / "run"))  # fmt: skip
    assert agent.run("Type a name").status == "step_budget"
    traj = load_trajectory(tmp_path / "run")
    turns = history_of(traj)
    assert [t.raw for t in turns] == SCRIPT[:2] and all(t.image is not None for t in turns)
    assert turns[0].image.size == (1280, 800) and turns[1].action.text == "Zoë"

    rest = ScriptedModel(SCRIPT)
    rest.skip(consumed_outputs(traj))
    result = Agent(model=rest, device=desktop, dialect="qwen2vl").resume(tmp_path / "run")
    assert result.status == "success" and result.answer == "typed"
    fixture_app.wait_for(lambda s: s["name"] == "ZoëZoë" and s["email"] == "AdaAda")  # 2 runs
    assert texts(rest) == texts(whole)[2:]  # the same prompts as the run that was not stopped
    traj = load_trajectory(tmp_path / "run")
    assert [s.index for s in traj.steps] == [1, 2, 3, 4, 5] and traj.status == "success"
    assert [a.raw for s in traj.steps for a in s.attempts] == SCRIPT
    (note,) = traj.meta.resumes
    assert (note.after_step, note.previous_status, note.dialect) == (2, "step_budget", "qwen2vl")
    assert json.loads((tmp_path / "run" / "result.json").read_text())["step_count"] == 5


def test_a_cut_tail_is_dropped_and_the_run_appends_after_it(fixture_app, desktop, tmp_path):
    model = ScriptedModel(SCRIPT[:2])
    rec = DirectoryRecorder(tmp_path / "run")
    Agent(model=model, device=desktop, dialect="qwen2vl", budgets=Budgets(max_steps=2),
          recorder=rec).run("Type a name")  # fmt: skip
    (tmp_path / "run" / "result.json").unlink()  # killed: no result, and half a line written
    last = (tmp_path / "run" / "steps.jsonl").read_bytes().splitlines()[-1]
    with open(tmp_path / "run" / "steps.jsonl", "ab") as f:  # cut inside the ë of 'Zoë'
        f.write(last.replace(b'"index":2', b'"index":3')[: last.index("ë".encode()) + 1])
    assert load_trajectory(tmp_path / "run").truncated

    rest = ScriptedModel(SCRIPT)
    rest.skip(2)
    result = Agent(model=rest, device=desktop, dialect="qwen2vl").resume(tmp_path / "run")
    assert result.status == "success"
    traj = load_trajectory(tmp_path / "run")
    assert not traj.truncated and [s.index for s in traj.steps] == [1, 2, 3, 4, 5]


def test_a_run_killed_after_the_finish_step_only_gets_its_result(desktop, tmp_path):
    model = ScriptedModel(['✿FUNCTION✿: finish\n✿ARGS✿: {"answer": "ok"}'])
    Agent(model=model, device=desktop, dialect="qwen2vl",
          recorder=DirectoryRecorder(tmp_path / "run")).run("t")  # fmt: skip
    with pytest.raises(UserError, match="already ended this run"):
        Agent(model=ScriptedModel([]), device=desktop, dialect="qwen2vl").resume(tmp_path / "run")
    (tmp_path / "run" / "result.json").unlink()
    result = Agent(model=ScriptedModel([]), device=desktop, dialect="qwen2vl").resume(
        tmp_path / "run"
    )
    assert (result.status, result.answer, len(result.steps)) == ("success", "ok", 1)
    assert load_trajectory(tmp_path / "run").status == "success"


def test_resume_needs_the_recorded_dialect_and_kind_of_device(desktop, tmp_path):
    model = ScriptedModel([CLICK_NAME])
    Agent(model=model, device=desktop, dialect="qwen2vl", budgets=Budgets(max_steps=1),
          recorder=DirectoryRecorder(tmp_path / "run")).run("t")  # fmt: skip
    with pytest.raises(ConfigError, match="recorded in the qwen2vl dialect"):
        Agent(model=model, device=desktop, dialect="uitars").resume(tmp_path / "run")
    from pixelpilot.tools.robot import RobotDevice

    with RobotDevice("tray") as robot, pytest.raises(ConfigError, match="on a desktop device"):
        Agent(model=model, device=robot, dialect="qwen2vl").resume(tmp_path / "run")
    traj = load_trajectory(tmp_path / "run")
    assert traj.status == "step_budget" and traj.meta.resumes == []  # nothing was changed


def test_the_cli_keeps_the_task_of_a_resumed_run(tmp_path):
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pixelpilot.agent.cli", *args],
                              capture_output=True, text=True, timeout=60, env=os.environ.copy())  # fmt: skip

    r = cli("run", "a task", "--resume", str(tmp_path))
    assert r.returncode == 2 and "not both" in r.stderr
    r = cli("run")
    assert r.returncode == 2 and "missing TASK" in r.stderr
    r = cli("run", "--resume", str(tmp_path))
    assert r.returncode == 2 and "not a trajectory directory" in r.stderr


def test_sigkill_at_random_points_then_resume(display, tmp_path):
    """5 real `pixelpilot run` processes killed at random points, each resumed to success
    (the 20-run version: python bench/bench_resume.py --runs 20)."""
    spec = importlib.util.spec_from_file_location("bench_resume", BENCH)
    bench = sys.modules["bench_resume"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    from pixelpilot.scenarios.fixture import FixtureApp

    with FixtureApp() as app:
        report = bench.kill_and_resume(5, seed=7, work=tmp_path, app=app, window=1.5)
    print(report.line())
    assert report.failures == [] and report.resumed_ok + report.finished_before_kill == 5
    assert report.resumed_ok >= 3


def test_history_images_are_the_recorded_screenshots(tmp_path):
    from pixelpilot.agent.actions import Wait
    from pixelpilot.agent.trajectory import Attempt, RunMeta, StepRecord

    rec = DirectoryRecorder(tmp_path / "run")
    rec.start(RunMeta(task="t", model="m", dialect="qwen2vl", device={"kind": "desktop"}))
    wait = Wait(seconds=1)
    for i, colour in ((1, (1, 2, 3)), (2, (4, 5, 6))):
        step = StepRecord(index=i, started_at=0, geometry={"width": 8, "height": 8},
                          attempts=[Attempt(raw=f"w{i}", action=wait)], action=wait, result=f"n{i}")  # fmt: skip
        rec.append(step, Image.new("RGB", (8, 8), colour))
    rec._queue.put(None)  # let the writer finish; no result: a killed run
    rec._thread.join()
    turns = history_of(load_trajectory(tmp_path / "run"))
    assert [(t.raw, t.note, t.image.getpixel((0, 0))) for t in turns] == [
        ("w1", "n1", (1, 2, 3)),
        ("w2", "n2", (4, 5, 6)),
    ]
