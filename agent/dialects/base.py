"""The Dialect interface: a model family's prompt format, output format and coordinate space.

A dialect builds the prompt (tool schema in the system message, the task, a short history, the
screenshot), parses raw model text into one Action (tolerating code fences, whitespace and prose
around the call; rejecting anything else with a one-line ParseError written for the model) and
writes an Action back as that family's text (``format``: for scripted outputs, exports and
round-trip tests). It never evaluates model text.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from PIL import Image

from pixelpilot.agent.actions import Space
from pixelpilot.agent.geometry import ScreenGeometry
from pixelpilot.vlm.base import Message, Prompt

HISTORY_TURNS = 5
"""How many earlier steps a prompt repeats (as text; only the current screenshot is sent)."""


@dataclass(frozen=True)
class StepContext:
    """What a dialect needs to know about the step beyond the text.

    ``kinds``: action kinds the device supports. ``resized``: (w, h) of the image the model
    sees. ``device_kind``: 'desktop' | 'mobile' | 'robot'. ``secrets``: NAMES of the secrets
    the model may write as ``<secret>NAME</secret>`` in typed text (never their values).
    """

    device_kind: str
    kinds: frozenset[str]
    geometry: ScreenGeometry
    resized: tuple[int, int]
    secrets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Turn:
    """One earlier step as the model saw and answered it; the dialect's layout decides which
    parts a prompt shows, and how.

    ``raw``: the accepted answer as the model wrote it. ``action``: that answer parsed (model
    space; None where only the text is known). ``image``: the screenshot the model answered
    (None where it was not kept). ``note``: what pixelpilot tells the model about the outcome
    beyond the family's own format ("" for nothing): a device's note ("grasped nothing"), the
    user's answer, a warning that the screen did not change.
    """

    raw: str
    action: Any = None
    image: Image.Image | None = None
    note: str = ""


class Dialect(ABC):
    name: ClassVar[str]
    space: ClassVar[Space]
    """The coordinate space the family's points are in."""

    @abstractmethod
    def system_prompt(self, ctx: StepContext) -> str:
        """System message: role, tool schema, output format."""

    @abstractmethod
    def parse(self, raw: str, ctx: StepContext) -> Any:
        """Raw model text -> one Action (points in ``self.space``). Raises ParseError."""

    @abstractmethod
    def format(self, action: Any, ctx: StepContext) -> str:
        """An Action (points in ``self.space``) written as this family's model would write it."""

    def grammar(self, ctx: StepContext) -> str | None:
        """A Lark grammar (for llguidance) that admits only answers ``parse`` accepts for this
        step, or None when the family has none. Cached: cheap to call every step."""
        return None

    def build_prompt(
        self,
        task: str,
        history: Sequence[Turn],
        image: Image.Image,
        ctx: StepContext,
        feedback: str | None = None,
    ) -> Prompt:
        """System + task + the last HISTORY_TURNS turns + the current screenshot.

        ``feedback`` is the reason the previous answer in this step was rejected; it is put in
        front of the screenshot so the model can correct itself.
        """
        msgs = [Message("system", [{"type": "text", "text": self.system_prompt(ctx)}])]
        msgs.append(Message("user", [{"type": "text", "text": self.task_text(task)}]))
        for turn in history[-HISTORY_TURNS:]:
            msgs.append(Message("assistant", [{"type": "text", "text": turn.raw}]))
            msgs.append(Message("user", [{"type": "text", "text": turn.note or "Done."}]))
        parts: list[dict[str, Any]] = []
        if feedback:
            parts.append(
                {
                    "type": "text",
                    "text": f"Your last answer was rejected: {feedback}\n"
                    "Answer again with exactly one valid call.\n",
                }
            )
        parts.append({"type": "image", "image": image})
        msgs.append(Message("user", parts))
        return Prompt(
            messages=msgs, grammar=self.grammar(ctx), meta={"dialect": self.name, "ctx": ctx}
        )

    def task_text(self, task: str) -> str:
        return f"Task: {task}"
