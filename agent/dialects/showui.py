"""ShowUI: one Python-style dict per answer, positions as fractions of the screenshot (0..1).

ShowUI-2B (Qwen2-VL-2B based) answers navigation prompts with
``{'action': 'CLICK', 'value': None, 'position': [0.49, 0.42]}``; a list of such dicts means
several actions, of which the first is taken. The dict is read by a small scanner that turns
Python literals (single quotes, None, True, False) into JSON for ``json`` — never evaluated.
Positions are kept as norm1000 points (x 1000), so geometry treats them like Qwen2-VL's.

Its action space is CLICK, INPUT, HOVER, ENTER, SCROLL, ANSWER (web/desktop) and TAP, INPUT,
SWIPE, ENTER, ANSWER (phones); the device's other kinds are offered as extra actions in the same
form (DOUBLE_CLICK, DRAG with two positions, HOTKEY, LONG_PRESS, PRESS, PICK, ...).
"""

from __future__ import annotations

import json
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
from pixelpilot.agent.dialects.grammars_grounding import showui_grammar
from pixelpilot.agent.dialects.legacy import LegacyDialect
from pixelpilot.agent.dialects.syntax_pydict import python_to_json
from pixelpilot.agent.errors import ParseError

# action -> (positions: 0 none, 1 one, 2 two, -1 optional one; value needed; kinds; meaning)
_ACTIONS: dict[str, tuple[int, bool, frozenset[str], str]] = {
    "CLICK": (1, False, frozenset({"click"}), "Click on an element, value is not applicable and "
              "the position [x,y] is required."),
    "TAP": (1, False, frozenset({"tap"}), "Tap on an element, value is not applicable and the "
            "position [x,y] is required."),
    "INPUT": (-1, True, frozenset({"type"}), "Type a string into an element, value is a string "
              "to type and the position [x,y] of the element is optional."),
    "HOVER": (1, False, frozenset({"move"}), "Hover on an element, value is not applicable and "
              "the position [x,y] is required."),
    "ENTER": (0, False, frozenset({"hotkey", "system_button"}), "Enter operation, value and "
              "position are not applicable."),
    "SCROLL": (0, True, frozenset({"scroll"}), "Scroll the screen, value is the direction to "
               "scroll (up, down, left, right) and the position is not applicable."),
    "SWIPE": (-1, True, frozenset({"swipe"}), "Swipe the screen, value is the direction to "
              "swipe (up, down, left, right) and the position [x,y] where it starts is optional."),
    "ANSWER": (0, True, frozenset({"finish"}), "Answer the question or finish the task, value "
               "is the answer and the position is not applicable."),
    "DOUBLE_CLICK": (1, False, frozenset({"click"}), "Double-click on an element, the position "
                     "[x,y] is required."),
    "RIGHT_CLICK": (1, False, frozenset({"click"}), "Right-click on an element, the position "
                    "[x,y] is required."),
    "DRAG": (2, False, frozenset({"drag", "swipe"}), "Drag, the position is [[x1,y1],[x2,y2]] "
             "(from, to)."),
    "HOTKEY": (0, True, frozenset({"hotkey"}), "Press keys together, value is the keys joined by "
               "+ (e.g. 'ctrl+c')."),
    "LONG_PRESS": (1, False, frozenset({"long_press"}), "Long press on an element, the position "
                   "[x,y] is required."),
    "PRESS": (0, True, frozenset({"system_button"}), "Press a system button, value is back, "
              "home or menu."),
    "OPEN_APP": (0, True, frozenset({"open_app"}), "Open an app, value is its name."),
    "PICK": (1, False, frozenset({"pick"}), "Grasp the object at the position [x,y]."),
    "PLACE": (1, False, frozenset({"place"}), "Put the held object down at the position [x,y]."),
    "GRIPPER": (0, True, frozenset({"gripper"}), "Open or close the gripper, value is open or "
                "close."),
    "MOVE_EFFECTOR": (1, False, frozenset({"move_effector"}), "Move the gripper above the "
                      "position [x,y]; value is the height in metres (optional)."),
    "HOME": (0, False, frozenset({"home"}), "Return the arm to its home pose."),
    "WAIT": (0, False, frozenset({"wait"}), "Wait for the screen to change."),
    "FAIL": (0, False, frozenset({"finish"}), "The task cannot be done."),
    "ASK_USER": (0, True, frozenset({"ask_user"}), "Ask the user, value is the question."),
}  # fmt: skip
_DIRECTIONS = ("up", "down", "left", "right")
_SWIPE_LENGTH = 250
"""How far (norm1000) a SWIPE given only by its direction moves the finger."""
_HEAD = (
    "You are an assistant trained to navigate the {app} screen. Given a task instruction, a "
    "screen observation, and an action history sequence, output the next action and wait for "
    "the next observation. Here is the action space:\n"
)
_TAIL = (
    "\nFormat the action as a dictionary with the following keys:\n"
    "{{'action': 'ACTION_TYPE', 'value': 'element', 'position': [x,y]}}\n"
    "If value or position is not applicable, set it as `None`. Position might be [[x1,y1], "
    "[x2,y2]] if the action requires a start and end position. Position represents the "
    "relative coordinates on the screenshot and should be scaled to a range of 0-1."
)
_APPS = {"desktop": "computer", "mobile": "phone", "robot": "robot camera"}


