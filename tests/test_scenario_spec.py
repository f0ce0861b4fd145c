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
    kinds = {"desktop": 0, "android": 0, "robot": 0, "apps": 0}
    for f in files:
        s = load_scenario(f)
        assert s.checks and s.description, f
        if f.parent.name == "apps":  # real programs: checked by their files and DOM
            assert s.target.kind == "desktop" and s.target.screen == (1920, 1080), f
            assert {c.source for c in s.checks} <= {"file", "dom"}, f
            kinds["apps"] += 1
            continue
        assert s.target.has_state, f
        assert f.parent.name == {"desktop": "desktop", "android": "mobile", "robot": "robot"}[
            s.target.kind
        ]
        kinds[s.target.kind] += 1
    assert kinds["desktop"] >= 11 and kinds["android"] >= 6 and kinds["robot"] >= 3, kinds
    assert kinds["apps"] == 3, kinds


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


APP = """
task: Save a note.
target: {launch: [mousepad], ready_window: class=mousepad, screen: [1920, 1080]}
scripts: {qwen2vl: ["✿FUNCTION✿: finish\\n✿ARGS✿: {}"]}
checks:
  - {file: note.txt, equals: "Zoë\\n"}
"""


def test_real_app_targets_and_their_checks_load(tmp_path):
    s = load_scenario(write(tmp_path, APP))
    assert s.target.launch == ["mousepad"] and s.checks[0].source == "file"
    (tmp_path / "page.html").write_text("<p id=x>hi</p>")
    page = """
    task: Read the page.
    target: {app: chromium, page: page.html, view: {region: [0, 0, 800, 600]}}
    scripts: {qwen2vl: [x]}
    checks: [{dom: "#x", prop: textContent, equals: hi}]
    """
    s = load_scenario(write(tmp_path, page, "p.yaml"))
    assert s.target.page == str((tmp_path / "page.html").resolve())  # beside the scenario file
    assert s.target.view.region == (0, 0, 800, 600) and s.checks[0].label == "#x.textContent"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (" ready_window: class=mousepad,", "", "'launch' needs 'ready_window'"),
        ("{launch: [mousepad],", "{app: chromium, launch: [mousepad],", "exactly one of 'app', 'launch'"),
        ("{launch: [mousepad], ready_window: class=mousepad,", "{app: chromium,", "'page' (an HTML file)"),
        ("{launch: [mousepad], ready_window: class=mousepad,", "{app: chromium, page: no.html,",
         "target.page: no such file"),
        ("screen: [1920, 1080]}", "screen: [1920, 1080], view: {window: x, region: [0, 0, 1, 1]}}",
         "exactly one of 'window' or 'region'"),
        ("{file: note.txt,", "{dom: '#x',", "checks.0: 'dom' checks need a page (app: chromium)"),
        ("{file: note.txt,", "{file: ../etc/passwd,", "inside the run's work directory"),
        ("{file: note.txt,", "{file: note.txt, path: a,", "exactly one of path, file, dom"),
        ("{launch: [mousepad], ready_window: class=mousepad,", "{app: fixture,",
         "checks.0: 'file' checks need a launched program"),
    ],
)
def test_bad_real_app_scenarios_fail_with_one_line(tmp_path, old, new, message):
    assert old in APP
    with pytest.raises(ScenarioError) as err:
        load_scenario(write(tmp_path, APP.replace(old, new)))
    assert message in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_file_checks_read_exact_utf8_bytes(tmp_path):
    from pixelpilot.scenarios.targets import OpenTarget

    target = OpenTarget(device=None, state=None, workdir=tmp_path)  # type: ignore[arg-type]
    checks = [Check.model_validate(c) for c in (
        {"file": "a.txt", "equals": "Zoë — 東京 ✓\n"}, {"file": "b.txt", "equals": "x"},
        {"file": "gone.txt", "exists": False}, {"file": "a.txt", "equals": "Zoë — 東京 ✓"},
    )]  # fmt: skip
    (tmp_path / "a.txt").write_bytes("Zoë — 東京 ✓\n".encode())
    (tmp_path / "b.txt").write_bytes(b"x\xff")
    results = [c.test(v) for c, v in zip(checks, target.read(checks), strict=True)]
    assert [ok for ok, _ in results] == [True, False, True, False]
    assert results[1][1] == "file b.txt: not UTF-8 (byte 0xff at offset 1)"
    assert results[3][1] == "file a.txt == 'Zoë — 東京 ✓' (got 'Zoë — 東京 ✓\\n')"
