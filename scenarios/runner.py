"""Run a scenario: start its target, replay each dialect's script through the real agent loop,
then judge the run by how it ended and by checks on the target's real state."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixelpilot.agent.errors import ScenarioError
from pixelpilot.agent.loop import Agent, Budgets
from pixelpilot.agent.trajectory import (
    DirectoryRecorder,
    NullRecorder,
    Recorder,
    RunResult,
    StepRecord,
)
from pixelpilot.scenarios.spec import Scenario
from pixelpilot.scenarios.targets import open_target
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
    policy: Any = None,
) -> list[Outcome]:
    """Run ``scenario`` once per dialect in its scripts (or only ``dialects``), under
    ``policy`` (a ``Policy``) when one is given.

    Desktop targets need a display (DISPLAY set); each run gets a fresh copy of the target.
    """
    chosen = dialects or list(scenario.scripts)
    for d in chosen:
        if d not in scenario.scripts:
            raise ScenarioError(
                f"{scenario.name}: no script for dialect {d!r}; it has {', '.join(scenario.scripts)}"
            )
    outcomes = []
    for dialect in chosen:
        recorder: Recorder = NullRecorder()
        if out_dir is not None:
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
            )
            result = agent.run(scenario.task)
            outcome = Outcome(scenario.name, dialect, result)
            _judge_end(scenario, outcome)
            if scenario.checks and target.state is not None:
                _judge_state(scenario, target.state, outcome)
        outcomes.append(outcome)
    return outcomes


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


def _judge_state(
    scenario: Scenario, read_state: Callable[[], dict[str, Any]], outcome: Outcome
) -> None:
    """Poll the target's state until every check holds or CHECK_TIMEOUT_S passes."""
    deadline = time.monotonic() + CHECK_TIMEOUT_S
    while True:
        state = read_state()
        results = [check.evaluate(state) for check in scenario.checks]
        if all(ok for ok, _ in results) or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    for ok, line in results:
        (outcome.passes if ok else outcome.failures).append(line)
