"""Format stability: a run recorded with trajectory format 1 stays loadable, viewable,
evaluable and exportable by every later pixelpilot (tests/data/trajectory_v1, recorded by
``python bench/record_runs.py fixture tests/data/trajectory_v1`` on the Tk fixture app)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from pixelpilot.agent.cli_traj import register
from pixelpilot.agent.errors import UserError
from pixelpilot.agent.evaluate import recorded_outputs
from pixelpilot.agent.trajectory import FORMAT_VERSION, load_trajectory
from pixelpilot.agent.trajectory_compat import (
    box_of,
    read_step_objects,
    step_extras,
    upgrade,
)

V1 = Path(__file__).parent / "data" / "trajectory_v1"


def test_the_v1_fixture_loads() -> None:
    traj = load_trajectory(V1)
    assert traj.meta.format_version == 1 <= FORMAT_VERSION
    assert traj.status == "success" and not traj.truncated
    assert [s.action.kind for s in traj.steps if s.action] == ["click", "type", "drag", "finish"]
    assert traj.steps[0].retries == 1 and traj.steps[0].attempts[0].error
    assert all(traj.screenshot_path(s) is not None for s in traj.steps)
    assert traj.steps[0].executed.commands[0][0] == "pyautogui.click"


def test_upgrade_chain_reads_every_written_version() -> None:
    meta = json.loads((V1 / "run.json").read_text(encoding="utf-8"))
    steps, truncated = read_step_objects(V1)
    new_meta, new_steps = upgrade(meta, steps)
    assert new_meta["format_version"] == FORMAT_VERSION and len(new_steps) == 4 and not truncated
    with pytest.raises(UserError, match="upgrade pixelpilot"):
        upgrade({**meta, "format_version": FORMAT_VERSION + 1}, steps)
    with pytest.raises(UserError, match="not a pixelpilot format"):
        upgrade({**meta, "format_version": "1"}, steps)


def test_element_boxes_of_the_fixture() -> None:
    extras = step_extras(V1)
    assert set(extras) == {1, 2, 3, 4}
    assert box_of(extras[1], 600, 125) == (450, 110, 300, 30)  # the Name field
    assert box_of(extras[1], 5, 5) is None


def test_view_eval_export_through_the_cli(tmp_path: Path) -> None:
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    run = CliRunner()
    res = run.invoke(
        app, ["view", str(V1), "--out", str(tmp_path / "r.html"), "--gif", str(tmp_path / "r.gif")]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r.html").stat().st_size > 20_000 and (tmp_path / "r.gif").exists()
    script = tmp_path / "s.yaml"
    script.write_text(yaml.safe_dump(recorded_outputs([V1]), allow_unicode=True), encoding="utf-8")
    res = run.invoke(app, ["eval", "--model", f"scripted:{script}", str(V1)])
    assert res.exit_code == 0 and "100.0%" in res.output, res.output
    res = run.invoke(app, ["export", str(V1), "--out", str(tmp_path / "x")])
    assert res.exit_code == 0 and "wrote 3 of 4" in res.output, res.output
    res = run.invoke(app, ["view", str(tmp_path / "nothing")])
    assert isinstance(res.exception, UserError)
