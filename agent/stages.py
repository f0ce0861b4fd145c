"""The stages of one step that judge: the model's answer read as an action (total in the text),
the policy's verdict on it, and after it ran, its effect on the screen.

The loop (``loop.py``) sequences the stages and handles the ends of a run; these functions hold
what each stage decides, so each can be read and tested on its own:

- ``read_answer``: text -> (action in model space, action in screen pixels), or ModelRetry with
  the reason. An answer over the length limit is refused unread; an exception a parser should
  not raise (RecursionError, ValidationError, ...) is pixelpilot's bug, not the model's: it is
  recorded on the attempt (``Attempt.internal``) and becomes a retry. An answer holding a lone
  surrogate is not text: a retry with that reason (records show it as U+FFFD). The parse time
  is recorded for every answer read, accepted or not.
- ``police``: a ``Policy`` (rules) or a plain function judges the action; a policy that fails
  denies, never allows.
- ``effect``: how much the screen changed after the action, a note for the model when it did
  not, and "stuck" when the same action keeps changing nothing (``effects.RepeatGuard``).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from pixelpilot.agent.actions import Action
from pixelpilot.agent.dialects.base import Dialect, StepContext, Turn
from pixelpilot.agent.effects import RepeatGuard, screen_change
from pixelpilot.agent.errors import (
    ActionDenied,
    DeviceError,
    HumanControl,
    ModelRetry,
    ParseError,
)
from pixelpilot.agent.geometry import to_device
from pixelpilot.agent.policy import ConfirmHook, Policy
from pixelpilot.agent.trajectory import Attempt, StepRecord
from pixelpilot.tools.base import Device, Observation

PolicyHook = Callable[[Action], None]
"""Called with every parsed action before it runs; raise ActionDenied to refuse it."""


def read_answer(
    raw: str, dialect: Dialect, ctx: StepContext, limit: int, attempt: Attempt
) -> tuple[Action, Action]:
    """The answer as (action in model space, the same in screen pixels); ModelRetry when it
    cannot run. Never raises anything else: see the module's docstring."""
    if len(raw) > limit:
        raise ParseError(
            f"the answer is {len(raw):,} characters long; answer with one call of at most "
            f"{limit:,} characters"
        )
    t0 = time.perf_counter()
    try:
        if not raw.isascii():
            _check_unicode(raw)
        action = dialect.parse(raw, ctx)
        return action, to_device(action, ctx.geometry, ctx.resized)
    except ModelRetry:
        raise
    except Exception as exc:  # noqa: BLE001 - a parser bug must not end the run
        attempt.internal = internal(exc)
        raise ParseError(
            f"the answer could not be read ({type(exc).__name__}); answer again with "
            "exactly one call in the format shown"
        ) from None
    finally:
        attempt.parse_s = time.perf_counter() - t0


def _check_unicode(raw: str) -> None:
    """ParseError when ``raw`` holds a lone surrogate: half of a UTF-16 pair, which a server's
    JSON can carry (``"\\ud800"``) but which is not text (it cannot be typed or written)."""
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ParseError(
            f"the answer holds a lone surrogate (U+{ord(raw[exc.start]):04X}, half of a UTF-16 "
            "pair), which is not text; answer again with the characters themselves"
        ) from None


def police(
    policy: Policy | PolicyHook | None,
    action: Action,
    device_action: Action,
    device: Device,
    confirm: ConfirmHook | None,
    attempt: Attempt,
) -> None:
    """Returns when the policy lets the action run; ActionDenied (a retry) otherwise."""
    if policy is None:
        return
    try:
        if isinstance(policy, Policy):
            policy.enforce(action, device_action, device, confirm)
        else:
            policy(action)
    except (ModelRetry, DeviceError, HumanControl):
        raise
    except Exception as exc:  # noqa: BLE001 - a broken policy denies, never allows
        attempt.internal = internal(exc)
        raise ActionDenied(f"the policy could not judge this action ({exc})") from None


def effect(
    step: StepRecord,
    before: Observation,
    after: Observation,
    history: list[Turn],
    repeats: RepeatGuard,
) -> str | None:
    """Record on ``step`` how much the screen changed after its action; add a note for the
    model (on the last turn) when it did not. Returns why the run is stuck, or None."""
    extra = after.extra
    change = extra["change"] if "change" in extra else screen_change(before.image, after.image)
    step.screen_change = change
    step.screen_changed = None if change is None else change > 0
    note, stuck = repeats.after(step.action, change)
    if note:
        history[-1] = add_note(history[-1], note)
    return stuck


def add_note(turn: Turn, more: str) -> Turn:
    """``turn`` with ``more`` appended to what the model is told about it."""
    return replace(turn, note=f"{turn.note} {more}" if turn.note else more)


_ROOT = str(Path(__file__).resolve().parent.parent)
"""The directory that holds agent/, vlm/, tools/: frames under it are pixelpilot's own."""


def internal(exc: BaseException) -> str:
    """An unexpected exception in one line: its type, where it was raised (the innermost frame
    of pixelpilot's own code, then the innermost frame), and its message."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if str(Path(f.filename).resolve()).startswith(_ROOT)]
    where = [f"{Path(f.filename).name}:{f.lineno}" for f in (ours[-1:] + frames[-1:])]
    at = f" at {' -> '.join(dict.fromkeys(where))}" if where else ""
    message = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}{at}: {message}"
