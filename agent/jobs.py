"""The parts of a parallel run (``pixelpilot.agent.workers``): jobs, slots, results, the ledger.

- a ``Job`` says what to run (a MiniWoB task and seed, a scenario file and dialect, a batch
  line); its seeds are in it, so its result does not depend on which worker ran it or when;
- a ``Slot`` owns ONE environment (an X display and what runs on it: a browser, a fixture app,
  a phone, a scene) and runs jobs on it, one after another; a picklable ``SlotFactory`` builds
  it where it runs (a local worker process, a Ray actor);
- a ``JobResult`` is what became of a job; the ``JobBook`` keeps the driver's account: what is
  pending, the retry rule (an environment failure earns one more attempt, marked ``retried``;
  only the last attempt counts) and one final result per job.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pixelpilot.agent.errors import ConfigError, DeviceError, UserError

__all__ = [
    "Job",
    "JobBook",
    "JobResult",
    "RunInterrupted",
    "Slot",
    "SlotFactory",
    "SlotLost",
    "Status",
    "one_line",
    "run_on_slot",
]

Status = Literal["ok", "timeout", "crashed", "interrupted"]
"""ok: the slot ran the job (its ``payload`` says how the episode went); timeout: over the time
limit; crashed: the environment or the slot failed (``error`` says how); interrupted: stopped by
Ctrl-C before it finished."""


@dataclass(frozen=True)
class Job:
    """One unit of work. ``id`` is stable (``click-test/003``) and names its trajectory folder;
    ``spec`` is JSON (what to run, seeds included); ``attempt`` counts retries."""

    id: str
    kind: str
    spec: dict[str, Any]
    attempt: int = 0

    @property
    def folder(self) -> str:
        """Where the job's trajectory goes, relative to the run's output directory (a retry
        records apart, so a crashed attempt's files stay as they were)."""
        return self.id if not self.attempt else f"{self.id}.retry{self.attempt}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        return cls(**data)


@dataclass
class JobResult:
    """What became of a job. ``payload`` is the slot's own result (e.g. a MiniWoB
    ``EpisodeResult`` as a dict); ``trajectory`` is relative to the run's output directory."""

    job_id: str
    attempt: int = 0
    status: Status = "ok"
    retried: bool = False
    payload: dict[str, Any] | None = None
    trajectory: str | None = None
    seconds: float = 0.0
    worker: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobResult:
        return cls(**data)


class SlotLost(DeviceError):
    """The slot's environment cannot be restarted in this process (its display died and
    pyautogui stays bound to it): the worker must be replaced."""


class Slot(ABC):
    """An environment owner: starts ONE display and what runs on it, runs jobs on it."""

    worker: int = 0

    @abstractmethod
    def open(self) -> None:
        """Start the display and the environment (raise a PixelPilotError saying what failed)."""

    @abstractmethod
    def run(self, job: Job, out_dir: Path) -> JobResult:
        """Run ``job``, recording under ``out_dir / job.folder``; status ``ok`` with the
        payload. Exceptions are the worker's to record (status ``crashed``)."""

    @abstractmethod
    def close(self) -> None:
        """Stop everything ``open`` started; safe to call twice."""

    def healthy(self) -> bool:
        """Whether the environment still works (checked after every job)."""
        return True

    def restart(self) -> None:
        """Bring a dead environment back (raise SlotLost when only a new process can)."""
        self.close()
        self.open()


class SlotFactory(ABC):
    """Builds slots where they run; subclasses are picklable (frozen dataclasses)."""

    kind: str = "slot"

    @abstractmethod
    def build(self, worker: int) -> Slot:
        """A slot (not yet open) for worker number ``worker``."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the run: ``results`` are the jobs that finished (in job order),
    ``unfinished`` the ids of the rest."""

    def __init__(self, results: list[JobResult], unfinished: list[str]) -> None:
        super().__init__(f"interrupted: {len(results)} finished, {len(unfinished)} not")
        self.results = results
        self.unfinished = unfinished


@dataclass
class JobBook:
    """The driver's ledger, whatever runs the jobs (processes here, Ray actors elsewhere):
    what is pending, the retry rule (an environment failure earns ``retries`` more attempts,
    marked retried) and the final result of each job, counted once."""

    jobs: Sequence[Job]
    retries: int = 1
    on_result: Callable[[JobResult], None] | None = None
    pending: deque[Job] = field(default_factory=deque)
    final: dict[str, JobResult] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ids = [j.id for j in self.jobs]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise ConfigError(f"two jobs have the id {dup!r}; job ids must be unique")
        self.pending.extend(self.jobs)

    @property
    def done(self) -> bool:
        return len(self.final) == len(self.jobs)

    def next(self) -> Job | None:
        return self.pending.popleft() if self.pending else None

    def settle(self, job: Job, result: JobResult, *, env_lost: bool = False) -> None:
        """Record ``result`` of ``job``; an environment failure with attempts left puts the
        job back first in line instead (its next attempt is marked retried). A job is
        settled once: a late second result is ignored."""
        if job.id in self.final:
            return
        if env_lost and job.attempt < self.retries:
            self.pending.appendleft(replace(job, attempt=job.attempt + 1))
            return
        result.attempt, result.retried = job.attempt, job.attempt > 0
        self.final[job.id] = result
        if self.on_result is not None:
            self.on_result(result)

    def results(self) -> list[JobResult]:
        """The final results, in job order (only the finished ones)."""
        return [self.final[j.id] for j in self.jobs if j.id in self.final]

    def unfinished(self) -> list[str]:
        return [j.id for j in self.jobs if j.id not in self.final]


def one_line(exc: BaseException) -> str:
    """An exception as one line: its type (unless ours) and its first line."""
    text = (str(exc).strip().splitlines() or [""])[0]
    if isinstance(exc, UserError | DeviceError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_on_slot(slot: Slot, job: Job, out_dir: Path, index: int) -> tuple[JobResult, bool]:
    """Run one job on an open slot, as every backend's worker does: (its result, whether the
    environment died under it: then ``slot.restart()``). A job that raised is ``crashed``;
    the driver retries it (``JobBook.settle(..., env_lost=True)``) as it does a job whose
    environment died."""
    t0 = time.monotonic()
    try:
        result = slot.run(job, out_dir)
    except Exception as exc:
        result = JobResult(job.id, status="crashed", error=one_line(exc))
    try:
        lost = not slot.healthy()
    except Exception:
        lost = True
    if lost and result.status == "ok":
        result.status, result.error = "crashed", "the environment died during the job"
    if result.trajectory is None and (out_dir / job.folder).is_dir():
        result.trajectory = job.folder
    result.attempt, result.worker = job.attempt, index
    result.seconds = time.monotonic() - t0
    return result, lost
