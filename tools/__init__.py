"""Devices: where actions are executed. ``DesktopDevice`` is imported lazily (it needs X11)."""

from __future__ import annotations

import importlib
from typing import Any

from pixelpilot.tools.base import Device, Executed, Observation

__all__ = ["DesktopDevice", "Device", "Executed", "Observation", "VirtualDisplay"]
_LAZY = {"DesktopDevice": "pixelpilot.tools.desktop", "VirtualDisplay": "pixelpilot.tools.xvfb"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pixelpilot.tools' has no attribute {name!r}")
