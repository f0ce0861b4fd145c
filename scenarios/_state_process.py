"""What the fixtures share: a subprocess that writes its whole state as JSON, read back as the
oracle of tests and scenario checks.

A subclass starts its process with ``_spawn`` (its output goes to a temporary log) and waits for
a first state with ``_wait``; ``stop`` terminates it and removes its temporary files. The state
holds the widgets' boxes ``[x, y, w, h]`` in screen pixels under ``"boxes"``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import IO, Any, ClassVar, Self

from pixelpilot.agent.errors import DeviceError
from pixelpilot.tools._process import terminate

State = dict[str, Any]


class StateTimeout(AssertionError, TimeoutError):
    """The state did not satisfy a predicate in time (a test failure, not an error)."""


class StateProcess:
    """A process with a JSON state file; a context manager (``start`` / ``stop``)."""

    label: ClassVar[str] = "the fixture app"
    """How errors name the process."""
    bulky: ClassVar[tuple[str, ...]] = ("boxes",)
    """State keys left out of error messages."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._tmpdir: str | None = None
        self.state_path = ""
        self.started_in = 0.0

    def start(self) -> Self:
        raise NotImplementedError

    def _temp_state(self, prefix: str) -> str:
        """A fresh temporary directory (removed by ``stop``) and the state file's path in it."""
        self._tmpdir = tempfile.mkdtemp(prefix=prefix)
        self.state_path = os.path.join(self._tmpdir, "state.json")
        return self.state_path

    def _spawn(self, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        self._log = tempfile.TemporaryFile(prefix="pixelpilot-", suffix=".log")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            list(argv), env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log
        )

    def stop(self) -> None:
        """Terminate the process (SIGTERM, then SIGKILL after 3 s) and remove temporary files."""
        proc, self._proc = self._proc, None
        terminate(proc, timeout=3)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- state -----------------------------------------------------------------------------------
    def state(self) -> State:
        """The last written state ({} before the first write)."""
        try:
            with open(self.state_path, encoding="utf-8") as f:
                return dict(json.load(f))
        except FileNotFoundError:
            return {}

    def wait_for(
        self, predicate: Callable[[State], bool], timeout: float = 3.0, interval: float = 0.01
    ) -> State:
        """Poll the state until ``predicate(state)`` holds; return that state.

        Raises StateTimeout (an AssertionError) with the last state when it does not hold in
        ``timeout`` seconds, DeviceError when the process exits meanwhile.
        """
        return self._wait(predicate, timeout, interval=interval)

    def _wait(
        self,
        predicate: Callable[[State], bool],
        timeout: float,
        interval: float = 0.01,
        what: str = "the expected state",
    ) -> State:
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            if state and predicate(state):
                return state
            if self._proc is None or self._proc.poll() is not None:
                code = None if self._proc is None else self._proc.returncode
                raise DeviceError(f"{self.label} exited (code {code}): {self.stderr()}")
            if time.monotonic() >= deadline:
                brief = {k: v for k, v in state.items() if k not in self.bulky}
                raise StateTimeout(
                    f"{self.label} did not reach {what} within {timeout:g}s; stderr: "
                    f"{self.stderr()}; last state: {json.dumps(brief, ensure_ascii=False)}"
                )
            time.sleep(interval)

    def stderr(self, limit: int = 2000) -> str:
        """The tail of the process's combined stdout and stderr."""
        if self._log is None:
            return "(none)"
        self._log.seek(0)
        return self._log.read().decode(errors="replace").strip()[-limit:] or "(empty)"

    # -- widgets ---------------------------------------------------------------------------------
    def box(self, name: str) -> list[int]:
        """Box [x, y, w, h] of widget ``name`` in screen pixels."""
        boxes = self.state().get("boxes", {})
        if name not in boxes:
            raise KeyError(f"no widget {name!r}; there are: {', '.join(sorted(boxes))}")
        return list(boxes[name])

    def center(self, name: str) -> tuple[int, int]:
        """Centre pixel of widget ``name``."""
        x, y, w, h = self.box(name)
        return x + w // 2, y + h // 2
