"""Recorded steps as training examples: the one walker that ``export`` and ``train`` share.

For each accepted step of a run, ``examples`` rebuilds the prompt the loop sent for it (its first
attempt) exactly as the loop builds it: ``dialect.build_prompt`` with the earlier steps as
history turns, the task as the model read it (``task_for_model``), the step's context for a
screenshot resized with the pixel budget (``step_context``). The label is the recorded action
written by the dialect (``target_text``); ``answer`` is that text as the model writes it after
the prompt as rendered: the target itself, or, when the prompt leaves an assistant turn open for
the model to continue (qwen2vl after its first step), the text the dialect's own history shows
for this turn (``continuation``), so the label is a string the model really writes there.

``export_examples`` reads ``pixelpilot export`` output back (data.jsonl, ``<image>`` tags): the
portable form, where a continued turn was merged into the user message.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image
from pydantic import BaseModel, Field

from pixelpilot.agent.dialects import get_dialect
from pixelpilot.agent.dialects.base import Dialect, StepContext, Turn
from pixelpilot.agent.errors import ModelRetry, UserError
from pixelpilot.agent.evaluate import geometry_of, history_turn, step_context, to_space
from pixelpilot.agent.geometry import PixelBudget
from pixelpilot.agent.secrets import task_for_model
from pixelpilot.agent.trajectory import StepRecord, Trajectory, load_trajectory
from pixelpilot.agent.trajectory_compat import box_of
from pixelpilot.vlm.base import Message, Prompt

IMAGE_TAG = "<image>"
EXPORT_FILE = "data.jsonl"


@dataclass
class Example:
    """One training example. ``prompt``: what the model is asked (the loop's own prompt for
    recorded steps); ``target``: the recorded action as the dialect writes it, as a message of
    its own; ``answer``: what the model writes after ``prompt`` as rendered (``target``, or its
    continuation of an open assistant turn); ``shots``: the file of each of ``prompt.images``;
    ``meta``: trajectory, step, dialect, kind, screen [w, h], resized [w, h]."""

    prompt: Prompt
    target: str
    answer: str
    meta: dict[str, Any]
    shots: tuple[Path, ...] = field(default=())


class DataStats(BaseModel):
    """What a walk over recorded data read and what it left out, by reason."""

    trajectories: int = 0
    steps: int = 0
    skipped: dict[str, int] = Field(default_factory=dict)

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n


def find_data(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[Path], list[Path]]:
    """(trajectory directories, export directories) under ``paths``: a path holding run.json
    is a trajectory, one holding data.jsonl an export; any other directory is searched at any
    depth (``runs/``, a bench's ``episodes/TASK/NNN``). UserError when a path holds neither."""
    runs: list[Path] = []
    exports: list[Path] = []
    for p in map(Path, paths):
        if (p / "run.json").is_file():
            runs.append(p)
        elif (p / EXPORT_FILE).is_file():
            exports.append(p)
        elif p.is_dir():
            found = runs_below(p)
            more = sorted({f.parent for f in p.rglob(EXPORT_FILE)} - set(found))
            if not found and not more:
                raise UserError(
                    f"{p}: no trajectory (run.json) or export (data.jsonl) in it or below it"
                )
            runs.extend(found)
            exports.extend(more)
        else:
            raise UserError(f"{p}: not a directory of trajectories or of exported data")
    return runs, exports


def runs_below(folder: Path) -> list[Path]:
    """The trajectory directories (run.json) under ``folder`` at any depth, sorted; a run's own
    subdirectories are not searched."""
    found = sorted({f.parent for f in folder.rglob("run.json")})
    return [d for d in found if not any(a in found for a in d.parents)]


def examples(
    traj_dirs: Iterable[str | os.PathLike[str]],
    dialect: Dialect | None,
    pixels: PixelBudget,
    stats: DataStats,
    *,
    only_success: bool = True,
    drop_retried: bool = True,
) -> Iterator[Example]:
    """Every usable recorded step of ``traj_dirs`` as an Example in ``dialect`` (default: each
    run's own); ``only_success``: of runs that did their task (``verdict``). What is left out
    is counted in ``stats``."""
    for d in traj_dirs:
        traj = load_trajectory(d)
        stats.trajectories += 1
        stats.steps += len(traj.steps)
        judged = verdict(traj)
        if only_success and not (judged if judged is not None else traj.status == "success"):
            why = "not achieved" if judged is False else traj.status
            stats.skip(f"run {why}", len(traj.steps))
            continue
        the_dialect = dialect or get_dialect(traj.meta.dialect)
        yield from trajectory_examples(traj, the_dialect, pixels, stats, drop_retried)


def verdict(traj: Trajectory) -> bool | None:
    """Whether the run really did its task, where something judged it: the target's checks
    (result.json ``achieved``, a scenario run) or MiniWoB's reward (``miniwob.json`` ``success``
    beside a bench episode); None where nothing did (then the model's own claim is all there is).
    """
    achieved = (traj.result or {}).get("achieved")
    if isinstance(achieved, bool):
        return achieved
    try:
        success = json.loads((Path(traj.path) / "miniwob.json").read_text(encoding="utf-8"))
        success = success.get("success")
    except (OSError, ValueError, AttributeError):
        return None
    return success if isinstance(success, bool) else None


def trajectory_examples(
    traj: Trajectory, dialect: Dialect, pixels: PixelBudget, stats: DataStats, drop_retried: bool
) -> Iterator[Example]:
    """The Examples of one run, its steps in order (see the module docstring)."""
    history: list[Turn] = []
    shots: dict[int, Path] = {}  # id of a screenshot in a prompt -> its file
    for step in traj.steps:
        shot = traj.screenshot_path(step)
        if step.device_action is None or not step.geometry:
            stats.skip("no accepted action")
            continue
        geom = geometry_of(step)
        ctx = step_context(traj, step, pixels.resize(geom.width, geom.height))
        image = None
        if shot is not None:
            with Image.open(shot) as im:
                image = im.convert("RGB")
            shots[id(image)] = shot
        turn = history_turn(step, dialect, traj.meta.dialect, ctx, image)
        reason = _skip_reason(step, shot, drop_retried)
        found = None if reason else _target(traj, step, dialect, ctx)
        if reason or found is None:
            stats.skip(reason or "not expressible in the dialect")
            history.append(turn)
            continue
        assert image is not None
        target, action = found
        task = task_for_model(traj.meta.task, ctx.secrets)  # as the model read it
        prompt = dialect.build_prompt(task, history, image, ctx)
        answer = continuation(dialect, prompt, task, history, image, ctx, target, action)
        if answer is None:
            stats.skip("no continuation in the dialect")
            history.append(turn)
            continue
        yield Example(
            prompt=prompt,
            target=target,
            answer=answer,
            meta={
                "trajectory": traj.path,
                "task": task,
                "step": step.index,
                "dialect": dialect.name,
                "kind": step.device_action.kind,
                "screen": [geom.width, geom.height],
                "resized": list(ctx.resized),
                **_target_box(step),
            },
            shots=tuple(shots[id(im)] for im in prompt.images),
        )
        history.append(turn)


def _target_box(step: StepRecord) -> dict[str, list[float]]:
    """``{"target_box": [x, y, w, h]}``, the element the step's point is on in the screenshot's
    pixels, when the recording has element boxes and the action a point (else nothing)."""
    point = getattr(step.device_action, "point", None)  # screen_px: the screenshot's pixels
    if point is None or not step.boxes:
        return {}
    box = box_of({"boxes": step.boxes}, point.x, point.y)
    return {} if box is None else {"target_box": [float(v) for v in box]}


def _skip_reason(step: StepRecord, shot: Path | None, drop_retried: bool) -> str | None:
    if shot is None:
        return "no screenshot"
    if drop_retried and step.retries:
        return "retried"
    return None


def target_text(
    traj: Trajectory, step: StepRecord, dialect: Dialect, ctx: StepContext
) -> str | None:
    """The recorded action written as ``dialect`` would write it (None if it cannot).

    The recorded model-space action is used as it is when it is already in this dialect's
    space for this image size; otherwise the executed screen pixels are mapped. The text must
    parse back to the same action.
    """
    found = _target(traj, step, dialect, ctx)
    return found[0] if found else None


def _target(
    traj: Trajectory, step: StepRecord, dialect: Dialect, ctx: StepContext
) -> tuple[str, Any] | None:
    action = step.action
    same = (
        action is not None
        and dialect.name == traj.meta.dialect
        and (dialect.space != "resized_px" or tuple(step.resized or ()) == ctx.resized)
    )
    if not same:
        action = to_space(step.device_action, dialect, ctx)
    try:
        text = dialect.format(action, ctx)
        back = dialect.parse(text, ctx)
    except (ValueError, ModelRetry):
        return None
    return (text, action) if back == action else None


def continuation(
    dialect: Dialect,
    prompt: Prompt,
    task: str,
    history: list[Turn],
    image: Image.Image,
    ctx: StepContext,
    target: str,
    action: Any,
) -> str | None:
    """What the model writes after ``prompt`` for ``target``: ``target`` itself after a new
    assistant turn; in a turn it continues, the text the dialect's own history shows for this
    answer once it is an earlier step (the next prompt's open turn minus this one's), up to the
    first stop string and the line break before it. None if that text does not parse back to
    ``action`` (or the dialect renders history otherwise)."""
    if not prompt.continue_final:
        return target
    later = dialect.build_prompt(task, [*history, Turn(raw=target, action=action, image=image)],
                                 image, ctx)  # fmt: skip
    n = len(prompt.messages)
    before = _flat(prompt.messages[-1])
    after = _flat(later.messages[n - 1]) if len(later.messages) == n else ""
    if not after.startswith(before):
        return None
    rest = after[len(before) :]
    ends = [i for i in (rest.find(s) for s in prompt.stop) if i >= 0]
    if not ends:
        return None
    answer = rest[: min(ends)].removesuffix("\n")
    try:
        return answer if dialect.parse(answer, ctx) == action else None
    except (ValueError, ModelRetry):
        return None


def _flat(m: Message) -> str:
    return "".join(p["text"] if p["type"] == "text" else "\0" for p in m.content)


def export_examples(
    directory: str | os.PathLike[str], stats: DataStats, pixels: PixelBudget | None = None
) -> Iterator[Example]:
    """The rows of a ``pixelpilot export`` directory as Examples: each row's messages but the
    last as the prompt (``<image>`` tags -> its images, in order), the last (the assistant's)
    as target and answer. A row that is not such a conversation is a UserError. With
    ``pixels``, a row whose points are resized pixels of another budget is left out."""
    root = Path(directory)
    data = root / EXPORT_FILE
    stats.trajectories += 1
    cache: dict[Path, Image.Image] = {}  # a run's rows repeat its earlier screenshots
    with open(data, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            stats.steps += 1
            where = f"{data}:{n}"
            try:
                row = json.loads(line)
                messages, files = row["messages"], [root / p for p in row.get("images", [])]
            except (ValueError, KeyError, TypeError):
                raise UserError(f"{where}: not an exported example (messages, images)") from None
            if not messages or messages[-1].get("role") != "assistant":
                raise UserError(f"{where}: the last message must be the assistant's answer")
            images = [_image(p, cache, where) for p in files]
            prompt = Prompt(messages=[_message(m, images, where) for m in messages[:-1]])
            if images:
                raise UserError(f"{where}: more images than {IMAGE_TAG} tags")
            target = str(messages[-1]["content"])
            meta = dict(row.get("pixelpilot") or {})
            if pixels is not None and not _same_budget(meta, pixels):
                stats.skip("exported for another pixel budget")
                continue
            yield Example(prompt, target, target, {**meta, "export": str(root)}, tuple(files))


def _same_budget(meta: dict[str, Any], pixels: PixelBudget) -> bool:
    """Whether a row's answer holds for screens resized with ``pixels``: always for dialects
    whose points do not depend on the resized size (norm1000, ...)."""
    try:
        space = get_dialect(str(meta["dialect"])).space
        w, h = meta["screen"]
        resized = tuple(meta["resized"])
    except (KeyError, TypeError, ValueError, UserError):
        return True  # a row that does not say: taken as it is
    return space != "resized_px" or pixels.resize(int(w), int(h)) == resized


def _image(path: Path, cache: dict[Path, Image.Image], where: str) -> Image.Image:
    if path not in cache:
        if len(cache) >= 32:
            cache.pop(next(iter(cache)))
        try:
            with Image.open(path) as im:
                cache[path] = im.convert("RGB")
        except OSError:
            raise UserError(f"{where}: cannot read the image {path}") from None
    return cache[path]


def _message(m: dict[str, Any], images: list[Image.Image], where: str) -> Message:
    """A sharegpt message as a Message: text parts, an image part for each ``<image>`` (taken
    from the front of ``images``)."""
    role = m.get("role")
    if role not in ("system", "user", "assistant"):
        raise UserError(f"{where}: unknown role {role!r}")
    parts: list[dict[str, Any]] = []
    for i, chunk in enumerate(str(m.get("content", "")).split(IMAGE_TAG)):
        if i:
            if not images:
                raise UserError(f"{where}: more {IMAGE_TAG} tags than images")
            parts.append({"type": "image", "image": images.pop(0)})
        if chunk:
            parts.append({"type": "text", "text": chunk})
    return Message(role, parts)
