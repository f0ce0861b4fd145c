"""Offline evaluation on a recorded trajectory: scripted models that reproduce, miss and break
the recorded actions, box versus distance matching, another dialect, the tiny real model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from pixelpilot.agent.actions import Hotkey, Point, Scroll, Swipe
from pixelpilot.agent.cli_traj import register
from pixelpilot.agent.dialects import get_dialect
from pixelpilot.agent.errors import ConfigError, ModelRetry
from pixelpilot.agent.evaluate import (
    evaluate,
    match,
    parse_tolerance,
    recorded_outputs,
    step_context,
    to_space,
)
from pixelpilot.agent.geometry import PixelBudget, ScreenGeometry, from_screen, to_device
from pixelpilot.agent.trajectory import load_trajectory
from pixelpilot.vlm.scripted import ScriptedModel

V1 = Path(__file__).parent / "data" / "trajectory_v1"
SCREEN = ScreenGeometry(1280, 800)


def norm(x: int, y: int) -> str:
    p = from_screen(x, y, "norm1000", SCREEN)
    return f"[{p.x:g}, {p.y:g}]"


def click(x: int, y: int) -> str:
    return f'✿FUNCTION✿: click\n✿ARGS✿: {{"point": {norm(x, y)}}}'


@pytest.fixture
def no_boxes(tmp_path: Path) -> Path:
    """The v1 run without the element boxes: points are judged by distance."""
    dest = tmp_path / "nobox"
    shutil.copytree(V1, dest)
    lines = (dest / "steps.jsonl").read_text(encoding="utf-8").splitlines()
    out = []
    for line in lines:
        obj = json.loads(line)
        obj.pop("boxes", None)
        out.append(json.dumps(obj, ensure_ascii=False))
    (dest / "steps.jsonl").write_text("\n".join(out) + "\n", encoding="utf-8")
    return dest


def test_reproducing_the_recording_scores_100_percent() -> None:
    outputs = recorded_outputs([V1])
    assert len(outputs) == 4  # click (after one rejected answer), type, drag, finish
    report = evaluate(ScriptedModel(outputs), [V1])
    o = report.overall
    assert (o.steps, o.type_match, o.exact, o.invalid) == (4, 1.0, 1.0, 0.0)
    assert [s.expected for s in report.steps] == ["click", "type", "drag", "finish"]
    assert report.steps[0].how == "in target box"


def test_wrong_and_invalid_outputs_score_what_they_should() -> None:
    outputs = [
        click(720, 130),  # inside the Name field's box, 120 px from the recorded click
        '✿FUNCTION✿: type\n✿ARGS✿: {"text": "Zoe"}',  # right kind, wrong text
        "I would drag the square now.",  # no call: invalid
        '✿FUNCTION✿: finish\n✿ARGS✿: {"status": "failure"}',  # right kind, wrong status
    ]
    model = ScriptedModel(outputs)
    report = evaluate(model, [V1])
    o = report.overall
    assert (o.type_match, o.exact, o.invalid) == (0.75, 0.25, 0.25)
    s = report.steps
    assert s[0].exact and s[0].how == "in target box"
    assert s[1].type_match and not s[1].exact
    assert not s[2].valid and "no tool call" in (s[2].error or "")
    assert s[3].type_match and not s[3].exact and "failure" in s[3].how
    # the prompts were rebuilt from the recording: task, history of recorded answers, screenshot
    third = model.prompts[2]
    assert "Type Zoë ✓" in third.messages[1].text
    # qwen2vl (Qwen-Agent's layout): the earlier calls in one assistant turn the model
    # continues, each followed by its result, the screenshot taken after it
    (assistant,) = [m.text for m in third.messages if m.role == "assistant"]
    first, second = recorded_outputs([V1])[:2]
    assert assistant == f"{first}\n✿RESULT✿: \n✿RETURN✿: \n{second}\n✿RESULT✿: \n✿RETURN✿"
    assert third.continue_final and len(third.images) == 3
    assert all(im.size == (1280, 800) for im in third.images)


def test_a_miss_outside_the_target_box() -> None:
    outputs = [click(100, 700)] + recorded_outputs([V1])[1:]
    report = evaluate(ScriptedModel(outputs), [V1])
    first = report.steps[0]
    assert first.type_match and not first.exact
    assert first.how.startswith("outside target box")
    assert report.overall.exact == 0.75


def test_distance_tolerance_without_boxes(no_boxes: Path) -> None:
    rest = recorded_outputs([no_boxes])[1:]
    near = evaluate(ScriptedModel([click(610, 125), *rest]), [no_boxes])  # 10 px away
    assert near.steps[0].exact and near.steps[0].how == "10.0 px away"
    far = evaluate(ScriptedModel([click(625, 125), *rest]), [no_boxes])  # 25 px away
    assert not far.steps[0].exact
    share = evaluate(ScriptedModel([click(625, 125), *rest]), [no_boxes], tolerance="14%")
    assert share.steps[0].exact and share.tolerance == "14%"  # AITW: 14% of the screen


def test_another_dialect_gets_the_history_in_its_own_format() -> None:
    uitars = get_dialect("uitars")
    traj = load_trajectory(V1)
    outputs = []
    for step in traj.steps:
        if step.device_action is None:
            continue
        ctx = step_context(traj, step, (1288, 812))
        outputs.append(uitars.format(to_space(step.device_action, uitars, ctx), ctx))
    model = ScriptedModel(outputs)
    report = evaluate(model, [V1], dialect="uitars")
    assert report.overall.exact == 1.0 and report.dialect == "uitars"
    history = [m.text for m in model.prompts[3].messages if m.role == "assistant"]
    assert history == outputs[:3] and all(h.startswith("Thought:") for h in history)


def test_match_rules_for_swipes_scrolls_and_keys() -> None:
    px = lambda x, y: Point(x=x, y=y, space="screen_px")  # noqa: E731
    tol = parse_tolerance("14%")
    phone = ScreenGeometry(1080, 2400)
    up = Swipe(start=px(540, 1800), end=px(540, 600))
    assert match(Swipe(start=px(500, 2000), end=px(520, 900)), up, phone, tol)[0]
    assert not match(Swipe(start=px(540, 600), end=px(540, 1800)), up, phone, tol)[0]
    down = Scroll(direction="down", point=px(900, 300))
    px14 = (14.0, False)
    assert match(Scroll(direction="down", point=px(905, 300), amount=3), down, SCREEN, px14)[0]
    assert not match(Scroll(direction="up", point=px(900, 300)), down, SCREEN, px14)[0]
    assert match(Hotkey(keys=["c", "Control"]), Hotkey(keys=["ctrl", "c"]), SCREEN, tol)[0]
    with pytest.raises(ConfigError, match="14px"):
        parse_tolerance("fourteen")


def test_eval_command_prints_a_table_and_writes_json(tmp_path: Path) -> None:
    script = tmp_path / "outs.yaml"
    script.write_text(json.dumps(recorded_outputs([V1]), ensure_ascii=False), encoding="utf-8")
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    out = tmp_path / "eval.json"
    res = CliRunner().invoke(
        app, ["eval", "--model", f"scripted:{script}", str(V1), "--json", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "overall" in res.output and "100.0%" in res.output
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["overall"]["exact"] == 1.0 and len(data["steps"]) == 4


def test_tiny_real_model_runs_through_eval(tiny_small: Path) -> None:
    from pixelpilot.vlm.local import LocalModel

    # a small pixel budget keeps the CPU prefill short (240 visual tokens instead of 1334)
    model = LocalModel(str(tiny_small), pixels=PixelBudget(3136, 256 * 28 * 28))
    traj = load_trajectory(V1)
    dialect = get_dialect(traj.meta.dialect)
    report = evaluate(model, [V1])
    assert report.overall.steps == 4 and report.model == model.name
    acted = [s for s in traj.steps if s.device_action is not None]
    for score, step in zip(report.steps, acted, strict=True):
        assert score.seconds > 0 and score.expected == step.device_action.kind
        ctx = step_context(traj, step, model.resized_size(1280, 800))
        try:
            to_device(dialect.parse(score.raw, ctx), ctx.geometry, ctx.resized)
            valid = True
        except ModelRetry:
            valid = False
        assert score.valid == valid, score.raw
