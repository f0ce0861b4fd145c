"""MiniWoB++ on a real Chromium: the bench, the DOM reference policy through pixels and directly,
the episode lifecycle and the bench's files. The full oracle table is bench/bench_miniwob.py."""

from __future__ import annotations

import json

import pytest

from pixelpilot.agent.actions import Click, Finish, Point
from pixelpilot.agent.cli import main
from pixelpilot.agent.dialects import StepContext, get_dialect
from pixelpilot.agent.geometry import from_screen
from pixelpilot.agent.loop import Agent, Budgets
from pixelpilot.agent.trajectory import StepRecord, load_trajectory
from pixelpilot.envs.bench_report import overhead_stats, summarize, write_all
from pixelpilot.envs.dom_oracle import DomOracle
from pixelpilot.envs.dom_page import Page
from pixelpilot.envs.miniwob_bench import BenchConfig, EndedPolicy, overhead_parts, run_bench
from pixelpilot.tools.desktop import DesktopDevice
from pixelpilot.vlm import ScriptedModel

# one task per kind of input: clicks, typing, checkboxes, a native select, a drag, the wheel, keys
SLICE = ("click-button", "enter-text", "click-checkboxes", "choose-list", "drag-items",
         "scroll-text-2", "copy-paste")  # fmt: skip


def _run(env, tmp_path, *, dialect="qwen2vl", direct=False, tasks=SLICE, episodes=1,
         observe="screen"):  # fmt: skip
    cfg = BenchConfig(tasks=tasks, dialect=dialect, episodes=episodes, observe=observe,
                      direct=direct, out=tmp_path / ("direct" if direct else dialect))  # fmt: skip
    return cfg, run_bench(cfg, env, None if direct else DomOracle(env))


def test_dom_policy_wins_directly_and_through_pixels_in_two_dialects(miniwob, tmp_path):
    _, direct = _run(miniwob, tmp_path, direct=True)
    assert [(r.task, r.success) for r in direct] == [(t, True) for t in SLICE]
    # qwen25vl: resized_px points, and a drag is the family's mouse_move + left_click_drag
    for dialect in ("qwen2vl", "qwen25vl"):
        _, pixels = _run(miniwob, tmp_path, dialect=dialect)
        assert [(r.task, r.success) for r in pixels] == [(t, True) for t in SLICE], [
            (r.task, r.reason) for r in pixels if not r.success
        ]
        assert all(r.status == "success" and r.invalid == 0 for r in pixels)
        drag = next(r for r in pixels if r.task == "drag-items")
        kinds = [s.action.kind for s in load_trajectory(drag.trajectory).steps]
        assert kinds == (["drag", "finish"] if dialect == "qwen2vl" else ["move", "drag", "finish"])


def test_the_model_can_see_only_the_task_area(miniwob, tmp_path):
    # --observe task: the 160x210 task area is the whole screenshot; points map back through it
    tasks = ("click-button", "enter-text", "click-checkboxes")
    _, pixels = _run(miniwob, tmp_path, dialect="uitars-1.5", tasks=tasks, observe="task")
    assert [(r.task, r.success) for r in pixels] == [(t, True) for t in tasks], [
        (r.task, r.reason) for r in pixels if not r.success
    ]
    traj = load_trajectory(pixels[0].trajectory)
    x, y, w, h = miniwob.task_rect()
    assert (w, h) == (160, 210)
    assert traj.meta.device["view"] == {"region": [x, y, w, h]}
    assert {(s.geometry["width"], s.geometry["height"]) for s in traj.steps} == {(160, 210)}
    # every observation names the elements in the view's own pixels: each click lands in one
    for r in pixels:
        for s in load_trajectory(r.trajectory).steps:
            assert s.boxes, (r.task, s.index)
            if isinstance(s.device_action, Click):
                p = s.device_action.point
                assert any(bx <= p.x <= bx + bw and by <= p.y <= by + bh
                           for bx, by, bw, bh in s.boxes.values()), (r.task, p, s.boxes)


def test_an_episode_is_its_task_and_seed(miniwob):
    page = Page(miniwob.driver)

    def state(seed):
        ep = miniwob.reset("click-button", seed)
        return ep.utterance, [(b.text, b.rect) for b in page.all("#area button")]

    first = state(7)
    state(8)
    assert state(7) == first
    assert state(8) != first