class ShowUIDialect(LegacyDialect):
    """ShowUI-2B navigation: ``{'action': ..., 'value': ..., 'position': [x, y]}`` in 0..1."""

    name: ClassVar[str] = "showui"
    space: ClassVar[Space] = "norm1000"

    def offered(self, ctx: StepContext) -> list[str]:
        return [a for a, (_, _, kinds, _) in _ACTIONS.items() if kinds & ctx.kinds]

    def system_prompt(self, ctx: StepContext) -> str:
        lines = [f"{i}. `{a}`: {_ACTIONS[a][3]}" for i, a in enumerate(self.offered(ctx), 1)]
        app = _APPS.get(ctx.device_kind, "computer")
        return _HEAD.format(app=app) + "\n".join(lines) + _TAIL.format()

    def task_text(self, task: str) -> str:
        return f"Task: {task}"

    def grammar(self, ctx: StepContext) -> str:
        return self.cached(
            (ctx.device_kind, ctx.kinds), lambda: showui_grammar(self.offered(ctx), _ACTIONS)
        )

    # -- parse -------------------------------------------------------------------------------
    def _parse(self, raw: str, ctx: StepContext) -> Any:
        text = clean(raw)
        start = text.find("{")
        if start < 0:
            raise ParseError(
                f"no action dictionary in {snippet(text)}; write "
                "{'action': 'CLICK', 'value': None, 'position': [0.5, 0.5]}"
            )
        try:
            obj, _ = json.JSONDecoder().raw_decode(python_to_json(text[start : start + CALL_CHARS]))
        except RecursionError:
            raise ParseError("the action dictionary is not valid (nested too deeply)") from None
        except ValueError as err:
            raise ParseError(f"the action dictionary is not valid ({err})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("action"), str):
            raise ParseError("the dictionary needs an 'action' key, e.g. 'action': 'CLICK'")
        verb = obj["action"].strip().upper().replace(" ", "_")
        if verb not in _ACTIONS:
            raise ParseError(
                f"unknown action {obj['action']!r}; use one of: {', '.join(self.offered(ctx))}"
            )
        pts = self._positions(verb, obj.get("position"))
        try:
            action = self._build(verb, obj.get("value"), pts, ctx)
        except ValidationError as err:  # e.g. 'value': ' ' for OPEN_APP: blank once stripped
            e = err.errors()[0]
            where = ".".join(str(p) for p in e["loc"])
            raise ParseError(f"{verb}: {where + ': ' if where else ''}{e['msg']}") from None
        return require(action, ctx, self.space, verb, self.offered(ctx))

    def _positions(self, verb: str, pos: Any) -> list[Point]:
        want = _ACTIONS[verb][0]
        if pos is None:
            if want > 0:
                raise ParseError(f"{verb} needs 'position': [x, y] with x and y from 0 to 1")
            return []
        if not isinstance(pos, list) or not pos:
            raise ParseError(f"{verb}: 'position' must be [x, y] numbers from 0 to 1")
        pairs = pos if isinstance(pos[0], list) else [pos]
        out = []
        for pair in pairs:
            if (
                not isinstance(pair, list)
                or len(pair) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in pair)
            ):
                raise ParseError(f"{verb}: 'position' must be [x, y] numbers from 0 to 1")
            if not all(0 <= v <= 1 for v in pair):
                raise ParseError(
                    f"{verb}: position {pair} is outside 0..1; positions are fractions of the "
                    "screenshot"
                )
            out.append(Point(x=_thousand(pair[0]), y=_thousand(pair[1]), space=self.space))
        if want == 2 and len(out) != 2:
            raise ParseError(f"{verb} needs 'position': [[x1, y1], [x2, y2]]")
        return out

    def _build(self, verb: str, value: Any, pts: list[Point], ctx: StepContext) -> Any:
        _, needs_value, _, _ = _ACTIONS[verb]
        text = "" if value is None else str(value)
        if needs_value and not text and verb != "ANSWER":
            raise ParseError(f"{verb} needs a 'value'")
        match verb:
            case "CLICK":
                return Click(point=pts[0])
            case "TAP":
                return Tap(point=pts[0])
            case "INPUT":
                return TypeText(text=text)
            case "HOVER":
                return Move(point=pts[0])
            case "ENTER":
                return Hotkey(keys=["enter"])
            case "SCROLL":
                return Scroll(direction=_direction(verb, text))
            case "SWIPE":
                return _swipe(_direction(verb, text), pts[0] if pts else None, self.space)
            case "ANSWER":
                return Finish(answer=text)
            case "DOUBLE_CLICK":
                return Click(point=pts[0], count=2)
            case "RIGHT_CLICK":
                return Click(point=pts[0], button="right")
            case "DRAG":
                if "drag" in ctx.kinds:
                    return Drag(start=pts[0], end=pts[1])
                return Swipe(start=pts[0], end=pts[1])
            case "HOTKEY":
                return Hotkey(keys=split_keys([text.strip()]))
            case "LONG_PRESS":
                return LongPress(point=pts[0])
            case "PRESS":
                button = text.strip().lower()
                if button not in ("back", "home", "menu", "enter"):
                    raise ParseError(f"PRESS value {text!r}: use back, home or menu")
                return SystemButton(button=button)
            case "OPEN_APP":
                return OpenApp(app=text.strip())
            case "PICK":
                return Pick(point=pts[0])
            case "PLACE":
                return Place(point=pts[0])
            case "GRIPPER":
                state = text.strip().lower()
                if state not in ("open", "close"):
                    raise ParseError(f"GRIPPER value {text!r}: use open or close")
                return Gripper(state=state)
            case "MOVE_EFFECTOR":
                height = _height(text)
                return MoveEffector(point=pts[0], height=height)
            case "HOME":
                return Home()
            case "WAIT":
                return Wait()
            case "FAIL":
                return Finish(status="failure")
            case "ASK_USER":
                return AskUser(question=text)
        raise ParseError(f"unknown action {verb}")  # pragma: no cover - checked above

    # -- format ------------------------------------------------------------------------------
    def format(self, action: Any, ctx: StepContext) -> str:
        verb, value, pts = _spell(action, self.space)
        position: Any = None
        if len(pts) == 1:
            position = [_fraction(pts[0].x), _fraction(pts[0].y)]
        elif pts:
            position = [[_fraction(p.x), _fraction(p.y)] for p in pts]
        return "{" + f"'action': '{verb}', 'value': {_py(value)}, 'position': {_py(position)}" + "}"


