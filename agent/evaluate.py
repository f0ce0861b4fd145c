"""Offline step evaluation: a model answers every recorded step, scored against the recording.

For each step of each trajectory the prompt is rebuilt from what was recorded (the screenshot,
the task, the earlier steps' accepted answers as history: teacher forcing), the model answers
once, the dialect parses it, and the answer is compared with the recorded action the way the
AITW / AITZ / AndroidControl papers do (google-research ``android_in_the_wild/action_matching``):

- **type match**: the same action kind;
- **exact match**: type match and the arguments agree: a point lies in the element box that
  holds the recorded point (when the trajectory carries ``boxes``/``target_box``) or within a
  tolerance of it (default 14% of the screen on phones, AITW's ``_TAP_DISTANCE_THRESHOLD``, and
  14 px on desktops and robot cameras; ``"NNpx"`` or ``"NN%"``); typed text equal; scroll and
  swipe direction equal; keys, buttons, app, gripper state and finish status equal;
- **invalid**: the answer does not parse, or a point is off the screen.

No device is touched; a step the recording has no accepted action for is not scored.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image
from pydantic import BaseModel, Field

from pixelpilot.agent.actions import DESKTOP_KINDS, MOBILE_KINDS, ROBOT_KINDS
from pixelpilot.agent.dialects import get_dialect
from pixelpilot.agent.dialects.base import Dialect, StepContext, Turn
from pixelpilot.agent.errors import ConfigError, ModelRetry, UserError
from pixelpilot.agent.geometry import ScreenGeometry, from_screen, to_device
from pixelpilot.agent.keys import normalize_key
from pixelpilot.agent.overlay import Pt, pointer_after, step_action
from pixelpilot.agent.secrets import task_for_model
from pixelpilot.agent.trajectory import StepRecord, Trajectory, load_trajectory
from pixelpilot.agent.trajectory_compat import box_of, inside, step_extras
from pixelpilot.vlm.base import VisionModel

KINDS_BY_DEVICE = {"desktop": DESKTOP_KINDS, "mobile": MOBILE_KINDS, "robot": ROBOT_KINDS}
DEFAULT_TOLERANCE = {"mobile": "14%", "desktop": "14px", "robot": "14px"}


class StepScore(BaseModel):
    """One scored step."""

    trajectory: str
    index: int
    expected: str
    predicted: str | None = None
    raw: str = ""
    valid: bool = False
    error: str | None = None
    type_match: bool = False
    exact: bool = False
    how: str = ""
    seconds: float = 0.0


class Scores(BaseModel):
    """Rates over a set of scored steps (0..1)."""

    steps: int = 0
    type_match: float = 0.0
    exact: float = 0.0
    invalid: float = 0.0
    seconds_per_step: float = 0.0

    @classmethod
    def of(cls, steps: Sequence[StepScore]) -> Scores:
        n = len(steps)
        if n == 0:
            return cls()
        return cls(
            steps=n,
            type_match=sum(s.type_match for s in steps) / n,
            exact=sum(s.exact for s in steps) / n,
            invalid=sum(not s.valid for s in steps) / n,
            seconds_per_step=sum(s.seconds for s in steps) / n,
        )


class TrajectoryScore(Scores):
    path: str
    task: str
    dialect: str
    skipped: int = 0
    """Recorded steps without an accepted action (nothing to compare with)."""


class EvalReport(BaseModel):
    """Per-step scores, per-trajectory and overall rates."""

    model: str
    dialect: str | None = None
    tolerance: str | None = None
    trajectories: list[TrajectoryScore] = Field(default_factory=list)
    overall: Scores = Field(default_factory=Scores)
    steps: list[StepScore] = Field(default_factory=list)

    def table(self) -> Any:
        """A rich Table: one row per trajectory and an overall row."""
        from rich.table import Column, Table

        t = Table(Column("trajectory", overflow="fold"), "dialect", "steps", "type match", "exact",
                  "invalid", "s/step", title=f"offline evaluation of {self.model}")  # fmt: skip
        for r in self.trajectories:
            t.add_row(Path(r.path).name, r.dialect, str(r.steps), *_pct(r))
        o = self.overall
        t.add_section()
        t.add_row("overall", self.dialect or "recorded", str(o.steps), *_pct(o), style="bold")
        return t


def _pct(s: Scores) -> list[str]:
    if s.steps == 0:
        return ["-"] * 4
    return [
        f"{s.type_match:.1%}",
        f"{s.exact:.1%}",
        f"{s.invalid:.1%}",
        f"{s.seconds_per_step:.3f}",
    ]


def evaluate(
    model: VisionModel,
    traj_dirs: Iterable[str | os.PathLike[str]],
    *,
    dialect: str | Dialect | None = None,
    tolerance: str | None = None,
) -> EvalReport:
    """Score ``model`` on every recorded step of ``traj_dirs`` (see the module docstring).

    ``dialect`` defaults to each trajectory's own; ``tolerance`` ('14px' or '14%') to the
    device kind's default.
    """
    chosen = get_dialect(dialect) if isinstance(dialect, str) else dialect
    report = EvalReport(
        model=model.name, dialect=chosen.name if chosen else None, tolerance=tolerance
    )
    for d in traj_dirs:
        traj = load_trajectory(d)
        the_dialect = chosen or get_dialect(traj.meta.dialect)
        scores, skipped = _evaluate_one(model, traj, the_dialect, tolerance)
        report.steps.extend(scores)
        report.trajectories.append(
            TrajectoryScore(
                path=traj.path,
                task=traj.meta.task,
                dialect=the_dialect.name,
                skipped=skipped,
                **Scores.of(scores).model_dump(),
            )
        )
    if not report.trajectories:
        raise UserError("no trajectories to evaluate")
    report.overall = Scores.of(report.steps)
    return report


def step_context(traj: Trajectory, step: StepRecord, resized: tuple[int, int]) -> StepContext:
    """The StepContext the recorded step was taken in, for a model seeing ``resized``."""
    dev = traj.meta.device
    kind = str(dev.get("kind", "desktop"))
    kinds = dev.get("supported")
    offered = frozenset(kinds) if isinstance(kinds, list) else KINDS_BY_DEVICE.get(kind)
    if offered is None:
        raise UserError(f"{traj.path}: unknown device kind {kind!r}")
    return StepContext(kind, offered, geometry_of(step), resized, tuple(traj.meta.secrets))


def geometry_of(step: StepRecord) -> ScreenGeometry:
    g = step.geometry
    origin = g.get("origin", (0.0, 0.0))
    return ScreenGeometry(int(g["width"]), int(g["height"]), float(g.get("scale", 1.0)),
                          (float(origin[0]), float(origin[1])))  # fmt: skip


def accepted_raw(step: StepRecord) -> str | None:
    """The raw text of the answer the step acted on."""
    for a in reversed(step.attempts):
        if a.action is not None and a.error is None:
            return a.raw
    return None


def history_turn(
    step: StepRecord,
    dialect: Dialect,
    recorded_dialect: str,
    ctx: StepContext,
    image: Image.Image | None = None,
) -> Turn:
    """The turn a later prompt repeats for ``step``: its recorded answer, rewritten in
    ``dialect`` when the recording used another one, with the screenshot it answered."""
    note = step.result or ""
    if note in ("Finished.", "Done.") or note.startswith("Done. "):  # written before notes
        note = note.removeprefix("Done.").removeprefix("Finished.").strip()
    raw, action = accepted_raw(step) or "", step.action
    if dialect.name != recorded_dialect and step.device_action is not None:
        with contextlib.suppress(ValueError):  # if this dialect cannot write it, keep the text
            converted = to_space(step.device_action, dialect, ctx)
            raw, action = dialect.format(converted, ctx), converted
    return Turn(raw=raw, action=action, image=image, note=note)


def to_space(device_action: Any, dialect: Dialect, ctx: StepContext) -> Any:
    """``device_action`` (screen_px) with its points in ``dialect.space`` for ``ctx``."""
    from pixelpilot.agent.actions import map_points

    def convert(p: Any) -> Any:
        return from_screen(int(p.x), int(p.y), dialect.space, ctx.geometry, ctx.resized)

    return map_points(device_action, convert)


def recorded_outputs(traj_dirs: Iterable[str | os.PathLike[str]]) -> list[str]:
    """The accepted answers of every scored step, in evaluation order: the script of a
    scripted model that reproduces the recordings."""
    out = []
    for d in traj_dirs:
        for step in load_trajectory(d).steps:
            raw = accepted_raw(step)
            if raw is not None and step.device_action is not None:
                out.append(raw)
    return out


def _evaluate_one(
    model: VisionModel, traj: Trajectory, dialect: Dialect, tolerance: str | None
) -> tuple[list[StepScore], int]:
    extras = step_extras(traj.path)
    tol = parse_tolerance(
        tolerance or DEFAULT_TOLERANCE.get(str(traj.meta.device.get("kind")), "14px")
    )
    history: list[Turn] = []
    scores: list[StepScore] = []
    skipped = 0
    pointer: Pt | None = None
    for step in traj.steps:
        ref = step.device_action
        shot = traj.screenshot_path(step)
        if ref is None or shot is None or not step.geometry:
            skipped += 1
            pointer = pointer_after(step_action(step), pointer)
            continue
        geom = geometry_of(step)
        resized = model.resized_size(geom.width, geom.height)
        ctx = step_context(traj, step, resized)
        with Image.open(shot) as im:
            image = im.convert("RGB")
        prompt = dialect.build_prompt(task_for_model(traj.meta.task, ctx.secrets), history, image, ctx)
        gen = model.generate(prompt)
        score = StepScore(
            trajectory=traj.path, index=step.index, expected=ref.kind, raw=gen.text,
            seconds=gen.seconds,
        )  # fmt: skip
        try:
            pred = to_device(dialect.parse(gen.text, ctx), geom, resized)
        except ModelRetry as exc:
            score.error = str(exc)
        else:
            score.valid = True
            score.predicted = pred.kind
            score.type_match = pred.kind == ref.kind
            if score.type_match:
                score.exact, score.how = match(
                    pred, ref, geom, tol, extras.get(step.index), pointer
                )
        scores.append(score)
        history.append(history_turn(step, dialect, traj.meta.dialect, ctx, image))
        pointer = pointer_after(step_action(step), pointer)
    return scores, skipped


def parse_tolerance(text: str) -> tuple[float, bool]:
    """'14px' -> (14, False); '14%' -> (0.14, True) (a fraction of the screen, as AITW)."""
    t = text.strip().lower()
    try:
        if t.endswith("%"):
            return float(t[:-1]) / 100, True
        return float(t.removesuffix("px")), False
    except ValueError:
        raise ConfigError(
            f"tolerance {text!r}: write pixels like '14px' or a share like '14%'"
        ) from None


def match(
    pred: Any,
    ref: Any,
    geom: ScreenGeometry,
    tol: tuple[float, bool],
    extra: dict[str, Any] | None = None,
    pointer: Pt | None = None,
) -> tuple[bool, str]:
    """(exact match, how it was decided) for two actions of the same kind in screen pixels."""
    kind = ref.kind

    def near(p: Any, q: Any) -> tuple[bool, str]:
        return point_match(p, q, geom, tol, extra)

    if kind == "click":
        if (pred.button, pred.count) != (ref.button, ref.count):
            return False, f"button {pred.button} x{pred.count} != {ref.button} x{ref.count}"
        p = _xy(pred.point) if pred.point is not None else pointer
        q = _xy(ref.point) if ref.point is not None else pointer
        if p is None or q is None:
            return p is None and q is None, "clicks where the pointer is"
        return near(p, q)
    if kind in ("tap", "long_press", "move", "pick", "place", "move_effector"):
        return near(_xy(pred.point), _xy(ref.point))
    if kind == "drag":
        ok_end, how_end = near(_xy(pred.end), _xy(ref.end))
        ps = _xy(pred.start) if pred.start is not None else pointer
        rs = _xy(ref.start) if ref.start is not None else pointer
        if ps is None or rs is None:
            return ok_end, f"end {how_end}"
        ok_start, how_start = near(ps, rs)
        return ok_start and ok_end, f"start {how_start}; end {how_end}"
    if kind == "swipe":
        d1, d2 = (
            _direction(_xy(pred.start), _xy(pred.end)),
            _direction(_xy(ref.start), _xy(ref.end)),
        )
        return d1 == d2, f"direction {d1} vs {d2}"
    if kind == "scroll":
        if pred.direction != ref.direction:
            return False, f"direction {pred.direction} != {ref.direction}"
        if ref.point is None:
            return True, "direction"
        p = _xy(pred.point) if pred.point is not None else pointer
        if p is None:
            return False, "no scroll point"
        return near(p, _xy(ref.point))
    if kind == "type":
        return pred.text == ref.text, "text equal" if pred.text == ref.text else "text differs"
    if kind == "hotkey":
        a, b = sorted(map(normalize_key, pred.keys)), sorted(map(normalize_key, ref.keys))
        return a == b, f"keys {'+'.join(a)} vs {'+'.join(b)}"
    if kind == "system_button":
        return pred.button == ref.button, f"button {pred.button} vs {ref.button}"
    if kind == "open_app":
        ok = pred.app.strip().lower() == ref.app.strip().lower()
        return ok, "app equal" if ok else "app differs"
    if kind == "gripper":
        return pred.state == ref.state, f"gripper {pred.state} vs {ref.state}"
    if kind == "finish":
        return pred.status == ref.status, f"status {pred.status} vs {ref.status}"
    return True, "kind"  # wait, home, ask_user: the kind is the action


def point_match(
    p: Pt, q: Pt, geom: ScreenGeometry, tol: tuple[float, bool], extra: dict[str, Any] | None
) -> tuple[bool, str]:
    """Whether predicted point ``p`` hits recorded point ``q``: in the element box that holds
    ``q`` when one is known, or within the tolerance (AITW accepts either)."""
    box = box_of(extra, q[0], q[1])
    if box is not None and inside(box, p[0], p[1]):
        return True, "in target box"
    value, relative = tol
    if relative:
        dist = math.hypot((p[0] - q[0]) / geom.width, (p[1] - q[1]) / geom.height)
        how = f"{dist:.1%} of screen away"
    else:
        dist = math.hypot(p[0] - q[0], p[1] - q[1])
        how = f"{dist:.1f} px away"
    if box is not None:
        how = "outside target box, " + how
    return dist <= value, how


def _xy(p: Any) -> Pt:
    return (float(p.x), float(p.y))


def _direction(a: Pt, b: Pt) -> str:
    dx, dy = b[0] - a[0], b[1] - a[1]
    if abs(dx) >= abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"
