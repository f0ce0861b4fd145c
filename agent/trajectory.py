"""Trajectories: what a run did, step by step, as a directory a person or a program can read.

Layout of a run directory (format version 1)::

    run.json        RunMeta: task, model, dialect, device geometry, package versions
    steps.jsonl     one StepRecord per line, appended as each step finishes
    screens/        one PNG per step (written by a background thread)
    result.json     RunResult summary, written when the run ends (absent if it was killed)

A step's JSON line is written and flushed when the step finishes (tens of microseconds), so a
run killed mid-way keeps every finished step. Screenshots are PNG-encoded off the loop's hot
path by a writer thread and appear atomically (temp file + rename); a step whose screenshot
had not been written when the process died loads with ``screenshot_path() is None``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import queue
import threading
import time
from abc import ABC, abstractmethod
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from PIL import Image
from pydantic import BaseModel, Field, ValidationError

from pixelpilot.agent.actions import Action
from pixelpilot.agent.errors import UserError
from pixelpilot.tools.base import Executed

FORMAT_VERSION = 1
Status = Literal["success", "failure", "step_budget", "time_budget", "error"]


class Attempt(BaseModel):
    """One model answer within a step: accepted (action set) or rejected (error set)."""

    raw: str
    action: Action | None = None
    error: str | None = None
    generate_s: float = 0.0
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    visual_tokens: int | None = None
    timings: dict[str, float] = Field(default_factory=dict)
    """The backend's own stages (preprocess, vision, prefill, decode, ...), in seconds."""
    parse_s: float | None = None
    """Seconds the dialect took to read this answer (accepted or not); None: not read (the
    answer was too long, or the run ended first)."""
    internal: str | None = None
    """A parser failure that is pixelpilot's bug, not the model's (an unexpected exception:
    its type, where it was raised and its message). The answer went back as a retry."""


class StepRecord(BaseModel):
    """Everything about one step: what was seen, asked, parsed, executed, and how long it took.

    ``action`` is the accepted call in the model's space; ``device_action`` the same in screen
    pixels; ``executed`` what the device really did. ``timings`` holds seconds per stage:
    capture, prompt, generate, parse, execute, record.
    """

    index: int
    started_at: float
    screenshot: str | None = None
    geometry: dict[str, Any]
    resized: tuple[int, int] | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    action: Action | None = None
    device_action: Action | None = None
    executed: Executed | None = None
    error: str | None = None
    timings: dict[str, float] = Field(default_factory=dict)
    result: str | None = None
    """The note the model was told about the action's outcome beyond its family's own format
    (a device's note, the user's answer; "" for nothing): ``Turn.note``."""
    boxes: dict[str, list[int]] | None = None
    """Element boxes on the screen [x, y, w, h] in screen pixels, where the device knows
    them (the fixture apps, a uiautomator dump); offline evaluation scores points against them."""
    screen_changed: bool | None = None
    """Whether the screen changed after the executed action (None: not measured)."""
    screen_change: float | None = None
    """The fraction of the screen's pixels that changed after the action, 0..1."""
    took_over_s: float | None = None
    """Seconds a person held control (the pause switch) before this step began."""

    @property
    def retries(self) -> int:
        return sum(1 for a in self.attempts if a.error is not None)


class RunMeta(BaseModel):
    format_version: int = FORMAT_VERSION
    task: str
    model: str
    dialect: str
    device: dict[str, Any]
    budgets: dict[str, Any] = Field(default_factory=dict)
    started_at: float = Field(default_factory=time.time)
    versions: dict[str, str] = Field(default_factory=dict)
    extra: dict[str, Any] = Field(default_factory=dict)


class RunResult(BaseModel):
    """How a run ended. status: success | failure (the model gave up, or never produced a valid
    call) | step_budget | time_budget | error (the device or the model backend failed)."""

    status: Status
    answer: str = ""
    reason: str = ""
    steps: list[StepRecord] = Field(default_factory=list)
    seconds: float = 0.0
    trajectory: str | None = None

    @property
    def retries(self) -> int:
        return sum(s.retries for s in self.steps)


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages a run depends on (read once per process: reading
    package metadata costs ~20 ms)."""
    return dict(_package_versions())


@functools.cache
def _package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("pixelpilot", "pydantic", "pillow", "mss", "pyautogui"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


class Recorder(ABC):
    """Where a run's steps go. ``append`` returns the step as recorded (screenshot path set)."""

    def start(self, meta: RunMeta) -> None:
        self._start(meta)

    def append(self, step: StepRecord, image: Image.Image | None) -> StepRecord:
        return self._append(step, image)

    def finish(self, result: RunResult) -> RunResult:
        return self._finish(result)

    @abstractmethod
    def _start(self, meta: RunMeta) -> None: ...

    @abstractmethod
    def _append(self, step: StepRecord, image: Image.Image | None) -> StepRecord: ...

    @abstractmethod
    def _finish(self, result: RunResult) -> RunResult: ...


