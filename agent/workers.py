"""Many episodes at once: jobs handed to environment slots, one slot per worker process.

The seam (docs/parallel.md): ``Job``, ``Slot``/``SlotFactory``, ``JobResult`` and the
``JobBook`` (``pixelpilot.agent.jobs``, re-exported here), and ``run_jobs``, which hands the
jobs to N workers and returns one ``JobResult`` per job, in job order.

Local workers are processes (multiprocessing "spawn": pyautogui binds one X display per
process, so two environments never share a process). A worker whose environment dies (its
display, its browser, the process itself) is replaced and its job run once more, marked
``retried``; only the last attempt counts. A job over ``job_timeout_s`` is recorded as
``timeout`` and its worker replaced. Ctrl-C (SIGINT, or SIGTERM) stops every worker: the
episodes in flight end as "interrupted" with their trajectories closed, and ``RunInterrupted``
carries the results that finished. Trajectories go to one output directory that the workers
share (``Job.folder`` under ``out_dir``).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from pixelpilot.agent.errors import ConfigError
from pixelpilot.agent.jobs import (
    Job,
    JobBook,
    JobResult,
    RunInterrupted,
    Slot,
    SlotFactory,
    SlotLost,
    Status,
)

__all__ = [
    "Job",
    "JobBook",
    "JobResult",
    "RunInterrupted",
    "Slot",
    "SlotFactory",
    "SlotLost",
    "Status",
    "run_jobs",
]


def run_jobs(
    jobs: Sequence[Job],
    factory: SlotFactory,
    *,
    workers: int = 1,
    backend: Literal["local", "ray"] = "local",
    ray_address: str | None = None,
    out_dir: str | os.PathLike[str],
    on_result: Callable[[JobResult], None] | None = None,
    job_timeout_s: float | None = None,
    retries: int = 1,
) -> list[JobResult]:
    """Run ``jobs`` on ``workers`` slots built by ``factory``; one result per job, in job
    order. ``on_result`` sees each final result as it comes. Raises ``RunInterrupted`` on
    Ctrl-C, and the slots' own error when no worker can open its environment."""
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    book = JobBook(jobs, retries=retries, on_result=on_result)
    if backend == "ray":
        try:
            ray_backend = importlib.import_module(".workers_ray", __package__)
        except ModuleNotFoundError as exc:
            raise ConfigError(f"the Ray backend is not available here ({exc})") from None
        return list(ray_backend.run_book(book, factory, workers=workers, address=ray_address,
                                         out_dir=out, job_timeout_s=job_timeout_s))  # fmt: skip
    if backend != "local":
        raise ConfigError(f"unknown backend {backend!r}; use local or ray")
    from pixelpilot.agent.workers_local import LocalPool

    with LocalPool(factory, min(workers, max(1, len(jobs))), out, job_timeout_s) as pool:
        pool.run(book)
    return book.results()
