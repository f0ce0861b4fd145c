"""Loading a Qwen2-VL-family checkpoint the standard way, from local files only: a directory,
or a hub id already in this machine's hub cache. Nothing is downloaded; what is missing is one
ConfigError line that says what to download."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pixelpilot.agent.errors import ConfigError

ARCHITECTURES = ("qwen2_vl", "qwen2_5_vl")
"""The ``model_type`` values this backend runs."""
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
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the CLI prints one line per step; no bars in between
    path = Path(ref).expanduser()
    is_dir = path.is_dir()
    if not is_dir and (ref.startswith((".", "/", "~")) or path.suffix or ref.count("/") > 1):
        raise ConfigError(f"model directory {ref!r} not found")
    if is_dir and not (path / "config.json").is_file():
        raise ConfigError(f"{ref}: no config.json; not a transformers checkpoint directory")
    where = str(path) if is_dir else ref
    try:
        config = AutoConfig.from_pretrained(where, local_files_only=True)
        if config.model_type not in ARCHITECTURES:
            raise ConfigError(
                f"{ref}: architecture {config.model_type!r} is not a Qwen2-VL family model "
                f"({', '.join(ARCHITECTURES)})"
            )
        processor = AutoProcessor.from_pretrained(where, local_files_only=True)
        model = AutoModelForImageTextToText.from_pretrained(
            where, local_files_only=True, dtype=dtype, attn_implementation=attn
        )
    except OSError as exc:
        if is_dir:
            raise ConfigError(f"{ref}: incomplete checkpoint ({_first_line(exc)})") from None
        raise ConfigError(
            f"no local weights for {ref!r}: download them with `hf download {ref} --local-dir DIR` "
            "on a machine with network access, then pass that directory as the model"
        ) from None
    return processor, model.to(device).eval()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
