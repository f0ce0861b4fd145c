"""Scenario runs and batch lines as jobs for parallel workers (``pixelpilot.agent.workers``).

A ``ScenarioSlot`` owns one virtual display of the size its scenarios were written for; each
job is one scenario file in one dialect, run with its scripted outputs on a fresh copy of its
target (the fixture app, Chromium, a launched program, the phone fixture behind its own adb
server, a pybullet scene), judged by its checks, recorded in the job's folder. A ``TaskSlot``
runs batch lines (``pixelpilot batch``) the same way with a model of the user's choosing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pixelpilot.agent.jobs import Job, JobResult, Slot, SlotFactory, SlotLost
from pixelpilot.tools.own_display import OwnDisplay

__all__ = [
    "DisplaySlot",
    "ScenarioSlot",
    "ScenarioSlotFactory",
    "TaskSlot",
    "TaskSlotFactory",
    "batch_jobs",
    "scenario_jobs",
]


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


def batch_jobs(lines: list[Any]) -> list[Job]:
    """One job per batch line (``scenarios.batch.BatchLine``), named by its id."""
    return [Job(line.name, "task", line.model_dump(mode="json", exclude_unset=True)) for line in lines]


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


@dataclass(frozen=True)
class TaskSlotFactory(SlotFactory):
    """Slots that run batch lines (``scenarios.batch``) with the model ``model`` (a reference;
    loaded once per slot, a scripted one afresh per line) on a display of ``screen``."""

    model: str
    dialect: str
    screen: tuple[int, int] = (1280, 800)
    max_steps: int = 15
    max_seconds: float = 300.0
    kind: ClassVar[str] = "task"

    def build(self, worker: int) -> TaskSlot:
        return TaskSlot(self, worker)


class TaskSlot(DisplaySlot):
    """Runs one batch line per job: its target started fresh (or its device opened), the
    agent with the slot's model, the line's checks as the verdict."""

    label = "batch"

    def __init__(self, factory: TaskSlotFactory, worker: int = 0) -> None:
        super().__init__(factory.screen, worker)
        self.factory = factory
        self._model: Any = None

    def _load(self) -> Any:
        from pixelpilot.vlm.registry import load_model

        return load_model(self.factory.model)

    @property
    def _scripted(self) -> bool:
        return self.factory.model.startswith("scripted:")

    def run(self, job: Job, out_dir: Path) -> JobResult:
        import contextlib

        from pixelpilot.scenarios.batch import BatchLine
        from pixelpilot.tools import locks

        line = BatchLine.model_validate(job.spec)
        if self._scripted:
            model = self._load()
        else:
            self._model = self._model or self._load()
            model = self._model
        try:
            with contextlib.ExitStack() as stack:
                if line.exclusive is not None:  # one user per phone: a lock says who has it
                    holder = f"pixelpilot worker {self.worker} (batch {job.id})"
                    stack.enter_context(locks.claimed(line.exclusive, holder))
                result = self._run_line(line, model, out_dir / job.folder, stack)
        finally:
            if self._scripted:
                model.close()
        payload: dict[str, Any] = {
            "line": line.line, "task": line.task, "status": result.status,
            "reason": result.reason, "answer": result.answer, "achieved": result.achieved,
            "checks": [c.line for c in result.checks if not c.passed], "steps": len(result.steps),
        }  # fmt: skip
        return JobResult(job.id, payload=payload, trajectory=job.folder)

    def _run_line(self, line: Any, model: Any, folder: Path, stack: Any) -> Any:
        from pixelpilot.agent.loop import Agent, Budgets
        from pixelpilot.agent.trajectory import DirectoryRecorder
        from pixelpilot.scenarios.runner import target_judge
        from pixelpilot.scenarios.targets import builtin_target, open_device, open_target

        f = self.factory
        budgets = Budgets(max_steps=line.max_steps or f.max_steps,
                          max_seconds=line.max_seconds or f.max_seconds)  # fmt: skip
        judge = None
        extra: dict[str, Any] = {"batch": {"line": line.line, "worker": self.worker}}
        if line.target is not None:
            kind = line.target.partition(":")[0]
            target = builtin_target(line.target, screen=self.screen if kind == "fixture" else None)
            opened = stack.enter_context(open_target(target, name=line.name))
            device = opened.device
            judge = target_judge(line.checks, opened)
            extra["target"] = target.model_dump()
        else:
            device = stack.enter_context(open_device(line.device))
        agent = Agent(model=model, device=device, dialect=f.dialect, budgets=budgets,
                      recorder=DirectoryRecorder(folder), judge=judge, meta_extra=extra)  # fmt: skip
        return agent.run(line.task)

    def close(self) -> None:
        if self._model is not None:
            import contextlib

            with contextlib.suppress(Exception):
                self._model.close()
            self._model = None
        super().close()
