"""The run directory: written as steps happen, readable after a kill, versioned."""

from __future__ import annotations

import json
import time

import pytest
from PIL import Image

from pixelpilot.agent.actions import Click, Point
from pixelpilot.agent.errors import UserError
from pixelpilot.agent.trajectory import (
    FORMAT_VERSION,
    Attempt,
    DirectoryRecorder,
    RunMeta,
    RunResult,
    StepRecord,
    load_trajectory,
)
from pixelpilot.tools.base import Executed


def _step(i: int) -> StepRecord:
    click = Click(point=Point(x=500, y=500, space="norm1000"))
    px = Click(point=Point(x=640, y=400, space="screen_px"))
    return StepRecord(
        index=i,
        started_at=time.time(),
        geometry={"width": 1280, "height": 800, "scale": 1.0, "origin": [0, 0]},
        resized=(1288, 812),
        attempts=[Attempt(raw="garbage", error="no call found"), Attempt(raw="ok", action=click)],
        action=click,
        device_action=px,
        executed=Executed(action=px, commands=[["pyautogui.click", {"x": 640.0, "y": 400.0}]]),
        timings={"capture": 0.004, "generate": 0.0},
    )


def _meta() -> RunMeta:
    return RunMeta(task="t", model="scripted", dialect="qwen2vl", device={"kind": "desktop"})


def test_directory_round_trip(tmp_path):
    rec = DirectoryRecorder(tmp_path / "run")
    rec.start(_meta())
    img = Image.new("RGB", (64, 40), (10, 200, 30))
    recorded = [rec.append(_step(i), img) for i in (1, 2)]
    assert recorded[0].screenshot == "screens/0001.png"
    result = rec.finish(RunResult(status="success", answer="42", steps=recorded))
    assert result.trajectory == str(tmp_path / "run")

    traj = load_trajectory(tmp_path / "run")
    assert traj.meta.format_version == FORMAT_VERSION and traj.meta.task == "t"
    assert [s.index for s in traj.steps] == [1, 2]
    assert traj.steps[0] == recorded[0]
    assert traj.steps[0].retries == 1
    assert traj.status == "success" and traj.result["answer"] == "42"
    shot = traj.screenshot_path(traj.steps[1])
    assert shot is not None and Image.open(shot).getpixel((5, 5)) == (10, 200, 30)


def test_killed_run_keeps_finished_steps(tmp_path):
    """A run that never finished (no result.json, last line cut mid-write) still loads."""
    rec = DirectoryRecorder(tmp_path / "run")
    rec.start(_meta())
    for i in (1, 2, 3):
        rec.append(_step(i), None)
    rec._steps_file.write(_step(4).model_dump_json()[:50])  # the process died here
    rec._steps_file.flush()
    traj = load_trajectory(tmp_path / "run")
    assert [s.index for s in traj.steps] == [1, 2, 3]
    assert traj.truncated and traj.status == "incomplete"


def test_corrupt_middle_line_is_an_error(tmp_path):
    rec = DirectoryRecorder(tmp_path / "run")
    rec.start(_meta())
    rec.append(_step(1), None)
    rec._steps_file.write("{not json}\n")
    rec.append(_step(3), None)
    rec.finish(RunResult(status="success"))
    with pytest.raises(UserError, match="line 2 is not JSON"):
        load_trajectory(tmp_path / "run")


def test_not_a_trajectory_and_future_versions(tmp_path):
    with pytest.raises(UserError, match="no run.json"):
        load_trajectory(tmp_path)
    (tmp_path / "run.json").write_text(json.dumps({"format_version": FORMAT_VERSION + 1}))
    with pytest.raises(UserError, match="upgrade pixelpilot"):
        load_trajectory(tmp_path)


def test_recording_a_step_is_cheap(tmp_path):
    """The loop pays for the JSON line only; PNG encoding happens on the writer thread."""
    rec = DirectoryRecorder(tmp_path / "run")
    rec.start(_meta())
    big = Image.new("RGB", (1920, 1080), (1, 2, 3))
    t0 = time.perf_counter()
    for i in range(1, 21):
        rec.append(_step(i), big)
    per_step = (time.perf_counter() - t0) / 20
    rec.finish(RunResult(status="success"))
    assert len(list((tmp_path / "run" / "screens").glob("*.png"))) == 20
    assert per_step < 0.02, f"append took {per_step * 1000:.1f} ms per step"
