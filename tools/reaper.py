"""Kill what a process started once it is gone, however it went.

A worker that owns an environment starts processes of its own (Xvfb, a browser and its driver,
a fixture app), several in sessions of their own, so they outlive a worker that is killed
(SIGKILL, the OOM killer, ``ray.kill``). ``start_reaper(pid)`` starts a small watcher process
(in its own session, so it outlives the worker too) that notes the worker's descendants twice
a second and, once the worker has exited, kills those still running. A process the worker
started and stopped itself is not touched: psutil checks a process's start time before
signalling, so a reused pid is never hit.

Run as ``python -m pixelpilot.tools.reaper PID``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time

import psutil

__all__ = ["reap", "start_reaper"]

PERIOD_S = 0.5


def start_reaper(pid: int | None = None) -> subprocess.Popen[bytes]:
    """Watch ``pid`` (default: this process) from a new process; returns that process."""
    target = os.getpid() if pid is None else pid
    return subprocess.Popen(
        [sys.executable, "-m", "pixelpilot.tools.reaper", str(target)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True,
    )  # fmt: skip


def reap(pid: int, period_s: float = PERIOD_S) -> int:
    """Watch ``pid`` until it exits, then kill its last known descendants; how many were."""
    me = os.getpid()
    try:
        parent = psutil.Process(pid)
    except psutil.Error:
        return 0
    known: dict[int, psutil.Process] = {}
    while True:
        try:
            if not parent.is_running() or parent.status() == psutil.STATUS_ZOMBIE:
                break
            for child in parent.children(recursive=True):
                if child.pid != me:
                    known.setdefault(child.pid, child)
        except psutil.Error:
            break
        time.sleep(period_s)
    alive = [p for p in known.values() if p.is_running()]
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, left = psutil.wait_procs(alive, timeout=3)
    for p in left:
        with contextlib.suppress(psutil.Error):
            p.kill()
    return len(alive)


if __name__ == "__main__":  # pragma: no cover - run by start_reaper
    reap(int(sys.argv[1]))
