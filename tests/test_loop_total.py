"""The loop never crashes on model output: whatever a backend returns, the step ends in an
executed action, a retry with a reason, or a clean end of the run with result.json and every
step on disk. Driven through the real entry points (Agent, ScriptedModel, a dry-run device that
plans with the real planners, DirectoryRecorder)."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pixelpilot.agent.dialects import DIALECTS, get_dialect
from pixelpilot.agent.dialects.qwen2vl import Qwen2VLDialect
from pixelpilot.agent.loop import Agent, Budgets
from pixelpilot.agent.trajectory import DirectoryRecorder, load_trajectory
from pixelpilot.tools.dryrun import DryRunDesktop, DryRunPhone
from pixelpilot.vlm.scripted import ScriptedModel

ROOT = Path(__file__).resolve().parent.parent
CRASHES = ROOT / "tests" / "data" / "fuzz_crashes.jsonl"
FINISH = "✿FUNCTION✿: finish\n✿ARGS✿: {}"


def _fuzz() -> Any:
    spec = importlib.util.spec_from_file_location("fuzz_loop", ROOT / "bench" / "fuzz_loop.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_loop"] = module
    spec.loader.exec_module(module)
    return module


def _cases() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CRASHES.read_text(encoding="utf-8").splitlines() if line]


def test_a_5000_output_fuzz_slice_crashes_nothing_and_executes_nothing_invalid(tmp_path):
    fuzz = _fuzz()
    per = -(-5000 // len(DIALECTS))
    reports = [
        fuzz.fuzz_dialect(d, per, seed=7, record_dir=tmp_path / d, direct=False)
        for d in DIALECTS
    ]
    assert sum(r.outputs for r in reports) >= 5000
    for r in reports:
        assert r.crashes == [], (r.dialect, r.crashes[:3])
        assert r.invalid_executed == [], (r.dialect, r.invalid_executed[:3])
        assert r.errors == [], (r.dialect, r.errors[:3])
        assert r.executed > 0 and len(r.parse_s) + r.unread == r.outputs
        assert sum(r.ends.values()) == r.runs  # every run ended with a result
        assert len(r.parse_s) + r.unread > r.executed  # valid answers ran, invalid ones did not


@pytest.mark.parametrize("case", _cases(), ids=lambda c: f"{c['dialect']}-{c['generator']}")
def test_known_crash_cases_end_in_a_retry_with_a_reason(case, tmp_path):
    device = DryRunPhone(width=180, height=400) if case["device"] == "mobile" else DryRunDesktop(
        width=320, height=200
    )
    d = get_dialect(case["dialect"])
    with device:
        finish = d.format(_finish(), _ctx(device))
        model = ScriptedModel([case["raw"], finish])
        result = Agent(
            model=model, device=device, dialect=d, recorder=DirectoryRecorder(tmp_path / "r"),
            budgets=Budgets(max_seconds=60),
        ).run("fuzz")  # fmt: skip
    assert result.status == "success", result.reason
    traj = load_trajectory(tmp_path / "r")
    assert traj.status == "success" and [s.index for s in traj.steps] == [
        s.index for s in result.steps]  # fmt: skip
    first = result.steps[0].attempts[0]
    assert first.parse_s is not None or "characters long" in (first.error or "")
    assert first.internal is None  # the dialect engine reads them all without an internal error
    if first.error is None:  # a valid call after all (a surrogate replaced): it ran
        assert first.action is not None and len(device.executed) == 1
        return
    assert "\n" not in first.error and first.action is None and device.executed == []
    assert first.error in model.prompts[1].messages[-1].text  # the reason went back


def _finish() -> Any:
    from pixelpilot.agent.actions import Finish

    return Finish()


def _ctx(device: Any) -> Any:
    from pixelpilot.agent.dialects.base import StepContext

    g = device.geometry
    return StepContext(device.kind, device.supported, g, ScriptedModel([]).resized_size(g.width, g.height))


def test_the_crash_file_holds_the_cases_the_issue_names():
    cases = _cases()
    by = {(c["dialect"], c["generator"]) for c in cases}
    for d in ("qwen2vl", "qwen25vl", "showui"):
        assert (d, "issue: nested 993+") in by
    assert ("qwen2vl", "issue: 309 digits") in by and ("qwen2vl", "issue: box_start x 8192") in by


def test_a_lone_surrogate_is_a_retry_and_recorded_as_replacement_text(tmp_path):
    with DryRunDesktop() as dev:
        raw = '✿FUNCTION✿: type\n✿ARGS✿: {"text": "a\ud800b"}'
        model = ScriptedModel([raw, FINISH])
        result = Agent(
            model=model, device=dev, dialect="qwen2vl", recorder=DirectoryRecorder(tmp_path / "r"),
        ).run("type")  # fmt: skip
        assert dev.executed == []  # half a UTF-16 pair is not text: nothing is typed
    assert result.status == "success"
    first = load_trajectory(tmp_path / "r").steps[0].attempts[0]
    assert first.raw == raw.replace("\ud800", "\ufffd") and first.action is None
    assert first.error == (
        "the answer holds a lone surrogate (U+D800, half of a UTF-16 pair), which is not text; "
        "answer again with the characters themselves"
    )
    assert first.error in model.prompts[1].messages[-1].text and first.parse_s is not None


def test_an_answer_over_the_limit_is_refused_unread():
    with DryRunDesktop() as dev:
        model = ScriptedModel(["x" * 40_000, FINISH])
        result = Agent(model=model, device=dev, dialect="qwen2vl").run("x")
    first = result.steps[0].attempts[0]
    assert result.status == "success" and first.parse_s is None
    assert first.error == "the answer is 40,000 characters long; answer with one call of at most 32,768 characters"


class _Broken(Qwen2VLDialect):
    """A real dialect with a parser bug on one input: it raises what a parser must not."""

    def parse(self, raw: str, ctx: Any) -> Any:
        if raw == "boom":
            raise RuntimeError("a parser bug")
        return super().parse(raw, ctx)


def test_a_parser_exception_is_a_retry_recorded_as_internal(tmp_path):
    with DryRunDesktop() as dev:
        model = ScriptedModel(["boom", FINISH])
        result = Agent(
            model=model, device=dev, dialect=_Broken(), recorder=DirectoryRecorder(tmp_path / "r")
        ).run("x")
    first = load_trajectory(tmp_path / "r").steps[0].attempts[0]
    assert result.status == "success"
    assert first.internal.startswith("RuntimeError at test_loop_total.py:")
    assert first.internal.endswith(": a parser bug")
    assert first.error == (
        "the answer could not be read (RuntimeError); answer again with exactly one call in "
        "the format shown"
    )


class _Slow(Qwen2VLDialect):
    """A real dialect whose parser takes 0.3 s on every answer."""

    def parse(self, raw: str, ctx: Any) -> Any:
        time.sleep(0.3)
        return super().parse(raw, ctx)


def test_the_time_budget_bounds_parsing_too():
    with DryRunDesktop() as dev:
        t0 = time.monotonic()
        result = Agent(
            model=ScriptedModel(["no call"] * 20), device=dev, dialect=_Slow(),
            budgets=Budgets(max_seconds=0.5, max_retries=10),
        ).run("x")  # fmt: skip
        took = time.monotonic() - t0
    assert result.status == "time_budget"
    assert took < 0.5 + 0.3 + 0.25  # the budget plus at most one parse
    attempts = result.steps[0].attempts
    assert all(a.parse_s is not None and a.parse_s >= 0.29 for a in attempts if a.error != "not read: the time budget ran out")
    assert len(attempts) <= 3


class _CtrlC(ScriptedModel):
    """A scripted model during whose second answer the user presses Ctrl+C."""

    def _generate(self, prompt: Any) -> Any:
        if len(self.prompts) == 1:
            raise KeyboardInterrupt
        return super()._generate(prompt)


def test_ctrl_c_mid_step_keeps_the_step_and_ends_the_run(tmp_path):
    wait = '✿FUNCTION✿: wait\n✿ARGS✿: {"seconds": 0}'
    with DryRunDesktop() as dev:
        result = Agent(model=_CtrlC([wait, wait]), device=dev, dialect="qwen2vl",
                       recorder=DirectoryRecorder(tmp_path / "r")).run("x")  # fmt: skip
    assert result.status == "error" and result.reason == "interrupted"
    assert [s.error for s in result.steps] == [None, "interrupted"]
    traj = load_trajectory(tmp_path / "r")
    assert traj.status == "error" and [s.error for s in traj.steps] == [None, "interrupted"]
