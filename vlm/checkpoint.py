"""Loading a Qwen2-VL-family checkpoint the standard way, from local files only: a directory,
or a hub id already in this machine's hub cache. Nothing is downloaded; what is missing is one
ConfigError line that says what to download."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pixelpilot.agent.errors import ConfigError
from pixelpilot.agent.geometry import PixelBudget

ARCHITECTURES = ("qwen2_vl", "qwen2_5_vl")
"""The ``model_type`` values this backend runs."""
TRAIN_RECORD = "pixelpilot-train.json"
"""What ``pixelpilot train`` writes beside a checkpoint it made (how, on what, with what result)."""

_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32"}


def torch_dtype(dtype: str | None, device: Any) -> Any:
    import torch

    if dtype is None or dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    value = getattr(torch, _DTYPES.get(dtype, dtype), None)
    if not isinstance(value, torch.dtype) or not value.is_floating_point:
        raise ConfigError(f"unknown dtype {dtype!r}; use bfloat16, float16 or float32")
    return value


def load_checkpoint(ref: str, device: Any, dtype: Any, attn: str) -> tuple[Any, Any]:
    """Processor and model from a checkpoint directory or a hub id already in the local cache."""
    from transformers import AutoModelForImageTextToText

    processor = load_processor(ref)
    try:
        model = AutoModelForImageTextToText.from_pretrained(
            _where(ref), local_files_only=True, dtype=dtype, attn_implementation=attn
        )
    except OSError as exc:
        raise _missing(ref, exc) from None
    return processor, model.to(device).eval()


def load_processor(ref: str) -> Any:
    """The processor of a Qwen2-VL-family checkpoint (its architecture checked first), without
    the weights: ConfigError for anything else."""
    from transformers import AutoConfig, AutoProcessor
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the CLI prints one line per step; no bars in between
    where = _where(ref)
    try:
        config = AutoConfig.from_pretrained(where, local_files_only=True)
        if config.model_type not in ARCHITECTURES:
            raise ConfigError(
                f"{ref}: architecture {config.model_type!r} is not a Qwen2-VL family model "
                f"({', '.join(ARCHITECTURES)})"
            )
        return AutoProcessor.from_pretrained(where, local_files_only=True)
    except OSError as exc:
        raise _missing(ref, exc) from None


def saved_pixels(ref: str, *, sizes: bool = False) -> PixelBudget | None:
    """The pixel budget a checkpoint directory's processor files name: ``min_pixels`` and
    ``max_pixels`` (preprocessor_config.json as the hub's and ``pixelpilot train``'s outputs
    write it, or the ``image_processor`` of a transformers 5 processor_config.json), else None.
    ``sizes``: also a processor's ``size`` (shortest/longest edge), which a processor saved with
    its defaults holds too (1280*28*28, not a budget anyone chose for a screenshot)."""
    root = Path(ref.partition("#")[0]).expanduser()
    for name in ("preprocessor_config.json", "processor_config.json"):
        try:
            data = json.loads((root / name).read_text(encoding="utf-8"))
            data = data.get("image_processor", data)
            lo, hi = data.get("min_pixels"), data.get("max_pixels")
            if sizes:
                size = data.get("size") or {}
                lo, hi = lo or size.get("shortest_edge"), hi or size.get("longest_edge")
            if lo and hi and 0 < int(lo) <= int(hi):
                return PixelBudget(int(lo), int(hi))
        except (OSError, ValueError, TypeError, AttributeError):
            continue
    return None


def _where(ref: str) -> str:
    """A checked directory path, or the hub id as given."""
    path = Path(ref).expanduser()
    is_dir = path.is_dir()
    if not is_dir and (ref.startswith((".", "/", "~")) or path.suffix or ref.count("/") > 1):
        raise ConfigError(f"model directory {ref!r} not found")
    if is_dir and not (path / "config.json").is_file():
        raise ConfigError(f"{ref}: no config.json; not a transformers checkpoint directory")
    return str(path) if is_dir else ref


def _missing(ref: str, exc: OSError) -> ConfigError:
    if Path(ref).expanduser().is_dir():
        return ConfigError(f"{ref}: incomplete checkpoint ({_first_line(exc)})")
    return ConfigError(
        f"no local weights for {ref!r}: download them with `hf download {ref} --local-dir DIR` "
        "on a machine with network access, then pass that directory as the model"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
