"""Ray workers: one actor per environment slot, on a Ray cluster; the driver keeps the book.

``run_book`` connects to a cluster (``address``: ``auto``, ``HOST:6379`` or ``ray://HOST:10001``;
None starts a private one on this machine, stopped at the end) and starts ``workers`` actors.
Each actor builds its slot from the picklable ``SlotFactory`` and opens it where it runs (its
display, browser, target: one per actor process, as pyautogui binds one display per process),
then runs the jobs it is handed, one at a time, writing trajectories under ``out_dir``, which
every node must see at the same path (a shared filesystem; docs/parallel.md says why).

The driver hands each free actor the next job from the ``JobBook`` and waits for whichever
result comes first. An actor that dies (its process killed, its node lost) is replaced, and
its job is settled by the book's retry rule: run once more on the new actor, marked retried,
recorded apart (``Job.folder``); a late or second answer for a settled job is ignored, so
nothing is lost or counted twice. Time limits are kept by the actor itself (a timer that ends
the episode as the Ctrl-C path does, trajectory closed), with the driver's own deadline
``GRACE_S`` later as the backstop (the actor is killed and replaced). Ctrl-C stops every
actor: those on the driver's machine get SIGTERM (the episode ends, its trajectory closes),
the others are killed; the results that finished are kept.

Each actor starts a reaper (``tools/reaper.py``) that kills what the actor started (Xvfb,
Chromium) should the actor die without closing them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixelpilot.agent.errors import ConfigError, DeviceError
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
from pixelpilot.agent.workers_local import GRACE_S

__all__ = ["RAY_HINT", "SlotActor", "run_book"]

RAY_HINT = "install it with: pip install 'pixelpilot[ray]'"
MAX_OPEN_FAILURES = 3
"""Failed actor starts, beyond one per slot, before the run gives up."""


class _JobTimeout(KeyboardInterrupt):
    """Raised in the actor's main thread when its job's time is up: the agent loop ends the
    episode as it does on Ctrl-C, keeping its trajectory."""


class SlotActor:
    """The body of the Ray actor that owns one slot (made remote by ``_actor_class``).

    Methods run in the actor process's main thread, one at a time, so the signals it handles
    (its own timer, SIGTERM from the driver) interrupt the episode itself."""

    def __init__(self, factory: SlotFactory, index: int, out_dir: str) -> None:
        from pixelpilot.tools.reaper import start_reaper

        self.factory, self.index, self.out_dir = factory, index, Path(out_dir)
        self.slot: Slot | None = None
        self.stopping = self.in_job = False
        self.reaper = start_reaper()
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGALRM, self._on_alarm)

    def _on_term(self, signum: int, frame: Any) -> None:
        if not self.stopping:
            self.stopping = True
            if self.in_job:
                raise KeyboardInterrupt

    def _on_alarm(self, signum: int, frame: Any) -> None:
        if self.in_job:
            raise _JobTimeout

    def open(self) -> tuple[Any, ...]:
        """Build and open the slot: ("ready", pid, node) or ("open-failed", the user's
        fault, one line)."""
        import ray

        node = ray.get_runtime_context().get_node_id()
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            probe = self.out_dir / f".probe-{socket.gethostname()}-{os.getpid()}"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            return ("open-failed", True,
                    f"the output directory {self.out_dir} is not writable on Ray node "
                    f"{socket.gethostname()} ({exc.strerror}); Ray workers write trajectories "
                    "to a filesystem every node mounts at the same path (docs/parallel.md)")  # fmt: skip
        try:
            self.slot = self.factory.build(self.index)
            self.slot.worker = self.index
            self.slot.open()
        except Exception as exc:
            from pixelpilot.agent.errors import UserError

            return ("open-failed", isinstance(exc, UserError), one_line(exc))
        return ("ready", os.getpid(), node)

    def run(
        self, job_data: dict[str, Any], timeout_s: float | None
    ) -> tuple[dict[str, Any], bool, bool]:
        """Run one job: (its result, whether its environment died, whether this actor must be
        replaced: the environment could not be brought back here)."""
        assert self.slot is not None, "open the slot first"
        job = Job.from_dict(job_data)
        timed_out = False
        self.in_job = True
        try:
            if timeout_s is not None:
                signal.setitimer(signal.ITIMER_REAL, timeout_s)
            try:
                result, lost = run_on_slot(self.slot, job, self.out_dir, self.index)
            except _JobTimeout:  # outside the agent loop (starting the episode)
                result, lost = JobResult(job.id, worker=self.index), False
                timed_out = True
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except KeyboardInterrupt:  # SIGTERM or the timer between the job's parts
            result, lost = JobResult(job.id, worker=self.index), False
            timed_out = not self.stopping
        finally:
            self.in_job = False
        if timeout_s is not None and (timed_out or result.seconds >= timeout_s):
            result.status, result.error = "timeout", f"over the {timeout_s:g} s time limit"
        elif self.stopping:
            result.status = "interrupted"
        if result.trajectory is None and (self.out_dir / job.folder).is_dir():
            result.trajectory = job.folder
        result.attempt, result.worker = job.attempt, self.index
        replace = False
        if lost and not self.stopping:
            try:
                self.slot.restart()
            except Exception:
                replace = True
        return result.to_dict(), lost or result.status == "crashed", replace

    def close(self) -> None:
        if self.slot is not None:
            with contextlib.suppress(Exception):
                self.slot.close()
            self.slot = None


def _ray() -> Any:
    try:
        import ray
    except ModuleNotFoundError:
        raise ConfigError(f"--ray needs the ray package; {RAY_HINT}") from None
    return ray


def _actor_class(ray: Any) -> Any:
    return ray.remote(max_restarts=0, max_task_retries=0)(SlotActor)


@dataclass
class _Actor:
    index: int
    handle: Any
    opening: Any = None
    """The pending ``open`` call (None once it answered)."""
    pid: int | None = None
    node: str | None = None
    job: Job | None = None
    ref: Any = None
    started: float = 0.0


class RayPool:
    """``n`` actors running ``factory``'s slots on the cluster ``ray`` is connected to."""

    def __init__(
        self,
        ray: Any,
        factory: SlotFactory,
        n: int,
        out_dir: Path,
        job_timeout_s: float | None,
        cpus_per_slot: float = 1.0,
    ) -> None:
        self.ray, self.factory, self.n, self.out_dir = ray, factory, n, out_dir
        self.job_timeout_s = job_timeout_s
        self.actors: list[_Actor] = []
        self.open_failures = 0
        self.ever_ready = False
        self._cls = _actor_class(ray).options(num_cpus=cpus_per_slot)
        self._node = ray.get_runtime_context().get_node_id()
        self.replaced = 0
        """Actors that died or were killed and replaced."""

    # -- the loop --------------------------------------------------------------------------------
    def run(self, book: JobBook) -> None:
        try:
            while not book.done:
                self._staff(book)
                self._assign(book)
                self._poll(book, self._wait_s())
                self._check_time(book)
        except KeyboardInterrupt:
            self._interrupt(book)
            raise RunInterrupted(book.results(), book.unfinished()) from None

    def _staff(self, book: JobBook) -> None:
        busy = sum(a.job is not None for a in self.actors)
        want = min(self.n, busy + len(book.pending))
        used = {a.index for a in self.actors}
        for index in range(self.n):
            if len(used) >= want:
                break
            if index not in used:
                handle = self._cls.remote(self.factory, index, str(self.out_dir))
                self.actors.append(_Actor(index, handle, opening=handle.open.remote()))
                used.add(index)

    def _assign(self, book: JobBook) -> None:
        for a in self.actors:
            if a.opening is None and a.job is None and book.pending:
                job = book.next()
                assert job is not None
                a.job, a.started = job, time.monotonic()
                a.ref = a.handle.run.remote(job.to_dict(), self.job_timeout_s)

    def _wait_s(self) -> float:
        if self.job_timeout_s is None:
            return 1.0
        now, limit = time.monotonic(), self.job_timeout_s + GRACE_S
        ends = [a.started + limit - now for a in self.actors if a.job is not None]
        return max(0.01, min([1.0, *ends]))

    def _poll(self, book: JobBook, timeout: float) -> None:
        calls = [
            (a, r, r is a.opening) for a in self.actors for r in (a.opening, a.ref) if r is not None
        ]
        if not calls:
            time.sleep(min(timeout, 0.05))
            return
        pending = [r for _, r, _ in calls]
        ready, _ = self.ray.wait(pending, num_returns=1, timeout=timeout)
        if ready:
            ready, _ = self.ray.wait(pending, num_returns=len(pending), timeout=0)
        done = set(ready)  # ObjectRefs hash and compare by id
        for a, ref, opening in calls:
            if ref not in done or a not in self.actors:
                continue
            if opening:
                self._opened(a, ref)
            else:
                self._finished(a, ref, book)

    def _opened(self, a: _Actor, ref: Any) -> None:
        a.opening = None
        try:
            answer = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            answer = ("open-failed", False, f"the actor died while starting: {one_line(exc)}")
        if answer[0] == "ready":
            _, a.pid, a.node = answer
            self.ever_ready = True
            return
        _, user_fault, text = answer
        self._drop(a)
        if user_fault:
            raise ConfigError(text)
        self.open_failures += 1
        never = not self.ever_ready and self.open_failures >= self.n
        if never or self.open_failures >= self.n + MAX_OPEN_FAILURES:
            raise DeviceError(f"Ray actor {a.index} could not start its environment: {text}")

    def _finished(self, a: _Actor, ref: Any, book: JobBook) -> None:
        job, a.job, a.ref = a.job, None, None
        assert job is not None
        try:
            data, env_lost, replace = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:  # the actor died, or run itself failed
            result = JobResult(job.id, status="crashed", worker=a.index,
                               error=f"Ray actor {a.index} died: {_why(exc)}",
                               trajectory=self._trajectory(job),
                               seconds=time.monotonic() - a.started)  # fmt: skip
            self._drop(a)
            self.replaced += 1
            book.settle(job, result, env_lost=True)
            return
        book.settle(job, JobResult.from_dict(data), env_lost=env_lost)
        if replace:
            self._drop(a)
            self.replaced += 1

    def _check_time(self, book: JobBook) -> None:
        """The backstop: an actor whose own timer did not end its job in time is killed."""
        if self.job_timeout_s is None:
            return
        now = time.monotonic()
        for a in list(self.actors):
            if a.job is not None and now - a.started > self.job_timeout_s + GRACE_S:
                job = a.job
                result = JobResult(job.id, status="timeout", worker=a.index,
                                   error=f"over the {self.job_timeout_s:g} s time limit",
                                   trajectory=self._trajectory(job), seconds=now - a.started)  # fmt: skip
                book.settle(job, result)
                self._drop(a)
                self.replaced += 1

    def _trajectory(self, job: Job) -> str | None:
        return job.folder if (self.out_dir / job.folder).is_dir() else None

    # -- ending ----------------------------------------------------------------------------------
    def _interrupt(self, book: JobBook) -> None:
        """Ctrl-C: end the episodes in flight (SIGTERM where the actor runs on this machine,
        a kill elsewhere) and keep those that finished before the stop reached them."""
        busy = [a for a in self.actors if a.ref is not None]
        for a in busy:
            if a.node == self._node and a.pid is not None:
                with contextlib.suppress(OSError):
                    os.kill(a.pid, signal.SIGTERM)
            else:
                self._drop(a)
        deadline = time.monotonic() + GRACE_S
        with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C: stop waiting
            for a in busy:
                if a not in self.actors or a.job is None:
                    continue
                try:
                    data, _, _ = self.ray.get(a.ref, timeout=max(0.1, deadline - time.monotonic()))
                except Exception:
                    continue
                result = JobResult.from_dict(data)
                if result.status == "ok":  # finished before the stop reached it
                    book.settle(a.job, result)
        self.shutdown()  # the stopped actors close their slots; any that do not are killed

    def _drop(self, a: _Actor) -> None:
        with contextlib.suppress(Exception):
            self.ray.kill(a.handle, no_restart=True)
        if a in self.actors:
            self.actors.remove(a)

    def shutdown(self, graceful: bool = True) -> None:
        """Close every slot (idle actors close theirs), then end the actors."""
        if graceful:
            closing = [a.handle.close.remote() for a in self.actors if a.opening is None]
            with contextlib.suppress(Exception):
                self.ray.wait(closing, num_returns=len(closing), timeout=GRACE_S)
        for a in list(self.actors):
            self._drop(a)


