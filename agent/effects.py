"""The effect of an action on the screen, and loops: the same action again and again on a
screen that does not change.

After each executed action the loop observes the screen and measures how much of it changed
(``screen_change``: the fraction of pixels; a device may report it cheaper itself, as the
desktop does from its raw frames). ``RepeatGuard`` turns those measures into notes for the model
("the screen did not change", "you repeated the same action N times") and, after
``Budgets.max_repeats`` identical actions in a row with no change, into a reason to stop:
"stuck". Waiting is exempt: a model may wait on a screen that takes time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

UNCHANGED_NOTE = "The screen did not change after this action."


def screen_change(before: Image.Image, after: Image.Image) -> float:
    """The fraction of pixels that differ between two screenshots (1.0 if the size differs)."""
    if before.size != after.size or before.mode != after.mode:
        return 1.0
    a, b = before.tobytes(), after.tobytes()
    if a == b:
        return 0.0
    bands = len(before.getbands())
    diff = np.frombuffer(a, dtype=np.uint8) != np.frombuffer(b, dtype=np.uint8)
    return float(np.count_nonzero(diff.reshape(-1, bands).any(axis=1))) / (
        before.size[0] * before.size[1]
    )


class RepeatGuard:
    """Counts identical actions in a row after which the screen did not change."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        """Stop after this many; 0: never."""
        self._last: Any = None
        self.count = 0

    def after(self, action: Any, change: float | None) -> tuple[str, str | None]:
        """Update with an executed action and the change that followed it (None: unknown).

        Returns (a note for the model or "", the reason to stop the run or None).
        """
        if change is None or change > 0 or action.kind == "wait":
            self._last, self.count = None, 0
            return "", None
        if action == self._last:
            self.count += 1
        else:
            self._last, self.count = action, 1
        if self.count == 1:
            return UNCHANGED_NOTE, None
        note = (
            f"You repeated the same action {self.count} times and the screen did not change; "
            "do something else."
        )
        if self.limit and self.count >= self.limit:
            return note, (
                f"stuck: the same {action.kind} action {self.count} times in a row and the "
                "screen did not change"
            )
        return note, None
