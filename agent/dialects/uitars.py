"""UI-TARS v1 (``uitars``, Qwen2-VL based, norm1000) and UI-TARS-1.5 (``uitars-1.5``, Qwen2.5-VL
based, pixels of the resized screenshot): ``Thought: ...`` then ``Action: verb(key='value')``.

Prompt texts, byte for byte (decisions and reasons: docs/models.md, "UI-TARS"):

- v1: bytedance/UI-TARS ``README_v1.md`` @ 582f3a7ea5d285ee8ed9e2e84048d1ab01453c49, lines
  341-400 ("Prompt Templates"), the computer and the mobile template as the README's raw
  strings send them (literal ``\\n`` next to the code fences, the ``type`` comment's backslashes
  and line break); the instruction appended.
- 1.5 (default): bytedance/UI-TARS ``codes/prompts.py`` @ 6b315cc0c3ae8ff3b5412a25aa3ebac1bae32f58
  ``COMPUTER_USE`` / ``MOBILE_USE`` (box-token notation; the text published with the model at
  7eca1f0e2feb92b3d12b12ed8ad703e97fdb1dfe), ``.format(language=..., instruction=...)``.
- 1.5 ``notation="point"``: ``codes/ui_tars/prompt.py`` @ 582f3a7 = PyPI ``ui-tars`` 0.1.4
  ``ui_tars/prompt.py`` ``COMPUTER_USE_DOUBAO`` / ``MOBILE_USE_DOUBAO``.

Layout (``build_prompt``): v1 as bytedance/UI-TARS ``infer/osworld.py`` (branch feat/oswd_infer
@ 5adcd33261bbb0fbb1e53f798974610fa5231a60, lines 442-560): an explicit system message ``You are
a helpful assistant.``; the prompt as a text-only user message; per earlier step an image-only
user message with its screenshot (the last ``SCREENSHOTS`` = 5 screenshots, the current one
included) and the answer as an assistant message; the current screenshot last. 1.5 as the
UI-TARS-desktop SDK (``packages/ui-tars/sdk/src/utils.ts`` @ 11c0abe2bbb757ced16d72b4bea26a69d3edb5e0,
``MAX_IMAGE_LENGTH = 5``) and ``data/test_messages_single_image.json`` @ 582f3a7: the same without
the system message (the chat template adds it). Earlier answers get their box tokens back
(``add_box_tokens``, README_deploy's ``add_box_token``). Project additions (``Fidelity``): extra
Action Space lines (the verbs the family lacks), the retry feedback in front of the current
screenshot, a note as a user message after its step's answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar, Literal

from PIL import Image

from pixelpilot.agent.actions import Click, Point, Space, Tap
from pixelpilot.agent.dialects._text import fit
from pixelpilot.agent.dialects.base import Fidelity, StepContext, Turn
from pixelpilot.agent.dialects.engine import TableDialect
from pixelpilot.agent.dialects.layout import feedback_text, image, screenshots, text
from pixelpilot.agent.dialects.syntax import RawCall
from pixelpilot.agent.dialects.syntax_pycall import PyCallSyntax, add_box_tokens, read_box
from pixelpilot.agent.dialects.table import Arg, Verb
from pixelpilot.agent.errors import ParseError
from pixelpilot.vlm.base import Message, Prompt, Sampling

__all__ = ["SCREENSHOTS", "UITars15Dialect", "UITarsDialect", "add_box_tokens"]

SCREENSHOTS = 5
"""Screenshots a prompt carries, the current one included (osworld.py ``history_n``, the SDK's
``MAX_IMAGE_LENGTH``, the README's vLLM ``--limit-mm-per-prompt image=5``)."""
SYSTEM = "You are a helpful assistant."
DESKTOP, MOBILE = frozenset({"desktop", "robot"}), frozenset({"mobile"})
Notation = Literal["box", "point"]

# -- the official lines ------------------------------------------------------------------------
_SUBMIT_V1 = '#If you want to submit your input, use \\"\\\n\\" at the end of `content`.'
"""README_v1's computer ``type`` comment as its raw string sends it: ``\\"\\`` newline ``\\"``."""
_ESCAPES = (
    "# Use escape characters \\', \\\", and \\n in content part to ensure we can parse the "
    "content in normal python string format."
)
_WAIT = "#Sleep for 5s and take a screenshot to check for any changes."
_CALL_USER = (
    "# Submit the task and call the user when the task is unsolvable, or when you need the "
    "user's help."
)
_HOVER = "#Move the mouse there without clicking."
"""Comment of the project's ``hover`` line (UI-TARS has no pointer move)."""
_FINISHED_V1 = "# Submit the task regardless of whether it succeeds or fails."
_SUBMIT_15 = f"{_ESCAPES} If you want to submit your input, use \\n at the end of content. "
"""COMPUTER_USE's ``type`` comment (its trailing blank included)."""
_SUBMIT_MOBILE_15 = '#If you want to submit your input, use "\\n" at the end of `content`.'
_KEYS_15 = (
    "# Split keys with a space and use lowercase. Also, do not use more than 3 keys in one "
    "hotkey action."
)
_SCROLL_15 = "# Show more information on the `direction` side."


def _p(name: str, field: str = "point", required: bool = True) -> Arg:
    """A point argument; read under the other notation's names too (as ui-tars does)."""
    other = {
        ("point", "start_box"): ("point", "start_point"), ("point", "point"): ("start_box",),
        ("start", "start_box"): ("start_point", "point"), ("start", "start_point"): ("start_box", "point"),
        ("end", "end_box"): ("end_point",), ("end", "end_point"): ("end_box",),
    }[field, name]  # fmt: skip
    return Arg(name, field, "point", required, aliases=other)


def _text(name: str, field: str, required: bool = True, *aliases: str, strip: bool = False) -> Arg:
    return Arg(name, field, "text", required, aliases=aliases, strip=strip)


_KEYS = Arg("key", "keys", "keys", sep=" ")
_DIRECTION = Arg(
    "direction", "direction", "enum", choices={d: d for d in ("down", "up", "right", "left")}
)
_QUESTION = Arg("question", "question", "text", False, source="thought")


def _ask(fields: dict[str, Any]) -> dict[str, Any]:
    """call_user's question is the thought before it (the SDK shows it to the user)."""
    q = str(fields.get("question") or "I need your help to continue.")
    return {**fields, "question": q[:2000]}


# fmt: off
def _verbs(version: str, notation: Notation) -> tuple[Verb, ...]:
    """The table: each device's official lines in its template's order (README_v1 for v1,
    codes/prompts.py or ui_tars/prompt.py for 1.5), then the project additions."""
    box = notation == "box"
    pt, s, e = ("start_box", "start_box", "end_box") if box else ("point", "start_point", "end_point")
    p1 = "'<|box_start|>(x1,y1)<|box_end|>'" if box else "'<point>x1 y1</point>'"
    p2 = "'<|box_start|>(x3,y3)<|box_end|>'" if box else "'<point>x2 y2</point>'"
    P, S, E = _p(pt), _p(s, "start"), _p(e, "end")
    time = Arg("time", "seconds", "number", False)
    content = _text("content", "text", True, "text")
    answer = _text("content", "answer", False, "text")
    app = _text("app_name", "app", True, "app", "text", "content", strip=True)
    click = Verb("click", "click", (P,), line=f"click({pt}={p1})", devices=DESKTOP, aliases=("left_single",))
    tap = replace(click, kind="tap", devices=MOBILE, aliases=("left_single", "tap"))
    double = Verb("left_double", "click", (P,), {"count": 2}, f"left_double({pt}={p1})", DESKTOP)
    right = Verb("right_single", "click", (P,), {"button": "right"}, f"right_single({pt}={p1})", DESKTOP)
    drag = Verb("drag", "drag", (S, E), line=f"drag({s}={p1}, {e}={p2})", devices=DESKTOP)
    hotkey = Verb("hotkey", "hotkey", (_KEYS,), line="hotkey(key='')", devices=DESKTOP, aliases=("press",))
    scroll = Verb("scroll", "scroll", (replace(P, required=False), _DIRECTION), devices=DESKTOP,
                  line=f"scroll({pt}={p1}, direction='down or up or right or left')")
    wait = Verb("wait", "wait", (), {"seconds": 5}, f"wait() {_WAIT}", DESKTOP, aliases=("WAIT",))
    call_user = Verb("call_user", "ask_user", (_QUESTION,), line=f"call_user() {_CALL_USER}",
                     devices=DESKTOP, to_fields=_ask)
    home = Verb("press_home", "system_button", (), {"button": "home"}, "press_home()", MOBILE,
                aliases=("navigate_home",))
    back = Verb("press_back", "system_button", (), {"button": "back"}, "press_back()", MOBILE,
                aliases=("navigate_back",))
    open_app = Verb("open_app", "open_app", (app,), line="open_app(app_name='')", devices=MOBILE)
    if version == "1":
        desktop = [
            click, double, right, drag, hotkey,
            Verb("type", "type", (content,), line=f"type(content='') {_SUBMIT_V1}", devices=DESKTOP),
            scroll, wait, Verb("finished", "finish", (answer,), line="finished()", devices=DESKTOP),
            call_user,
        ]
        mobile = [
            tap, Verb("long_press", "long_press", (P, time), line=f"long_press({pt}={p1}, time='')", devices=MOBILE),
            Verb("type", "type", (content,), line="type(content='')", devices=MOBILE),
            Verb("scroll", "swipe", (S, E), line=f"scroll({s}={p1}, {e}={p2})", aliases=("swipe",), devices=MOBILE),
            home, back,
            Verb("finished", "finish", (answer,), line=f"finished(content='') {_FINISHED_V1}", devices=MOBILE),
        ]
        extra = [_hover(P, pt, p1), open_app, replace(wait, devices=MOBILE), replace(call_user, devices=MOBILE)]
    else:
        finished = Verb("finished", "finish", (answer,), line=f"finished(content='xxx') {_ESCAPES}",
                        devices=DESKTOP)
        if not box:  # ui_tars/prompt.py's COMPUTER_USE_DOUBAO comments these two lines
            hotkey = replace(hotkey, line=f"hotkey(key='ctrl c') {_KEYS_15}")
            scroll = replace(scroll, line=f"{scroll.line} {_SCROLL_15}")
        desktop = [
            click, double, right, drag, hotkey,
            Verb("type", "type", (content,), line=f"type(content='xxx') {_SUBMIT_15}", devices=DESKTOP),
            scroll, wait, finished,
        ]
        mobile = [
            tap, Verb("long_press", "long_press", (P, time), line=f"long_press({pt}={p1})", devices=MOBILE),
            Verb("type", "type", (content,), line=f"type(content='') {_SUBMIT_MOBILE_15}", devices=MOBILE),
            replace(scroll, devices=MOBILE, line=f"scroll({pt}={p1}, direction='down or up or right or left')"),
            open_app,
            Verb("drag", "swipe", (S, E), line=f"drag({s}={p1}, {e}={p2})", aliases=("swipe",), devices=MOBILE),
            home, back, replace(finished, devices=MOBILE),
        ]
        extra = [_hover(P, pt, p1), call_user, replace(wait, devices=MOBILE), replace(call_user, devices=MOBILE)]
    extra = [replace(v, official=False) for v in extra]
    keys = Arg("key", "button", "enum", choices={k: k for k in ("enter", "menu", "back", "home")})
    # a phone's enter and menu buttons written as the computer's hotkey: never offered (no phone
    # template has them), for scripted answers and exports
    button = Verb("hotkey", "system_button", (keys,), devices=frozenset(), official=False)
    return (*desktop, *mobile, *extra, button)
# fmt: on


def _hover(point: Arg, name: str, placeholder: str) -> Verb:
    """The project's pointer move (UI-TARS has none), in the template's notation."""
    return Verb(
        "hover", "move", (point,), line=f"hover({name}={placeholder}) {_HOVER}", devices=DESKTOP
    )


# -- the official frames: the text around the Action Space lines -------------------------------
_INTRO = (
    "You are a GUI agent. You are given a task and your action history, with screenshots. You "
    "need to perform the next action to complete the task."
)
_PLAN = (
    "- Write a small plan and finally summarize your next action (with its target element) in "
    "one sentence in `Thought` part.\n"
)
_V1_FORMAT = "## Output Format\n```\\nThought: ...\nAction: ...\\n```\n"
_FORMAT = "## Output Format\n```\nThought: ...\nAction: ...\n```\n"
FRAMES: dict[tuple[str, str], tuple[str, str]] = {
    # (version, device) -> (text before the Action Space lines, text after them)
    ("1", "desktop"): (
        f"{_INTRO} \n\n{_V1_FORMAT}\n## Action Space\n\n",
        "\n\n\n## Note\n- Use Chinese in `Thought` part.\n- Summarize your next action (with its "
        "target element) in one sentence in `Thought` part.\n\n## User Instruction\n",
    ),
    ("1", "mobile"): (
        f"{_INTRO} \n\n{_V1_FORMAT}\n## Action Space\n",
        f"\n\n## Note\n- Use English in `Thought` part.\n\n{_PLAN}\n## User Instruction\n",
    ),
    ("1.5", "desktop"): (
        f"{_INTRO}\n\n{_FORMAT}\n## Action Space\n\n",
        f"\n\n\n## Note\n- Use {{language}} in `Thought` part.\n{_PLAN}\n## User Instruction\n"
        "{instruction}\n",
    ),
    ("1.5", "mobile"): (
        f"{_INTRO} \n{_FORMAT}## Action Space\n\n",
        f"\n\n\n## Note\n- Use {{language}} in `Thought` part.\n{_PLAN}\n## User Instruction\n"
        "{instruction}\n",
    ),
}
_THOUGHTS = {
    "click": "I click the target element.", "left_double": "I double-click the target element.",
    "right_single": "I right-click the target element.", "hover": "I move the pointer there.",
    "drag": "I drag from the start point to the end point.", "hotkey": "I press the keys.",
    "type": "I type the text.", "scroll": "I scroll to see more.", "wait": "I wait for the screen.",
    "finished": "The task is done.", "long_press": "I press and hold the target element.",
    "open_app": "I open the app.", "press_home": "I go to the home screen.",
    "press_back": "I go back.",
}  # fmt: skip


class UITarsDialect(TableDialect):
    """UI-TARS v1 (2B/7B/72B, SFT/DPO): points in 0..1000, box tokens."""

    name: ClassVar[str] = "uitars"
    space: ClassVar[Space] = "norm1000"
    version: ClassVar[str] = "1"
    system: ClassVar[bool] = True
    """Whether the layout sends the default system message itself (v1's osworld.py does)."""
    language = "English"
    """The thought language a 1.5 template asks for (v1's templates fix theirs)."""
    sampling: ClassVar[Sampling] = Sampling(
        temperature=0.0, top_p=0.9, top_k=1, frequency_penalty=1.0
    )
    """infer/osworld.py @ 5adcd33 (lines 299-358, 546-553): temperature 0, top_p 0.9, top_k 1,
    frequency_penalty 1 (the README's examples also set frequency_penalty=1); its max_tokens
    (1000) is left to the backend's budget, which the grammar is sized for."""
    verbs: ClassVar[tuple[Verb, ...]] = _verbs("1", "box")
    syntax: ClassVar[PyCallSyntax] = PyCallSyntax(
        "box", {n for v in verbs for n in (v.name, *v.aliases)}
    )

    # -- prompt ------------------------------------------------------------------------------
    def frame(self, ctx: StepContext) -> tuple[str, str]:
        return FRAMES[self.version, "mobile" if ctx.device_kind == "mobile" else "desktop"]

    def prompt_text(self, task: str, ctx: StepContext) -> str:
        """The first user message: the official template with this device's lines and the task."""
        head, tail = self.frame(ctx)
        lines = "\n".join(v.line for v in self.offered_verbs(ctx) if v.line)
        if "{instruction}" not in tail:  # README_v1: prompt + instruction
            return head + lines + tail + task
        filled = tail.replace("{language}", self.language).replace("{instruction}", task)
        return head + lines + filled  # 1.5: .format(language=..., instruction=...)

    def build_prompt(
        self,
        task: str,
        history: Sequence[Turn],
        image_: Image.Image,
        ctx: StepContext,
        feedback: str | None = None,
    ) -> Prompt:
        msgs = [Message("system", [text(SYSTEM)])] if self.system else []
        msgs.append(Message("user", [text(self.prompt_text(task, ctx))]))
        shots = screenshots(history, image_, keep=SCREENSHOTS)
        for turn, shot in zip(history, shots, strict=False):
            if shot is not None:
                msgs.append(Message("user", [image(shot)]))
            msgs.append(Message("assistant", [text(add_box_tokens(turn.raw))]))
            if turn.note and self.fidelity.notes:
                msgs.append(Message("user", [text(turn.note)]))
        last: list[dict[str, Any]] = []
        if feedback and self.fidelity.feedback:
            last.append(text(feedback_text(feedback) + "\n"))
        last.append(image(image_))
        msgs.append(Message("user", last))
        return Prompt(
            messages=msgs,
            grammar=self.grammar(ctx),
            sampling=self.sampling,
            meta={"dialect": self.name, "ctx": ctx},
        )

    # -- table -------------------------------------------------------------------------------
    def offered_verbs(self, ctx: StepContext) -> tuple[Verb, ...]:
        """The engine's offer, plus a scroll where a touch screen swipes for it (1.5 phones)."""
        key = (ctx.device_kind, ctx.kinds)
        hit = self._offered.get(key)
        if hit is None:
            hit = self._offered[key] = tuple(
                v
                for v in self.verbs
                if ctx.device_kind in v.devices
                and (v.kind in ctx.kinds or (v.kind == "scroll" and "swipe" in ctx.kinds))
                and (v.official or self.fidelity.extra_verbs)
            )
        return hit

    def read(self, call: RawCall, ctx: StepContext) -> Any:
        """A verb name may stand for several table entries (``scroll`` scrolls a desktop and
        swipes a v1 phone): the first that takes the call's arguments, offered ones first. The
        box of ``type(content=..., start_box=...)`` (the Mind2Web training space) is dropped:
        the text goes where the focus is."""
        if call.name == "type":
            call.args = {k: v for k, v in call.args.items() if k not in ("start_box", "point")}
        candidates = [
            v for v in (*self.offered_verbs(ctx), *self._usable(ctx))
            if call.name in (v.name, *v.aliases)
        ]  # fmt: skip
        first: ParseError | None = None
        for verb in dict.fromkeys(candidates):
            try:
                return self._read_verb(verb, call, ctx)
            except ParseError as err:
                first = first or err
        if first is not None:
            raise first
        return super().read(call, ctx)

    def _read_verb(self, verb: Verb, call: RawCall, ctx: StepContext) -> Any:
        """``call`` read as ``verb`` and fitted to the device; ParseError otherwise."""
        fields = self._bind(verb, call)
        if verb.to_fields is not None:
            fields = verb.to_fields(fields)
        out = fit(self._validate(verb, fields), ctx, self.space)
        if out is None:
            raise ParseError(
                f"{verb.name!r} is not available on this device; use one of: "
                f"{', '.join(self.offered(ctx))}"
            )
        return out

    def no_call(self, text_: str, ctx: StepContext) -> Any:
        """A grounding answer (README_v1's ``(235, 512)``) is a click (tap) there."""
        s = text_.strip()
        point = _grounding(s, self.space)
        if point is not None and ("click" in ctx.kinds or "tap" in ctx.kinds):
            return Click(point=point) if "click" in ctx.kinds else Tap(point=point)
        if not s:
            raise ParseError(
                f"empty answer; write Thought: ... then Action: {self.syntax.example()}"
            )
        raise ParseError(
            f"no action found; end your answer with a line Action: {self.syntax.example()}"
        )

    def thought_for(self, action: Any, verb: Verb) -> str:
        return _THOUGHTS.get(verb.name, "")


def _grounding(s: str, space: Space) -> Point | None:
    """The point of an answer that is nothing but a point or box, else None."""
    if not (s and len(s) <= 80 and s[0] in "(<[" and s[-1] in ")>]"):
        return None
    try:
        x, y = read_box(s, "the answer", "point")
    except ParseError:
        return None
    return Point(x=x, y=y, space=space)


class UITars15Dialect(UITarsDialect):
    """UI-TARS-1.5 (7B): points in pixels of the smart-resized screenshot; the box-token
    templates (``notation="box"``, default) or the ui-tars package's ``<point>`` ones."""

    name: ClassVar[str] = "uitars-1.5"
    space: ClassVar[Space] = "resized_px"
    version: ClassVar[str] = "1.5"
    system: ClassVar[bool] = False
    sampling: ClassVar[Sampling] = Sampling(temperature=0.0)
    """README_deploy.md @ 582f3a7: temperature 0.0, no top_p or penalty (the UI-TARS-desktop SDK:
    temperature 0); its max_tokens (400) is left to the backend's budget."""
    verbs: ClassVar[tuple[Verb, ...]] = _verbs("1.5", "box")
    syntax: ClassVar[PyCallSyntax] = PyCallSyntax(
        "box", {n for v in verbs for n in (v.name, *v.aliases)}, both_notations=True
    )

    def __init__(
        self,
        fidelity: Fidelity | None = None,
        *,
        notation: Notation = "box",
        language: str = "English",
        **kw: Any,
    ) -> None:
        super().__init__(fidelity, **kw)
        if notation not in ("box", "point"):
            raise ValueError(f"notation is 'box' or 'point', not {notation!r}")
        self.notation, self.language = notation, language
        if notation == "point":
            self.verbs = _verbs("1.5", "point")  # type: ignore[misc]
