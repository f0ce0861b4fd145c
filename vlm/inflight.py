"""A bound on the requests in flight to one model server from one machine.

Many agents can share one server: threads in one process, worker processes, Ray actors on the
same machine. Each request takes one of ``n`` slots for as long as it is on the wire and gives
it back when the answer is in (not while the client sleeps between retries), so a machine never
has more than ``n`` requests open to that server, however many agents run on it. Time spent
waiting for a slot is not part of the request's timeout.

A slot is an exclusive ``flock`` on one of ``n`` files named after the server's URL in the
lock directory (``tools/locks.py``: ``$PIXELPILOT_LOCK_DIR`` or ``$TMPDIR/pixelpilot-locks``):
the kernel drops a lock when its holder exits, so a killed worker never keeps a slot. Within a process a semaphore admits at most ``n``
threads first, so threads wait without polling; only processes poll (a few milliseconds apart)
for a free file. Limiters are per process, shared by every client to that URL; clients with
different bounds share slot files from the first on, so the machine's bound is the largest.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import random
import threading
import time
from collections.abc import Iterator

from pixelpilot.tools.locks import lock_dir

__all__ = ["DEFAULT_MAX_IN_FLIGHT", "InFlightLimit", "limit_for"]

DEFAULT_MAX_IN_FLIGHT = 16
"""Requests one machine keeps open to one server unless told otherwise: enough to keep a GPU
server's batch full for the agents one machine runs, few enough that a queue of them never
waits past the request timeout on a CPU server."""
_POLL_S = (0.002, 0.01)


class InFlightLimit:
    """At most ``n`` requests at once to ``key`` from this machine (see the module docstring)."""

    def __init__(self, key: str, n: int) -> None:
        if n < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {n}")
        self.key, self.n = key, n
        digest = hashlib.sha1(key.encode()).hexdigest()[:16]
        self._paths = [lock_dir() / f"inflight-{digest}-{i}.lock" for i in range(n)]
        self._sem = threading.BoundedSemaphore(n)
        self._guard = threading.Lock()
        self._fds: list[int | None] = [None] * n
        self._held = [False] * n

    @contextlib.contextmanager
    def slot(self) -> Iterator[float]:
        """Hold one slot for the block; yields the seconds spent waiting for it."""
        t0 = time.perf_counter()
        self._sem.acquire()
        try:
            index = self._take()
        except BaseException:
            self._sem.release()
            raise
        try:
            yield time.perf_counter() - t0
        finally:
            self._give(index)
            self._sem.release()

    def _take(self) -> int:
        """Lock a slot file this process does not hold; polls while other processes hold them."""
        while True:
            with self._guard:
                for i in range(self.n):
                    if self._held[i]:
                        continue
                    fd = self._fds[i]
                    if fd is None:
                        fd = self._fds[i] = os.open(self._paths[i], os.O_RDWR | os.O_CREAT, 0o666)
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        continue
                    self._held[i] = True
                    return i
            time.sleep(random.uniform(*_POLL_S))

    def _give(self, index: int) -> None:
        with self._guard:
            fd = self._fds[index]
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
            self._held[index] = False

    def _forget(self) -> None:
        """In a forked child: the parent's locks are the parent's; start with none."""
        for fd in self._fds:
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fds = [None] * self.n
        self._held = [False] * self.n
        self._sem = threading.BoundedSemaphore(self.n)
        self._guard = threading.Lock()


_LIMITS: dict[tuple[str, int], InFlightLimit] = {}
_LIMITS_GUARD = threading.Lock()


def limit_for(key: str, n: int) -> InFlightLimit:
    """The process's one limiter for ``key`` with ``n`` slots."""
    with _LIMITS_GUARD:
        limit = _LIMITS.get((key, n))
        if limit is None:
            limit = _LIMITS[(key, n)] = InFlightLimit(key, n)
        return limit


def _after_fork() -> None:
    global _LIMITS_GUARD
    _LIMITS_GUARD = threading.Lock()
    for limit in _LIMITS.values():
        limit._forget()


os.register_at_fork(after_in_child=_after_fork)