def _spell(a: Any, space: Space) -> tuple[str, Any, list[Point]]:
    for p in (getattr(a, n, None) for n in ("point", "start", "end")):
        if isinstance(p, Point) and p.space != space:
            raise ValueError(f"showui writes points in {space}, got {p}; convert it first")
    match a:
        case Click(point=Point() as pt, button="left", count=1):
            return "CLICK", None, [pt]
        case Click(point=Point() as pt, button="left", count=2):
            return "DOUBLE_CLICK", None, [pt]
        case Click(point=Point() as pt, button="right", count=1):
            return "RIGHT_CLICK", None, [pt]
        case Tap():
            return "TAP", None, [a.point]
        case Move():
            return "HOVER", None, [a.point]
        case Drag(start=Point() as start, button="left"):
            return "DRAG", None, [start, a.end]
        case Swipe(seconds=0.3):
            return "DRAG", None, [a.start, a.end]
        case TypeText():
            return "INPUT", a.text, []
        case Scroll(point=None, amount=5):
            return "SCROLL", a.direction, []
        case Hotkey(keys=["enter"]) | SystemButton(button="enter"):
            return "ENTER", None, []
        case Hotkey() if all("+" not in k for k in a.keys):
            return "HOTKEY", "+".join(a.keys), []
        case LongPress(seconds=1.0):
            return "LONG_PRESS", None, [a.point]
        case SystemButton():
            return "PRESS", a.button, []
        case OpenApp():
            return "OPEN_APP", a.app, []
        case Pick():
            return "PICK", None, [a.point]
        case Place():
            return "PLACE", None, [a.point]
        case Gripper():
            return "GRIPPER", a.state, []
        case MoveEffector():
            return "MOVE_EFFECTOR", str(num(a.height)), [a.point]
        case Home():
            return "HOME", None, []
        case Wait(seconds=1.0):
            return "WAIT", None, []
        case Finish(status="success"):
            return "ANSWER", a.answer, []
        case Finish(status="failure", answer=""):
            return "FAIL", None, []
        case AskUser():
            return "ASK_USER", a.question, []
    raise ValueError(f"showui cannot express {a!r}")


def _py(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"
    if isinstance(value, list):
        return "[" + ", ".join(_py(v) for v in value) + "]"
    return repr(value)


def _thousand(v: float) -> int | float:
    return num(round(v * 1000, 6))


def _fraction(v: float) -> float:
    return round(v / 1000, 9)


def _direction(verb: str, text: str) -> str:
    d = text.strip().lower()
    if d not in _DIRECTIONS:
        raise ParseError(f"{verb} value {text!r}: use up, down, left or right")
    return d


def _swipe(direction: str, start: Point | None, space: Space) -> Swipe:
    s = start or Point(x=500, y=500, space=space)
    dx, dy = {"up": (0, -1), "down": (0, 1), "left": (-1, 0), "right": (1, 0)}[direction]
    end = Point(
        x=min(max(s.x + dx * _SWIPE_LENGTH, 0), 1000),
        y=min(max(s.y + dy * _SWIPE_LENGTH, 0), 1000),
        space=space,
    )
    return Swipe(start=s, end=end)


def _height(text: str) -> float:
    if not text.strip():
        return 0.15
    try:
        return float(text)
    except ValueError:
        raise ParseError(f"MOVE_EFFECTOR value {text!r}: the height is a number (metres)") from None
