"""Scenario files: the shipped ones load, bad ones fail with one line naming the problem."""

from __future__ import annotations

import textwrap

import pytest

from pixelpilot.agent.errors import ScenarioError
from pixelpilot.scenarios.spec import BUILTIN_DIR, Check, discover, load_scenario, lookup

GOOD = """
task: Click Submit.
target: {app: fixture}
scripts:
  qwen2vl:
    - "✿FUNCTION✿: finish\\n✿ARGS✿: {}"
checks:
  - {path: submit_count, equals: 1}
"""


def write(tmp_path, text, name="s.yaml"):
    f = tmp_path / name
    f.write_text(textwrap.dedent(text), encoding="utf-8")
    return f


def test_good_file_loads_with_defaults(tmp_path):
    s = load_scenario(write(tmp_path, GOOD))
    assert s.name == "s" and s.target.screen == (1280, 800)
    assert s.expect.status == "success" and s.budgets.max_retries == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("task: [unclosed", "line 1"),
        ("- just a list", "a scenario is a YAML mapping"),
        (GOOD.replace("task: Click Submit.", ""), "task: Field required"),
        (GOOD.replace("qwen2vl:", "qwen9:"), "unknown dialect 'qwen9'"),
        (GOOD.replace("{app: fixture}", "{app: fixture, command: [xterm]}"), "exactly one of 'app'"),
        (GOOD.replace("equals: 1", "equals: 1, at_least: 2"), "exactly one of equals"),
        (GOOD + "colour: blue\n", "colour: unknown field"),
        (GOOD.replace("{app: fixture}", "{app: fixture, screen: [10]}"), "target.screen"),
    ],
)
def test_bad_files_fail_with_one_line(tmp_path, text, message):
    with pytest.raises(ScenarioError) as err:
        load_scenario(write(tmp_path, text))
    assert message in str(err.value), str(err.value)
    assert "\n" not in str(err.value) and str(tmp_path) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load_scenario(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("check", "ok"),
    [
        ({"path": "a.b", "equals": 3}, True),
        ({"path": "a.b", "equals": 4}, False),
        ({"path": "a.c.1", "equals": "y"}, True),
        ({"path": "a.c.-1", "equals": "y"}, True),
        ({"path": "a.c.5", "exists": False}, True),
        ({"path": "a.b", "at_least": 3}, True),
        ({"path": "a.b", "at_most": 2}, False),
        ({"path": "a.flag", "at_least": 0}, False),  # booleans are not numbers
        ({"path": "name", "contains": "東京"}, True),
        ({"path": "missing", "not_equals": None}, True),
    ],
)
def test_check_evaluation(check, ok):
    state = {"a": {"b": 3, "c": ["x", "y"], "flag": True}, "name": "Zoë — 東京 ✓"}
    passed, line = Check.model_validate(check).evaluate(state)
    assert passed is ok and check["path"] in line
    assert lookup(state, "a.c.0") == "x"


def test_shipped_scenarios_load():
    files = discover(BUILTIN_DIR)
    kinds = {"desktop": 0, "android": 0, "robot": 0}
    for f in files:
        s = load_scenario(f)
        assert s.checks and s.description and s.target.has_state, f
        assert f.parent.name == {"desktop": "desktop", "android": "mobile", "robot": "robot"}[
            s.target.kind
        ]
        kinds[s.target.kind] += 1
    assert kinds["desktop"] >= 11 and kinds["android"] >= 6 and kinds["robot"] >= 3, kinds


def test_android_and_robot_targets_parse_with_defaults(tmp_path):
    f = tmp_path / "a.yaml"
    f.write_text(
        "task: t\ntarget: {kind: android, start: signin}\nscripts: {qwen2vl: [x]}\n"
        "checks: [{path: screen, equals: list}]\n"
    )
    s = load_scenario(f)
    assert (s.target.kind, s.target.app, s.target.start, s.target.screen) == (
        "android", "phone", "signin", (720, 1280)
    )
    f.write_text("task: t\ntarget: {kind: robot, scene: stack}\nscripts: {qwen2vl: [x]}\n")
    s = load_scenario(f)
    assert (s.target.kind, s.target.scene, s.target.screen) == ("robot", "stack", (640, 480))


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("{kind: moon}", "target.kind: unknown 'moon'; use one of: desktop, android, robot"),
        ("{kind: robot, app: fixture}", "target.app: unknown field"),
        ("{kind: android, density: 5}", "target.density"),
    ],
)
def test_bad_targets_name_the_field(tmp_path, target, message):
    f = tmp_path / "t.yaml"
    f.write_text(f"task: t\ntarget: {target}\nscripts: {{qwen2vl: [x]}}\n")
    with pytest.raises(ScenarioError) as err:
        load_scenario(f)
    assert message in str(err.value)
