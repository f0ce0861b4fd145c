"""Trajectories are data from anywhere: paths that lead out of the run directory are refused,
a steps.jsonl cut at any byte loads its whole records, damaged files fail in one line, and
nothing a trajectory names (a stored command line) is ever run."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from pixelpilot.agent.cli import main
from pixelpilot.agent.errors import UserError
from pixelpilot.agent.trajectory import load_trajectory
from pixelpilot.agent.trajectory_compat import parse_steps
from pixelpilot.scenarios.fixture import FixtureApp

V1 = Path(__file__).parent / "data" / "trajectory_v1"
CLI = [sys.executable, "-m", "pixelpilot.agent.cli"]


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A copy of the v1 fixture run, and beside it (outside it) a PNG no command may read."""
    shutil.copytree(V1, tmp_path / "run")
    Image.new("RGB", (32, 32), (222, 1, 111)).save(tmp_path / "outside.png")
    (tmp_path / "elsewhere").mkdir()
    shutil.copy(tmp_path / "outside.png", tmp_path / "elsewhere" / "0001.png")
    return tmp_path / "run"


def set_screenshot(run: Path, value: str) -> None:
    lines = (run / "steps.jsonl").read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    first["screenshot"] = value
    lines[0] = json.dumps(first, ensure_ascii=False)
    (run / "steps.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def absolute(run: Path) -> None:
    set_screenshot(run, str(run.parent / "outside.png"))


def dotdot(run: Path) -> None:
    set_screenshot(run, "../outside.png")


def dotdot_inside(run: Path) -> None:
    set_screenshot(run, "screens/../../outside.png")


def symlinked_file(run: Path) -> None:
    (run / "screens" / "0001.png").unlink()
    (run / "screens" / "0001.png").symlink_to(run.parent / "outside.png")


def symlinked_dir(run: Path) -> None:
    shutil.rmtree(run / "screens")
    (run / "screens").symlink_to(run.parent / "elsewhere")


def symlinked_steps(run: Path) -> None:
    shutil.move(run / "steps.jsonl", run.parent / "steps.jsonl")
    (run / "steps.jsonl").symlink_to(run.parent / "steps.jsonl")


def symlinked_meta(run: Path) -> None:
    shutil.move(run / "run.json", run.parent / "run.json")
    (run / "run.json").symlink_to(run.parent / "run.json")


HOSTILE: list[Callable[[Path], None]] = [
    absolute, dotdot, dotdot_inside, symlinked_file, symlinked_dir, symlinked_steps, symlinked_meta,
]  # fmt: skip


@pytest.mark.parametrize("make", HOSTILE, ids=lambda f: f.__name__)
def test_paths_out_of_the_run_are_refused_by_view_export_eval(run, make, capsys, tmp_path):
    make(run)
    with pytest.raises(UserError, match="points outside the trajectory directory"):
        load_trajectory(run)
    script = tmp_path / "s.yaml"
    script.write_text("[]\n", encoding="utf-8")
    for argv in (
        ["view", str(run), "--out", str(tmp_path / "out" / "r.html")],
        ["export", str(run), "--all", "--out", str(tmp_path / "out" / "sft")],
        ["eval", str(run), "--model", f"scripted:{script}", "--json", str(tmp_path / "out" / "e.json")],
    ):  # fmt: skip
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "points outside the trajectory directory" in err, err
    outside = (tmp_path / "outside.png").read_bytes()
    written = [p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert not any(outside in w or base64.b64encode(outside) in w for w in written)


def test_a_run_directory_reached_through_a_symlink_still_loads(run, tmp_path):
    (tmp_path / "link").symlink_to(run)
    traj = load_trajectory(tmp_path / "link")
    assert all(traj.screenshot_path(s) for s in traj.steps)


def test_a_cut_at_every_byte_keeps_the_whole_records(tmp_path):
    """steps.jsonl cut at each of its bytes (inside UTF-8 characters too: the file holds
    'Zoë ✓'): the records wholly before the cut load, the rest is the dropped tail."""
    data = (V1 / "steps.jsonl").read_bytes()
    ends = [i + 1 for i, b in enumerate(data) if b == ord("\n")]
    multibyte = [i for i, b in enumerate(data) if b >= 0x80]
    assert len(ends) == 4 and len(multibyte) > 20
    for cut in range(len(data) + 1):
        objs, truncated = parse_steps(data[:cut])
        whole = sum(e <= cut for e in ends) + (cut + 1 in ends)  # complete but for its newline
        assert len(objs) == whole and truncated == (cut not in [0, *ends] and cut + 1 not in ends)
    shutil.copytree(V1, tmp_path / "run")
    for cut in sorted(
        {*multibyte, *[e + d for e in ends for d in (-2, -1, 1)], *range(0, len(data), 97)}
    ):
        (tmp_path / "run" / "steps.jsonl").write_bytes(data[:cut])
        traj = load_trajectory(tmp_path / "run")
        assert [s.index for s in traj.steps] == list(range(1, sum(e <= cut + 1 for e in ends) + 1))


@pytest.mark.parametrize(
    ("file", "content", "message"),
    [
        ("steps.jsonl", b"[" * 100_000 + b"\n{}\n", "line 1 is not JSON"),
        ("steps.jsonl", b'{"index": 1}\xff\n{}\n', "line 1 is not JSON"),
        ("steps.jsonl", b'{"index": 1, "started_at": 0, "geometry": {"width": -5}}\n', "geometry"),
        ("steps.jsonl", b'{"index": 1, "started_at": 0, "geometry": {"width": "x"}}\n', "geometry"),
        ("result.json", b"{not json", "result.json: not valid JSON"),
        ("result.json", b"[1, 2]", "not a run result"),
        ("run.json", b'"just text"', "not a run description"),
        ("run.json", b'{"format_version": 1}', "run.json: task: Field required"),
    ],
)
def test_damaged_files_fail_in_one_line(run, file, content, message):
    (run / file).write_bytes(content)
    with pytest.raises(UserError, match=message) as err:
        load_trajectory(run)
    assert "\n" not in str(err.value)


def test_a_damaged_tail_is_a_cut_not_an_error(run):
    with open(run / "steps.jsonl", "ab") as f:
        f.write(b"[" * 100_000)
    traj = load_trajectory(run)
    assert traj.truncated and len(traj.steps) == 4


def test_a_lone_surrogate_in_model_text_is_recorded_as_valid_utf8(fixture_app, desktop, tmp_path):
    from pixelpilot.agent.loop import Agent
    from pixelpilot.agent.trajectory import DirectoryRecorder
    from pixelpilot.vlm.scripted import ScriptedModel

    finish = '✿FUNCTION✿: finish\n✿ARGS✿: {"answer": "x"}'
    model = ScriptedModel(["bad \ud800 answer", finish.replace("x", "\udfff"), finish])
    recorder = DirectoryRecorder(tmp_path / "r")
    result = Agent(model=model, device=desktop, dialect="qwen2vl", recorder=recorder).run("t\ud800")
    assert result.status == "success" and result.steps[0].retries == 2
    for name in ("steps.jsonl", "result.json", "run.json"):
        (tmp_path / "r" / name).read_bytes().decode("utf-8")  # strict: valid UTF-8
    traj = load_trajectory(tmp_path / "r")
    assert [a.raw for a in traj.steps[0].attempts][:2] == [
        "bad \ufffd answer",
        finish.replace("x", "\ufffd"),
    ]
    assert traj.meta.task == "t\ufffd"


# -- a stored command line is never run ---------------------------------------------------------
@pytest.fixture
def booby_trapped(run: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The v1 run with its recorded target turned into a command that would create a file."""
    marker = tmp_path / "PWNED"
    meta = json.loads((run / "run.json").read_text(encoding="utf-8"))
    meta["extra"]["target"] = {"kind": "desktop", "command": ["touch", str(marker)]}
    meta["extra"]["scenario"] = f"$(touch {marker})"
    (run / "run.json").write_text(json.dumps(meta), encoding="utf-8")
    return run, marker


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120,
                          env=os.environ.copy())  # fmt: skip


def test_replay_needs_a_target_named_on_the_command_line(booby_trapped):
    run, marker = booby_trapped
    r = cli("replay", str(run))
    assert r.returncode == 2 and "say where to replay" in r.stderr and not marker.exists()
    r = cli("replay", str(V1))
    assert "it was recorded on the built-in target 'fixture' (--target fixture)" in r.stderr
    r = cli("replay", str(run), "--target", "touch")
    assert r.returncode == 2 and "unknown target 'touch'" in r.stderr


def test_replay_on_the_named_fixture_runs_only_the_recorded_actions(display, booby_trapped):
    run, marker = booby_trapped
    r = cli("replay", str(run), "--target", "fixture")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "replayed 3 actions" in r.stdout and not marker.exists()
    with FixtureApp() as app:
        r = cli("replay", str(run), "--device", "desktop")
        assert r.returncode == 0, r.stdout + r.stderr
        app.wait_for(lambda s: s["name"] == "Zoë ✓" and s["block_in_target"])
    assert not marker.exists()
    for argv in (["view", str(run)], ["export", str(run), "--out", str(run.parent / "sft")]):
        assert cli(*argv).returncode == 0
    assert not marker.exists()
