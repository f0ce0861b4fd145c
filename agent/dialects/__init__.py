"""Dialects by name: a model family's prompt layout, output forms, grammar and coordinates.

qwen2vl      Qwen-Agent ✿FUNCTION✿/✿ARGS✿ function calling, norm1000 (Qwen2-VL-*-Instruct)
qwen25vl     hermes <tool_call> JSON, cookbook computer_use/mobile_use, resized_px
uitars       Thought/Action python-like calls, norm1000 (UI-TARS v1)
uitars-1.5   the same, resized_px (UI-TARS-1.5; box tokens, or <point>x y</point> on request)
osatlas      thoughts:/actions: verb lines with <point>[[x,y]]</point>, norm1000 (OS-Atlas-Pro)
showui       {'action': ..., 'value': ..., 'position': [x, y]} in 0..1 (ShowUI)

``get_dialect(name, fidelity=...)`` builds one; ``register_dialect(name, factory)`` adds a
family of your own (docs/dialects.md shows one in a file); ``check_dialect`` checks any.
"""

from __future__ import annotations

from collections.abc import Callable

from pixelpilot.agent.dialects.base import Dialect, Fidelity, StepContext, Turn
from pixelpilot.agent.dialects.check import check_dialect
from pixelpilot.agent.dialects.engine import TableDialect
from pixelpilot.agent.dialects.osatlas import OSAtlasDialect
from pixelpilot.agent.dialects.qwen2vl import Qwen2VLDialect
from pixelpilot.agent.dialects.qwen25vl import Qwen25VLDialect
from pixelpilot.agent.dialects.showui import ShowUIDialect
from pixelpilot.agent.dialects.table import Arg, Verb
from pixelpilot.agent.dialects.uitars import UITars15Dialect, UITarsDialect
from pixelpilot.agent.errors import ConfigError

__all__ = [
    "DIALECTS",
    "Arg",
    "Dialect",
    "Fidelity",
    "OSAtlasDialect",
    "Qwen2VLDialect",
    "Qwen25VLDialect",
    "ShowUIDialect",
    "StepContext",
    "TableDialect",
    "Turn",
    "UITars15Dialect",
    "UITarsDialect",
    "Verb",
    "check_dialect",
    "get_dialect",
    "register_dialect",
]

Factory = Callable[[Fidelity], Dialect]
_REGISTRY: dict[str, Factory] = {
    "qwen2vl": Qwen2VLDialect,
    "qwen25vl": Qwen25VLDialect,
    "uitars": UITarsDialect,
    "uitars-1.5": UITars15Dialect,
    "osatlas": OSAtlasDialect,
    "showui": ShowUIDialect,
}
DIALECTS: tuple[str, ...] = tuple(_REGISTRY)
"""The built-in dialect names (``registered()`` adds the user's)."""


def register_dialect(name: str, factory: Factory) -> None:
    """Make ``get_dialect(name)`` build ``factory(fidelity)`` (a Dialect subclass will do).
    ConfigError if the name is taken by a built-in dialect."""
    key = name.strip().lower()
    if key in DIALECTS:
        raise ConfigError(f"{name!r} is a built-in dialect; register yours under another name")
    _REGISTRY[key] = factory


def registered() -> tuple[str, ...]:
    """Every dialect name get_dialect knows: the built-in ones, then the registered ones."""
    return tuple(_REGISTRY)


def get_dialect(name: str, fidelity: Fidelity | None = None) -> Dialect:
    """A new dialect instance by name, with ``fidelity`` (default: the project additions on;
    ``Fidelity.official()``: the family's official format only); ConfigError listing the
    valid names otherwise."""
    factory = _REGISTRY.get(name.strip().lower())
    if factory is None:
        raise ConfigError(f"unknown dialect {name!r}; valid dialects: {', '.join(_REGISTRY)}")
    return factory(fidelity or Fidelity())
