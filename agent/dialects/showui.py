"""ShowUI-2B (``showui``): one Python dict per action, positions as fractions of the screenshot.

The prompt is ShowUI's navigation training template, showlab/ShowUI
data/template/shared_navigation.py @ ee949c3c8b4c5cf507c8a23f3db267c23660b4e9 (its first
version; later commits only reworded the smartphone INPUT line, months after the model's
release): ``_NAV_SYSTEM`` with ``app_map``'s app (``website``, ``smartphone``) and
``action_map``'s list, then ``_NAV_FORMAT``. The layout is ``navigation_to_qwen`` there with
data/dset_shared_navigation.py @ dc2fa0fc6405dd59a8ac124ce786c39e7ee976bb (``get_history_qwen``,
``interleaved_history='tttt'``) and TRAIN.md's recipe of the released model
(``--num_history=2``): ONE user message, [system text, ``Task: <task>\\n``, one text part per
earlier step (the last ``NUM_HISTORY``; each the first action dict of the answer as written, as
the training code wrote ``str()`` of the step's answer), the current screenshot].

Desktops get the web map (the screen ShowUI was trained on with a mouse and keyboard), phones the
smartphone map; docs/models.md says why, and lists the additions (``official=False``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from PIL import Image

from pixelpilot.agent.actions import Space
from pixelpilot.agent.dialects._text import clean
from pixelpilot.agent.dialects.base import StepContext, Turn
from pixelpilot.agent.dialects.engine import TableDialect
from pixelpilot.agent.dialects.layout import feedback_text, text
from pixelpilot.agent.dialects.layout import image as picture
from pixelpilot.agent.dialects.syntax_pydict import PyDictSyntax, first_dict, worst_bytes
from pixelpilot.agent.dialects.table import Arg, Verb
from pixelpilot.vlm.base import Message, Prompt, Sampling

__all__ = ["NUM_HISTORY", "ShowUIDialect"]

NAV_SYSTEM = (
    "You are an assistant trained to navigate the {_APP} screen. \n"
    "Given a task instruction, a screen observation, and an action history sequence, \n"
    "output the next action and wait for the next observation. \n"
    "Here is the action space:\n"
    "{_ACTION_SPACE}\n"
)
NAV_FORMAT = (
    "\n"
    "Format the action as a dictionary with the following keys:\n"
    "{'action': 'ACTION_TYPE', 'value': 'element', 'position': [x,y]}\n"
    "\n"
    "If value or position is not applicable, set it as `None`.\n"
    "Position might be [[x1,y1], [x2,y2]] if the action requires a start and end position.\n"
    "Position represents the relative coordinates on the screenshot and should be scaled to a range of 0-1.\n"
)
APPS = {"desktop": "website", "mobile": "smartphone", "robot": "robot camera"}
"""``app_map``: GUIAct web-single/web-multi -> website, smartphone -> smartphone."""
NUM_HISTORY = 2
"""Earlier steps shown (TRAIN.md: ``--num_history=2`` in the released model's recipe)."""

D, M, R = frozenset({"desktop"}), frozenset({"mobile"}), frozenset({"robot"})
ALL = D | M | R
_AT = Arg("position", "point", "point")
_FROM, _TO = Arg("position", "start", "point", item=0), Arg("position", "end", "point", item=1)
_IGNORED_AT = Arg("position", "_at", "point", required=False)
_IGNORED_VALUE = Arg("value", "_value", "text", required=False)
_TEXT = Arg("value", "text", "text")
_ANSWER = Arg("value", "answer", "text", required=False)
_DONE = "task complete"
"""The smartphone map's status value (ANSWER): the task is done, with no answer."""


def _without(*names: str) -> Any:
    """A ``to_fields`` hook dropping values the action does not carry (read, then ignored)."""
    return lambda fields: {k: v for k, v in fields.items() if k not in names}


def _never(action: Any) -> None:
    """A ``from_fields`` hook for a verb that is read but never written (another verb is)."""
    return None


def _status(fields: dict[str, Any]) -> dict[str, Any]:
    if fields.get("answer", "").strip().lower() == _DONE:
        return {**fields, "answer": ""}
    return fields


def _answer(action: Any) -> dict[str, Any] | None:
    return None if action.status != "success" else {"answer": action.answer or _DONE}


_L = "value is not applicable and the position [x,y] is required."
VERBS: tuple[Verb, ...] = (
    # the website map (GUIAct web-single and web-multi: the same list)
    Verb("CLICK", "click", (_AT,), line=f"`CLICK`: Click on an element, {_L} ", devices=D),
    Verb(
        "INPUT",
        "type",
        (_TEXT, _IGNORED_AT),
        devices=D,
        to_fields=_without("_at"),
        line="`INPUT`: Type a string into an element, value is a string to type and the position [x,y] is required. ",
    ),
    Verb(
        "SELECT",
        "click",
        (_IGNORED_VALUE, _AT),
        devices=D,
        to_fields=_without("_value"),
        from_fields=_never,
        line=f"`SELECT`: Select a value for an element, {_L} ",
    ),
    Verb("HOVER", "move", (_AT,), line=f"`HOVER`: Hover on an element, {_L}", devices=D),
    Verb(
        "ANSWER",
        "finish",
        (_ANSWER,),
        devices=D | R,
        to_fields=_status,
        from_fields=_answer,
        line="`ANSWER`: Answer the question, value is the answer and the position is not applicable.",
    ),
    Verb(
        "ENTER",
        "hotkey",
        fixed={"keys": ["enter"]},
        devices=D,
        line="`ENTER`: Enter operation, value and position are not applicable.",
    ),
    Verb(
        "SCROLL",
        "scroll",
        (
            Arg(
                "value",
                "direction",
                "enum",
                choices={d: d for d in ("up", "down", "left", "right")},
            ),
        ),
        devices=D,
        line="`SCROLL`: Scroll the screen, value is the direction to scroll and the position is not applicable.",
    ),
    Verb(
        "SELECT_TEXT",
        "drag",
        (_FROM, _TO),
        devices=D,
        line="`SELECT_TEXT`: Select some text content, value is not applicable and position [[x1,y1], [x2,y2]] is the start and end position of the select operation.",
    ),
    Verb(
        "COPY",
        "hotkey",
        (_IGNORED_VALUE,),
        {"keys": ["ctrl", "c"]},
        devices=D,
        to_fields=_without("_value"),
        from_fields=_never,
        line="`COPY`: Copy the text, value is the text to copy and the position is not applicable.",
    ),
    # the smartphone map
    Verb(
        "INPUT",
        "type",
        (_TEXT, _IGNORED_AT),
        devices=M,
        to_fields=_without("_at"),
        line=f"`INPUT`: Type a string into an element, {_L} ",
    ),
    Verb(
        "SWIPE",
        "swipe",
        (_FROM, _TO),
        devices=M,
        line="`SWIPE`: Swipe the screen, value is not applicable and the position [[x1,y1], [x2,y2]] is the start and end position of the swipe operation.",
    ),
    Verb(
        "TAP",
        "tap",
        (_AT,),
        line="`TAP`: Tap on an element, value is not applicable and the position [x,y] is required.",
        devices=M,
    ),
    Verb(
        "ANSWER",
        "finish",
        (_ANSWER,),
        devices=M,
        to_fields=_status,
        from_fields=_answer,
        line="`ANSWER`: Answer the question, value is the status (e.g., 'task complete') and the position is not applicable.",
    ),
    Verb(
        "ENTER",
        "system_button",
        fixed={"button": "enter"},
        devices=M,
        line="`ENTER`: Enter operation, value and position are not applicable.",
    ),
    # project additions, in the family's wording
    Verb(
        "DOUBLE_CLICK",
        "click",
        (_AT,),
        {"count": 2},
        devices=D,
        official=False,
        line=f"`DOUBLE_CLICK`: Double-click on an element, {_L}",
    ),
    Verb(
        "RIGHT_CLICK",
        "click",
        (_AT,),
        {"button": "right"},
        devices=D,
        official=False,
        line=f"`RIGHT_CLICK`: Right-click on an element, {_L}",
    ),
    Verb(
        "HOTKEY",
        "hotkey",
        (Arg("value", "keys", "keys", sep="+"),),
        devices=D,
        official=False,
        line="`HOTKEY`: Press keys together, value is the keys joined by + (e.g. 'ctrl+c') and the position is not applicable.",
    ),
    Verb(
        "LONG_PRESS",
        "long_press",
        (_AT,),
        devices=M,
        official=False,
        line=f"`LONG_PRESS`: Long press on an element, {_L}",
    ),
    Verb(
        "PRESS BACK",
        "system_button",
        fixed={"button": "back"},
        devices=M,
        official=False,
        line="`PRESS BACK`: Press for returning to the previous step, value and position are not applicable.",
    ),
    Verb(
        "PRESS HOME",
        "system_button",
        fixed={"button": "home"},
        devices=M,
        official=False,
        line="`PRESS HOME`: Press for returning to the home screen, value and position are not applicable.",
    ),
    Verb(
        "OPEN_APP",
        "open_app",
        (Arg("value", "app", "text", strip=True),),
        devices=M,
        official=False,
        line="`OPEN_APP`: Open an app, value is the app name and the position is not applicable.",
    ),
    Verb(
        "PICK",
        "pick",
        (_AT,),
        devices=R,
        official=False,
        line=f"`PICK`: Grasp the object at the position, {_L}",
    ),
    Verb(
        "PLACE",
        "place",
        (_AT,),
        devices=R,
        official=False,
        line=f"`PLACE`: Put the held object down at the position, {_L}",
    ),
    Verb(
        "MOVE_EFFECTOR",
        "move_effector",
        (Arg("value", "height", "number", required=False), _AT),
        devices=R,
        official=False,
        line="`MOVE_EFFECTOR`: Move the gripper above the position, value is the height in metres (or None) and the position [x,y] is required.",
    ),
    Verb(
        "GRIPPER",
        "gripper",
        (Arg("value", "state", "enum", choices={"open": "open", "close": "close"}),),
        devices=R,
        official=False,
        line="`GRIPPER`: Open or close the gripper, value is 'open' or 'close' and the position is not applicable.",
    ),
    Verb(
        "HOME",
        "home",
        devices=R,
        official=False,
        line="`HOME`: Return the arm to its home pose, value and position are not applicable.",
    ),
    Verb(
        "WAIT",
        "wait",
        devices=ALL,
        official=False,
        line="`WAIT`: Wait for the screen to change, value and position are not applicable.",
    ),
    Verb(
        "ASK_USER",
        "ask_user",
        (Arg("value", "question", "text", strip=True),),
        devices=ALL,
        official=False,
        line="`ASK_USER`: Ask the user a question, value is the question and the position is not applicable.",
    ),
)


class ShowUIDialect(TableDialect):
    """ShowUI-2B navigation: ``{'action': ..., 'value': ..., 'position': [x, y]}`` in 0..1."""

    name: ClassVar[str] = "showui"
    space: ClassVar[Space] = "norm1000"
    verbs: ClassVar[tuple[Verb, ...]] = VERBS
    syntax: ClassVar[PyDictSyntax] = PyDictSyntax()
    sampling: ClassVar[Sampling] = Sampling(temperature=0.0, max_new_tokens=worst_bytes(VERBS))
    """The quick start calls generate(max_new_tokens=128) with no sampling arguments (the
    checkpoint's generation config is not published; its Qwen2-VL-2B-Instruct parent's decodes
    with top_k=1): greedy. The budget is the grammar's longest answer (three actions)."""

    def system_text(self, ctx: StepContext) -> str:
        """``_NAV_SYSTEM`` for the device's app and offered actions, then ``_NAV_FORMAT``."""
        lines = [v.line for v in dict.fromkeys(self.offered_verbs(ctx)) if v.line]
        space = "\n" + "".join(f"{i}. {line}\n" for i, line in enumerate(lines, 1))
        app = APPS.get(ctx.device_kind, "website")
        return NAV_SYSTEM.format(_APP=app, _ACTION_SPACE=space) + NAV_FORMAT

    def build_prompt(
        self,
        task: str,
        history: Sequence[Turn],
        image: Image.Image,
        ctx: StepContext,
        feedback: str | None = None,
    ) -> Prompt:
        parts = [text(self.system_text(ctx)), text(f"Task: {task}\n")]
        for turn in history[-NUM_HISTORY:] if NUM_HISTORY else ():
            parts.append(text(self.step_text(turn, ctx)))
            if turn.note and self.fidelity.notes:
                parts.append(text(f" ({' '.join(turn.note.split())})"))
        if feedback and self.fidelity.feedback:
            parts.append(text("\n" + feedback_text(feedback) + "\n"))
        parts.append(picture(image))
        return Prompt(
            messages=[Message("user", parts)],
            grammar=self.grammar(ctx),
            sampling=self.sampling,
            meta={"dialect": self.name, "ctx": ctx},
        )

    def step_text(self, turn: Turn, ctx: StepContext) -> str:
        """An earlier step as the history shows it: its first action dict as written."""
        found = first_dict(clean(turn.raw))
        if found is not None:
            return found
        if turn.action is not None:
            try:
                return self.format(turn.action, ctx)
            except ValueError:
                pass
        return turn.raw.strip()
