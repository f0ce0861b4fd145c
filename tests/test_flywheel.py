"""The flywheel end to end through the CLI, as a user runs it: record DOM-policy episodes on
MiniWoB++ (real Chromium), export them, train the tiny checkpoint on the export, then score the
untrained and the trained checkpoint offline on held-out episodes (other seeds). The larger
measurement, per task, is bench/flywheel.py (docs/training.md, "The flywheel")."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from pixelpilot.agent.cli import main
from pixelpilot.agent.evaluate import recorded_outputs
from pixelpilot.agent.train import RECORD
from pixelpilot.envs import miniwob_env

V1 = Path(__file__).parent / "data" / "trajectory_v1"
TASKS = "click-test,focus-text"
# uitars-1.5: its prompt is ~820 tokens in the tiny vocabulary (qwen2vl's ~2.6k: 4x slower
# steps), and it never continues an assistant turn, so the export is the trajectory's layout
DIALECT = "uitars-1.5"
TRAIN_SEEDS, HELD_SEEDS = (0, 4), (100, 2)  # (first seed, episodes per task): disjoint


@pytest.fixture
def session_browser(miniwob: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``pixelpilot bench miniwob`` runs on the session's Chromium (the real one every MiniWoB
    test shares) instead of starting one of its own."""
    monkeypatch.setattr(
        miniwob_env, "MiniWoBEnv", lambda display, **_: contextlib.nullcontext(miniwob)
    )
    return miniwob


def _bench(out: Path, seeds: tuple[int, int]) -> list[int]:
    rc = main(["bench", "miniwob", "--model", "dom-oracle", "--dialect", DIALECT, "--tasks", TASKS,
               "--seed", str(seeds[0]), "--episodes", str(seeds[1]), "--no-reports",
               "--out", str(out)])  # fmt: skip
    assert rc == 0
    episodes = json.loads((out / "results.json").read_text())["episodes"]
    assert all(e["success"] for e in episodes), [(e["task"], e["reason"]) for e in episodes]
    return sorted({e["seed"] for e in episodes})


def _eval(held: Path, model: str, out: Path) -> dict[str, Any]:
    # --tolerance 0px: a click counts only inside the element that holds the recorded point
    rc = main(["eval", str(held), "--model", model, "--tolerance", "0px", "--json", str(out)])
    assert rc == 0
    return json.loads(out.read_text())


def _clicks(report: dict[str, Any]) -> str:
    clicks = [s for s in report["steps"] if s["expected"] == "click"]
    return f"{sum(s['exact'] for s in clicks)}/{len(clicks)}"


def test_the_flywheel_lifts_the_tiny_model_on_held_out_episodes(
    session_browser: Any, tiny_small: Path, tmp_path: Path, capsys: Any
) -> None:
    train_dir, held, sft, trained = (tmp_path / n for n in ("train", "held", "sft", "model"))
    seen = _bench(train_dir, TRAIN_SEEDS)
    assert not set(seen) & set(_bench(held, HELD_SEEDS))
    capsys.readouterr()
    # the bench's --out as it is: export finds the episodes below it (episodes/TASK/NNN)
    assert main(["export", str(train_dir), "--out", str(sft)]) == 0
    assert "wrote 16 of 16 steps from 8 runs" in capsys.readouterr().out
    assert main(["train", str(sft), "--out", str(trained), "--model", str(tiny_small),
                 "--max-steps", "120", "--lr", "3e-3", "--log-steps", "40"]) == 0  # fmt: skip
    rec = json.loads((trained / RECORD).read_text())
    assert (rec["examples"], rec["dialect"], rec["steps"]) == (16, DIALECT, 120)

    before = _eval(held, str(tiny_small), tmp_path / "before.json")
    after = _eval(held, str(trained), tmp_path / "after.json")
    b, a = before["overall"], after["overall"]
    with capsys.disabled():
        print(f"\nflywheel ({TASKS}, {rec['steps']} steps, {rec['seconds']:.0f} s of training): "
              f"type match {b['type_match']:.0%} -> {a['type_match']:.0%}, exact (in the "
              f"element) {b['exact']:.0%} -> {a['exact']:.0%}, invalid {b['invalid']:.0%} -> "
              f"{a['invalid']:.0%} over {a['steps']} held-out steps; clicks in the element: "
              f"{_clicks(before)} -> {_clicks(after)}")  # fmt: skip
    assert a["steps"] == b["steps"] == 8
    # every held-out episode is a click then finished(); the trained model does just that
    expected = [(s["index"], s["expected"]) for s in after["steps"]]
    assert expected == [(1, "click"), (2, "finish")] * 4
    assert [s["predicted"] for s in after["steps"]] == [k for _, k in expected], after["steps"]
    assert a["type_match"] == 1.0 and a["invalid"] == 0.0
    # random weights do not: at most half the kinds right
    assert b["type_match"] <= 0.5 and [s["predicted"] for s in before["steps"]] != [
        k for _, k in expected
    ]
    # every finished() matches; the clicks that land in their element add to that
    assert a["exact"] >= 0.5 and a["exact"] > b["exact"]


def test_eval_and_export_find_the_runs_of_a_bench_folder(tmp_path: Path, capsys: Any) -> None:
    bench = tmp_path / "bench"  # pixelpilot bench miniwob --out bench: episodes/TASK/NNN
    for task, n in (("click-button", "000"), ("enter-text", "000")):
        shutil.copytree(V1, bench / "episodes" / task / n)
    assert main(["export", str(bench), "--out", str(tmp_path / "sft")]) == 0
    assert "from 2 runs" in capsys.readouterr().out
    script = tmp_path / "outs.yaml"
    script.write_text(json.dumps(recorded_outputs([V1] * 2), ensure_ascii=False))
    out = tmp_path / "eval.json"
    assert main(["eval", str(bench), "--model", f"scripted:{script}", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert len(report["trajectories"]) == 2 and report["overall"]["exact"] == 1.0
    assert main(["eval", str(tmp_path / "sft"), "--model", f"scripted:{script}"]) == 2
    assert "no trajectory here" in capsys.readouterr().err
    assert main(["view", str(bench)]) == 2  # one report is of one run
    assert "holds 2 runs; view one of them" in capsys.readouterr().err
