"""The pixelpilot command as users run it: a real subprocess, real display, real files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pixelpilot.agent.trajectory import load_trajectory
from pixelpilot.agent.viewer import write_report
from pixelpilot.scenarios.fixture import FixtureApp
from pixelpilot.scenarios.spec import BUILTIN_DIR
from pixelpilot.tools.xvfb import VirtualDisplay

CLI = [sys.executable, "-m", "pixelpilot.agent.cli"]
WAIT = '✿FUNCTION✿: wait\n✿ARGS✿: {"seconds": 0.2}'


def cli(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, env=env or os.environ.copy()
    )


def script(tmp_path: Path, outputs: list[str]) -> str:
    f = tmp_path / "outputs.yaml"
    f.write_text(yaml.safe_dump(outputs, allow_unicode=True), encoding="utf-8")
    return f"scripted:{f}"


@pytest.mark.parametrize("args", [[], ["run"], ["scenario"], ["scenario", "test"], ["replay"], ["demo"],
                                  ["train"]])
def test_help_everywhere(args):
    r = cli(*args, "--help")
    assert r.returncode == 0 and "Usage" in r.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "x", "--bogus"], "No such option: --bogus"),
        (["run", "x", "--model", "qwen2-vl-7b"], "hf download Qwen/Qwen2-VL-7B-Instruct"),
        (["run", "x", "--max-pixels", "5000", "--min-pixels", "9000"], "below --min-pixels"),
        (["run", "x", "--device", "robot:moon"], "unknown robot scene 'moon'"),
        (["run", "x", "--model", "openai:ftp://h#m"], "write openai:http://HOST:PORT/v1#MODEL_NAME"),
        (["run", "x", "--model", "scripted:/no/such.yaml", "--dialect", "qwen2vl"], "not found"),
        (["run", "x", "--model", "llava", "--dialect", "qwen2vl"], "unknown model 'llava'"),
        (["run", "x", "--model", "scripted:{script}", "--compile"], "for local transformers models"),
        (["run", "x", "--model", "scripted:{script}", "--dialect", "qwen9"], "unknown dialect"),
        (["run", "x", "--model", "scripted:{script}", "--dialect", "qwen2vl", "--device", "toaster"],
         "unknown device 'toaster'"),
        (["run", "x", "--model", "scripted:{script}", "--dialect", "qwen2vl", "--max-steps", "0"],
         "--max-steps"),
        (["scenario", "run", "/no/such.yaml"], "no such scenario file"),
        (["scenario", "run", "{bad}"], "unknown field"),
        (["scenario", "test", "/no/such/dir"], "no such file or directory"),
        (["replay", "/tmp"], "not a trajectory directory"),
        (["run"], "missing TASK"),
        (["run", "--scenario", "{demo}", "--device", "desktop"], "exclude each other"),
        (["run", "x", "--device", "desktop:region=1,2"], "bad region"),
        (["run", "x", "--device", "desktop:size=3"], "unknown desktop option"),
        (["frobnicate"], "No such command"),
        (["train", "/no/such", "--out", "{tmp}/o"], "not a directory of trajectories"),
        (["train", "{v1}", "--out", "{tmp}/o", "--model", "scripted:{script}"],
         "not a checkpoint on this machine"),
        (["train", "{v1}", "--out", "{tmp}/o", "--model", "qwen2-vl-7b"], "hf download"),
    ],
)
def test_bad_input_gets_one_line_and_exit_2(tmp_path, args, message):
    outputs = tmp_path / "o.yaml"
    outputs.write_text("- x\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: t\ntarget: {app: fixture}\nscripts: {qwen2vl: [x]}\ncolour: red\n")
    args = [a.replace("scripted:{script}", f"scripted:{outputs}").replace("{bad}", str(bad))
            .replace("{demo}", str(BUILTIN_DIR / "desktop" / "demo.yaml")).replace("{tmp}", str(tmp_path))
            .replace("{v1}", str(Path(__file__).parent / "data" / "trajectory_v1")) for a in args]
    r = cli(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in r.stderr, r.stderr


def test_scenario_list():
    r = cli("scenario", "list")
    assert r.returncode == 0
    for name in ("demo", "click_submit", "drag_block", "give_up_malformed", "signin_unicode",
                 "red_cube_in_tray"):
        assert name in r.stdout


def test_model_list_names_every_short_name_and_where_it_is():
    r = cli("model", "list")
    assert r.returncode == 0, r.stderr
    for name in ("qwen2-vl-2b", "qwen2-vl-7b", "qwen2-vl-72b", "qwen2.5-vl-7b", "ui-tars-7b",
                 "os-atlas-pro-7b", "showui-2b", "Qwen/Qwen2-VL-7B-Instruct"):
        assert name in r.stdout
    assert "no (16.6 GB)" in r.stdout  # no hub checkpoint is on this machine
    assert "trained, in the package" in r.stdout  # the built-in demo model ships with it
    info = cli("model", "info", "demo")
    assert info.returncode == 0 and "3,138,304" in info.stdout, info.stdout + info.stderr


def test_demo_is_the_readme_main_job(tmp_path):
    """The README's main job: the built-in demo model (in the package, trained from scratch by
    scripts/build_demo_model.sh) does a MiniWoB++ task it learned, on a seed it never saw (it
    was trained on 100000 and up), in a real Chromium on a virtual display; MiniWoB's reward
    is the verdict."""
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    r = cli("demo", "--task", "click-test", "--seed", "4242", "--out", str(tmp_path / "runs"),
            env=env, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert "the built-in demo model" in r.stdout and "trained on click-test" in r.stdout
    assert "MiniWoB verdict: success" in r.stdout, r.stdout
    (run,) = (tmp_path / "runs").iterdir()
    verdict = json.loads((run / "episodes" / "click-test" / "000" / "miniwob.json").read_text())
    assert verdict["success"] is True and verdict["outcome"]["raw_reward"] > 0
    steps = [json.loads(line) for line in
             (run / "episodes" / "click-test" / "000" / "steps.jsonl").read_text().splitlines()]  # fmt: skip
    assert steps[0]["action"]["kind"] == "click" and len(steps[0]["attempts"]) == 1
    x, y = steps[0]["device_action"]["point"]["x"], steps[0]["device_action"]["point"]["y"]
    assert any(bx <= x <= bx + bw and by <= y <= by + bh for bx, by, bw, bh in
               steps[0]["boxes"].values())  # fmt: skip


def test_demo_scripted_replays_the_fixture_scenario(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    r = cli("demo", "--scripted", "--out", str(tmp_path / "runs"), env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS" in r.stdout and "0 failed" in r.stdout, r.stdout


def test_run_on_a_scenario_is_judged_by_the_target_not_the_model(display, tmp_path):
    """run --scenario: the scripted demo fills the form in (achieved, exit 0); a model that only
    claims success is told apart (NOT achieved, exit 1), and both verdicts are in result.json."""
    demo = BUILTIN_DIR / "desktop" / "demo.yaml"
    outputs = yaml.safe_load(demo.read_text(encoding="utf-8"))["scripts"]["qwen2vl"]
    for name, script_, code, line in [
        ("honest", outputs, 0, "task achieved: 4 of 4 checks"),
        ("boast", ['✿FUNCTION✿: finish\n✿ARGS✿: {"answer": "all done"}'], 1,
         "task NOT achieved (whatever the model claimed): 0 of 4 checks"),
    ]:
        folder = tmp_path / name
        folder.mkdir()
        r = cli("run", "--scenario", str(demo), "--model", script(folder, script_), "--dialect",
                "qwen2vl", "--out", str(folder / "runs"))  # fmt: skip
        assert r.returncode == code and line in r.stdout, r.stdout + r.stderr
        assert "success: the model finished (success)" in r.stdout
        (run,) = (folder / "runs").iterdir()
        result = json.loads((run / "result.json").read_text())
        assert result["status"] == "success" and result["achieved"] is (code == 0)
        meta = json.loads((run / "run.json").read_text())
        assert meta["task"] == yaml.safe_load(demo.read_text(encoding="utf-8"))["task"]
        assert meta["extra"]["target"]["app"] == "fixture"  # replay can start it again
        html = write_report(run).read_text(encoding="utf-8")
        verdict = '<span class="ok">yes</span>' if code == 0 else '<span class="bad">no</span>'
        assert f"<th>achieved</th><td>{verdict}" in html


def test_scenario_run_pass_and_fail(display, tmp_path):
    r = cli("scenario", "run", str(BUILTIN_DIR / "desktop" / "click_submit.yaml"),
            "--dialect", "uitars", "--out", str(tmp_path))  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS click_submit [uitars]" in r.stdout and "trajectory:" in r.stdout
    wrong = tmp_path / "wrong.yaml"
    text = (BUILTIN_DIR / "desktop" / "click_submit.yaml").read_text(encoding="utf-8")
    wrong.write_text(text.replace("equals: 1", "equals: 5"), encoding="utf-8")
    r = cli("scenario", "run", str(wrong), "--dialect", "qwen2vl", "--out", str(tmp_path))
    assert r.returncode == 1 and "FAIL" in r.stdout and "submit_count == 5 (got 1)" in r.stdout


def test_scenario_commands_start_their_own_display(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    r = cli("scenario", "run", str(BUILTIN_DIR / "desktop" / "click_submit.yaml"),
            "--dialect", "qwen2vl", "--out", str(tmp_path), env=env)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr


def test_run_task_and_replay(display, tmp_path):
    with FixtureApp() as app:
        model = script(tmp_path, ['✿FUNCTION✿: click\n✿ARGS✿: {"point": [399, 351]}',
                                  '✿FUNCTION✿: finish\n✿ARGS✿: {"answer": "clicked"}'])  # fmt: skip
        r = cli("run", "Click Submit", "--model", model, "--dialect", "qwen2vl", "--out", str(tmp_path))
        assert r.returncode == 0, r.stdout + r.stderr
        assert "step  1  click (510,280)px" in r.stdout and "answer: 'clicked'" in r.stdout
        app.wait_for(lambda s: s["submit_count"] == 1)
        run_dir = next(p for p in tmp_path.iterdir() if p.name.endswith("-run"))
        r = cli("replay", str(run_dir), "--device", "desktop")
        assert r.returncode == 0 and "replayed 1 actions" in r.stdout, r.stdout + r.stderr
        app.wait_for(lambda s: s["submit_count"] == 2)


def _start_run(tmp_path: Path, env: dict) -> subprocess.Popen:
    model = script(tmp_path, [WAIT] * 50)
    return subprocess.Popen(
        [*CLI, "run", "wait a lot", "--model", model, "--dialect", "qwen2vl", "--out", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def _wait_for_steps(tmp_path: Path, n: int) -> Path:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for steps in tmp_path.glob("*-run/steps.jsonl"):
            if steps.read_text().count("\n") >= n:
                return steps.parent
        time.sleep(0.05)
    raise AssertionError("the run did not record steps")


def test_killed_run_keeps_every_finished_step(display, tmp_path):
    proc = _start_run(tmp_path, os.environ.copy())
    run_dir = _wait_for_steps(tmp_path, 3)
    proc.kill()
    proc.wait()
    traj = load_trajectory(run_dir)
    assert traj.status == "incomplete" and len(traj.steps) >= 3
    assert [s.index for s in traj.steps] == list(range(1, len(traj.steps) + 1))


def test_sigterm_ends_the_run_cleanly(display, tmp_path):
    proc = _start_run(tmp_path, os.environ.copy())
    run_dir = _wait_for_steps(tmp_path, 2)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1 and "interrupted" in out
    traj = load_trajectory(run_dir)
    assert traj.status == "error" and traj.result["reason"] == "interrupted"
    assert all(traj.screenshot_path(s) for s in traj.steps)


def test_display_that_vanishes_ends_the_run_with_the_trajectory(tmp_path):
    with VirtualDisplay(320, 240) as vd:
        env = {**os.environ, **vd.env}
        proc = _start_run(tmp_path, env)
        run_dir = _wait_for_steps(tmp_path, 2)
        vd.stop()
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, out + err
    assert "error" in out and "Traceback" not in err
    traj = load_trajectory(run_dir)
    assert traj.status == "error" and len(traj.steps) >= 2
    assert traj.steps[-1].error and traj.result["reason"] == traj.steps[-1].error


def _hub_cache(root: Path, hub_id: str, checkpoint: Path) -> Path:
    """A Hugging Face hub cache holding ``checkpoint`` as ``hub_id`` (what `hf download` leaves)."""
    repo = root / f"models--{hub_id.replace('/', '--')}"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for f in checkpoint.iterdir():
        (snapshot / f.name).symlink_to(f)
    return root


def test_run_a_registry_name_whose_weights_are_in_the_hub_cache(display, tiny_small, tmp_path):
    """`run --model qwen2-vl-7b` loads Qwen/Qwen2-VL-7B-Instruct from the hub cache the standard
    way (here the tiny checkpoint stands in for the 16 GB one), with the card's dialect and the
    pixel budget given on the command line."""
    env = os.environ.copy()
    env["HF_HUB_CACHE"] = str(_hub_cache(tmp_path / "hub", "Qwen/Qwen2-VL-7B-Instruct", tiny_small))
    env["HF_HUB_OFFLINE"] = "1"
    r = cli("run", "Click Submit", "--model", "qwen2-vl-7b", "--max-steps", "1",
            "--max-pixels", str(256 * 28 * 28), "--out", str(tmp_path / "runs"), env=env, timeout=300)
    assert r.returncode in (0, 1), r.stdout + r.stderr  # random weights: any valid call
    (run,) = (tmp_path / "runs").iterdir()
    traj = load_trajectory(run)
    assert (traj.meta.model, traj.meta.dialect) == ("qwen2-vl-7b", "qwen2vl")
    (step,) = traj.steps
    assert step.attempts[0].visual_tokens == (step.resized[0] // 28) * (step.resized[1] // 28)
    assert step.resized[0] * step.resized[1] <= 256 * 28 * 28 < 1280 * 800


def test_run_on_the_robot_from_the_command_line(tmp_path):
    model = script(tmp_path, ["✿FUNCTION✿: home\n✿ARGS✿: {}", "✿FUNCTION✿: finish\n✿ARGS✿: {}"])
    r = cli("run", "Go home", "--model", model, "--device", "robot:stack",
            "--out", str(tmp_path / "runs"), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    (run,) = (tmp_path / "runs").iterdir()
    traj = load_trajectory(run)
    assert traj.meta.device["kind"] == "robot" and traj.meta.device["name"] == "robot:stack"
    assert traj.steps[0].executed is not None and traj.status == "success"


def test_run_on_an_android_serial_from_the_command_line(tmp_path):
    """`--device android:SERIAL` against the phone fixture, through the real adb server."""
    from pixelpilot.scenarios.phone import PhoneFixture

    with PhoneFixture(start="home", width=360, height=640) as phone:
        x, y = phone.center("app:com.android.settings")
        model = script(tmp_path, [
            f'✿FUNCTION✿: tap\n✿ARGS✿: {{"point": [{x * 1000 // 360}, {y * 1000 // 640}]}}',
            "✿FUNCTION✿: finish\n✿ARGS✿: {}",
        ])  # fmt: skip
        env = {**os.environ, "ANDROID_ADB_SERVER_PORT": str(phone.adb.port)}
        r = cli("run", "Open Settings", "--model", model, "--device", f"android:{phone.serial}",
                "--out", str(tmp_path / "runs"), env=env, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert phone.wait_for(lambda s: s["screen"] == "settings")
    (run,) = (tmp_path / "runs").iterdir()
    assert load_trajectory(run).meta.device["kind"] == "mobile"


def test_replay_a_robot_scenario_run_on_a_fresh_scene(tmp_path):
    r = cli("scenario", "run", str(BUILTIN_DIR / "robot" / "red_cube_in_tray.yaml"),
            "--dialect", "qwen2vl", "--out", str(tmp_path / "runs"), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    (run,) = (tmp_path / "runs").iterdir()
    executed = [s for s in load_trajectory(run).steps if s.executed is not None]
    r = cli("replay", str(run), "--target", "scene:tray", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"replayed {len(executed)} actions" in r.stdout and "pick" in r.stdout


def test_official_turns_the_project_additions_off(display, tmp_path):
    """--official: ask_user (a project addition for qwen2vl) is neither offered nor read."""
    ask = '✿FUNCTION✿: ask_user\n✿ARGS✿: {"question": "Which button?"}'
    model = script(tmp_path, [ask])
    r = cli("run", "x", "--model", model, "--dialect", "qwen2vl", "--official",
            "--max-retries", "0", "--out", str(tmp_path))  # fmt: skip
    assert r.returncode == 1 and "'ask_user' is not available" in r.stdout, r.stdout + r.stderr
