"""A trajectory as an animation (GIF; MP4 when imageio-ffmpeg is installed) to share a run.

One frame per step that has a screenshot, with the action drawn on it by the same marks as the
HTML viewer (``overlay.step_marks``) and a caption bar (step, action, status). GIFs are written
by PIL with one adaptive palette per frame; the last frame is held longer.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from pixelpilot.agent.errors import ConfigError, UserError
from pixelpilot.agent.overlay import _font, draw, pointer_after, step_action, step_marks
from pixelpilot.agent.trajectory import load_trajectory
from pixelpilot.agent.viewer import describe

CAPTION_H = 28


def mp4_available() -> bool:
    """Whether MP4 output can be written (it needs the imageio-ffmpeg package)."""
    return importlib.util.find_spec("imageio_ffmpeg") is not None


def frames(traj_dir: str | os.PathLike[str], *, max_width: int | None = 960) -> list[Image.Image]:
    """The annotated frames of a run, each at most ``max_width`` wide (RGB)."""
    traj = load_trajectory(traj_dir)
    out: list[Image.Image] = []
    pointer = None
    for step in traj.steps:
        path = traj.screenshot_path(step)
        if path is not None:
            with Image.open(path) as im:
                shot = draw(im, step_marks(step, im.size, pointer))
            if max_width is not None and shot.width > max_width:
                h = round(shot.height * max_width / shot.width)
                shot = shot.resize((max_width, h), Image.Resampling.LANCZOS)
            action = step_action(step)
            text = f"step {step.index}/{len(traj.steps)}  {describe(action)}"
            if step.retries:
                text += f"  ({step.retries} rejected)"
            if step.error:
                text += f"  error: {step.error}"
            out.append(_caption(shot, text))
        pointer = pointer_after(step_action(step), pointer)
    return out


def _caption(shot: Image.Image, text: str) -> Image.Image:
    frame = Image.new("RGB", (shot.width, shot.height + CAPTION_H), "#202020")
    frame.paste(shot, (0, 0))
    d = ImageDraw.Draw(frame)
    font = _font(15)
    while text and d.textlength(text, font=font) > shot.width - 12:
        text = text[:-2] + "…" if len(text) > 2 else ""
    d.text((6, shot.height + 5), text, fill="#ffffff", font=font)
    return frame


def write_gif(
    traj_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    fps: float = 1.0,
    max_width: int | None = 960,
    hold_last: float = 2.0,
) -> Path:
    """Render the run in ``traj_dir`` to ``out``: a GIF, or an MP4 when ``out`` ends in .mp4.

    ``fps`` frames (steps) per second; the last frame stays ``hold_last`` seconds longer.
    Raises UserError when the run has no screenshot, ConfigError for an MP4 without
    imageio-ffmpeg.
    """
    if fps <= 0:
        raise ConfigError(f"fps must be positive, got {fps:g}")
    dest = Path(out)
    if dest.suffix.lower() == ".mp4" and not mp4_available():
        raise ConfigError(
            "MP4 output needs imageio-ffmpeg (pip install imageio-ffmpeg); write a .gif"
        )
    shots = frames(traj_dir, max_width=max_width)
    if not shots:
        raise UserError(f"{traj_dir}: no screenshots to animate")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.suffix.lower() == ".mp4":
        _write_mp4(shots, dest, fps, hold_last)
        return dest
    ms = round(1000 / fps)
    durations = [ms] * len(shots)
    durations[-1] += round(hold_last * 1000)
    palette = [s.quantize(colors=255, method=Image.Quantize.MEDIANCUT) for s in shots]
    palette[0].save(
        dest,
        format="GIF",
        save_all=True,
        append_images=palette[1:],
        duration=durations,
        loop=0,
        disposal=1,
    )
    return dest


def _write_mp4(shots: list[Image.Image], dest: Path, fps: float, hold_last: float) -> None:
    import imageio.v2 as imageio  # imageio-ffmpeg provides the writer
    import numpy as np

    w = max(s.width for s in shots) // 2 * 2  # yuv420p wants even sizes
    h = max(s.height for s in shots) // 2 * 2
    extra = max(0, round(hold_last * fps))
    writer: Any
    with imageio.get_writer(dest, fps=fps, codec="libx264", macro_block_size=2) as writer:
        for i, s in enumerate(shots):
            frame = np.asarray(s.resize((w, h)) if s.size != (w, h) else s)
            for _ in range(1 + (extra if i == len(shots) - 1 else 0)):
                writer.append_data(frame)
