"""Reading every trajectory format pixelpilot has written, and the optional per-step extras.

``upgrade_meta`` / ``upgrade_step`` bring a run.json object and a steps.jsonl object of an older
``format_version`` up to the current one, one version at a time (``UPGRADES[n]`` turns version
n into n + 1), so ``load_trajectory`` can validate any of them with today's models. Version 1 is
the first and the current format: the chain is empty, and the fixture in
``tests/data/trajectory_v1/`` keeps it readable when version 2 appears.

``step_extras`` reads fields that StepRecord does not model (yet) from the raw lines:
``boxes`` ({name: [x, y, w, h]} element boxes on the screen, screen pixels) and
``target_box`` ([x, y, w, h], the element the step acted on). Evaluation uses them to score a
point the way AITW/AndroidControl do (inside the target element) instead of by distance.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pixelpilot.agent.errors import UserError

FORMAT_VERSION = 1
"""The trajectory format written today (``trajectory`` re-exports it)."""

Upgrade = Callable[
    [dict[str, Any], list[dict[str, Any]]], tuple[dict[str, Any], list[dict[str, Any]]]
]

UPGRADES: dict[int, Upgrade] = {}
"""version n -> function turning (run.json, step objects) of version n into version n + 1."""

EXTRA_FIELDS = ("boxes", "target_box")
Box = tuple[float, float, float, float]


def upgrade(
    meta: dict[str, Any], steps: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(run.json, step objects) of any written version, as the current version."""
    version = meta.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise UserError(f"trajectory format {version!r} is not a pixelpilot format version")
    if version > FORMAT_VERSION:
        raise UserError(
            f"trajectory format {version} is newer than this pixelpilot reads "
            f"(up to {FORMAT_VERSION}); upgrade pixelpilot"
        )
    while version < FORMAT_VERSION:
        step_up = UPGRADES.get(version)
        if step_up is None:  # pragma: no cover - a missing link is a bug caught by the fixture test
            raise UserError(f"no upgrade from trajectory format {version}")
        meta, steps = step_up(meta, steps)
        version += 1
        meta = {**meta, "format_version": version}
    return meta, steps


def read_step_objects(path: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], bool]:
    """The JSON objects of steps.jsonl and whether it ended in a cut-off record."""
    steps_file = Path(path) / "steps.jsonl"
    if not steps_file.exists():
        return [], False
    return parse_steps(steps_file.read_bytes(), steps_file)


def parse_steps(data: bytes, where: object = "steps.jsonl") -> tuple[list[dict[str, Any]], bool]:
    """The JSON objects of steps.jsonl's bytes and whether they end in a cut-off record.

    A run killed while writing leaves the last record cut at any byte, even inside a UTF-8
    character: that tail is dropped (the second value is True). A broken line before the last
    one is damage, not a cut: UserError naming ``where``.
    """
    out: list[dict[str, Any]] = []
    lines = data.split(b"\n")
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line.decode("utf-8"))
        except (ValueError, RecursionError):  # bad UTF-8, bad JSON, absurd nesting or numbers
            if n == len(lines):  # no newline after it: the process died while writing it
                return out, True
            raise UserError(
                f"{where}: line {n} is not JSON (the file is damaged; only a cut-off last "
                "line is tolerated)"
            ) from None
        if isinstance(obj, dict):
            out.append(obj)
    return out, False


def complete_length(path: str | os.PathLike[str]) -> int:
    """How many leading bytes of steps.jsonl hold whole records: where a resumed run appends
    (a cut-off tail is dropped)."""
    steps_file = Path(path) / "steps.jsonl"
    if not steps_file.exists():
        return 0
    data = steps_file.read_bytes()
    end = data.rfind(b"\n") + 1
    tail = data[end:]
    if tail.strip():
        try:
            json.loads(tail.decode("utf-8"))
        except (ValueError, RecursionError):
            return end
    return len(data)


def step_extras(path: str | os.PathLike[str]) -> dict[int, dict[str, Any]]:
    """{step index: {"boxes": ..., "target_box": ...}} for the steps that carry them."""
    objs, _ = read_step_objects(path)
    out: dict[int, dict[str, Any]] = {}
    for obj in objs:
        extra = {k: obj[k] for k in EXTRA_FIELDS if obj.get(k) is not None}
        if extra and isinstance(obj.get("index"), int):
            out[obj["index"]] = extra
    return out


def box_of(extra: dict[str, Any] | None, x: float, y: float) -> Box | None:
    """The box that holds point (x, y): ``target_box`` when it holds the point, else the
    smallest of ``boxes`` that does (the element the point is on); None when none does."""
    if not extra:
        return None
    target = extra.get("target_box")
    if target is not None and _valid(target) and _inside(target, x, y):
        return (target[0], target[1], target[2], target[3])
    boxes = extra.get("boxes") or {}
    holding = [b for b in boxes.values() if _valid(b) and _inside(b, x, y)]
    if not holding:
        return None
    best = min(holding, key=lambda b: b[2] * b[3])
    return (best[0], best[1], best[2], best[3])


def inside(box: Box, x: float, y: float) -> bool:
    """Whether (x, y) lies in ``box`` (edges included, as AITW's matcher counts them)."""
    return _inside(box, x, y)


def _valid(b: Any) -> bool:
    return (
        isinstance(b, (list, tuple)) and len(b) == 4 and all(isinstance(v, (int, float)) for v in b)
    )


def _inside(b: Any, x: float, y: float) -> bool:
    return b[0] <= x <= b[0] + b[2] and b[1] <= y <= b[1] + b[3]
