"""OS-Atlas-Pro-7B (``osatlas``): ``thoughts:``/``actions:`` verb lines, points in norm1000.

The phone prompt is the OS-Atlas-Pro-7B model card's; the desktop prompt is the repo's OmniAct
prompt, the only official one with a desktop action space (both in ``osatlas_text``, byte for
byte; docs/models.md says why). Both sources lay a step out as ONE user message: the prompt, the
screenshot, then the task and the history (no system message: the chat template adds its
default one; no earlier screenshots or answers)::

    card (phone, robot):  "Task instruction: <task>\\nHistory: null"
    OmniAct (desktop):    "\\nTask: <task>\\nHistory: \\nNone\\n"

With earlier steps, the history takes the repo's only form (its AndroidControl samples):
``History: `` and a newline, one ``Step N: <text>`` line per earlier step, a blank line. There
the text is the step's low-level instruction, which is also its gold answer's thoughts; so here
it is the thoughts of the answer the model gave, or its action line where it wrote none.

Answers: ``thoughts:\\n<text>\\nactions:\\n<line>`` or ``actions:\\n<line>`` (syntax_verbline).
Project additions (``official=False``, off with ``Fidelity.official()``) are numbered on after
the official custom actions, in the family's own block form.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar

from PIL import Image

import pixelpilot.agent.dialects.osatlas_text as T
from pixelpilot.agent.actions import Scroll, Space
from pixelpilot.agent.dialects._text import clean, swipe_for_scroll
from pixelpilot.agent.dialects.base import StepContext, Turn
from pixelpilot.agent.dialects.engine import TableDialect
from pixelpilot.agent.dialects.lark import THOUGHT_TOKENS
from pixelpilot.agent.dialects.layout import feedback_text, text
from pixelpilot.agent.dialects.layout import image as picture
from pixelpilot.agent.dialects.syntax_verbline import VerbLineSyntax, split_answer, worst_bytes
from pixelpilot.agent.dialects.table import Arg, Verb
from pixelpilot.agent.keys import normalize_key
from pixelpilot.vlm.base import Message, Prompt, Sampling

__all__ = ["OSAtlasDialect"]

D, M, R = frozenset({"desktop"}), frozenset({"mobile"}), frozenset({"robot"})
NOWHERE: frozenset[str] = frozenset()
"""Read on any device (fitted to it), offered on none: the family's other spellings."""
ALL = D | M | R
_POINT = Arg("", "point", "point")
_TEXT = Arg("", "text", "text")
_DIRECTION = Arg(
    "", "direction", "enum", choices={"UP": "up", "DOWN": "down", "LEFT": "left", "RIGHT": "right"}
)


def _block(name: str, purpose: str, form: str, example: str) -> str:
    """An addition's block, in the family's form; ``{n}`` is its number."""
    return (
        f"Custom Action {{n}}: {name}\n    - purpose: {purpose}\n    - format: {form}\n"
        f"    - example usage: {example}\n\n"
    )


def _renumbered(block: str) -> str:
    """An official block with ``{n}`` for its number (an addition on another device)."""
    return re.sub(r"^Custom Action \d+:", "Custom Action {n}:", block)


def _one_line(action: Any) -> dict[str, Any] | None:
    """TYPE's value is one line: text with a line break cannot be written."""
    return None if "\n" in action.text else {"text": action.text}


def _split_keys(fields: dict[str, Any]) -> dict[str, Any]:
    """``HOTKEY [CTRL_A]``: key names joined by ``_``."""
    keys = [normalize_key(p) for k in fields["keys"] for p in k.split("_") if p]
    return {**fields, "keys": keys}


def _upper_keys(action: Any) -> dict[str, Any] | None:
    return {"keys": [k.upper() for k in action.keys]}


def _scroll_swipe(fields: dict[str, Any]) -> dict[str, Any]:
    """SCROLL on a phone: the swipe that scrolls that way (the finger moves the other way)."""
    swipe = swipe_for_scroll(Scroll(direction=fields["direction"]), (1000.0, 1000.0), "norm1000")
    return {"start": swipe.start, "end": swipe.end}


def _swipe_scroll(action: Any) -> dict[str, Any] | None:
    for direction in ("up", "down", "left", "right"):
        if _scroll_swipe({"direction": direction}) == {"start": action.start, "end": action.end}:
            return {"direction": direction}
    return None


_KEYS = (("SPACE", "space"), ("TAB", "tab"), ("ESC", "esc"), ("PGDN", "pagedown"),
         ("DOWN", "down"), ("ENTER", "enter"), ("RIGHT", "right"))  # fmt: skip
_ADDED_ANSWER = _block(
    "ANSWER",
    "Give the answer the task asks for; the task is finished.",
    "ANSWER [answer]",
    "ANSWER [42]",
)
_ADDED_ASK = _block(
    "ASK_USER",
    "Ask the user a question and wait for the answer.",
    "ASK_USER [question]",
    "ASK_USER [Which account should I use?]",
)
_P, _XY = "<point>[[101,872]]</point>", "<point>[[x-axis, y-axis]]</point>"

