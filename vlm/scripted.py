"""A model that answers with pre-written raw texts, in order: the engine of scenario replay.

It goes through the whole loop like a real model (prompt in, raw text out, parsed by the
dialect), so scripted outputs in any dialect are exercised exactly as a model's would be.
"""

from __future__ import annotations

from collections.abc import Iterable

from pixelpilot.agent.errors import ScriptExhausted
from pixelpilot.agent.geometry import PixelBudget
from pixelpilot.vlm.base import Generation, Prompt, VisionModel


class ScriptedModel(VisionModel):
    """Returns ``outputs[0]``, ``outputs[1]``, ... one per call; records every prompt."""

    def __init__(
        self, outputs: Iterable[str], name: str = "scripted", pixels: PixelBudget | None = None
    ) -> None:
        self.outputs = list(outputs)
        self.name = name
        if pixels is not None:  # the budget the scripted (resized_px) points assume
            self.pixels = pixels
        self.prompts: list[Prompt] = []
        self.skipped = 0

    @property
    def remaining(self) -> int:
        return len(self.outputs) - self.skipped - len(self.prompts)

    def skip(self, n: int) -> None:
        """Go on after the first ``n`` outputs (those a resumed run's record already used)."""
        self.skipped += max(0, n)

    def _generate(self, prompt: Prompt) -> Generation:
        i = self.skipped + len(self.prompts)
        if i >= len(self.outputs):
            raise ScriptExhausted(
                f"{self.name}: asked for output {i + 1} but the script holds {len(self.outputs)}; "
                "add outputs or end the script with a finish call"
            )
        self.prompts.append(prompt)
        return Generation(text=self.outputs[i])
