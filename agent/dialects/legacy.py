"""The base of the families not yet ported to the table engine (uitars, osatlas, showui):
their own system prompt and parser, the plain chat layout (``layout.chat_layout``).

Transitional: each family moves onto ``engine.TableDialect`` with its official layout.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

from PIL import Image

from pixelpilot.agent.dialects.base import Dialect, StepContext, Turn
from pixelpilot.agent.dialects.layout import chat_layout
from pixelpilot.vlm.base import Prompt

__all__ = ["LegacyDialect"]


class LegacyDialect(Dialect):
    """System prompt + task + the last answers + the current screenshot."""

    def __init__(self, fidelity: Any = None) -> None:
        super().__init__(fidelity)
        self._grammars: dict[tuple[Any, ...], str] = {}

    @abstractmethod
    def system_prompt(self, ctx: StepContext) -> str:
        """System message: role, tool schema, output format."""

    def task_text(self, task: str) -> str:
        return f"Task: {task}"

    def build_prompt(
        self,
        task: str,
        history: Sequence[Turn],
        image: Image.Image,
        ctx: StepContext,
        feedback: str | None = None,
    ) -> Prompt:
        msgs = chat_layout(
            self.system_prompt(ctx), self.task_text(task), history, image, self.fidelity, feedback
        )
        return Prompt(
            messages=msgs,
            grammar=self.grammar(ctx),
            json_form=self.json_form(ctx),
            sampling=self.sampling,
            meta={"dialect": self.name, "ctx": ctx},
        )

    def cached(self, key: tuple[Any, ...], build: Any) -> str:
        """The grammar for ``key``, built once per dialect instance."""
        hit = self._grammars.get(key)
        if hit is None:
            hit = self._grammars[key] = build()
        return hit