VERBS: tuple[Verb, ...] = (
    # read on any device, offered on none (first: read before a verb of another device that
    # would not fit): the card's ENTER on a desktop, GUI-Odyssey's IMPOSSIBLE
    Verb("ENTER", "hotkey", fixed={"keys": ["enter"]}, devices=NOWHERE),
    Verb("IMPOSSIBLE", "finish", fixed={"status": "failure"}, devices=NOWHERE),
    # desktop: the OmniAct prompt
    Verb("CLICK", "click", (_POINT,), line=T.OMNIACT_CLICK, devices=D),
    Verb("TYPE", "type", (_TEXT,), line=T.OMNIACT_TYPE, devices=D, from_fields=_one_line),
    Verb("SCROLL", "scroll", (_DIRECTION,), line=T.OMNIACT_SCROLL, devices=D),
    Verb("DOUBLECLICK", "click", (_POINT,), {"count": 2}, T.OMNIACT_DOUBLECLICK, D),
    Verb("RIGHTCLICK", "click", (_POINT,), {"button": "right"}, T.OMNIACT_RIGHTCLICK, D),
    Verb("MOVETO", "move", (_POINT,), line=T.OMNIACT_MOVETO, devices=D),
    *(
        Verb(
            f"PRESS_{k}",
            "hotkey",
            fixed={"keys": [key]},
            line=getattr(T, f"OMNIACT_PRESS_{k}"),
            devices=D,
        )
        for k, key in _KEYS
    ),
    Verb(
        "HOTKEY",
        "hotkey",
        (Arg("", "keys", "keys", sep="_"),),
        line=T.OMNIACT_HOTKEY,
        devices=D,
        to_fields=_split_keys,
        from_fields=_upper_keys,
    ),
    # phone: the model card's prompt
    Verb("CLICK", "tap", (_POINT,), line=T.CARD_CLICK, devices=M),
    Verb("TYPE", "type", (_TEXT,), line=T.CARD_TYPE, devices=M, from_fields=_one_line),
    Verb(
        "SCROLL",
        "swipe",
        (_DIRECTION,),
        line=T.CARD_SCROLL,
        devices=M,
        to_fields=_scroll_swipe,
        from_fields=_swipe_scroll,
    ),
    Verb("LONG_PRESS", "long_press", (_POINT,), line=T.CARD_LONG_PRESS, devices=M),
    Verb(
        "OPEN_APP",
        "open_app",
        (Arg("", "app", "text", strip=True),),
        line=T.CARD_OPEN_APP,
        devices=M,
    ),
    Verb(
        "PRESS_BACK", "system_button", fixed={"button": "back"}, line=T.CARD_PRESS_BACK, devices=M
    ),
    Verb(
        "PRESS_HOME", "system_button", fixed={"button": "home"}, line=T.CARD_PRESS_HOME, devices=M
    ),
    Verb(
        "PRESS_RECENT",
        "system_button",
        fixed={"button": "recent"},
        line=T.CARD_PRESS_RECENT,
        devices=M,
    ),
    Verb("ENTER", "system_button", fixed={"button": "enter"}, line=T.CARD_ENTER, devices=M),
    Verb("WAIT", "wait", line=T.CARD_WAIT, devices=M),
    Verb("COMPLETE", "finish", line=T.CARD_COMPLETE, devices=M),
    # project additions
    Verb(
        "DRAG",
        "drag",
        (Arg("", "start", "point"), Arg("", "end", "point")),
        devices=D,
        line=_block(
            "DRAG",
            "Drag from the first position to the second.",
            f"DRAG {_XY} {_XY}",
            f"DRAG {_P} <point>[[300,500]]</point>",
        ),
        official=False,
    ),
    Verb(
        "PICK",
        "pick",
        (_POINT,),
        devices=R,
        official=False,
        line=_block(
            "PICK", "Grasp the object at the specified position.", f"PICK {_XY}", f"PICK {_P}"
        ),
    ),
    Verb(
        "PLACE",
        "place",
        (_POINT,),
        devices=R,
        official=False,
        line=_block(
            "PLACE",
            "Put the held object down at the specified position.",
            f"PLACE {_XY}",
            f"PLACE {_P}",
        ),
    ),
    Verb(
        "MOVE_EFFECTOR",
        "move_effector",
        (_POINT, Arg("", "height", "number", required=False)),
        devices=R,
        official=False,
        line=_block(
            "MOVE_EFFECTOR",
            "Move the gripper above the specified position, at a height in metres.",
            f"MOVE_EFFECTOR {_XY} [height]",
            f"MOVE_EFFECTOR {_P} [0.15]",
        ),
    ),
    Verb(
        "GRIPPER",
        "gripper",
        (Arg("", "state", "enum", choices={"OPEN": "open", "CLOSE": "close"}),),
        devices=R,
        official=False,
        line=_block(
            "GRIPPER", "Open or close the gripper.", "GRIPPER [OPEN/CLOSE]", "GRIPPER [OPEN]"
        ),
    ),
    Verb(
        "HOME",
        "home",
        devices=R,
        official=False,
        line=_block("HOME", "Return the arm to its home pose.", "HOME", "HOME"),
    ),
    # the card's WAIT and COMPLETE: official on a robot (which has no official prompt of its
    # own: the card's frame, numbered from 1), additions on a desktop (OmniAct has neither)
    Verb("WAIT", "wait", line=_renumbered(T.CARD_WAIT), devices=R),
    Verb("COMPLETE", "finish", line=_renumbered(T.CARD_COMPLETE), devices=R),
    Verb("WAIT", "wait", line=_renumbered(T.CARD_WAIT), devices=D, official=False),
    Verb("COMPLETE", "finish", line=_renumbered(T.CARD_COMPLETE), devices=D, official=False),
    Verb(
        "ANSWER",
        "finish",
        (Arg("", "answer", "text"),),
        line=_ADDED_ANSWER,
        devices=ALL,
        official=False,
    ),
    Verb(
        "ASK_USER",
        "ask_user",
        (Arg("", "question", "text", strip=True),),
        line=_ADDED_ASK,
        devices=ALL,
        official=False,
    ),
)
_LABEL = re.compile(r"Custom Action (\d+):")


