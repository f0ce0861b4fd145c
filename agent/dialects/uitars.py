"""UI-TARS: ``Thought: ...`` then ``Action: click(start_box='(x1,y1)')``.

Two versions share one parser. UI-TARS v1 (Qwen2-VL based) writes norm1000 boxes
``start_box='<|box_start|>(x1,y1)<|box_end|>'``; UI-TARS-1.5 (Qwen2.5-VL based) writes
``point='<point>x y</point>'`` in resized_px. Both forms, plus ``[x1, y1, x2, y2]``,
``<bbox>x1 y1 x2 y2</bbox>`` and bare numbers, are read in either version; a 4-number box means
its centre. The call is read by a small scanner (``_text.scan_call``), never evaluated.

Conventions where outputs are messy (see tests/test_peer_corpus.py):
- the action is the text after the LAST ``Action:`` marker that starts a line (else the last
  one anywhere); an earlier, broken attempt is dropped, as UI-TARS-desktop does;
- several calls after that marker (``click(...)\\n\\ntype(...)``): the first one is executed
  and the rest ignored; the next screenshot lets the model go on;
- a call cut off at the end is accepted only when every value is complete (a box that closes,
  a valid direction); a cut-off text to type is rejected.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pixelpilot.agent.actions import (
    AskUser,
    Click,
    Drag,
    Finish,
    Hotkey,
    LongPress,
    Move,
    OpenApp,
    Point,
    Scroll,
    Space,
    Swipe,
    SystemButton,
    Tap,
    TypeText,
    Wait,
    action_from_call,
)
from pixelpilot.agent.dialects._text import (
    CALL_CHARS,
    Call,
    clean,
    escape_single,
    fit,
    num,
    require,
    scan_call,
    snippet,
    split_keys,
    xy,
)
from pixelpilot.agent.dialects.base import StepContext
from pixelpilot.agent.dialects.grammars import uitars_grammar
from pixelpilot.agent.dialects.legacy import LegacyDialect
from pixelpilot.agent.dialects.syntax_pycall import _last_mark
from pixelpilot.agent.errors import ParseError

BOX = ("start_box", "end_box")
_SPEC: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    verb: (frozenset(req), frozenset(opt))
    for verb, req, opt in [
        ("click", ["start_box"], []), ("left_single", ["start_box"], []),
        ("left_double", ["start_box"], []), ("right_single", ["start_box"], []),
        ("hover", ["start_box"], []), ("drag", BOX, []), ("swipe", BOX, []),
        ("hotkey", ["key"], []), ("press", ["key"], []),
        ("type", ["content"], ["start_box"]),  # the box of a typing call is ignored
        ("scroll", [], ["start_box", "end_box", "direction"]),
        ("wait", [], []), ("finished", [], ["content"]), ("call_user", [], []),
        ("long_press", ["start_box"], ["time"]), ("open_app", ["app_name"], []),
        ("press_home", [], []), ("press_back", [], []),
    ]
}  # fmt: skip
_ALIASES = {"point": "start_box", "start_point": "start_box", "end_point": "end_box"}
_VERB_ALIASES = {
    "type": {"text": "content"},
    "finished": {"text": "content"},
    "open_app": {"app": "app_name", "content": "app_name", "text": "app_name"},
}
_DIRECTIONS = ("up", "down", "left", "right")
_BOX_CLOSERS = (")", "]", "</point>", "</bbox>", "<|box_end|>")
_WRAPS = (("<|box_start|>", "<|box_end|>"), ("<point>", "</point>"), ("<bbox>", "</bbox>"))
_BOX_SPLIT = re.compile(r"[\s,()\[\]]+")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_BOXISH = re.compile(
    r"(?:<\|box_start\|>|<point>|<bbox>)?[\s\d.,()\[\]-]+(?:<\|box_end\|>|</point>|</bbox>)?"
)
_ANY_CALL = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\(")
_VERB_CALL = re.compile(r"(?<![\w.])(" + "|".join(sorted(_SPEC, key=len, reverse=True)) + r")\(")

_NOTES = {
    "type": {"1": '#If you want to submit your input, use "\\n" at the end of `content`.',
             "1.5": "# Use escape characters \\', \\\", and \\n in content part to ensure we can "
                    "parse the content in normal python string format. If you want to submit "
                    "your input, use \\n at the end of content."},
    "hotkey": {"1.5": "# Split keys with a space and use lowercase. Also, do not use more than 3 "
                      "keys in one hotkey action."},
    "scroll": {"1.5": "# Show more information on the `direction` side."},
    "wait": {"1": "#Sleep for 5s and take a screenshot to check for any changes.",
             "1.5": "#Sleep for 5s and take a screenshot to check for any changes."},
    "finished": {"1": "# Submit the task regardless of whether it succeeds or fails."},
    "call_user": {"1": "# Submit the task and call the user when the task is unsolvable, or "
                       "when you need the user's help.",
                  "1.5": "# Submit the task and call the user when the task is unsolvable, or "
                         "when you need the user's help."},
}  # fmt: skip
_THOUGHTS = {
    "click": "I click the target element.", "left_double": "I double-click the target element.",
    "right_single": "I right-click the target element.", "hover": "I move the pointer there.",
    "drag": "I drag from the start point to the end point.", "hotkey": "I press the keys.",
    "type": "I type the text.", "scroll": "I scroll to see more.", "wait": "I wait for the screen.",
    "finished": "The task is done.", "long_press": "I press and hold the target element.",
    "open_app": "I open the app.", "press_home": "I go to the home screen.",
    "press_back": "I go back.",
}  # fmt: skip
_PLACEHOLDERS = (
    ("101,102", "x1,y1"),
    ("101 102", "x1 y1"),
    ("303,304", "x3,y3"),
    ("203 204", "x2 y2"),
    ("direction='down'", "direction='down or up or right or left'"),
)
"""Template coordinates and values -> the placeholders the official prompts show."""
_HEAD = (
    "You are a GUI agent. You are given a task and your action history, with screenshots. You "
    "need to perform the next action to complete the task. \n\n## Output Format\n```\n"
    "Thought: ...\nAction: ...\n```\n\n## Action Space\n"
)
_TAIL = (
    "\n\n## Note\n- Use English in `Thought` part.\n- Write a small plan and finally summarize "
    "your next action (with its target element) in one sentence in `Thought` part.\n\n"
    "## User Instruction\n"
)


class UITarsDialect(LegacyDialect):
    """UI-TARS v1 (2B/7B/72B, SFT/DPO): norm1000 boxes in ``<|box_start|>`` tokens."""

    name: ClassVar[str] = "uitars"
    space: ClassVar[Space] = "norm1000"
    version: ClassVar[str] = "1"

    # -- prompt ------------------------------------------------------------------------------
    def _templates(self, device_kind: str) -> list[Any]:
        """One template action per Action Space line, in the official prompts' order."""
        p1 = Point(x=101, y=102, space=self.space)
        p2 = Point(x=303, y=304, space=self.space) if self.version == "1" else Point(
            x=203, y=204, space=self.space)  # fmt: skip
        done = Finish() if (self.version, device_kind) == ("1", "desktop") else Finish(answer="xxx")
        ask = AskUser(question="?")
        if device_kind == "mobile":
            swipes: list[Any] = [Swipe(start=p1, end=p2)]
            if self.version != "1":
                swipes.insert(0, Scroll(direction="down", point=p1))
            return [Tap(point=p1), LongPress(point=p1), TypeText(text="xxx"), *swipes,
                    OpenApp(app="xxx"), SystemButton(button="home"), SystemButton(button="back"),
                    Wait(seconds=5), done, ask]  # fmt: skip
        return [Click(point=p1), Click(point=p1, count=2), Click(point=p1, button="right"),
                Move(point=p1), Drag(start=p1, end=p2), Hotkey(keys=["ctrl", "c"]),
                TypeText(text="xxx"), Scroll(direction="down", point=p1), Wait(seconds=5), done,
                ask]  # fmt: skip

    def _line(self, action: Any) -> str:
        line = self._call(action)
        for a, b in _PLACEHOLDERS:
            line = line.replace(a, b)
        note = _NOTES.get(line.split("(")[0], {}).get(self.version)
        return f"{line} {note}" if note else line

    def action_space(self, ctx: StepContext) -> list[str]:
        """The Action Space lines for the kinds this device offers."""
        return [self._line(t) for t in self._templates(ctx.device_kind) if fit(t, ctx, self.space)]

    def system_prompt(self, ctx: StepContext) -> str:
        return _HEAD + "\n".join(self.action_space(ctx)) + _TAIL

    def task_text(self, task: str) -> str:
        """The bare instruction: the system prompt ends with its "## User Instruction" heading."""
        return task

    def offered(self, ctx: StepContext) -> list[str]:
        return list(dict.fromkeys(line.split("(")[0] for line in self.action_space(ctx)))

    def _example(self, verb: str) -> str:
        lines: dict[str, str] = {}
        for device in ("mobile", "desktop"):
            lines |= {
                line.split("(")[0]: line.split(" #")[0]
                for line in map(self._line, self._templates(device))
            }
        return lines.get(verb, lines["click"])

    # -- parse -------------------------------------------------------------------------------
    def _parse(self, raw: str, ctx: StepContext) -> Any:
        text = clean(raw)
        start, end = _last_mark(text)
        marks = start >= 0
        before, section = (text[:start], text[end:]) if marks else ("", text)
        m = (_ANY_CALL if marks else _VERB_CALL).search(section, 0, CALL_CHARS)
        if m is None:
            point = _grounding(text) if not marks else None
            if point is not None:  # a grounding answer: "(235, 512)"
                click = action_from_call("click", {"point": point}, self.space)
                return require(click, ctx, self.space, "click", self.offered(ctx))
            example = self._example("click")
            if not text:
                raise ParseError(f"empty answer; write Thought: ... then Action: {example}")
            if not marks:
                raise ParseError(f"no action found; end your answer with a line Action: {example}")
            if not section.strip():
                raise ParseError(f"'Action:' is empty; write Action: {example}")
            raise ParseError(
                f"Action: holds no call ({snippet(section.strip())}); write Action: {example}"
            )
        verb = m.group(1)
        if verb not in _SPEC:
            raise ParseError(f"unknown action {verb!r}; use one of: {', '.join(self.offered(ctx))}")
        args = self._args(scan_call(section, verb, m.end()))
        action = self._action(verb, args, _thought(before))
        return require(action, ctx, self.space, verb, self.offered(ctx))

    def _args(self, call: Call) -> dict[str, str]:
        """Arguments under their canonical names; empty ones dropped, as ui-tars does."""
        verb, (required, optional) = call.name, _SPEC[call.name]
        aliases = _ALIASES | _VERB_ALIASES.get(verb, {})
        out: dict[str, str] = {}
        for key, value in call.args.items():
            k = aliases.get(key, key)
            if k not in required | optional:
                raise ParseError(
                    f"{verb}: unexpected argument {key!r}; write {self._example(verb)}"
                )
            if k in out:
                raise ParseError(f"{verb}: {key!r} repeats {k!r}; give it once")
            if key in call.unterminated and not (
                (k in BOX and value.rstrip().endswith(_BOX_CLOSERS))
                or (k == "direction" and value.strip() in _DIRECTIONS)
            ):
                raise ParseError(
                    f"the call is cut off; write the complete call, e.g. {self._example(verb)}"
                )
            if value != "":
                out[k] = value
        missing = sorted(required - set(out))
        if missing:
            raise ParseError(f"{verb} needs {missing[0]}; write {self._example(verb)}")
        return out

    def _action(self, verb: str, args: dict[str, str], thought: str) -> Any:
        """Our action for a UI-TARS call (before fitting it to the device)."""

        def pt(key: str) -> list[float]:
            return list(_box(args[key], verb, key))

        def make(kind: str, **fields: Any) -> Any:
            return action_from_call(kind, fields, self.space)

        if verb in ("click", "left_single"):
            return make("click", point=pt("start_box"))
        if verb == "left_double":
            return make("click", point=pt("start_box"), count=2)
        if verb == "right_single":
            return make("click", point=pt("start_box"), button="right")
        if verb == "hover":
            return make("move", point=pt("start_box"))
        if verb in ("drag", "swipe") or (verb == "scroll" and "end_box" in args):
            if "start_box" not in args:
                raise ParseError(f"{verb} needs start_box; write {self._example(verb)}")
            kind = "drag" if verb == "drag" else "swipe"
            return make(kind, start=pt("start_box"), end=pt("end_box"))
        if verb in ("hotkey", "press"):
            keys = split_keys(args["key"].split() if verb == "hotkey" else [args["key"]])
            return make("hotkey", keys=keys)
        if verb == "type":
            return make("type", text=args["content"])
        if verb == "scroll":
            if "direction" not in args:
                raise ParseError(f"scroll needs direction; write {self._example('scroll')}")
            point = pt("start_box") if "start_box" in args else None
            return make("scroll", direction=args["direction"].strip().lower(), point=point)
        if verb == "wait":
            return make("wait", seconds=5)
        if verb == "finished":
            return make("finish", answer=args.get("content", ""))
        if verb == "call_user":
            return make("ask_user", question=(thought or "I need your help to continue.")[:2000])
        if verb == "long_press":
            extra = {"seconds": _seconds(args["time"])} if "time" in args else {}
            return make("long_press", point=pt("start_box"), **extra)
        if verb == "open_app":
            return make("open_app", app=args["app_name"])
        return make("system_button", button="home" if verb == "press_home" else "back")

    # -- format ------------------------------------------------------------------------------
    def _pt(self, role: str, p: Point) -> str:
        x, y = xy(p, self.space, self.name)
        if self.version == "1":
            key = {"point": "start_box", "start": "start_box", "end": "end_box"}[role]
            return f"{key}='<|box_start|>({x},{y})<|box_end|>'"
        key = {"point": "point", "start": "start_point", "end": "end_point"}[role]
        return f"{key}='<point>{x} {y}</point>'"

    def _call(self, a: Any) -> str:
        """The call that writes ``a``; ValueError where this family cannot express it."""
        if isinstance(a, Tap):
            return f"click({self._pt('point', a.point)})"
        if isinstance(a, Click):
            if a.point is None:
                raise ValueError(f"{self.name} clicks only at a point")
            clicks = {("left", 1): "click", ("left", 2): "left_double", ("right", 1): "right_single"}
            name = clicks.get((a.button, a.count))
            if name is None:
                raise ValueError(f"{self.name} has no {a.button} click x{a.count}")
            return f"{name}({self._pt('point', a.point)})"
        if isinstance(a, Move):
            return f"hover({self._pt('point', a.point)})"
        if isinstance(a, Drag):
            if a.start is None or a.button != "left":
                raise ValueError(f"{self.name} drag needs a start point and the left button")
            return f"drag({self._pt('start', a.start)}, {self._pt('end', a.end)})"
        if isinstance(a, Swipe):
            if a.seconds != Swipe.model_fields["seconds"].default:
                raise ValueError(f"{self.name} cannot set a swipe's duration")
            verb = "scroll" if self.version == "1" else "drag"
            return f"{verb}({self._pt('start', a.start)}, {self._pt('end', a.end)})"
        if isinstance(a, Scroll):
            if a.amount != Scroll.model_fields["amount"].default:
                raise ValueError(f"{self.name} scrolls a fixed amount (5 wheel clicks)")
            where = f"{self._pt('point', a.point)}, " if a.point is not None else ""
            return f"scroll({where}direction='{a.direction}')"
        if isinstance(a, TypeText):
            return f"type(content='{escape_single(a.text)}')"
        if isinstance(a, Hotkey):
            if any(not k.strip() or k != k.strip() or " " in k for k in a.keys):
                raise ValueError(f"{self.name} hotkey keys cannot contain spaces: {a.keys}")
            return f"hotkey(key='{' '.join(a.keys)}')"
        if isinstance(a, Wait):
            if a.seconds != 5:
                raise ValueError(f"{self.name} wait() always sleeps 5 s, not {a.seconds:g}")
            return "wait()"
        if isinstance(a, Finish):
            if a.status != "success":
                raise ValueError(f"{self.name} finished() cannot report failure")
            return f"finished(content='{escape_single(a.answer)}')" if a.answer else "finished()"
        if isinstance(a, AskUser):
            return "call_user()"
        if isinstance(a, LongPress):
            t = (
                ""
                if a.seconds == LongPress.model_fields["seconds"].default
                else f", time='{num(a.seconds)}'"
            )
            return f"long_press({self._pt('point', a.point)}{t})"
        if isinstance(a, SystemButton):
            if a.button in ("home", "back"):
                return f"press_{a.button}()"
            return f"hotkey(key='{a.button}')"
        if isinstance(a, OpenApp):
            return f"open_app(app_name='{escape_single(a.app)}')"
        raise ValueError(f"{self.name} cannot express {a.kind!r}")

    def grammar(self, ctx: StepContext) -> str:
        extent = (ctx.resized[0], ctx.resized[1]) if self.space == "resized_px" else (1000, 1000)
        return self.cached(
            (ctx.device_kind, ctx.kinds, extent), lambda: uitars_grammar(self, ctx, extent)
        )

    def format(self, action: Any, ctx: StepContext) -> str:
        call = self._call(action)
        if isinstance(action, AskUser):
            thought = action.question
        else:
            thought = _THOUGHTS[call.split("(")[0]]
        return f"Thought: {thought}\nAction: {call}"


