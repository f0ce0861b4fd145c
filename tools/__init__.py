"""Devices: where actions are executed. Backends are imported lazily (X11, adb, pybullet)."""

from __future__ import annotations

import importlib
from typing import Any

from pixelpilot.tools.base import Device, Executed, Observation

__all__ = [
    "AndroidDevice",
    "DesktopDevice",
    "Device",
    "DryRunDesktop",
    "DryRunPhone",
    "Executed",
    "Observation",
    "RobotDevice",
    "VirtualDisplay",
]
_LAZY = {
    "AndroidDevice": "pixelpilot.tools.android",
    "DesktopDevice": "pixelpilot.tools.desktop",
    "DryRunDesktop": "pixelpilot.tools.dryrun",
    "DryRunPhone": "pixelpilot.tools.dryrun",
    "RobotDevice": "pixelpilot.tools.robot",
    "VirtualDisplay": "pixelpilot.tools.xvfb",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pixelpilot.tools' has no attribute {name!r}")
