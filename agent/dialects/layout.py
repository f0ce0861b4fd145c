"""Message helpers shared by the families' layouts: content parts, the retry feedback text,
screenshot windows, and the plain chat layout the families not yet ported to their official
layout still use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PIL import Image

from pixelpilot.agent.dialects.base import Fidelity, Turn
from pixelpilot.vlm.base import Message

__all__ = ["chat_layout", "feedback_text", "image", "screenshots", "text"]


def text(s: str) -> dict[str, Any]:
    """A text content part."""
    return {"type": "text", "text": s}


def image(im: Image.Image) -> dict[str, Any]:
    """An image content part."""
    return {"type": "image", "image": im}


def feedback_text(feedback: str) -> str:
    """The retry feedback, a project addition: why the last answer was rejected."""
    return f"Your last answer was rejected: {feedback}\nAnswer again with exactly one valid call."


def screenshots(
    history: Sequence[Turn], current: Image.Image, keep: int | None = None
) -> list[Image.Image | None]:
    """The screenshot of every earlier turn and then the current one; all but the last
    ``keep`` replaced by None (``keep=None``: all kept)."""
    shots: list[Image.Image | None] = [t.image for t in history] + [current]
    if keep is not None:
        cut = max(len(shots) - keep, 0)
        none: list[Image.Image | None] = [None] * cut
        shots = none + shots[cut:]
    return shots


def chat_layout(
    system: str,
    task: str,
    history: Sequence[Turn],
    current: Image.Image,
    fidelity: Fidelity,
    feedback: str | None = None,
    turns: int = 5,
) -> list[Message]:
    """System; the task; each of the last ``turns`` answers as an assistant message (its note
    as a user message, where ``fidelity.notes``); the current screenshot (after the feedback,
    where ``fidelity.feedback``)."""
    msgs = [Message("system", [text(system)]), Message("user", [text(task)])]
    for turn in history[-turns:] if turns else []:
        msgs.append(Message("assistant", [text(turn.raw)]))
        if turn.note and fidelity.notes:
            msgs.append(Message("user", [text(turn.note)]))
    parts: list[dict[str, Any]] = []
    if feedback and fidelity.feedback:
        parts.append(text(feedback_text(feedback) + "\n"))
    parts.append(image(current))
    msgs.append(Message("user", parts))
    return msgs
