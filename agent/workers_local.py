"""Local workers: N processes on this machine, each owning one slot, fed from a ``JobBook``.

The driver waits on every worker's pipe and process sentinel at once. It gives a free worker
the next job, notes when the job started (for the time limit) and which processes the worker
started (its display server, browser, app: killed with it if it must be killed, since they run
in sessions of their own and would otherwise outlive it). A worker that dies is replaced; one
whose job runs past the limit gets SIGTERM (the loop ends the episode and closes its
trajectory), then SIGKILL after ``GRACE_S``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import psutil

from pixelpilot.agent.errors import ConfigError, DeviceError, UserError
from pixelpilot.agent.jobs import (
    Job,
    JobBook,
    JobResult,
    RunInterrupted,
    Slot,
    SlotFactory,
    one_line,
    run_on_slot,
)

__all__ = ["GRACE_S", "LocalPool", "worker_main"]

GRACE_S = 10.0
"""How long a stopped worker has to close its environment before it is killed."""

MAX_OPEN_FAILURES = 2
"""Failed environment starts, beyond one per worker, before the run gives up (a start that
fails for the user's reason, a missing browser say, ends the run at once)."""


@dataclass(eq=False)  # a worker is itself: compared by identity
class _Worker:
    index: int
    proc: Any
    conn: Connection
    ready: bool = False
    job: Job | None = None
    started: float = 0.0
    retiring: float | None = None
    """When a stopped worker is killed if it has not exited."""
    family: list[psutil.Process] = field(default_factory=list)

    def note_family(self) -> None:
        """Remember the processes this worker started (they are its children until it dies)."""
        with contextlib.suppress(psutil.Error):
            self.family = psutil.Process(self.proc.pid).children(recursive=True)

    def kill(self) -> None:
        """SIGKILL the worker and every process it started that is still running."""
        self.note_family()
        with contextlib.suppress(ProcessLookupError, OSError):
            if self.proc.is_alive():
                os.kill(self.proc.pid, signal.SIGKILL)
        for p in self.family:
            with contextlib.suppress(psutil.Error):
                p.kill()
        self.proc.join(timeout=5)


class LocalPool:
    """``n`` worker processes running ``factory``'s slots; a context manager."""

    def __init__(
        self, factory: SlotFactory, n: int, out_dir: Path, job_timeout_s: float | None
    ) -> None:
        self.factory, self.n, self.out_dir = factory, n, out_dir
        self.job_timeout_s = job_timeout_s
        self.workers: list[_Worker] = []
        self.open_failures = 0
        self._ctx = multiprocessing.get_context("spawn")  # a fresh interpreter per worker

    def __enter__(self) -> LocalPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # -- the loop --------------------------------------------------------------------------------
    def run(self, book: JobBook) -> None:
        """Run the book's jobs to the end; RunInterrupted on Ctrl-C."""
        try:
            while not book.done:
                self._staff(book)
                self._assign(book)
                self._poll(book, self._wait_s())
                self._check_time(book)
        except KeyboardInterrupt:
            self._interrupt(book)
            raise RunInterrupted(book.results(), book.unfinished()) from None

    def _live(self) -> list[_Worker]:
        return [w for w in self.workers if w.retiring is None]

    def _staff(self, book: JobBook) -> None:
        """Keep ``n`` workers while there is work they could take."""
        busy = sum(w.job is not None for w in self._live())
        want = min(self.n, busy + len(book.pending))
        used = {w.index for w in self._live()}
        for index in range(self.n):
            if len(used) >= want:
                break
            if index not in used:
                self._spawn(index)
                used.add(index)

    def _spawn(self, index: int) -> None:
        ours, theirs = self._ctx.Pipe()
        proc = self._ctx.Process(
            target=worker_main, args=(index, self.factory, str(self.out_dir), theirs),
            name=f"pixelpilot-worker-{index}", daemon=True,
        )  # fmt: skip
        proc.start()
        theirs.close()
        self.workers.append(_Worker(index, proc, ours))

    def _assign(self, book: JobBook) -> None:
        for w in self._live():
            if w.ready and w.job is None and book.pending:
                job = book.next()
                assert job is not None
                try:
                    w.conn.send(("job", job.to_dict()))
                except (BrokenPipeError, OSError):
                    book.pending.appendleft(job)  # it died: its sentinel says so next
                    continue
                w.job, w.started = job, time.monotonic()
                w.note_family()

    def _wait_s(self) -> float:
        if self.job_timeout_s is None:
            return 1.0
        now = time.monotonic()
        ends = [w.started + self.job_timeout_s - now for w in self._live() if w.job is not None]
        return max(0.01, min([1.0, *ends]))

    def _poll(self, book: JobBook, timeout: float) -> None:
        handles: dict[Any, tuple[_Worker, str]] = {}
        for w in self.workers:
            handles[w.conn] = (w, "conn")
            handles[w.proc.sentinel] = (w, "exit")
        for handle in wait(list(handles), timeout=timeout):
            w, what = handles[handle]
            if w not in self.workers:
                continue  # already handled through its other handle
            if what == "conn":
                try:
                    message = w.conn.recv()
                except (EOFError, OSError):
                    self._died(w, book)
                    continue
                self._message(w, message, book)
            elif not w.conn.poll():  # read what it said before it exited first
                self._died(w, book)

    def _message(self, w: _Worker, message: tuple[Any, ...], book: JobBook) -> None:
        kind = message[0]
        if kind == "ready":
            w.ready = True
            w.note_family()
        elif kind == "open-failed":
            _, user_fault, text = message
            if user_fault:
                raise ConfigError(text)
            self.open_failures += 1
            if self.open_failures >= self.n + MAX_OPEN_FAILURES:
                raise DeviceError(f"worker {w.index} could not start its environment: {text}")
        elif kind == "result":
            _, data, env_lost, restarting = message
            job, w.job = w.job, None
            w.ready = not restarting  # until it says ready again (or dies: then replaced)
            if job is not None and w.retiring is None:
                book.settle(job, JobResult.from_dict(data), env_lost=env_lost)

    def _died(self, w: _Worker, book: JobBook) -> None:
        """A worker's process ended: its job (if any) failed with its environment."""
        w.proc.join(timeout=2)  # its pipe may close a moment before it exits
        code = w.proc.exitcode
        w.kill()  # what it left behind
        w.conn.close()
        self.workers.remove(w)
        if w.job is not None and w.retiring is None:
            job = w.job
            result = JobResult(job.id, status="crashed", worker=w.index,
                               error=f"worker {w.index} died (exit code {code})",
                               trajectory=self._trajectory(job),
                               seconds=time.monotonic() - w.started)  # fmt: skip
            book.settle(job, result, env_lost=True)

    def _check_time(self, book: JobBook) -> None:
        now = time.monotonic()
        for w in list(self.workers):
            if w.retiring is not None:
                if now > w.retiring:
                    w.kill()
                continue
            if w.job is None or self.job_timeout_s is None:
                continue
            if now - w.started > self.job_timeout_s:
                job = w.job
                result = JobResult(job.id, status="timeout", worker=w.index,
                                   error=f"over the {self.job_timeout_s:g} s time limit",
                                   trajectory=self._trajectory(job), seconds=now - w.started)  # fmt: skip
                book.settle(job, result)
                self._retire(w)

    def _retire(self, w: _Worker) -> None:
        """Stop a worker: SIGTERM now (its episode ends, its trajectory closes), SIGKILL later."""
        w.retiring = time.monotonic() + GRACE_S
        w.note_family()
        with contextlib.suppress(ProcessLookupError, OSError):
            os.kill(w.proc.pid, signal.SIGTERM)

    def _trajectory(self, job: Job) -> str | None:
        return job.folder if (self.out_dir / job.folder).is_dir() else None

    # -- ending ----------------------------------------------------------------------------------
    def _interrupt(self, book: JobBook) -> None:
        """Ctrl-C: stop every worker; keep the results that finished before the stop reached
        them (the rest end as interrupted, their trajectories closed)."""
        for w in self._live():
            self._retire(w)
        in_flight = {id(w): w.job for w in self.workers}
        deadline = time.monotonic() + GRACE_S
        try:
            while self.workers and time.monotonic() < deadline:
                for w in list(self.workers):
                    while w.conn.poll():
                        try:
                            message = w.conn.recv()
                        except (EOFError, OSError):
                            break
                        job = in_flight.get(id(w))
                        if message[0] == "result" and job is not None:
                            result = JobResult.from_dict(message[1])
                            if result.status == "ok":  # finished before the stop reached it
                                book.settle(job, result)
                    if not w.proc.is_alive():
                        self._drop(w)
                time.sleep(0.05)
        except KeyboardInterrupt:
            pass  # a second Ctrl-C: kill at once
        for w in list(self.workers):
            self._drop(w)

    def _drop(self, w: _Worker) -> None:
        w.kill()
        with contextlib.suppress(OSError):
            w.conn.close()
        if w in self.workers:
            self.workers.remove(w)

    def shutdown(self) -> None:
        """Ask every worker to stop; kill those that have not exited after ``GRACE_S``."""
        for w in self.workers:
            with contextlib.suppress(BrokenPipeError, OSError):
                w.conn.send(("stop",))
        deadline = time.monotonic() + GRACE_S
        for w in list(self.workers):
            w.proc.join(timeout=max(0.1, deadline - time.monotonic()))
            self._drop(w)


# -- the worker process ----------------------------------------------------------------------
def worker_main(index: int, factory: SlotFactory, out_dir: str, conn: Connection) -> None:
    """A worker process: build and open the slot, then run the jobs the driver sends until it
    says stop. SIGINT is the driver's to handle; SIGTERM ends the job in flight as interrupted
    (the agent loop closes its trajectory) and the worker after it."""
    stopping = False

    def on_term(signum: int, frame: Any) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, on_term)
    slot: Slot | None = None
    try:
        slot = factory.build(index)
        slot.worker = index
        try:
            slot.open()
        except Exception as exc:
            conn.send(("open-failed", isinstance(exc, UserError), one_line(exc)))
            return
        conn.send(("ready", os.getpid()))
        while not stopping:
            message = conn.recv()
            if message[0] != "job":
                break
            job = Job.from_dict(message[1])
            result, lost = run_on_slot(slot, job, Path(out_dir), index)
            if stopping:
                result.status = "interrupted"
            restart = lost and not stopping
            conn.send(("result", result.to_dict(), lost or result.status == "crashed", restart))
            if restart:
                try:
                    slot.restart()
                except Exception:  # SlotLost (or another failure): the driver replaces us
                    return
                conn.send(("ready", os.getpid()))
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # let the slot close in peace
        if slot is not None:
            with contextlib.suppress(Exception):
                slot.close()
