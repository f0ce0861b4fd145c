"""Run a scenario: start its target, replay each dialect's script through the real agent loop,
then judge the run by how it ended and by checks on the target's real state.

``target_judge`` is the part any run on a scenario target uses (``pixelpilot demo``, ``run
--scenario``): the checks' verdict (``RunResult.achieved``, ``checks``), apart from the model's
own claim."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pixelpilot.agent.errors import PixelPilotError, ScenarioError
from pixelpilot.agent.loop import Agent, Budgets, Judge
from pixelpilot.agent.policy import Policy
from pixelpilot.agent.trajectory import (
    CheckResult,
    DirectoryRecorder,
    NullRecorder,
    Recorder,
    RunResult,
    StepRecord,
)
from pixelpilot.scenarios.spec import Check, Scenario
from pixelpilot.scenarios.targets import OpenTarget, open_target
from pixelpilot.vlm.scripted import ScriptedModel

CHECK_TIMEOUT_S = 3.0


@dataclass
class Outcome:
    """One run of a scenario in one dialect, judged."""

    scenario: str
    dialect: str
    result: RunResult
    failures: list[str] = field(default_factory=list)
    passes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def run_scenario(
    scenario: Scenario,
    *,
    dialects: list[str] | None = None,
    out_dir: str | Path | None = None,
    on_step: Callable[[StepRecord], None] | None = None,
    policy: Policy | None = None,
    run_dir: str | Path | None = None,
) -> list[Outcome]:
    """Run ``scenario`` once per dialect in its scripts (or only ``dialects``), under
    ``policy`` (a ``Policy``) when one is given. Runs are recorded in ``out_dir`` (a folder
    per run, named by time, scenario and dialect), or, for one dialect, exactly in ``run_dir``.

    Desktop targets need a display (DISPLAY set); each run gets a fresh copy of the target.
    """
    chosen = dialects or list(scenario.scripts)
    for d in chosen:
        if d not in scenario.scripts:
            raise ScenarioError(
                f"{scenario.name}: no script for dialect {d!r}; it has {', '.join(scenario.scripts)}"
            )
    if run_dir is not None and len(chosen) != 1:
        raise ScenarioError(f"{scenario.name}: run_dir records one dialect's run; name one")
    outcomes = []
    for dialect in chosen:
        recorder: Recorder = NullRecorder()
        if run_dir is not None:
            recorder = DirectoryRecorder(Path(run_dir))
        elif out_dir is not None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            recorder = DirectoryRecorder(Path(out_dir) / f"{stamp}-{scenario.name}-{dialect}")
        with open_target(scenario.target, name=scenario.name) as target:
            agent = Agent(
                model=ScriptedModel(scenario.scripts[dialect], name=f"scripted:{scenario.name}"),
                device=target.device,
                dialect=dialect,
                budgets=Budgets(**scenario.budgets.model_dump()),
                recorder=recorder,
                on_step=on_step,
                policy=policy,
                meta_extra={"scenario": scenario.path, "target": scenario.target.model_dump()},
                judge=target_judge(scenario.checks, target),
            )
            result = agent.run(scenario.task)
            outcome = Outcome(scenario.name, dialect, result)
            _judge_end(scenario, outcome)
            for check in result.checks:
                (outcome.passes if check.passed else outcome.failures).append(check.line)
        outcomes.append(outcome)
    return outcomes


def target_judge(checks: list[Check], target: OpenTarget) -> Judge | None:
    """The verdict of ``checks`` on ``target``'s real state, for ``Agent(judge=...)``."""
    if not checks:
        return None

    def judge(result: RunResult) -> RunResult:
        achieved, lines = judge_checks(checks, target)
        return result.model_copy(update={"achieved": achieved, "checks": lines})

    return judge


def judge_checks(
    checks: list[Check], target: OpenTarget, timeout: float = CHECK_TIMEOUT_S
) -> tuple[bool | None, list[CheckResult]]:
    """Poll the target until every check holds or ``timeout`` passes: (achieved, one result
    per check). achieved is None when the target could not be read (it went away)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            values = target.read(checks)
        except PixelPilotError as exc:
            return None, [CheckResult(passed=False, line=f"could not read the target: {exc}")]
        results = [check.test(value) for check, value in zip(checks, values, strict=True)]
        if all(ok for ok, _ in results) or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    return all(ok for ok, _ in results), [CheckResult(passed=ok, line=ln) for ok, ln in results]


def _judge_end(scenario: Scenario, outcome: Outcome) -> None:
    result, expect = outcome.result, scenario.expect
    line = f"status {result.status!r} (expected {expect.status!r})"
    if result.status != expect.status:
        outcome.failures.append(f"{line}: {result.reason}")
    else:
        outcome.passes.append(line)
    if expect.retries is not None:
        line = f"{result.retries} rejected answers (expected {expect.retries})"
        (outcome.passes if result.retries == expect.retries else outcome.failures).append(line)
    if expect.answer_contains is not None:
        line = f"answer contains {expect.answer_contains!r} (got {result.answer!r})"
        ok = expect.answer_contains in result.answer
        (outcome.passes if ok else outcome.failures).append(line)