class UITars15Dialect(UITarsDialect):
    """UI-TARS-1.5 (7B): ``<point>x y</point>`` in pixels of the smart-resized screenshot."""

    name: ClassVar[str] = "uitars-1.5"
    space: ClassVar[Space] = "resized_px"
    version: ClassVar[str] = "1.5"


def _box(value: str, verb: str, key: str) -> tuple[float, float]:
    """The point a box value designates: the point itself, or a 4-number box's centre."""
    s = value.strip()
    for start, end in _WRAPS:
        if s.startswith(start):
            if not s.endswith(end):
                raise ParseError(f"{verb}: {key} opens {start} but does not close it with {end}")
            s = s[len(start) : -len(end)]
            break
    tokens = [t for t in _BOX_SPLIT.split(s) if t]
    if not tokens:
        raise ParseError(f"{verb}: {key} is empty; write {key}='(x,y)'")
    if len(tokens) not in (2, 4) or not all(_NUMBER.fullmatch(t) for t in tokens):
        raise ParseError(f"{verb}: cannot read {key}={snippet(value)}; write {key}='(x,y)'")
    n = [float(t) for t in tokens]
    return ((n[0] + n[2]) / 2, (n[1] + n[3]) / 2) if len(n) == 4 else (n[0], n[1])


def _grounding(text: str) -> list[float] | None:
    """The point of an answer that is nothing but a box or point, else None."""
    if len(text) > 200 or not _BOXISH.fullmatch(text):
        return None
    try:
        return list(_box(text, "answer", "point"))
    except ParseError:
        return None


def _seconds(value: str) -> float:
    if not _NUMBER.fullmatch(value.strip()):
        raise ParseError(f"long_press: time={snippet(value)} is not a number of seconds")
    return float(value)


def _thought(before: str) -> str:
    """What the model wrote before the action (its Thought), for call_user's question."""
    at = before.rfind("Thought:")
    return (before[at + len("Thought:") :] if at >= 0 else before).strip()
