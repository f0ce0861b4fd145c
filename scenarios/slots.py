"""Scenario runs as jobs for parallel workers (``pixelpilot.agent.workers``).

A ``ScenarioSlot`` owns one virtual display of the size its scenarios were written for; each
job is one scenario file in one dialect, run with its scripted outputs on a fresh copy of its
target (the fixture app, Chromium, a launched program, the phone fixture behind its own adb
server, a pybullet scene), judged by its checks, recorded in the job's folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pixelpilot.agent.jobs import Job, JobResult, Slot, SlotFactory, SlotLost
from pixelpilot.tools.own_display import OwnDisplay

__all__ = ["DisplaySlot", "ScenarioSlot", "ScenarioSlotFactory", "scenario_jobs"]


def scenario_jobs(files: list[Path]) -> list[Job]:
    """One job per (scenario file, dialect in its scripts), ids ``NAME-DIALECT`` (a number
    added when two files share a name)."""
    from pixelpilot.scenarios.spec import load_scenario

    jobs: list[Job] = []
    seen: set[str] = set()
    for f in files:
        s = load_scenario(f)
        for dialect in s.scripts:
            base = f"{s.name}-{dialect}"
            name, n = base, 1
            while name in seen:
                n += 1
                name = f"{base}-{n}"
            seen.add(name)
            spec = {"file": str(Path(f).resolve()), "dialect": dialect}
            jobs.append(Job(name, "scenario", spec))
    return jobs


class DisplaySlot(Slot):
    """A slot whose environment is its own virtual display (apps start per job)."""

    label = "slot"

    def __init__(self, screen: tuple[int, int], worker: int = 0) -> None:
        self.screen, self.worker = screen, worker
        self.own: OwnDisplay | None = None

    def open(self) -> None:
        if self.own is None:
            self.own = OwnDisplay(*self.screen, f"pixelpilot worker {self.worker} ({self.label})")
        self.own.start()

    def healthy(self) -> bool:
        return self.own is not None and self.own.running

    def restart(self) -> None:
        raise SlotLost("the display died; pyautogui stays bound to it: a new worker is needed")

    def close(self) -> None:
        if self.own is not None:
            self.own.stop()
            self.own = None


@dataclass(frozen=True)
class ScenarioSlotFactory(SlotFactory):
    """Slots with a display of ``screen`` (the size the scenarios were written for)."""

    screen: tuple[int, int] = (1280, 800)
    kind: ClassVar[str] = "scenario"

    def build(self, worker: int) -> ScenarioSlot:
        return ScenarioSlot(self.screen, worker)


class ScenarioSlot(DisplaySlot):
    """Runs one scenario file in one dialect per job."""

    label = "scenario"

    def run(self, job: Job, out_dir: Path) -> JobResult:
        from pixelpilot.scenarios.runner import run_scenario
        from pixelpilot.scenarios.spec import load_scenario

        scenario = load_scenario(job.spec["file"])
        folder = out_dir / job.folder
        (o,) = run_scenario(scenario, dialects=[job.spec["dialect"]], run_dir=folder)
        payload: dict[str, Any] = {
            "scenario": o.scenario, "dialect": o.dialect, "passed": o.passed,
            "status": o.result.status, "reason": o.result.reason, "achieved": o.result.achieved,
            "steps": len(o.result.steps), "failures": o.failures, "passes": o.passes,
        }  # fmt: skip
        return JobResult(job.id, payload=payload, trajectory=job.folder)
