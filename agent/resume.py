"""Continuing a run that was killed or ran out of budget, from its record alone.

``resumable`` loads a run directory and checks that it can go on (the model did not end it);
``history_of`` rebuilds the model's history from the recorded steps (one Turn per step with an
accepted action: the answer as written, the action, the screenshot, the note); ``resume_meta``
is run.json with the continuation noted. Nothing recorded is run: the model, dialect and device
that go on come from the caller (``pixelpilot run --resume DIR --model ...``), and the task is
text.
"""

from __future__ import annotations

import os
import time
from typing import Any

from PIL import Image

from pixelpilot.agent.dialects.base import Turn
from pixelpilot.agent.errors import ConfigError, UserError
from pixelpilot.agent.evaluate import accepted_raw
from pixelpilot.agent.trajectory import (
    Resumed,
    RunMeta,
    RunResult,
    Trajectory,
    load_trajectory,
)

__all__ = [
    "check_fit", "consumed_outputs", "ended", "finished", "history_of", "resumable", "resume_meta",
]  # fmt: skip


def resumable(trajectory: str | os.PathLike[str] | Trajectory) -> Trajectory:
    """The trajectory, loaded, when a run can continue from it; UserError saying why not."""
    traj = trajectory if isinstance(trajectory, Trajectory) else load_trajectory(trajectory)
    finish = finished(traj)
    if finish is not None and traj.result is not None:
        raise UserError(
            f"{traj.path}: the model already ended this run ({finish.status}); "
            "there is nothing to resume"
        )
    return traj


def ended(traj: Trajectory) -> RunResult | None:
    """How the run ended when the model finished it at the last recorded step (the process was
    killed before it wrote result.json), else None."""
    finish = finished(traj)
    if finish is None:
        return None
    reason = f"the model finished ({finish.status})"  # as the loop words it
    return RunResult(
        status=finish.status, answer=finish.answer, reason=reason, steps=list(traj.steps)
    )


def finished(traj: Trajectory) -> Any:
    """The model's finish action when it ended the run at the last recorded step (a run killed
    after that step: resuming it only writes its result), else None."""
    last = traj.steps[-1] if traj.steps else None
    if last is not None and last.action is not None and last.action.kind == "finish":
        return last.action
    return None


def check_fit(traj: Trajectory, dialect: str, device_kind: str) -> None:
    """ConfigError when the dialect or the kind of device differs from the recording's: the
    history is written in the recorded dialect, about that kind of device."""
    if dialect != traj.meta.dialect:
        raise ConfigError(
            f"{traj.path} was recorded in the {traj.meta.dialect} dialect and its history is "
            f"written in it; resume with --dialect {traj.meta.dialect}"
        )
    recorded = traj.meta.device.get("kind")
    if recorded != device_kind:
        raise ConfigError(
            f"{traj.path} was recorded on a {recorded} device; resume it on one "
            f"(not a {device_kind} one)"
        )


def history_of(traj: Trajectory) -> list[Turn]:
    """The history the loop had after the last recorded step: one Turn per step whose answer
    was accepted (steps that failed add nothing, as in the loop)."""
    turns = []
    for step in traj.steps:
        raw = accepted_raw(step)
        if step.action is None or raw is None:
            continue
        image = None
        shot = traj.screenshot_path(step)
        if shot is not None:
            with Image.open(shot) as im:
                image = im.convert("RGB")
        turns.append(Turn(raw=raw, action=step.action, image=image, note=step.result or ""))
    return turns


def consumed_outputs(traj: Trajectory) -> int:
    """How many model answers the recorded steps used: where a scripted model goes on."""
    return sum(len(step.attempts) for step in traj.steps)


def resume_meta(traj: Trajectory, *, model: str, dialect: str, device: str) -> RunMeta:
    """run.json of ``traj`` with this continuation added to ``resumes``."""
    note = Resumed(
        at=time.time(),
        after_step=traj.steps[-1].index if traj.steps else 0,
        previous_status=traj.status,
        model=model,
        dialect=dialect,
        device=device,
    )
    return traj.meta.model_copy(update={"resumes": [*traj.meta.resumes, note]})