def test_after_the_verdict_the_agent_may_only_finish(miniwob, display):
    ep = miniwob.reset("click-test", 3)
    button = Page(miniwob.driver).one("#subbtn")
    with DesktopDevice(display=display) as device:
        geom = device.geometry
        ctx = StepContext("desktop", device.supported, geom, (0, 0))
        sx, sy = miniwob.to_screen(*button.center)
        dialect = get_dialect("qwen2vl")
        click = dialect.format(Click(point=from_screen(sx, sy, "norm1000", geom)), ctx)
        model = ScriptedModel([click, click, dialect.format(Finish(), ctx)])
        agent = Agent(model=model, device=device, dialect=dialect, policy=EndedPolicy(miniwob),
                      budgets=Budgets(max_steps=4))  # fmt: skip
        result = agent.run(ep.utterance)
        verdict = miniwob.outcome()
        assert result.status == "success" and verdict.success and verdict.raw_reward == 1.0
        second = result.steps[1]
        assert second.action.kind == "finish"
        assert "the task has ended" in second.attempts[0].error
        # the START cover now lies over the task; clicking it must not start a new episode
        device.execute(Click(point=Point(x=sx, y=sy, space="screen_px")))
    assert miniwob.outcome() == verdict


def test_bench_writes_results_reports_and_an_index(miniwob, tmp_path):
    cfg, results = _run(miniwob, tmp_path, tasks=("click-test", "focus-text"), episodes=2)
    assert [(r.task, r.seed, r.success) for r in results] == [
        ("click-test", 0, True), ("click-test", 1, True),
        ("focus-text", 0, True), ("focus-text", 1, True),
    ]  # fmt: skip
    rows = summarize(results)
    assert [(r.task, r.episodes, r.success_rate) for r in rows] == [
        ("click-test", 2, 1.0), ("focus-text", 2, 1.0), ("all", 4, 1.0)
    ]  # fmt: skip
    assert all(0 < r.mean_reward <= 1 and r.mean_steps == 2 for r in rows)
    stats = overhead_stats(results)
    assert stats["steps"] == 8 and 0 < stats["median"] < 1000
    assert set(stats["parts_median"]) == {"capture", "image", "prompt", "parse", "execute", "record"}
    index = write_all(cfg, "dom-oracle", results)
    html = index.read_text(encoding="utf-8")
    data = json.loads((cfg.out / "results.json").read_text(encoding="utf-8"))
    assert data["tasks"][-1]["success_rate"] == 1.0 and len(data["episodes"]) == 4
    for r in results:
        report = f"episodes/{r.task}/{r.index:03d}/report.html"
        assert f'href="{report}"' in html and (cfg.out / report).is_file()
        traj = load_trajectory(r.trajectory)
        assert traj.meta.extra["miniwob"] == {"task": r.task, "seed": r.seed, "observe": "screen"}
        assert traj.meta.task == r.utterance
        saved = json.loads((cfg.out / f"episodes/{r.task}/{r.index:03d}/miniwob.json").read_text())
        assert saved["success"] is True and saved["outcome"]["raw_reward"] == 1.0


def test_overhead_leaves_out_the_model_the_settle_waits_and_the_page_check():
    step = StepRecord(index=1, started_at=0.0, geometry={}, timings={
        "capture": 0.050, "prompt": 0.002, "generate": 3.0, "parse": 0.007, "execute": 0.300,
        "record": 0.001,
    })  # fmt: skip
    waited = {"observe": 0.040, "image": 0.003, "execute": 0.290}
    parts = overhead_parts(step, waited, env_check=0.005)
    assert {k: round(v, 6) for k, v in parts.items()} == {
        "capture": 0.007, "image": 0.003, "prompt": 0.002, "parse": 0.002,
        "execute": 0.3, "record": 0.001,
    }  # fmt: skip  (no executed action: typing's waits are not taken out)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "dom-oracle", "--tasks", "click-test,no-such-task"], "unknown MiniWoB task no-such-task"),
        (["--model", "dom-oracle", "--tasks", "click-test", "--suite", "demo"], "not both"),
        (["--model", "dom-oracle", "--suite", "nope"], "unknown suite 'nope'"),
        (["--model", "dom-oracle", "--observe", "moon"], "use task, window or screen"),
        (["--model", "dom-oracle", "--dialect", "qwen9"], "unknown dialect 'qwen9'"),
        (["--model", "llava"], "unknown model 'llava'"),
        (["--model", "scripted:/no/such.yaml", "--direct"], "needs --model dom-oracle"),
        (["--model", "dom-oracle", "--screen", "big"], "WIDTHxHEIGHT"),
        (["--model", "dom-oracle", "--episodes", "0"], "--episodes"),
        ([], "--model is required"),
    ],
)  # fmt: skip
def test_bad_flags_get_one_line_and_exit_2(args, message, capsys):
    assert main(["bench", "miniwob", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_list_names_the_suites(capsys):
    assert main(["bench", "miniwob", "--list"]) == 0
    text = capsys.readouterr().out
    assert "demo: click-test click-button focus-text enter-text click-checkboxes" in text
    assert "copy-paste" in text and "all:" in text
