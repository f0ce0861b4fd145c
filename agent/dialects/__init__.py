"""Dialects by name: a model family's prompt format, output grammar, parser and coordinates.

qwen2vl      Qwen-Agent ✿FUNCTION✿/✿ARGS✿ text, norm1000 (Qwen2-VL-*-Instruct)
qwen25vl     hermes <tool_call> JSON, cookbook computer_use/mobile_use, resized_px
uitars       Thought/Action python-like calls, norm1000 (UI-TARS v1)
uitars-1.5   the same with <point>x y</point>, resized_px (UI-TARS-1.5)
osatlas      thoughts:/actions: verb lines with <point>[[x,y]]</point>, norm1000 (OS-Atlas-Pro)
showui       {'action': ..., 'value': ..., 'position': [x, y]} in 0..1 (ShowUI)
"""

from __future__ import annotations

from collections.abc import Callable

from pixelpilot.agent.dialects.base import Dialect, StepContext, Turn
from pixelpilot.agent.dialects.osatlas import OSAtlasDialect
from pixelpilot.agent.dialects.qwen2vl import Qwen2VLDialect
from pixelpilot.agent.dialects.qwen25vl import Qwen25VLDialect
from pixelpilot.agent.dialects.showui import ShowUIDialect
from pixelpilot.agent.dialects.uitars import UITars15Dialect, UITarsDialect
from pixelpilot.agent.errors import ConfigError

__all__ = [
    "DIALECTS",
    "Dialect",
    "OSAtlasDialect",
    "Qwen2VLDialect",
    "Qwen25VLDialect",
    "ShowUIDialect",
    "StepContext",
    "Turn",
    "UITars15Dialect",
    "UITarsDialect",
    "get_dialect",
]

_REGISTRY: dict[str, Callable[[], Dialect]] = {
    "qwen2vl": Qwen2VLDialect,
    "qwen25vl": Qwen25VLDialect,
    "uitars": UITarsDialect,
    "uitars-1.5": UITars15Dialect,
    "osatlas": OSAtlasDialect,
    "showui": ShowUIDialect,
}
DIALECTS: tuple[str, ...] = tuple(_REGISTRY)
"""Registered dialect names."""


def get_dialect(name: str) -> Dialect:
    """A new dialect instance by registered name; ConfigError listing the valid names otherwise."""
    factory = _REGISTRY.get(name.strip().lower())
    if factory is None:
        raise ConfigError(f"unknown dialect {name!r}; valid dialects: {', '.join(DIALECTS)}")
    return factory()
