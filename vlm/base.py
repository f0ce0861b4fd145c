"""The VisionModel boundary: a prompt with a screenshot in, raw text out.

A backend implements ``_generate``; ``generate`` times it and maps backend failures to
``ModelError``. Parsing is not the model's job: dialects turn the raw text into actions.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from pixelpilot.agent.errors import ModelError, PixelPilotError
from pixelpilot.agent.geometry import HUB_PIXELS, PixelBudget

Role = Literal["system", "user", "assistant"]

MAX_NEW_TOKENS = 2048
"""A backend's default token budget for one answer. Every dialect's grammar admits only answers
that fit it (the worst case, every string at its bound written one byte a token: a 512-token
thought plus the longest call); decoding pays only for the tokens produced."""


@dataclass
class Message:
    """A chat message. ``content`` parts are ``{"type": "text", "text": ...}`` or
    ``{"type": "image", "image": PIL.Image}`` (the HF processor's chat format)."""

    role: Role
    content: list[dict[str, Any]]

    @property
    def text(self) -> str:
        return "".join(p["text"] for p in self.content if p["type"] == "text")


@dataclass(frozen=True)
class Sampling:
    """A model family's decoding settings, as its authors publish them; None = the backend's
    default. Backends use them as defaults: an explicit backend option wins."""

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    repetition_penalty: float | None = None
    max_new_tokens: int | None = None
    frequency_penalty: float | None = None
    """OpenAI's: each generated token's logit is lowered by this times the number of times it
    was generated before in the answer (UI-TARS v1's authors decode with 1)."""


@dataclass(frozen=True)
class JsonForm:
    """A dialect's call as one JSON object, for servers that constrain output by a JSON schema
    (vLLM/SGLang ``response_format``). ``to_text(name, arguments)`` writes it back as the
    dialect's own text, copying both verbatim: the dialect's parser stays the validator."""

    schema: dict[str, Any]
    to_text: Callable[[str, Any], str]

    def rewrite(self, answer: str) -> str:
        """``answer`` written in the dialect's text when it is a ``{"name", "arguments"}``
        object; anything else unchanged."""
        try:
            obj = json.loads(answer)
        except (ValueError, RecursionError):
            return answer
        if (
            isinstance(obj, dict)
            and set(obj) == {"name", "arguments"}
            and isinstance(obj["name"], str)
        ):
            return self.to_text(obj["name"], obj["arguments"])
        return answer


@dataclass
class Prompt:
    """Everything one model call needs; a backend reads only this.

    ``messages``: system message first (if any). ``grammar``: Lark for llguidance that
    constrains decoding where the backend supports it. ``json_form``: the call as JSON, for
    servers constrained by a JSON schema. ``sampling``: the family's decoding settings.
    ``continue_final``: the last message is an assistant turn the model continues (rendered
    without its end token and without a new generation prompt). ``stop``: strings that end the
    answer (cut off, not part of it). ``meta``: for records only (the dialect's name).
    """

    messages: list[Message]
    grammar: str | None = None
    json_form: JsonForm | None = None
    sampling: Sampling = Sampling()
    continue_final: bool = False
    stop: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)
    """What the prompt was built for ({"dialect": name, "ctx": StepContext}): for records and
    test-only oracle backends; a real backend never reads it."""

    @property
    def images(self) -> list[Any]:
        return [p["image"] for m in self.messages for p in m.content if p["type"] == "image"]


def merge_final(messages: list[Message]) -> list[Message]:
    """``messages`` with a final assistant message appended to the user message before it,
    after a ``\n\n`` text part: how Qwen-Agent asks a server that cannot continue an
    assistant turn (``simulate_response_completion_with_chat`` in
    qwen_agent/llm/function_calling.py). Other message lists are returned unchanged."""
    if len(messages) < 2 or messages[-1].role != "assistant" or messages[-2].role != "user":
        return list(messages)
    user, bot = messages[-2], messages[-1]
    merged = Message("user", [*user.content, {"type": "text", "text": "\n\n"}, *bot.content])
    return [*messages[:-2], merged]


class Generation(BaseModel):
    """Raw model text with what the backend measured about producing it."""

    text: str
    seconds: float = 0.0
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    visual_tokens: int | None = None
    resized: tuple[int, int] | None = None
    timings: dict[str, float] = {}


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
        return out.model_copy(update={"seconds": time.perf_counter() - t0})

    @abstractmethod
    def _generate(self, prompt: Prompt) -> Generation | str: ...

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release the backend's resources (weights, connections)."""
