"""The agent loop end to end on the real X display and Tk fixture app."""

from __future__ import annotations

import os
import subprocess

import pytest

from pixelpilot.agent.actions import Click, Point
from pixelpilot.agent.dialects import get_dialect
from pixelpilot.agent.dialects.base import StepContext
from pixelpilot.agent.errors import ActionDenied
from pixelpilot.agent.geometry import HUB_PIXELS, ScreenGeometry, from_screen
from pixelpilot.agent.loop import Agent, Budgets
from pixelpilot.agent.trajectory import DirectoryRecorder, load_trajectory
from pixelpilot.vlm.scripted import ScriptedModel

GEOM = ScreenGeometry(1280, 800)
SUBMIT = (510, 280)
FINISH = "✿FUNCTION✿: finish\n✿ARGS✿: {}"


def qwen2vl_click(x: int, y: int, **extra) -> str:
    p = from_screen(x, y, "norm1000", GEOM)
    ctx = StepContext("desktop", frozenset({"click"}), GEOM, HUB_PIXELS.resize(*GEOM.logical_size))
    return get_dialect("qwen2vl").format(Click(point=p, **extra), ctx)


def test_click_lands_and_is_recorded(fixture_app, desktop, tmp_path):
    model = ScriptedModel([qwen2vl_click(*SUBMIT), FINISH])
    agent = Agent(
        model=model, device=desktop, dialect="qwen2vl", recorder=DirectoryRecorder(tmp_path / "r")
    )
    result = agent.run("Click Submit")
    assert result.status == "success", result.reason
    fixture_app.wait_for(lambda s: s["submit_count"] == 1)
    step = result.steps[0]
    assert step.device_action.point == Point(x=510, y=280, space="screen_px")
    assert step.executed.commands[-1][0] == "pyautogui.click"
    assert step.resized == (1288, 812)
    assert set(step.timings) >= {"capture", "prompt", "generate", "parse", "execute", "record"}

    traj = load_trajectory(tmp_path / "r")
    assert traj.status == "success" and len(traj.steps) == 2
    assert traj.meta.device["width"] == 1280 and traj.meta.dialect == "qwen2vl"
    assert traj.steps[0].attempts[0].raw == model.outputs[0]
    assert traj.screenshot_path(traj.steps[0]) is not None


def test_invalid_output_goes_back_to_the_model_and_is_never_executed(fixture_app, desktop):
    model = ScriptedModel(["no call here", '✿FUNCTION✿: click\n✿ARGS✿: {"point": [1200, 5]}',
                           qwen2vl_click(*SUBMIT), FINISH])  # fmt: skip
    result = Agent(model=model, device=desktop, dialect="qwen2vl").run("Click Submit")
    assert result.status == "success"
    first = result.steps[0]
    assert [a.error is None for a in first.attempts] == [False, False, True]
    assert "outside the screen" in first.attempts[1].error
    # the second prompt carries the first rejection's reason, the third the second's
    assert first.attempts[0].error in model.prompts[1].messages[-1].text
    assert "outside the screen" in model.prompts[2].messages[-1].text
    fixture_app.wait_for(lambda s: s["submit_count"] == 1)


def test_retries_are_bounded_then_the_run_fails(fixture_app, desktop):
    model = ScriptedModel(["nope"] * 10)
    result = Agent(
        model=model, device=desktop, dialect="qwen2vl", budgets=Budgets(max_retries=1)
    ).run("Click Submit")
    assert result.status == "failure" and "no valid action after 2 answers" in result.reason
    assert len(model.prompts) == 2 and result.steps[0].executed is None


def test_step_budget(fixture_app, desktop):
    model = ScriptedModel([qwen2vl_click(*SUBMIT)] * 5)
    result = Agent(
        model=model, device=desktop, dialect="qwen2vl", budgets=Budgets(max_steps=3)
    ).run("Click Submit forever")
    assert result.status == "step_budget" and len(result.steps) == 3
    fixture_app.wait_for(lambda s: s["submit_count"] == 3)