class OSAtlasDialect(TableDialect):
    """OS-Atlas-Pro-7B action mode: the card's layout on phones, the OmniAct prompt on desktops."""

    name: ClassVar[str] = "osatlas"
    space: ClassVar[Space] = "norm1000"
    verbs: ClassVar[tuple[Verb, ...]] = VERBS
    syntax: ClassVar[VerbLineSyntax] = VerbLineSyntax()
    sampling: ClassVar[Sampling] = Sampling(
        temperature=0.0, max_new_tokens=worst_bytes(THOUGHT_TOKENS)
    )
    """The card calls generate(max_new_tokens=128) with the checkpoint's generation config
    (not published; its Qwen2-VL-7B-Instruct parent's decodes with top_k=1): greedy. The
    budget is the grammar's longest answer (a long thought and two more action lines), not the
    card's 128 tokens, which would cut a thought of a few sentences."""

    # -- prompt ------------------------------------------------------------------------------
    def prompt_text(self, ctx: StepContext) -> str:
        """The official prompt for this device (with the offered additions), up to the
        screenshot."""
        desktop = ctx.device_kind == "desktop"
        head, custom, tail = (
            (T.OMNIACT_HEAD, T.OMNIACT_CUSTOM, T.OMNIACT_TAIL)
            if desktop
            else (T.CARD_HEAD, T.CARD_CUSTOM, T.CARD_TAIL)
        )
        lines = [v.line for v in dict.fromkeys(self.offered_verbs(ctx)) if v.line]
        basic = [b for b in lines if b.startswith("Basic Action")]
        blocks, n = [], 0
        for b in lines:
            if b.startswith("Basic Action"):
                continue
            if "{n}" in b:
                n += 1
                b = b.replace("{n}", str(n))
            else:
                m = _LABEL.match(b)
                n = int(m.group(1)) if m else n
            blocks.append(b)
        return head + "".join(basic) + custom + "".join(blocks) + tail

    def build_prompt(
        self,
        task: str,
        history: Sequence[Turn],
        image: Image.Image,
        ctx: StepContext,
        feedback: str | None = None,
    ) -> Prompt:
        steps = [self.step_text(t) for t in history]
        if ctx.device_kind == "desktop":
            lines = "None\n" if not steps else _steps(steps) + "\n"
            after = f"\nTask: {task}\nHistory: \n{lines}"
        else:
            lines = "null" if not steps else "\n" + _steps(steps) + "\n"
            after = f"Task instruction: {task}\nHistory: {lines}"
        parts = [text(self.prompt_text(ctx)), picture(image), text(after)]
        if feedback and self.fidelity.feedback:
            parts.append(text("\n" + feedback_text(feedback) + "\n"))
        return Prompt(
            messages=[Message("user", parts)],
            grammar=self.grammar(ctx),
            sampling=self.sampling,
            meta={"dialect": self.name, "ctx": ctx},
        )

    def step_text(self, turn: Turn) -> str:
        """An earlier step as the history shows it: its thoughts, else its action line; with
        the step's note after it where notes are on."""
        raw = clean(turn.raw)
        thought, section = split_answer(raw) or ("", raw)
        text = thought or section.strip().split("\n", 1)[0]
        text = " ".join(line.strip() for line in text.splitlines() if line.strip())
        if turn.note and self.fidelity.notes:
            note = " ".join(turn.note.split())
            text = f"{text} ({note})" if text else f"({note})"
        return text


def _steps(steps: Sequence[str]) -> str:
    return "".join(f"Step {i}: {s}\n" for i, s in enumerate(steps, 1))
