"""One user per display or device: a lock file per resource, held while a worker or a run uses it.

``claim("display:5", "pixelpilot worker 1")`` takes an exclusive ``flock`` on
``<lock dir>/display-5.lock`` and writes who holds it (pid, holder, since when) into the file;
a second process that claims the same resource gets ``DeviceBusy`` naming that holder, in one
line. The kernel drops the lock when the holder exits, however it exits (a SIGKILL included),
so a stale file never blocks anyone. Claims are per process: a process may claim a resource it
already holds (a count is kept), since one process can only drive one display anyway
(pyautogui binds one per process).

The lock directory is ``$PIXELPILOT_LOCK_DIR`` or ``<tmp>/pixelpilot-locks``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from pixelpilot.agent.errors import DeviceBusy

__all__ = ["claim", "claimed", "display_key", "holder_of", "lock_dir", "release"]

_HELD: dict[str, tuple[int, int]] = {}
"""resource -> (open file descriptor, claims) for the locks this process holds."""


def lock_dir() -> Path:
    """Where the lock files live (created on first use)."""
    folder = Path(
        os.environ.get("PIXELPILOT_LOCK_DIR") or Path(tempfile.gettempdir()) / "pixelpilot-locks"
    )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def display_key(display: str) -> str:
    """The resource name of an X display: ``:5`` and ``:5.0`` are both ``display:5``."""
    number = display.rpartition(":")[2].partition(".")[0]
    return f"display:{number}"


def _path(resource: str) -> Path:
    return lock_dir() / (re.sub(r"[^A-Za-z0-9_.-]", "-", resource) + ".lock")


def claim(resource: str, holder: str) -> None:
    """Hold ``resource`` for this process; DeviceBusy naming the current holder otherwise."""
    if resource in _HELD:
        fd, n = _HELD[resource]
        _HELD[resource] = (fd, n + 1)
        return
    path = _path(resource)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        who = holder_of(resource) or "another process"
        raise DeviceBusy(
            f"{resource} is in use by {who}; wait for it to finish or use another "
            f"(lock file {path})"
        ) from None
    note = f"pid {os.getpid()} ({holder}) since {time.strftime('%H:%M:%S')}"
    os.ftruncate(fd, 0)
    os.pwrite(fd, note.encode(), 0)
    _HELD[resource] = (fd, 1)


def release(resource: str) -> None:
    """Give up one claim of ``resource``; the lock goes when the last one does."""
    if resource not in _HELD:
        return
    fd, n = _HELD.pop(resource)
    if n > 1:
        _HELD[resource] = (fd, n - 1)
        return
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
    os.close(fd)  # closing the descriptor drops the flock


def holder_of(resource: str) -> str | None:
    """Who holds ``resource`` as its lock file says (None when no one does)."""
    path = _path(resource)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


@contextlib.contextmanager
def claimed(resource: str, holder: str) -> Iterator[None]:
    """``claim`` for the duration of a ``with`` block."""
    claim(resource, holder)
    try:
        yield
    finally:
        release(resource)