def test_time_budget(fixture_app, desktop):
    wait = '✿FUNCTION✿: wait\n✿ARGS✿: {"seconds": 0.3}'
    result = Agent(
        model=ScriptedModel([wait] * 20),
        device=desktop,
        dialect="qwen2vl",
        budgets=Budgets(max_seconds=0.5),
    ).run("Wait")
    assert result.status == "time_budget" and 1 <= len(result.steps) <= 3


def test_model_backend_failure_ends_the_run_with_the_trajectory(fixture_app, desktop, tmp_path):
    model = ScriptedModel([qwen2vl_click(*SUBMIT)])  # runs out after one step
    result = Agent(
        model=model, device=desktop, dialect="qwen2vl", recorder=DirectoryRecorder(tmp_path / "r")
    ).run("Click Submit")
    assert result.status == "error" and "script holds 1" in result.reason
    traj = load_trajectory(tmp_path / "r")
    assert traj.status == "error" and len(traj.steps) == 2 and traj.steps[1].error


def test_policy_denial_goes_back_to_the_model(fixture_app, desktop):
    def no_right_clicks(action):
        if action.kind == "click" and action.button == "right":
            raise ActionDenied("right clicks are not allowed in this run")

    model = ScriptedModel([qwen2vl_click(*SUBMIT, button="right"), qwen2vl_click(*SUBMIT), FINISH])
    result = Agent(model=model, device=desktop, dialect="qwen2vl", policy=no_right_clicks).run("x")
    assert result.status == "success"
    assert result.steps[0].attempts[0].error == "right clicks are not allowed in this run"


def test_ask_user(fixture_app, desktop):
    ask = '✿FUNCTION✿: ask_user\n✿ARGS✿: {"question": "Which button?"}'
    model = ScriptedModel([ask, FINISH])
    result = Agent(model=model, device=desktop, dialect="qwen2vl", ask_user=lambda q: "Submit").run("x")
    assert result.status == "success"
    # qwen2vl: the answer is the ask_user call's result (Qwen-Agent's ✿RESULT✿ slot)
    assert "✿RESULT✿: The user answered: Submit" in "".join(m.text for m in model.prompts[1].messages)
    unanswered = Agent(model=ScriptedModel([ask]), device=desktop, dialect="qwen2vl").run("x")
    assert unanswered.status == "failure" and "Which button?" in unanswered.reason


def test_fail_safe_stops_the_run_cleanly(fixture_app, desktop, display, tmp_path):
    subprocess.run(["xdotool", "mousemove", "0", "0"], check=True, env={**os.environ, "DISPLAY": display})
    try:
        model = ScriptedModel([qwen2vl_click(*SUBMIT), FINISH])
        result = Agent(
            model=model, device=desktop, dialect="qwen2vl", recorder=DirectoryRecorder(tmp_path / "r")
        ).run("Click Submit")
    finally:
        subprocess.run(["xdotool", "mousemove", "640", "400"], check=True, env={**os.environ, "DISPLAY": display})
    assert result.status == "error" and "fail-safe" in result.reason
    traj = load_trajectory(tmp_path / "r")
    assert traj.status == "error" and traj.steps[0].error
    assert fixture_app.state()["submit_count"] == 0


@pytest.mark.parametrize("dialect", ["qwen2vl", "qwen25vl", "uitars", "uitars-1.5"])
def test_finish_answer_and_status(desktop, dialect):
    d = get_dialect(dialect)
    from pixelpilot.agent.actions import DESKTOP_KINDS, Finish

    ctx = StepContext("desktop", DESKTOP_KINDS, GEOM, (1288, 812))
    failed = Finish(status="failure") if dialect != "uitars" and dialect != "uitars-1.5" else None
    text = d.format(failed, ctx) if failed else d.format(Finish(), ctx)
    result = Agent(model=ScriptedModel([text]), device=desktop, dialect=dialect).run("x")
    assert result.status == ("failure" if failed else "success")
