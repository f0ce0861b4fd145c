"""Batch files for ``pixelpilot batch TASKS.jsonl``: one task per line, for collecting runs.

Each line is a JSON object::

    {"task": "Sign in as Zoë", "target": "phone:signin",
     "checks": [{"path": "signed_in.name", "equals": "Zoë"}], "id": "signin-1"}
    {"task": "Put the red cube in the tray", "target": "scene:tray", "max_steps": 20}
    {"task": "Open the settings", "device": "android:emulator-5554"}

``task`` is what the agent is told. ``target`` is a built-in target, started fresh for the line
by the worker that runs it (``fixture``, ``phone[:START]``, ``scene:NAME``); ``device`` instead
names a device to act on as it is: ``desktop`` (the worker's own display), ``android[:SERIAL]``,
``robot[:SCENE]`` or ``dryrun[...]``. ``checks`` (target lines only) are the scenario checks on
the target's state (``path`` checks) that judge whether the task was achieved. ``id`` names the
line's trajectory folder (default ``line-0001``...); ``max_steps`` and ``max_seconds`` override
the command's budgets. Blank lines are skipped. Every line is checked before anything runs; a
bad one is one error naming its line number.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pixelpilot.agent.errors import ConfigError
from pixelpilot.scenarios.spec import Check

__all__ = ["BatchLine", "load_batch"]

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


class BatchLine(BaseModel):
    """One line of a batch file (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    task: str = Field(min_length=1)
    target: str | None = None
    device: str | None = None
    checks: list[Check] = Field(default_factory=list)
    id: str | None = None
    max_steps: int | None = Field(None, ge=1)
    max_seconds: float | None = Field(None, gt=0)
    line: int = 0
    """Its line number in the file (set by ``load_batch``)."""

    @model_validator(mode="after")
    def _where(self) -> BatchLine:
        if (self.target is None) == (self.device is None):
            raise ValueError("give exactly one of 'target' (fixture, phone[:START], "
                             "scene:NAME) or 'device' (desktop, android[:SERIAL], ...)")  # fmt: skip
        if self.checks and self.target is None:
            raise ValueError("'checks' read a target's state: they need a 'target', not a 'device'")
        if any(c.source != "path" for c in self.checks):
            raise ValueError("a batch target has its state only: use 'path' checks")
        if self.id is not None and (not _ID.fullmatch(self.id) or ".retry" in self.id):
            raise ValueError(
                f"id {self.id!r}: use letters, digits, '_', '-' and '.' (a folder name)"
            )
        return self

    @property
    def name(self) -> str:
        return self.id or f"line-{self.line:04d}"

    @property
    def exclusive(self) -> str | None:
        """The device this line holds while it runs, when it is one that exists once
        (an Android device by serial); None for targets and per-worker devices."""
        if self.device is not None and self.device.startswith("android:"):
            return self.device
        return None


def load_batch(path: str | Path) -> list[BatchLine]:
    """Read and check every line; ConfigError ``FILE line N: what is wrong`` at the first bad
    one (targets and devices are resolved too, so a typo fails before anything starts)."""
    from pixelpilot.scenarios.targets import builtin_target, open_device

    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read it ({exc})") from None
    lines: list[BatchLine] = []
    names: dict[str, int] = {}
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{file} line {n}"
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: not JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(data, dict):
            raise ConfigError(
                f"{where}: a line is a JSON object with 'task' and 'target' or 'device'"
            )
        data.pop("line", None)
        try:
            item = BatchLine.model_validate({**data, "line": n})
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
            msg = msg.removeprefix("Value error, ")
            raise ConfigError(f"{where}: {loc + ': ' if loc else ''}{msg}") from None
        try:
            if item.target is not None:
                builtin_target(item.target)
            else:
                _check_device(item.device or "", open_device)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if item.name in names:
            raise ConfigError(f"{where}: id {item.name!r} is also line {names[item.name]}'s")
        names[item.name] = n
        lines.append(item)
    if not lines:
        raise ConfigError(f"{file}: no tasks (one JSON object per line)")
    return lines


def _check_device(ref: str, open_device: object) -> None:
    kind, _, arg = ref.partition(":")
    if kind == "desktop" and arg:
        raise ConfigError(
            f"device {ref!r}: a batch line acts on its worker's own display; write 'desktop' "
            "(or use a target)"
        )
    assert callable(open_device)
    open_device(ref)  # resolves the reference; opens nothing
