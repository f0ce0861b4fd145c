"""Model references -> VisionModel instances: the one place the CLI and scenarios resolve them.

``scripted:FILE`` reads a YAML list of raw outputs (any dialect) and replays them in order.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from pixelpilot.agent.errors import ConfigError
from pixelpilot.vlm.base import VisionModel
from pixelpilot.vlm.scripted import ScriptedModel

MODEL_HELP = "scripted:FILE (a YAML list of raw model outputs)"


def load_model(ref: str) -> VisionModel:
    """Resolve a model reference; raises ConfigError with what to write instead."""
    kind, _, arg = ref.partition(":")
    if kind == "scripted":
        return _scripted(arg)
    raise ConfigError(f"unknown model {ref!r}; available: {MODEL_HELP}")


def _scripted(path: str) -> ScriptedModel:
    file = Path(path)
    if not path or not file.is_file():
        raise ConfigError(f"scripted model file {path!r} not found; write scripted:FILE")
    try:
        outputs = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({_yaml_where(exc)})") from None
    if not isinstance(outputs, list) or not all(isinstance(o, str) for o in outputs):
        raise ConfigError(f"{path}: must be a YAML list of strings (raw model outputs)")
    return ScriptedModel(outputs, name=f"scripted:{file.name}")


def _yaml_where(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or "syntax error"
    return f"line {mark.line + 1}: {problem}" if mark is not None else problem
