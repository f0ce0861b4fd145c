"""Vision-language model backends behind one interface (``VisionModel``).

``LocalModel`` (transformers, imports torch) and ``OpenAIServerModel`` (httpx) load lazily.
"""

from __future__ import annotations

import importlib
from typing import Any

from pixelpilot.vlm.base import Generation, Message, Prompt, VisionModel
from pixelpilot.vlm.registry import load_model
from pixelpilot.vlm.scripted import ScriptedModel

__all__ = [
    "Generation",
    "LocalModel",
    "Message",
    "OpenAIServerModel",
    "Prompt",
    "ScriptedModel",
    "VisionModel",
    "load_model",
]
_LAZY = {"LocalModel": "pixelpilot.vlm.local", "OpenAIServerModel": "pixelpilot.vlm.openai_server"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pixelpilot.vlm' has no attribute {name!r}")
