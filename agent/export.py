"""Recorded steps as supervised fine-tuning data in the Qwen2-VL chat format.

Output directory::

    data.jsonl          one JSON object per step (below)
    images/             the screenshots, copied (or symlinked) beside it
    dataset_info.json   the LLaMA-Factory dataset entry ("pixelpilot", sharegpt formatting)

Each line is LLaMA-Factory's multimodal "sharegpt" format (``messages`` with role/content,
``images`` a list of paths relative to the directory, one ``<image>`` tag per image; see
LLaMA-Factory ``data/README.md`` and its ``mllm_demo.json``), which ms-swift's custom-dataset
loader reads as it is (``{"messages": [...], "images": [...]}``)::

    {"messages": [{"role": "system", "content": "<tool schema of the dialect>"},
                  {"role": "user", "content": "Task: ...\\n<image>"},
                  {"role": "assistant", "content": "✿FUNCTION✿: click\\n✿ARGS✿: {...}"}],
     "images": ["images/run-3f2a1c-0001.png"],
     "pixelpilot": {"trajectory": ..., "step": 1, "dialect": ..., "kind": "click", ...}}

The messages are the dialect's own prompt (``build_prompt``: the family's layout of the
instructions, the task, the earlier steps and the screenshot) with consecutive messages of one
role joined by a newline, since sharegpt loaders require user and assistant to alternate (a
turn the model continues, qwen2vl's, is merged into the user message before it, as Qwen-Agent
does for OpenAI-compatible servers). The last assistant message is the recorded action written by ``dialect.format``,
its points mapped into the dialect's space for a screenshot resized with ``pixels`` (train with
the same max_pixels). Earlier assistant turns are history: train with LLaMA-Factory's
``mask_history: true`` to learn only the last one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from PIL import Image
from pydantic import BaseModel, Field

from pixelpilot.agent.dialects import get_dialect
from pixelpilot.agent.dialects.base import Dialect, StepContext, Turn
from pixelpilot.agent.errors import ConfigError, ModelRetry, UserError
from pixelpilot.agent.evaluate import geometry_of, history_turn, step_context, to_space
from pixelpilot.agent.geometry import HUB_PIXELS, PixelBudget
from pixelpilot.agent.secrets import task_for_model
from pixelpilot.agent.trajectory import StepRecord, Trajectory, load_trajectory
from pixelpilot.vlm.base import Prompt, merge_final

IMAGE_TAG = "<image>"
DATASET_NAME = "pixelpilot"
DATASET_INFO = {
    DATASET_NAME: {
        "file_name": "data.jsonl",
        "formatting": "sharegpt",
        "columns": {"messages": "messages", "images": "images"},
        "tags": {
            "role_tag": "role",
            "content_tag": "content",
            "user_tag": "user",
            "assistant_tag": "assistant",
            "system_tag": "system",
        },
    }
}


class ExportStats(BaseModel):
    """What an export wrote and what it left out, by reason."""

    out: str
    trajectories: int = 0
    steps: int = 0
    written: int = 0
    skipped: dict[str, int] = Field(default_factory=dict)
    bytes: int = 0
    seconds: float = 0.0

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n


def export_sft(
    traj_dirs: Iterable[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    dialect: str | Dialect | None = None,
    only_success: bool = True,
    drop_retried: bool = True,
    images: Literal["copy", "link"] = "copy",
    pixels: PixelBudget = HUB_PIXELS,
) -> ExportStats:
    """Write one training example per recorded step of ``traj_dirs`` to ``out_dir``.

    ``dialect``: the target format (default: each run's own). ``only_success``: only runs
    whose result is success. ``drop_retried``: leave out steps where the model was corrected
    (a rejected answer before the accepted one). ``images``: copy the PNGs or symlink them.
    """
    if images not in ("copy", "link"):
        raise ConfigError(f"images must be 'copy' or 'link', got {images!r}")
    t0 = time.perf_counter()
    chosen = get_dialect(dialect) if isinstance(dialect, str) else dialect
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    stats = ExportStats(out=str(out))
    data = out / "data.jsonl"
    tmp = data.with_suffix(".jsonl.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for d in traj_dirs:
            traj = load_trajectory(d)
            stats.trajectories += 1
            stats.steps += len(traj.steps)
            if only_success and traj.status != "success":
                stats.skip(f"run {traj.status}", len(traj.steps))
                continue
            for line in _examples(traj, chosen or get_dialect(traj.meta.dialect), out, images,
                                  pixels, drop_retried, stats):  # fmt: skip
                f.write(json.dumps(line, ensure_ascii=False) + "\n")
                stats.written += 1
    os.replace(tmp, data)
    (out / "dataset_info.json").write_text(
        json.dumps(DATASET_INFO, indent=2) + "\n", encoding="utf-8"
    )
    stats.bytes = sum(
        p.stat().st_size for p in out.rglob("*") if p.is_file() and not p.is_symlink()
    )
    stats.seconds = time.perf_counter() - t0
    if stats.trajectories == 0:
        raise UserError("no trajectories to export")
    return stats


def _examples(
    traj: Trajectory,
    dialect: Dialect,
    out: Path,
    images: str,
    pixels: PixelBudget,
    drop_retried: bool,
    stats: ExportStats,
) -> Iterable[dict[str, Any]]:
    history: list[Turn] = []
    tag = hashlib.sha1(str(Path(traj.path).resolve()).encode()).hexdigest()[:6]
    stem = f"{Path(traj.path).name}-{tag}"
    names: dict[int, str] = {}  # id of a screenshot in a prompt -> its file, placed when used
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
            names[id(image)] = f"images/{stem}-{step.index:04d}.png"
            _place(shot, out / names[id(image)], images)
        turn = history_turn(step, dialect, traj.meta.dialect, ctx, image)
        reason = _skip_reason(step, shot, drop_retried)
        target = None if reason else target_text(traj, step, dialect, ctx)
        if reason or target is None:
            stats.skip(reason or "not expressible in the dialect")
            history.append(turn)
            continue
        assert image is not None
        task = task_for_model(traj.meta.task, ctx.secrets)  # as the model read it
        prompt = dialect.build_prompt(task, history, image, ctx)
        messages = chat_messages(prompt)
        messages.append({"role": "assistant", "content": target})
        yield {
            "messages": messages,
            "images": [names[id(im)] for im in prompt.images],
            DATASET_NAME: {
                "trajectory": traj.path,
                "step": step.index,
                "dialect": dialect.name,
                "kind": step.device_action.kind,
                "screen": [geom.width, geom.height],
                "resized": list(ctx.resized),
            },
        }
        history.append(turn)


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
    return text if back == action else None


def chat_messages(prompt: Prompt) -> list[dict[str, str]]:
    """A prompt's messages as role/content strings, images as ``<image>``, consecutive
    messages of one role joined with a newline. A continued assistant turn (Qwen-Agent's
    ``✿RESULT✿`` layout) is merged into the user message before it, as Qwen-Agent asks an
    OpenAI-compatible server (``base.merge_final``): the label is then a message of its own."""
    out: list[dict[str, str]] = []
    messages = merge_final(prompt.messages) if prompt.continue_final else prompt.messages
    for m in messages:
        content = "".join(IMAGE_TAG if p["type"] == "image" else p["text"] for p in m.content)
        if out and out[-1]["role"] == m.role:
            out[-1]["content"] += "\n" + content
        else:
            out.append({"role": m.role, "content": content})
    return out


def _place(src: Path, dest: Path, images: str) -> None:
    if dest.exists() or dest.is_symlink():
        dest.unlink()
    if images == "link":
        os.symlink(src.resolve(), dest)
    else:
        shutil.copyfile(src, dest)
