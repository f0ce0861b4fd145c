"""Effects and loops: each step records how much the screen changed after its action; the same
action on an unchanged screen is pointed out to the model and, repeated, ends the run as
stuck. Scripted models on the Tk fixture app on Xvfb."""

from __future__ import annotations

from PIL import Image

from pixelpilot.agent.actions import Click, Point, TypeText
from pixelpilot.agent.dialects import get_dialect
from pixelpilot.agent.dialects.base import StepContext
from pixelpilot.agent.effects import UNCHANGED_NOTE, RepeatGuard, screen_change
from pixelpilot.agent.geometry import HUB_PIXELS, ScreenGeometry, from_screen
from pixelpilot.agent.loop import Agent, Budgets
from pixelpilot.agent.trajectory import DirectoryRecorder, load_trajectory
from pixelpilot.agent.viewer import render
from pixelpilot.vlm.scripted import ScriptedModel

GEOM = ScreenGeometry(1280, 800)
CTX = StepContext("desktop", frozenset({"click", "type"}), GEOM, HUB_PIXELS.resize(1280, 800))
TITLE = (640, 60)  # a label: clicking it changes nothing
SUBMIT = (510, 280)
NAME = (600, 125)
FINISH = "✿FUNCTION✿: finish\n✿ARGS✿: {}"


def click(x: int, y: int) -> str:
    return get_dialect("qwen2vl").format(Click(point=from_screen(x, y, "norm1000", GEOM)), CTX)


def texts(prompt) -> str:
    return "\n".join(m.text for m in prompt.messages)


def test_the_same_click_on_an_unchanged_screen_is_told_then_ends_as_stuck(
    fixture_app, desktop, tmp_path
):
    model = ScriptedModel([click(*TITLE)] * 10)
    result = Agent(
        model=model, device=desktop, dialect="qwen2vl",
        budgets=Budgets(max_steps=10, max_repeats=3), recorder=DirectoryRecorder(tmp_path / "r"),
    ).run("Click the title")  # fmt: skip
    assert result.status == "failure"
    assert result.reason == (
        "stuck: the same click action 3 times in a row and the screen did not change"
    )
    assert len(result.steps) == 3
    assert [s.screen_change for s in result.steps] == [0.0, 0.0, 0.0]
    assert [s.screen_changed for s in result.steps] == [False, False, False]
    assert UNCHANGED_NOTE in texts(model.prompts[1])
    assert "You repeated the same action 2 times and the screen did not change" in texts(
        model.prompts[2]
    )
    traj = load_trajectory(tmp_path / "r")
    assert traj.status == "failure" and traj.steps[2].screen_change == 0.0
    assert traj.steps[0].result == UNCHANGED_NOTE
    html = render(traj)
    assert "the screen did not change after this action" in html


def test_an_action_that_changes_the_screen_records_how_much_and_tells_nothing(
    fixture_app, desktop, tmp_path
):
    typed = get_dialect("qwen2vl").format(TypeText(text="Zoë"), CTX)
    model = ScriptedModel([click(*NAME), typed, click(*SUBMIT), FINISH])
    result = Agent(
        model=model, device=desktop, dialect="qwen2vl", recorder=DirectoryRecorder(tmp_path / "r")
    ).run("Sign up")
    assert result.status == "success", result.reason
    fixture_app.wait_for(lambda s: s["submit_count"] == 1)
    changed = result.steps[:3]
    assert all(s.screen_changed for s in changed), [s.screen_change for s in changed]
    assert all(0 < s.screen_change < 0.2 for s in changed)  # a caret, three letters, a label
    assert result.steps[3].screen_change is None  # finish: nothing to measure
    for prompt in model.prompts:
        assert UNCHANGED_NOTE not in texts(prompt) and "repeated" not in texts(prompt)
    html = render(load_trajectory(tmp_path / "r"))
    assert "the screen changed after this action: " in html and "% of its pixels" in html


def test_a_different_action_or_a_change_resets_the_count():
    guard = RepeatGuard(limit=3)
    a, b = Click(point=Point(x=1, y=1, space="screen_px")), TypeText(text="x")
    assert guard.after(a, 0.0) == (UNCHANGED_NOTE, None)
    assert guard.after(b, 0.0) == (UNCHANGED_NOTE, None)  # another action: counted afresh
    assert guard.after(b, 0.01) == ("", None)  # it changed something
    assert guard.after(a, 0.0)[1] is None and guard.after(a, 0.0)[1] is None
    assert guard.after(a, 0.0)[1] is not None  # the third in a row
    assert guard.after(a, None) == ("", None)  # unknown: no claim either way
    off = RepeatGuard(limit=0)
    assert all(off.after(a, 0.0)[1] is None for _ in range(20))


def test_screen_change_is_the_fraction_of_pixels():
    a = Image.new("RGB", (10, 10), (0, 0, 0))
    b = a.copy()
    assert screen_change(a, b) == 0.0
    b.putpixel((3, 3), (0, 0, 1))  # one channel of one pixel
    b.putpixel((4, 4), (9, 9, 9))
    assert screen_change(a, b) == 0.02
    assert screen_change(a, Image.new("RGB", (5, 5))) == 1.0
