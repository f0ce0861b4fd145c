"""The VisionModel boundary: a prompt with a screenshot in, raw text out.

A backend implements ``_generate``; ``generate`` times it and maps backend failures to
``ModelError``. Parsing is not the model's job: dialects turn the raw text into actions.
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from pixelpilot.agent.errors import ModelError, PixelPilotError
from pixelpilot.agent.geometry import HUB_PIXELS, PixelBudget

Role = Literal["system", "user", "assistant"]


@dataclass
class Message:
    """A chat message. ``content`` parts are ``{"type": "text", "text": ...}`` or
    ``{"type": "image", "image": PIL.Image}`` (the HF processor's chat format)."""

    role: Role
    content: list[dict[str, Any]]

    @property
    def text(self) -> str:
        return "".join(p["text"] for p in self.content if p["type"] == "text")


@dataclass
class Prompt:
    """Messages for one model call, system message first; ``grammar`` (Lark, for llguidance)
    constrains decoding where the backend supports it."""

    messages: list[Message]
    grammar: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def images(self) -> list[Any]:
        return [p["image"] for m in self.messages for p in m.content if p["type"] == "image"]


class Generation(BaseModel):
    """Raw model text with what the backend measured about producing it."""

    text: str
    seconds: float = 0.0
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    visual_tokens: int | None = None
    resized: tuple[int, int] | None = None
    timings: dict[str, float] = {}


_SURROGATE = re.compile("[\ud800-\udfff]")


def unicode_text(text: str) -> str:
    """``text`` with every lone surrogate (a server's JSON can carry ``"\\ud800"``; they are
    not Unicode text, and no UTF-8 writer accepts them) replaced by U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


class VisionModel(ABC):
    """A vision-language model that answers a prompt with raw text."""

    name: str = "model"
    pixels: PixelBudget = HUB_PIXELS

    def resized_size(self, width: int, height: int) -> tuple[int, int]:
        """(w, h) of the image the model really sees for a width x height screenshot."""
        return self.pixels.resize(width, height)

    def generate(self, prompt: Prompt) -> Generation:
        t0 = time.perf_counter()
        try:
            out = self._generate(prompt)
        except PixelPilotError:
            raise
        except Exception as exc:  # noqa: BLE001 - every backend failure becomes ModelError
            raise ModelError(
                f"{self.name}: generation failed: {type(exc).__name__}: {exc}"
            ) from exc
        if isinstance(out, str):
            out = Generation(text=out)
        return out.model_copy(
            update={"text": unicode_text(out.text), "seconds": time.perf_counter() - t0}
        )

    @abstractmethod
    def _generate(self, prompt: Prompt) -> Generation | str: ...

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release the backend's resources (weights, connections)."""
