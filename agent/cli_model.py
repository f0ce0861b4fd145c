"""``pixelpilot model ...``: list the registry, build a tiny local checkpoint, describe one.

``init-tiny DIR`` writes a random-weight Qwen2-VL checkpoint that loads with ``from_pretrained``
(no network). ``info DIR|HUB_ID`` reads only JSON files and the safetensors headers, so it is
instant even for a 72B checkpoint, and says which pixel budget pixelpilot will use.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from pixelpilot.agent.errors import ConfigError
from pixelpilot.agent.geometry import HUB_PIXELS, PixelBudget

model_app = typer.Typer(no_args_is_help=True, help="Build and inspect model checkpoints.")
_out = Console(highlight=False, soft_wrap=True)


@model_app.command("init-tiny")
def init_tiny(
    directory: Annotated[Path, typer.Argument(help="Where to write the checkpoint.")],
    vocab: Annotated[
        str, typer.Option(help="small (a 1k BPE trained here) or qwen (the real 151,643 ranks)")
    ] = "small",
    seed: Annotated[int, typer.Option(help="Seed of the random weights.")] = 0,
) -> None:
    """Build a tiny Qwen2-VL checkpoint with random weights (no network)."""
    from pixelpilot.vlm.tiny import build_tiny

    if vocab not in ("small", "qwen"):
        raise ConfigError(f"--vocab must be small or qwen, got {vocab!r}")
    if directory.exists() and any(directory.iterdir()):
        raise ConfigError(f"{directory} exists and is not empty; pick a new directory")
    path = build_tiny(directory, vocab=vocab, seed=seed)  # type: ignore[arg-type]
    _out.print(f"tiny Qwen2-VL checkpoint ({vocab} vocabulary, random weights) written to {path}")


@model_app.command("list")
def list_models() -> None:
    """The registry's short names: hub checkpoint, dialect, pixel budget, whether it is here."""
    from rich.table import Table

    from pixelpilot.vlm.registry import CARDS, is_cached

    table = Table("name", "checkpoint", "dialect", "pixels (min..max)", "on this machine", box=None)
    for card in CARDS.values():
        here = "yes" if is_cached(card) else f"no ({card.gigabytes:g} GB)"
        pixels = f"{card.pixels.min_pixels}..{card.pixels.max_pixels}"
        table.add_row(card.name, card.hub_id, card.dialect, pixels, here)
    from pixelpilot.vlm.registry import DEMO_DIR

    shipped = "trained, in the package" if (DEMO_DIR / "config.json").is_file() else "missing"
    table.add_row("demo", "the built-in demo model", "qwen2vl", "hub default", shipped)
    table.add_row("tiny", "built here on first use", "qwen2vl", "hub default", "random weights")
    Console(highlight=False, width=max(_out.width, 120)).print(table)


@model_app.command("info")
def info(
    ref: Annotated[str, typer.Argument(help="A checkpoint directory or a hub id on disk.")],
) -> None:
    """Architecture, size and pixel budget of a checkpoint (reads no weights)."""
    for key, value in describe(ref).items():
        _out.print(f"{key:<16} {value}")


def describe(ref: str) -> dict[str, Any]:
    """What ``info`` prints, as a dict (tests call this)."""
    path = checkpoint_dir(ref)
    config = _json(path / "config.json")
    text = config.get("text_config") or config
    vision = config.get("vision_config") or {}
    params = _parameter_count(path)
    budget = checkpoint_pixels(path)
    return {
        "path": str(path),
        "architecture": config.get("model_type", "?"),
        "parameters": f"{params / 1e9:.2f}B" if params >= 1e8 else f"{params:,}",
        "text": (
            f"hidden {text.get('hidden_size')}, {text.get('num_hidden_layers')} layers, "
            f"{text.get('num_attention_heads')} heads ({text.get('num_key_value_heads')} KV), "
            f"vocab {text.get('vocab_size')}"
        ),
        "vision": (
            f"depth {vision.get('depth')}, embed {vision.get('embed_dim')}, "
            f"patch {vision.get('patch_size')}, merge {vision.get('spatial_merge_size')}"
        ),
        "ids": (
            f"image {config.get('image_token_id')}, video {config.get('video_token_id')}, "
            f"vision_start {config.get('vision_start_token_id')}"
        ),
        "pixels": f"{budget.min_pixels}..{budget.max_pixels}",
        "1920x1080 ->": "{}x{}".format(*budget.resize(1920, 1080)),
    }


def checkpoint_dir(ref: str) -> Path:
    """A checkpoint directory, or a hub id's snapshot already in the local HF cache (``demo``:
    the built-in demo model's directory)."""
    if ref == "demo":
        from pixelpilot.vlm.registry import local_checkpoint

        ref = local_checkpoint(ref).where
    path = Path(ref).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(f"{ref}: no config.json; not a transformers checkpoint directory")
        return path
    if ref.count("/") == 1 and not ref.startswith((".", "/", "~")):
        from huggingface_hub import snapshot_download

        try:
            return Path(snapshot_download(ref, local_files_only=True))
        except Exception:  # noqa: BLE001 - any miss is the same answer for the user
            raise ConfigError(
                f"{ref!r} is not on this machine: download it with `hf download {ref} "
                "--local-dir DIR`, then pass DIR"
            ) from None
    raise ConfigError(f"model directory {ref!r} not found")


def checkpoint_pixels(path: Path) -> PixelBudget:
    """The pixel budget a checkpoint's processor files declare (hub v4 or v5 format)."""
    from pixelpilot.vlm.checkpoint import saved_pixels

    return saved_pixels(str(path), sizes=True) or HUB_PIXELS


def _parameter_count(path: Path) -> int:
    """Sum of tensor sizes from the safetensors headers (no weights are read)."""
    total = 0
    for file in sorted(path.glob("*.safetensors")):
        with open(file, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        for key, meta in header.items():
            if key != "__metadata__":
                count = 1
                for d in meta["shape"]:
                    count *= d
                total += count
    return total


def _json(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: not a JSON object")
    return data