def _why(exc: BaseException) -> str:
    text = one_line(exc)
    return text[:300]


def _reachable(address: str | None) -> None:
    """ConfigError at once when ``HOST:PORT`` (or ``ray://HOST:PORT``) does not answer: Ray
    itself waits minutes for a cluster that is not there."""
    if not address or address == "auto" or address.startswith("local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(
            f"bad Ray address {address!r}; write HOST:PORT (the head's GCS port, 6379 by "
            "default), ray://HOST:10001 or auto"
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise ConfigError(
            f"no Ray cluster answers at {address} ({exc.strerror or exc}); start one with "
            "'ray start --head' there, or fix --ray ADDRESS"
        ) from None


def run_book(
    book: JobBook,
    factory: SlotFactory,
    *,
    workers: int,
    address: str | None,
    out_dir: Path,
    job_timeout_s: float | None,
    cpus_per_slot: float = 1.0,
) -> list[JobResult]:
    """Run the book's jobs on ``workers`` Ray actors; the final results in job order."""
    ray = _ray()
    started = not ray.is_initialized()
    if started:
        _reachable(address)
        try:
            ray.init(
                address=address or "local", include_dashboard=False, log_to_driver=False,
                logging_level=logging.WARNING, configure_logging=True,
                **({} if address else {"num_cpus": max(workers * cpus_per_slot, 1)}),
            )  # fmt: skip
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"the Ray cluster at {address}" if address else "a Ray instance on this machine"
            raise ConfigError(
                f"cannot start or reach {where}: {one_line(exc)}; start a cluster with "
                "'ray start --head' and give its address (--ray HOST:6379)"
            ) from None
    pool = RayPool(ray, factory, max(1, min(workers, len(book.jobs))), out_dir.resolve(),
                   job_timeout_s, cpus_per_slot)  # fmt: skip
    try:
        pool.run(book)
        pool.shutdown()
    finally:
        with contextlib.suppress(Exception):
            pool.shutdown(graceful=False)
        if started:
            ray.shutdown()
    return book.results()