class NullRecorder(Recorder):
    """Keeps nothing (the RunResult still holds the steps)."""

    def _start(self, meta: RunMeta) -> None:
        pass

    def _append(self, step: StepRecord, image: Image.Image | None) -> StepRecord:
        return step

    def _finish(self, result: RunResult) -> RunResult:
        return result


class DirectoryRecorder(Recorder):
    """Writes the run directory described in this module's docstring."""

    def __init__(self, path: str | os.PathLike[str], png_level: int = 1) -> None:
        self.path = Path(path)
        self.png_level = png_level
        self._queue: queue.Queue[tuple[Image.Image, Path] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._steps_file: Any = None
        self.write_errors: list[str] = []

    def _start(self, meta: RunMeta) -> None:
        (self.path / "screens").mkdir(parents=True, exist_ok=True)
        _write_atomic(self.path / "run.json", meta.model_dump_json(indent=2))
        self._steps_file = open(self.path / "steps.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        self._thread = threading.Thread(
            target=self._writer, name="pixelpilot-recorder", daemon=True
        )
        self._thread.start()

    def _append(self, step: StepRecord, image: Image.Image | None) -> StepRecord:
        if image is not None:
            rel = f"screens/{step.index:04d}.png"
            step = step.model_copy(update={"screenshot": rel})
            self._queue.put((image, self.path / rel))
        self._steps_file.write(step.model_dump_json() + "\n")
        self._steps_file.flush()
        return step

    def _finish(self, result: RunResult) -> RunResult:
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join()
        if self._steps_file is not None:
            self._steps_file.close()
        result = result.model_copy(update={"trajectory": str(self.path)})
        summary = result.model_dump(exclude={"steps"})
        summary["step_count"] = len(result.steps)
        _write_atomic(self.path / "result.json", json.dumps(summary, indent=2))
        return result

    def _writer(self) -> None:
        while (item := self._queue.get()) is not None:
            image, dest = item
            try:
                tmp = dest.with_suffix(".tmp")
                image.save(tmp, format="PNG", compress_level=self.png_level)
                os.replace(tmp, dest)
            except OSError as exc:  # keep the run going; the loader reports a missing image
                self.write_errors.append(f"{dest.name}: {exc}")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class Trajectory(BaseModel):
    """A run read back from its directory."""

    path: str
    meta: RunMeta
    steps: list[StepRecord]
    result: dict[str, Any] | None = None
    truncated: bool = False
    """True when the last line of steps.jsonl was cut off (the process died mid-write)."""

    def screenshot_path(self, step: StepRecord) -> Path | None:
        if step.screenshot is None:
            return None
        p = Path(self.path) / step.screenshot
        return p if p.exists() else None

    @property
    def status(self) -> str:
        return self.result["status"] if self.result else "incomplete"


def load_trajectory(path: str | os.PathLike[str]) -> Trajectory:
    """Read a run directory back into typed objects. Raises UserError on what is not one."""
    root = Path(path)
    meta_file = root / "run.json"
    if not meta_file.is_file():
        raise UserError(f"{root}: not a trajectory directory (no run.json)")
    try:
        raw_meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{meta_file}: not valid JSON ({exc})") from None
    from pixelpilot.agent.trajectory_compat import read_step_objects, upgrade

    step_objs, truncated = read_step_objects(root)
    raw_meta, step_objs = upgrade(raw_meta, step_objs)  # any written version -> this one
    meta = RunMeta.model_validate(raw_meta)
    steps: list[StepRecord] = []
    for n, obj in enumerate(step_objs, 1):
        try:
            steps.append(StepRecord.model_validate(obj))
        except ValidationError as exc:
            raise UserError(
                f"{root / 'steps.jsonl'}: step {n} is not a step record: {exc.errors()[0]['msg']}"
            ) from None
    result = None
    result_file = root / "result.json"
    if result_file.exists():
        result = json.loads(result_file.read_text(encoding="utf-8"))
    return Trajectory(path=str(root), meta=meta, steps=steps, result=result, truncated=truncated)
