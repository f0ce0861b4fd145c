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
import math
import os
import platform
import queue
import re
import threading
import time
from abc import ABC, abstractmethod
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any, Literal, TypeVar

from PIL import Image
from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_core import PydanticSerializationError

from pixelpilot.agent.actions import Action
from pixelpilot.agent.errors import ConfigError, UserError
from pixelpilot.agent.trajectory_compat import FORMAT_VERSION, read_step_objects, upgrade
from pixelpilot.tools.base import Executed

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

    @field_validator("geometry")
    @classmethod
    def _readable_geometry(cls, g: dict[str, Any]) -> dict[str, Any]:
        """Empty (the observation failed) or a screen: positive integer width and height,
        optional positive scale and an (x, y) origin. Records are data from anywhere."""
        if not g:
            return g

        def number(v: Any) -> bool:
            return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

        size_ok = all(isinstance(g.get(k), int) and 0 < g[k] < 1 << 20 for k in ("width", "height"))
        scale = g.get("scale", 1.0)
        origin = g.get("origin", (0.0, 0.0))
        if not (
            size_ok
            and number(scale)
            and scale > 0
            and isinstance(origin, (list, tuple))
            and len(origin) == 2
            and all(number(v) for v in origin)
        ):
            raise ValueError("not a screen geometry (width, height, scale, origin)")
        return g


class Resumed(BaseModel):
    """One continuation of a run (``pixelpilot run --resume``): when, after which step, what
    the run's status was then, and the model, dialect and device that went on with it."""

    at: float
    after_step: int
    previous_status: str
    model: str
    dialect: str
    device: str


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
    secrets: list[str] = Field(default_factory=list)
    """NAMES of the secrets the model could write as ``<secret>NAME</secret>`` (never values)."""
    resumes: list[Resumed] = Field(default_factory=list)
    """Each time the run was continued after it ended or was killed, in order."""


class CheckResult(BaseModel):
    """One check of the target's real state after a run, with the value it saw."""

    passed: bool
    line: str


class RunResult(BaseModel):
    """How a run ended. status: success | failure (the model gave up, or never produced a valid
    call) | step_budget | time_budget | error (the device or the model backend failed).

    ``status`` success means the MODEL said it succeeded; ``achieved`` is whether the task really
    was achieved, judged by the target's real state (a scenario's checks: ``checks``), or None
    when nothing could judge it (no checks, or the target could not be read).
    """

    status: Status
    answer: str = ""
    reason: str = ""
    steps: list[StepRecord] = Field(default_factory=list)
    seconds: float = 0.0
    trajectory: str | None = None
    achieved: bool | None = None
    checks: list[CheckResult] = Field(default_factory=list)

    @property
    def failed_checks(self) -> list[str]:
        return [c.line for c in self.checks if not c.passed]

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

    def resume(self, trajectory: Trajectory, meta: RunMeta) -> None:
        """Go on recording ``trajectory`` (instead of ``start``); ``meta`` is its run.json
        with the new entry in ``resumes``."""
        self._resume(trajectory, meta)

    def _resume(self, trajectory: Trajectory, meta: RunMeta) -> None:
        raise ConfigError(f"{type(self).__name__} cannot continue a recorded run")

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

    def _resume(self, trajectory: Trajectory, meta: RunMeta) -> None:
        pass


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
        _write_atomic(self.path / "run.json", as_json(meta)[0])
        self._open()

    def _resume(self, trajectory: Trajectory, meta: RunMeta) -> None:
        """Append to the same directory: the cut-off tail of steps.jsonl (if the run was
        killed mid-write) is dropped, run.json gets the resume note, and result.json goes until
        the run ends again (a run killed again reads as incomplete, not as its old result)."""
        from pixelpilot.agent.trajectory_compat import complete_length

        if Path(trajectory.path).resolve() != self.path.resolve():
            raise ConfigError(
                f"this recorder writes to {self.path}, not to the resumed run {trajectory.path}"
            )
        steps_file = self.path / "steps.jsonl"
        keep = complete_length(self.path)
        with open(steps_file, "ab") as f:
            f.truncate(keep)
            if keep and _last_byte(steps_file, keep) != b"\n":
                f.write(b"\n")  # a whole last record without its newline
        (self.path / "screens").mkdir(parents=True, exist_ok=True)
        _write_atomic(self.path / "run.json", as_json(meta)[0])
        with contextlib.suppress(FileNotFoundError):
            (self.path / "result.json").unlink()
        self._open()

    def _open(self) -> None:
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
        line, step = as_json(step, indent=None)
        self._steps_file.write(line + "\n")
        self._steps_file.flush()
        return step

    def _finish(self, result: RunResult) -> RunResult:
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join()
        if self._steps_file is not None:
            self._steps_file.close()
        result = as_json(result.model_copy(update={"trajectory": str(self.path)}))[1]
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


