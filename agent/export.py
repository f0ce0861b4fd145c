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
``mask_history: true`` to learn only the last one. The steps are walked by
``train_data.examples``, the walker ``pixelpilot train`` reads trajectories with.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pixelpilot.agent.dialects import get_dialect
from pixelpilot.agent.dialects.base import Dialect
from pixelpilot.agent.errors import ConfigError, UserError
from pixelpilot.agent.geometry import HUB_PIXELS, PixelBudget
from pixelpilot.agent.train_data import IMAGE_TAG, DataStats, Example, examples
from pixelpilot.vlm.base import Prompt, merge_final

__all__ = ["DATASET_INFO", "IMAGE_TAG", "ExportStats", "chat_messages", "export_sft"]
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


class ExportStats(DataStats):
    """What an export wrote and what it left out, by reason."""

    out: str
    written: int = 0
    bytes: int = 0
    seconds: float = 0.0


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
    placed: set[Path] = set()
    walk = examples(traj_dirs, chosen, pixels, stats, only_success=only_success,
                    drop_retried=drop_retried)  # fmt: skip
    with open(tmp, "w", encoding="utf-8") as f:
        for ex in walk:
            names = [_name(ex, shot) for shot in ex.shots]
            for shot, name in zip(ex.shots, names, strict=True):
                if shot not in placed:
                    _place(shot, out / name, images)
                    placed.add(shot)
            messages = chat_messages(ex.prompt)
            messages.append({"role": "assistant", "content": ex.target})
            line = {"messages": messages, "images": names, DATASET_NAME: ex.meta}
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


def _name(ex: Example, shot: Path) -> str:
    """The exported file of a run's screenshot: the run's name, a digest of its path (two runs
    may share a name), the screenshot's name (its step)."""
    run = Path(ex.meta["trajectory"])
    tag = hashlib.sha1(str(run.resolve()).encode()).hexdigest()[:6]
    return f"images/{run.name}-{tag}-{shot.stem}{shot.suffix}"


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
