"""Every shipped scenario through the real loop, display and fixture app; replay of a run."""

from __future__ import annotations

import pytest

from pixelpilot.agent.actions import DESKTOP_KINDS
from pixelpilot.agent.dialects import get_dialect
from pixelpilot.agent.dialects.base import StepContext
from pixelpilot.agent.errors import ModelRetry
from pixelpilot.agent.geometry import ScreenGeometry
from pixelpilot.agent.replay import replay
from pixelpilot.agent.trajectory import load_trajectory
from pixelpilot.scenarios.fixture import FixtureApp
from pixelpilot.scenarios.runner import run_scenario
from pixelpilot.scenarios.spec import BUILTIN_DIR, discover, load_scenario

FILES = discover(BUILTIN_DIR / "desktop")


@pytest.mark.parametrize("file", FILES, ids=[f.stem for f in FILES])
def test_shipped_scenario_passes(display, file, tmp_path):
    scenario = load_scenario(file)
    outcomes = run_scenario(scenario, out_dir=tmp_path)
    assert [o.dialect for o in outcomes] == list(scenario.scripts)
    for o in outcomes:
        assert o.passed, f"{o.scenario} [{o.dialect}]: {o.failures}"
        traj = load_trajectory(o.result.trajectory)
        assert traj.status == scenario.expect.status and len(traj.steps) == len(o.result.steps)


def test_scenarios_cover_every_desktop_action_in_every_dialect():
    """click, double and right click, ASCII and non-ASCII typing, hotkeys, scroll and drag,
    each written by the three families, parsed by their dialect."""
    wanted = {"click", "double_click", "right_click", "type_ascii", "type_unicode", "hotkey",
              "scroll", "drag"}  # fmt: skip
    seen: dict[str, set[str]] = {}
    ctx = StepContext("desktop", DESKTOP_KINDS, ScreenGeometry(1280, 800), (1288, 812))
    for file in FILES:
        s = load_scenario(file)
        if s.expect.status != "success" or s.expect.retries:
            continue
        for dialect, outputs in s.scripts.items():
            for raw in outputs:
                try:
                    a = get_dialect(dialect).parse(raw, ctx)
                except ModelRetry:
                    continue
                tag = a.kind
                if a.kind == "click":
                    tag = {2: "double_click"}.get(a.count, "right_click" if a.button == "right" else "click")
                elif a.kind == "type":
                    tag = "type_ascii" if a.text.isascii() else "type_unicode"
                seen.setdefault(dialect, set()).add(tag)
    for dialect in ("qwen2vl", "qwen25vl", "uitars"):
        assert wanted <= seen[dialect], (dialect, wanted - seen[dialect])


def test_bad_output_scenarios_exist():
    bad = [load_scenario(f) for f in FILES]
    bad = [s for s in bad if s.expect.status != "success" or s.expect.retries]
    assert len(bad) >= 3
    assert any(s.expect.status == "failure" for s in bad)


def test_replay_reproduces_a_recorded_run(display, tmp_path, desktop):
    scenario = load_scenario(BUILTIN_DIR / "desktop" / "demo.yaml")
    (outcome,) = run_scenario(scenario, out_dir=tmp_path)
    assert outcome.passed
    traj = load_trajectory(outcome.result.trajectory)
    with FixtureApp() as app:
        done = replay(traj, desktop)
        state = app.wait_for(lambda s: s["submit_count"] == 1)
    assert len(done) == sum(1 for s in traj.steps if s.executed is not None)
    assert state["submitted"] == {"name": "Ada Lovelace", "email": "ada@example.com", "subscribe": True}
