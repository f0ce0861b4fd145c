"""OS-Atlas-Pro: ``thoughts:`` then ``actions:`` with one verb line, points in norm1000.

OS-Atlas-Pro-7B (Qwen2-VL based) answers in its "Executable Language Grounding" format::

    thoughts:
    The search box is at the top.
    actions:
    CLICK <point>[[493,544]]</point>

Its basic actions are CLICK, TYPE [text] and SCROLL [UP|DOWN|LEFT|RIGHT]; the prompt defines
"custom actions" per platform, which is where the device's other kinds go (LONG_PRESS,
PRESS_BACK, DRAG <point>..</point> <point>..</point>, PICK, ...). The verb line is read by
regexes, never evaluated; a bracketed value runs to the last ``]`` of the answer, so typed text
may hold brackets.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import ValidationError

from pixelpilot.agent.actions import (
    AskUser,
    Click,
    Drag,
    Finish,
    Gripper,
    Home,
    Hotkey,
    LongPress,
    Move,
    MoveEffector,
    OpenApp,
    Pick,
    Place,
    Point,
    Scroll,
    Space,
    Swipe,
    SystemButton,
    Tap,
    TypeText,
    Wait,
)
from pixelpilot.agent.dialects._text import CALL_CHARS, clean, num, require, snippet, split_keys
from pixelpilot.agent.dialects.base import StepContext
from pixelpilot.agent.dialects.grammars_grounding import osatlas_grammar
from pixelpilot.agent.dialects.legacy import LegacyDialect
from pixelpilot.agent.dialects.syntax_verbline import _last_mark
from pixelpilot.agent.errors import ParseError

# verb -> (points it takes, whether it takes a [value], kinds it can stand for, purpose)
_VERBS: dict[str, tuple[int, bool, frozenset[str], str]] = {
    "CLICK": (1, False, frozenset({"click", "tap"}), "Click at the specified position."),
    "DOUBLE_CLICK": (1, False, frozenset({"click"}), "Double-click at the specified position."),
    "RIGHT_CLICK": (1, False, frozenset({"click"}), "Right-click at the specified position."),
    "HOVER": (1, False, frozenset({"move"}), "Move the pointer to the specified position."),
    "DRAG": (2, False, frozenset({"drag", "swipe"}), "Drag from the first position to the second."),
    "TYPE": (0, True, frozenset({"type"}), "Enter specified text at the designated location."),
    "SCROLL": (0, True, frozenset({"scroll", "swipe"}), "SCROLL in the specified direction."),
    "HOTKEY": (0, True, frozenset({"hotkey"}), "Press a key combination, keys joined by +."),
    "LONG_PRESS": (1, False, frozenset({"long_press"}), "Long press at the specified position."),
    "OPEN_APP": (0, True, frozenset({"open_app"}), "Open an app by its name."),
    "PRESS_BACK": (0, False, frozenset({"system_button"}), "Go back."),
    "PRESS_HOME": (0, False, frozenset({"system_button"}), "Go to the home screen."),
    "PRESS_MENU": (0, False, frozenset({"system_button"}), "Open the menu."),
    "ENTER": (0, False, frozenset({"hotkey", "system_button"}), "Press Enter."),
    "PICK": (1, False, frozenset({"pick"}), "Grasp the object at the specified position."),
    "PLACE": (1, False, frozenset({"place"}), "Put the held object down at the position."),
    "GRIPPER": (0, True, frozenset({"gripper"}), "Open or close the gripper: [OPEN] or [CLOSE]."),
    "MOVE_EFFECTOR": (1, True, frozenset({"move_effector"}), "Move the gripper above the "
                      "position; the value is the height in metres."),
    "HOME": (0, False, frozenset({"home"}), "Return the arm to its home pose."),
    "WAIT": (0, False, frozenset({"wait"}), "Wait for the screen to change."),
    "COMPLETE": (0, False, frozenset({"finish"}), "The task is done; an answer may follow in []."),
    "IMPOSSIBLE": (0, False, frozenset({"finish"}), "The task cannot be done."),
    "ASK_USER": (0, True, frozenset({"ask_user"}), "Ask the user a question."),
}  # fmt: skip
_EXAMPLES = {
    "CLICK": "CLICK <point>[[101,872]]</point>", "TYPE": "TYPE [Shanghai shopping mall]",
    "SCROLL": "SCROLL [UP]", "DRAG": "DRAG <point>[[101,872]]</point> <point>[[300,500]]</point>",
    "HOTKEY": "HOTKEY [ctrl+c]", "OPEN_APP": "OPEN_APP [Settings]", "GRIPPER": "GRIPPER [OPEN]",
    "MOVE_EFFECTOR": "MOVE_EFFECTOR <point>[[500,500]]</point> [0.15]",
    "COMPLETE": "COMPLETE", "ASK_USER": "ASK_USER [Which account?]",
}  # fmt: skip
_BASIC = ("CLICK", "TYPE", "SCROLL")
_BUTTONS = {"PRESS_BACK": "back", "PRESS_HOME": "home", "PRESS_MENU": "menu"}
_MARK = re.compile(r"^[ \t]*actions?\s*[:：]", re.IGNORECASE | re.MULTILINE)
_VERB = re.compile(r"(?<![A-Z_])(" + "|".join(sorted(_VERBS, key=len, reverse=True)) + r")\b")
_POINT = re.compile(
    r"<point>\s*\[?\[\s*(-?\d{1,12}(?:\.\d{1,12})?)\s*,\s*(-?\d{1,12}(?:\.\d{1,12})?)\s*\]\]?\s*</point>"
)
_HEAD = (
    "You are now operating in Executable Language Grounding mode. Your goal is to help users "
    "accomplish tasks by suggesting executable actions that best fit their needs. Positions "
    "are [[x, y]] in relative coordinates from 0 to 1000 on each axis of the screenshot. Your "
    "skill set includes both basic and custom actions:\n\n"
)
_TAIL = (
    "\nIn most cases, task instructions are high-level and abstract. Carefully read the "
    "instruction and action history, then perform reasoning to determine the most appropriate "
    "next action. Ensure you strictly generate two sections: Thoughts and Actions.\n"
    "Thoughts: Clearly outline your reasoning process for current step.\n"
    "Actions: Specify the actual actions you will take based on your reasoning. You should "
    "follow action format above when generating.\n\n"
    "Your current task instruction, action history, and associated screenshot are as follows:"
)


class OSAtlasDialect(LegacyDialect):
    """OS-Atlas-Pro-4B/7B action mode: verb lines with ``<point>[[x,y]]</point>`` in norm1000."""

    name: ClassVar[str] = "osatlas"
    space: ClassVar[Space] = "norm1000"

    # -- prompt ------------------------------------------------------------------------------
    def offered(self, ctx: StepContext) -> list[str]:
        """The verbs this device can carry out, basic ones first."""
        return [v for v, (_, _, kinds, _) in _VERBS.items() if kinds & ctx.kinds]

    def system_prompt(self, ctx: StepContext) -> str:
        verbs = self.offered(ctx)
        lines = ["1. Basic Actions"]
        basic = [v for v in verbs if v in _BASIC]
        custom = [v for v in verbs if v not in _BASIC]
        for i, verb in enumerate(basic, 1):
            lines.append(self._describe(f"Basic Action {i}", verb))
        lines.append("\n2. Custom Actions")
        for i, verb in enumerate(custom, 1):
            lines.append(self._describe(f"Custom Action {i}", verb))
        return _HEAD + "\n".join(lines) + "\n" + _TAIL

    @staticmethod
    def _describe(label: str, verb: str) -> str:
        npoints, _, _, purpose = _VERBS[verb]
        example = _EXAMPLES.get(verb) or " ".join([verb] + ["<point>[[101,872]]</point>"] * npoints)
        return f"{label}: {verb}\n    - purpose: {purpose}\n    - example usage: {example}"

    def task_text(self, task: str) -> str:
        return f"Task: {task}"

    def grammar(self, ctx: StepContext) -> str:
        return self.cached(
            (ctx.device_kind, ctx.kinds), lambda: osatlas_grammar(self.offered(ctx), _VERBS)
        )

    # -- parse -------------------------------------------------------------------------------
    def _parse(self, raw: str, ctx: StepContext) -> Any:
        text = clean(raw)
        end = _last_mark(text)
        section = text[end:] if end >= 0 else text
        m = _VERB.search(section, 0, CALL_CHARS)
        if m is None:
            raise ParseError(
                f"no action found in {snippet(text)}; end with 'actions:' and one line such as "
                f"{_EXAMPLES['CLICK']}"
            )
        verb, rest = m.group(1), section[m.end() : m.end() + CALL_CHARS]
        npoints, has_value, _, _ = _VERBS[verb]
        found = [_point(x, y, self.space) for x, y in _POINT.findall(rest)]
        if len(found) < npoints:
            raise ParseError(
                f"{verb} needs {npoints} <point>[[x,y]]</point>; write {self._ex(verb)}"
            )
        value = _value(rest) if has_value or verb == "COMPLETE" else None
        try:
            action = self._build(verb, found[:npoints], value, ctx)
        except ValidationError as err:  # e.g. OPEN_APP [ ]: blank once stripped
            raise ParseError(f"{verb}: {_reason(err)}; write {self._ex(verb)}") from None
        return require(action, ctx, self.space, verb, self.offered(ctx))

    def _ex(self, verb: str) -> str:
        npoints = _VERBS[verb][0]
        return _EXAMPLES.get(verb) or " ".join([verb] + ["<point>[[101,872]]</point>"] * npoints)

    def _build(self, verb: str, pts: list[Point], value: str | None, ctx: StepContext) -> Any:
        def need() -> str:
            if not value:
                raise ParseError(f"{verb} needs a value in brackets; write {self._ex(verb)}")
            return value

        match verb:
            case "CLICK":
                return Click(point=pts[0])
            case "DOUBLE_CLICK":
                return Click(point=pts[0], count=2)
            case "RIGHT_CLICK":
                return Click(point=pts[0], button="right")
            case "HOVER":
                return Move(point=pts[0])
            case "DRAG":
                if "drag" in ctx.kinds:
                    return Drag(start=pts[0], end=pts[1])
                return Swipe(start=pts[0], end=pts[1])
            case "TYPE":
                return TypeText(text=need())
            case "SCROLL":
                direction = need().strip().lower()
                if direction not in ("up", "down", "left", "right"):
                    raise ParseError(f"SCROLL [{value}]: the direction is UP, DOWN, LEFT or RIGHT")
                return Scroll(direction=direction)
            case "HOTKEY":
                return Hotkey(keys=split_keys([need().strip()]))
            case "LONG_PRESS":
                return LongPress(point=pts[0])
            case "OPEN_APP":
                return OpenApp(app=need().strip())
            case "PRESS_BACK" | "PRESS_HOME" | "PRESS_MENU":
                return SystemButton(button=_BUTTONS[verb])
            case "ENTER":
                return Hotkey(keys=["enter"])
            case "PICK":
                return Pick(point=pts[0])
            case "PLACE":
                return Place(point=pts[0])
            case "GRIPPER":
                state = need().strip().lower()
                if state not in ("open", "close"):
                    raise ParseError(f"GRIPPER [{value}]: write GRIPPER [OPEN] or GRIPPER [CLOSE]")
                return Gripper(state=state)
            case "MOVE_EFFECTOR":
                return MoveEffector(point=pts[0], height=_number(value, verb, 0.15))
            case "HOME":
                return Home()
            case "WAIT":
                return Wait()
            case "COMPLETE":
                return Finish(answer=value or "")
            case "IMPOSSIBLE":
                return Finish(status="failure")
            case "ASK_USER":
                return AskUser(question=need())
        raise ParseError(f"unknown action {verb}")  # pragma: no cover - _VERB only matches these

    # -- format ------------------------------------------------------------------------------
    def format(self, action: Any, ctx: StepContext) -> str:
        line = _line(action, self.space)
        return f"thoughts:\nI do the next step of the task.\nactions:\n{line}"


def _line(a: Any, space: Space) -> str:
    def p(pt: Point) -> str:
        if pt.space != space:
            raise ValueError(f"osatlas writes points in {space}, got {pt}; convert it first")
        return f"<point>[[{num(pt.x)},{num(pt.y)}]]</point>"

    match a:
        case Click(point=Point() as pt, button="left", count=1) | Tap(point=pt):
            return f"CLICK {p(pt)}"
        case Click(point=Point() as pt, button="left", count=2):
            return f"DOUBLE_CLICK {p(pt)}"
        case Click(point=Point() as pt, button="right", count=1):
            return f"RIGHT_CLICK {p(pt)}"
        case Move():
            return f"HOVER {p(a.point)}"
        case Drag(start=Point() as start, button="left"):
            return f"DRAG {p(start)} {p(a.end)}"
        case Swipe(seconds=0.3):
            return f"DRAG {p(a.start)} {p(a.end)}"
        case TypeText():
            return f"TYPE [{a.text}]"
        case Scroll(point=None, amount=5):
            return f"SCROLL [{a.direction.upper()}]"
        case Hotkey(keys=["enter"]):
            return "ENTER"
        case Hotkey() if all("+" not in k for k in a.keys):
            return f"HOTKEY [{'+'.join(a.keys)}]"
        case LongPress(seconds=1.0):
            return f"LONG_PRESS {p(a.point)}"
        case OpenApp():
            return f"OPEN_APP [{a.app}]"
        case SystemButton(button="enter"):
            return "ENTER"
        case SystemButton():
            return f"PRESS_{a.button.upper()}"
        case Pick():
            return f"PICK {p(a.point)}"
        case Place():
            return f"PLACE {p(a.point)}"
        case Gripper():
            return f"GRIPPER [{a.state.upper()}]"
        case MoveEffector():
            return f"MOVE_EFFECTOR {p(a.point)} [{num(a.height)}]"
        case Home():
            return "HOME"
        case Wait(seconds=1.0):
            return "WAIT"
        case Finish(status="success"):
            return f"COMPLETE [{a.answer}]" if a.answer else "COMPLETE"
        case Finish(status="failure", answer=""):
            return "IMPOSSIBLE"
        case AskUser():
            return f"ASK_USER [{a.question}]"
    raise ValueError(f"osatlas cannot express {a!r}")


def _point(x: str, y: str, space: Space) -> Point:
    return Point(x=num(float(x)), y=num(float(y)), space=space)


def _value(rest: str) -> str | None:
    """The bracketed value after the verb and its points: from the first '[' that is not a
    point's to the last ']' of the answer."""
    tail = _POINT.sub("", rest)
    start = tail.find("[")
    end = tail.rfind("]")
    if start < 0 or end <= start:
        return None
    return tail[start + 1 : end]


def _reason(err: ValidationError) -> str:
    """The first pydantic error as ``field: message``."""
    e = err.errors()[0]
    loc = ".".join(str(p) for p in e["loc"])
    return f"{loc}: {e['msg']}" if loc else e["msg"]


def _number(value: str | None, verb: str, default: float) -> float:
    if value is None or not value.strip():
        return default
    try:
        return float(value)
    except ValueError:
        raise ParseError(f"{verb} [{value}]: the value is a number (metres)") from None
