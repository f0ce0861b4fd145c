"""The agent: actions, coordinates, dialects, the loop and its trajectories.

The names below are imported lazily, so ``import pixelpilot.agent.actions`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Agent": "pixelpilot.agent.loop",
    "Budgets": "pixelpilot.agent.loop",
    "RunResult": "pixelpilot.agent.trajectory",
    "StepRecord": "pixelpilot.agent.trajectory",
    "DirectoryRecorder": "pixelpilot.agent.trajectory",
    "Trajectory": "pixelpilot.agent.trajectory",
    "load_trajectory": "pixelpilot.agent.trajectory",
    "replay": "pixelpilot.agent.replay",
    "Secrets": "pixelpilot.agent.secrets",
    "get_dialect": "pixelpilot.agent.dialects",
    "Policy": "pixelpilot.agent.policy",
    "RunControl": "pixelpilot.agent.control",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'pixelpilot.agent' has no attribute {name!r}")