M = TypeVar("M", bound=BaseModel)
_SURROGATE = re.compile("[\ud800-\udfff]")


def as_json(model: M, indent: int | None = 2) -> tuple[str, M]:
    """(JSON text, the model as written). Text with lone surrogates (a server's JSON can carry
    ``"\\ud800"``) cannot be UTF-8: they become U+FFFD, so every file stays valid UTF-8 JSON
    that reads back to what was written."""
    try:
        return model.model_dump_json(indent=indent), model
    except PydanticSerializationError:
        clean = type(model).model_validate(scrub_surrogates(model.model_dump()))
        return clean.model_dump_json(indent=indent), clean


def scrub_surrogates(value: Any) -> Any:
    """``value`` (nested dicts, lists, strings) with every lone surrogate replaced by U+FFFD."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {scrub_surrogates(k): scrub_surrogates(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(scrub_surrogates(v) for v in value)
    return value


def _last_byte(path: Path, size: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(size - 1)
        return f.read(1)


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
        """The step's screenshot file, or None when it was not written. A path that leads
        outside the run directory (absolute, ``..``, a symlink out) is refused: UserError."""
        if step.screenshot is None:
            return None
        p = inside(Path(self.path), step.screenshot, f"step {step.index}'s screenshot")
        return p if p.is_file() else None

    @property
    def status(self) -> str:
        status = self.result.get("status") if self.result else None
        return status if isinstance(status, str) else "incomplete"


def inside(root: Path, rel: str, what: str) -> Path:
    """``root / rel`` when it stays inside ``root`` after resolving symlinks.

    Everything a trajectory names is data: an absolute path, a ``..`` or a symlink that leads
    out of the run directory is refused with one UserError, so view/export/eval never read (or
    embed, copy, feed a model) a file outside it.
    """
    refused = UserError(
        f"{root}: {what} {rel!r} points outside the trajectory directory; a trajectory may "
        "only refer to files inside it (refusing to read it)"
    )
    try:
        rel_path = PurePosixPath(rel)
        if rel_path.is_absolute() or ".." in rel_path.parts or "\\" in rel or ":" in rel[:3]:
            raise refused
        base = root.resolve()
        target = (base / rel_path).resolve()
    except (ValueError, OSError, RuntimeError):  # NUL bytes, symlink loops, unreadable parts
        raise refused from None
    if target != base and not target.is_relative_to(base):
        raise refused
    return target


def _read_json(root: Path, name: str) -> Any:
    """A JSON file of the run directory by name; UserError when it is not JSON or leads out."""
    file = inside(root, name, name)
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON, absurd nesting
        raise UserError(f"{root / name}: not valid JSON ({exc})") from None


def load_trajectory(path: str | os.PathLike[str]) -> Trajectory:
    """Read a run directory back into typed objects. Raises UserError on what is not one.

    A steps.jsonl cut at any byte (the process died mid-write) loads with its whole records
    (``truncated`` set); every path a record names must stay inside the directory.
    """
    root = Path(path)
    if not (root / "run.json").is_file():
        raise UserError(f"{root}: not a trajectory directory (no run.json)")
    raw_meta = _read_json(root, "run.json")
    if not isinstance(raw_meta, dict):
        raise UserError(f"{root / 'run.json'}: not a run description (a JSON object)")
    inside(root, "steps.jsonl", "steps.jsonl")
    step_objs, truncated = read_step_objects(root)
    raw_meta, step_objs = upgrade(raw_meta, step_objs)  # any written version -> this one
    try:
        meta = RunMeta.model_validate(raw_meta)
    except ValidationError as exc:
        raise UserError(f"{root / 'run.json'}: {_first_error(exc)}") from None
    steps: list[StepRecord] = []
    for n, obj in enumerate(step_objs, 1):
        try:
            step = StepRecord.model_validate(obj)
        except ValidationError as exc:
            raise UserError(
                f"{root / 'steps.jsonl'}: step {n} is not a step record: {_first_error(exc)}"
            ) from None
        if step.screenshot is not None:
            inside(root, step.screenshot, f"step {step.index}'s screenshot")
        steps.append(step)
    result = None
    if (root / "result.json").exists():
        result = _read_json(root, "result.json")
        if not isinstance(result, dict):
            raise UserError(f"{root / 'result.json'}: not a run result (a JSON object)")
    return Trajectory(path=str(root), meta=meta, steps=steps, result=result, truncated=truncated)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {err['msg']}" if where else str(err["msg"])
