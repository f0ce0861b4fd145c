"""Qwen2.5-VL-Instruct: the cookbook's ``computer_use`` / ``mobile_use`` tools, ``<tool_call>`` JSON.

The official agent format is the Qwen2.5-VL cookbook's (QwenLM/Qwen2.5-VL at
f0af2996e843cf46aa5f778c38d6694500c2ca81): the tools of ``cookbooks/utils/agent_function_call.py``
(unchanged from d08310c, 2025-01-28, to 465b320, the last Qwen2.5-VL-era commit) put in the
system message by qwen-agent 0.0.15's ``NousFnCallPrompt``, and the single user message of
``cookbooks/mobile_agent.ipynb`` (cell 9):

- system: ``You are a helpful assistant.`` then ``\\n\\n`` and the Nous tool block: ``# Tools``
  ... ``<tools>`` one JSON line per tool (``{"type": "function", "function": {"name_for_human",
  "name", "description", "parameters", "args_format"}}``) ``</tools>`` ... the ``<tool_call>``
  format; the tool's description states the smart-resized screen size;
- user: ``The user query:  {task}\\nTask progress (You have done the following operation on the
  current device): `` then ``Step i: {call json}; `` for every earlier step, then the current
  screenshot (text first: the notebook's local-model cells). No earlier screenshot, no
  assistant turn: the prompt is rebuilt from scratch each step;
- the answer: ``<tool_call>\\n{"name": "mobile_use", "arguments": {"action": ...}}\\n</tool_call>``,
  points in pixels of the smart-resized screenshot (``resized_px``).

The computer_use notebook only grounds single instructions; a desktop agent step uses the
mobile notebook's layout with ``computer_use``. Project additions (``Fidelity``): an
``ask_user`` tool (and, on a robot, generic tools for its kinds: the cookbook has no robot
tool); a note on an earlier step after its ``Step i`` entry; the reason a rejected answer was
rejected, after the history text.

Sampling: the cookbook passes only ``max_new_tokens=2048`` (``model.generate(**inputs,
max_new_tokens=2048)``; its API cell passes nothing), so the checkpoint's generation config
decodes: Qwen2.5-VL-*-Instruct's ``generation_config.json`` samples with temperature 1e-06
(greedy in effect) and repetition_penalty 1.05. (The hub file itself was not readable here; these
are the values the checkpoints fine-tuned from it carry, e.g. stanford-oval/churro-3B's.)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar, get_args

from PIL import Image

from pixelpilot.agent.actions import Scroll, Space, SystemButton
from pixelpilot.agent.dialects.base import StepContext, Turn
from pixelpilot.agent.dialects.engine import TableDialect
from pixelpilot.agent.dialects.layout import feedback_text, image, text
from pixelpilot.agent.dialects.syntax import GrammarSpec
from pixelpilot.agent.dialects.syntax_fncall import parameters
from pixelpilot.agent.dialects.syntax_toolcall import ToolCallSyntax, call_object
from pixelpilot.agent.dialects.table import ALL_DEVICES, Arg, Verb, action_verbs
from pixelpilot.agent.errors import ParseError
from pixelpilot.vlm.base import Message, Prompt, Sampling

__all__ = ["COMPUTER_USE", "MOBILE_USE", "QUERY", "SYSTEM", "Qwen25VLDialect", "tools_block"]

COMPUTER_USE, MOBILE_USE = "computer_use", "mobile_use"
SYSTEM = "You are a helpful assistant."
"""The system text every cookbook cell passes (mobile_agent.ipynb, computer_use.ipynb)."""
QUERY = (
    "The user query:  {task}\n"
    "Task progress (You have done the following operation on the current device): "
)
"""mobile_agent.ipynb cell 9's user text before the steps (two spaces after the colon)."""
STEP = "Step {i}: {call}; "
"""One earlier step ("The operation history can be orgnized by Step x: [action]; ...")."""
NOTE = "Note: {note}; "
"""A project addition: what pixelpilot says about an earlier step, after its entry."""
ARGS_FORMAT = "Format the arguments as a JSON object."
"""qwen-agent 0.0.15 ``BaseTool.function``'s ``args_format`` (English)."""
# QwenLM/Qwen-Agent qwen_agent/llm/fncall_prompts/nous_fncall_prompt.py FN_CALL_TEMPLATE
# @ c0349d064a1924866788ab9aa04a4e4ecea8d041 (= PyPI qwen-agent 0.0.15; unchanged to 0.0.34)
TOOLS = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
    "{tool_descs}\n</tools>\n\n"
    "For each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{{"name": <function-name>, "arguments": <args-json-object>}}\n</tool_call>'
)

# -- the cookbook's tools, verbatim (cookbooks/utils/agent_function_call.py @ f0af299) -----------
DESCRIPTION = {
    COMPUTER_USE: (
        "Use a mouse and keyboard to interact with a computer, and take screenshots.\n"
        "* This is an interface to a desktop GUI. You do not have access to a terminal or "
        "applications menu. You must click on desktop icons to start applications.\n"
        "* Some applications may take time to start or process actions, so you may need to wait "
        "and take successive screenshots to see the results of your actions. E.g. if you click on "
        "Firefox and a window doesn't open, try wait and taking another screenshot.\n"
        "* The screen's resolution is {w}x{h}.\n"
        "* Whenever you intend to move the cursor to click on an element like an icon, you should "
        "consult a screenshot to determine the coordinates of the element before moving the "
        "cursor.\n"
        "* If you tried clicking on a program or link but it failed to load, even after waiting, "
        "try adjusting your cursor position so that the tip of the cursor visually falls on the "
        "element that you want to click.\n"
        "* Make sure to click any buttons, links, icons, etc with the cursor tip in the center of "
        "the element. Don't click boxes on their edges unless asked."
    ),
    MOBILE_USE: (
        "Use a touchscreen to interact with a mobile device, and take screenshots.\n"
        "* This is an interface to a mobile device with touchscreen. You can perform actions like "
        "clicking, typing, swiping, etc.\n"
        "* Some applications may take time to start or process actions, so you may need to wait "
        "and take successive screenshots to see the results of your actions.\n"
        "* The screen's resolution is {w}x{h}.\n"
        "* Make sure to click any buttons, links, icons, etc with the cursor tip in the center of "
        "the element. Don't click boxes on their edges unless asked."
    ),
}
ACTIONS_HEAD = "The action to perform. The available actions are:"
_XY = (
    "(x, y): The x (pixels from the left edge) and y (pixels from the top edge) coordinates to "
    "move the mouse to. "
)
_STATUS = {
    "description": "The status of the task. Required only by `action=terminate`.",
    "type": "string",
    "enum": ["success", "failure"],
}
PROPERTIES: dict[str, dict[str, Any]] = {
    # every property but ``action``, in the file's order
    COMPUTER_USE: {
        "keys": {"description": "Required only by `action=key`.", "type": "array"},
        "text": {"description": "Required only by `action=type`.", "type": "string"},
        "coordinate": {
            "description": _XY
            + "Required only by `action=mouse_move` and `action=left_click_drag`.",
            "type": "array",
        },
        "pixels": {
            "description": "The amount of scrolling to perform. Positive values scroll up, "
            "negative values scroll down. Required only by `action=scroll`.",
            "type": "number",
        },
        "time": {
            "description": "The seconds to wait. Required only by `action=wait`.",
            "type": "number",
        },
        "status": _STATUS,
    },
    MOBILE_USE: {
        "coordinate": {
            "description": _XY
            + "Required only by `action=click`, `action=long_press`, and `action=swipe`.",
            "type": "array",
        },
        "coordinate2": {
            "description": _XY + "Required only by `action=swipe`.",
            "type": "array",
        },
        "text": {
            "description": "Required only by `action=key`, `action=type`, and `action=open`.",
            "type": "string",
        },
        "time": {
            "description": "The seconds to wait. Required only by `action=long_press` and "
            "`action=wait`.",
            "type": "number",
        },
        "button": {
            "description": "Back means returning to the previous interface, Home means returning "
            "to the desktop, Menu means opening the application background menu, and Enter means "
            "pressing the enter. Required only by `action=system_button`",
            "enum": ["Back", "Home", "Menu", "Enter"],
            "type": "string",
        },
        "status": _STATUS,
    },
}


# -- the table -----------------------------------------------------------------------------------
def _scroll_fields(f: dict[str, Any]) -> dict[str, Any]:
    """computer_use scroll: ``pixels`` (positive up, negative down) -> direction and amount in
    wheel clicks (what ``pyautogui.scroll(pixels)`` does with it)."""
    pixels = f.pop("pixels")
    if pixels == 0:
        raise ParseError("computer_use scroll: 'pixels' must not be 0 (positive scrolls up)")
    amount = max(1, round(abs(pixels)))
    if amount > 1000:
        raise ParseError("computer_use scroll: 'pixels' is at most 1000 wheel clicks either way")
    return {**f, "direction": "up" if pixels > 0 else "down", "amount": amount}


def _scroll_values(a: Scroll) -> dict[str, Any] | None:
    if a.direction not in ("up", "down"):
        return None
    return {"pixels": a.amount if a.direction == "up" else -a.amount, "point": a.point}


ADB_NAMES = {"recent": "app_switch"}
"""SystemButtons whose adb keyevent name differs from theirs."""
PHONE_KEYS: dict[str, str] = {
    ADB_NAMES.get(b, b): b for b in get_args(SystemButton.model_fields["button"].annotation)
}
"""mobile_use ``key`` names (adb keyevent names) -> the SystemButton they press."""
_SYSTEM_BUTTONS = frozenset({"back", "home", "menu", "enter"})
"""What mobile_use ``system_button`` writes (``key`` writes every other SystemButton)."""


def _key_fields(f: dict[str, Any]) -> dict[str, Any]:
    """mobile_use key: an adb keyevent name (any case, ``KEYCODE_`` or not) -> SystemButton."""
    written = f.pop("key")
    name = written.strip().lower().removeprefix("keycode_")
    button = PHONE_KEYS.get(name) or (name if name in PHONE_KEYS.values() else None)
    if button is None:
        raise ParseError(
            f"mobile_use key: {written[:40]!r} is not a key pixelpilot presses; use one of: "
            + ", ".join(PHONE_KEYS)
        )
    return {**f, "button": button}


def _key_values(a: SystemButton) -> dict[str, Any] | None:
    """SystemButton -> mobile_use key's ``text``; the four system buttons are system_button's."""
    return None if a.button in _SYSTEM_BUTTONS else {"key": ADB_NAMES.get(a.button, a.button)}


_KEY_SCHEMA = {"enum": [*PHONE_KEYS, *(f"KEYCODE_{k.upper()}" for k in PHONE_KEYS)]}
"""What the grammar admits as a key: the adb names, lower case or as KeyEvent constants."""


def _cu(name: str, kind: str, line: str, *args: Arg, **kw: Any) -> Verb:
    return Verb(
        name, kind, args, line=line, devices=frozenset({"desktop"}), group=COMPUTER_USE, **kw
    )


def _mu(name: str, kind: str, line: str, *args: Arg, **kw: Any) -> Verb:
    return Verb(name, kind, args, line=line, devices=frozenset({"mobile"}), group=MOBILE_USE, **kw)


_AT = Arg("coordinate", "point", "point", required=False)
"""Where a click action clicks; without it, where the cursor is."""
_TIME = Arg("time", "seconds", "number")
"""The seconds of long_press and wait: "Required only by `action=long_press` and `action=wait`"."""
_STATUS_ARG = Arg("status", "status", "enum", choices={"success": "success", "failure": "failure"})
_ROBOT = frozenset({"pick", "place", "gripper", "move_effector", "home", "finish", "wait"})

VERBS: tuple[Verb, ...] = (
    _cu("key", "hotkey",
        "* `key`: Performs key down presses on the arguments passed in order, then performs key "
        "releases in reverse order.",
        Arg("keys", "keys", "keys", schema={"type": "array", "items": {"type": "string"}})),
    _cu("type", "type", "* `type`: Type a string of text on the keyboard.",
        Arg("text", "text", "text")),
    _cu("mouse_move", "move",
        "* `mouse_move`: Move the cursor to a specified (x, y) pixel coordinate on the screen.",
        Arg("coordinate", "point", "point")),
    _cu("left_click", "click", "* `left_click`: Click the left mouse button.", _AT),
    _cu("left_click_drag", "drag",
        "* `left_click_drag`: Click and drag the cursor to a specified (x, y) pixel coordinate on "
        "the screen.",
        Arg("coordinate", "end", "point")),
    _cu("right_click", "click", "* `right_click`: Click the right mouse button.", _AT,
        fixed={"button": "right"}),
    _cu("middle_click", "click", "* `middle_click`: Click the middle mouse button.", _AT,
        fixed={"button": "middle"}),
    _cu("double_click", "click", "* `double_click`: Double-click the left mouse button.", _AT,
        fixed={"count": 2}),
    _cu("scroll", "scroll", "* `scroll`: Performs a scroll of the mouse scroll wheel.",
        Arg("pixels", "pixels", "number", schema={"type": "integer", "minimum": -1000,
                                                  "maximum": 1000}), _AT,
        to_fields=_scroll_fields, from_fields=_scroll_values),
    _cu("wait", "wait", "* `wait`: Wait specified seconds for the change to happen.", _TIME),
    _cu("terminate", "finish",
        "* `terminate`: Terminate the current task and report its completion status.",
        _STATUS_ARG),
    _mu("key", "system_button",
        "* `key`: Perform a key event on the mobile device.\n"
        "    - This supports adb's `keyevent` syntax.\n"
        '    - Examples: "volume_up", "volume_down", "power", "camera", "clear".',
        Arg("text", "key", "text", schema=_KEY_SCHEMA),
        to_fields=_key_fields, from_fields=_key_values),
    _mu("click", "tap", "* `click`: Click the point on the screen with coordinate (x, y).",
        Arg("coordinate", "point", "point")),
    _mu("long_press", "long_press",
        "* `long_press`: Press the point on the screen with coordinate (x, y) for specified "
        "seconds.",
        Arg("coordinate", "point", "point"), _TIME),
    _mu("swipe", "swipe",
        "* `swipe`: Swipe from the starting point with coordinate (x, y) to the end point with "
        "coordinates2 (x2, y2).",
        Arg("coordinate", "start", "point"), Arg("coordinate2", "end", "point")),
    _mu("type", "type", "* `type`: Input the specified text into the activated input box.",
        Arg("text", "text", "text")),
    _mu("system_button", "system_button", "* `system_button`: Press the system button.",
        Arg("button", "button", "enum",
            choices={"Back": "back", "Home": "home", "Menu": "menu", "Enter": "enter"})),
    _mu("open", "open_app", "* `open`: Open an app on the device.",
        Arg("text", "app", "text", strip=True)),
    _mu("wait", "wait", "* `wait`: Wait specified seconds for the change to happen.", _TIME),
    _mu("terminate", "finish",
        "* `terminate`: Terminate the current task and report its completion status.",
        _STATUS_ARG),
    # project additions: what the cookbook's tools lack
    Verb("ask_user", "ask_user", (Arg("question", "question", "text"),), devices=ALL_DEVICES,
         official=False, description="Stop and ask the user a question."),
    *(Verb(v.name, v.kind, v.args, devices=frozenset({"robot"}), official=False,
           description=v.description)
      for v in action_verbs() if v.kind in _ROBOT),
)  # fmt: skip
ASK_USER_PARAMETERS = {
    "properties": {
        "question": {"description": "The question to ask the user.", "type": "string"},
    },
    "required": ["question"],
    "type": "object",
}
"""ask_user's parameters, written as the cookbook writes its own."""


def tools_block(verbs: Sequence[Verb], resized: tuple[int, int]) -> str:
    """The Nous tool block for the offered verbs: each cookbook tool with its offered actions,
    then each project tool, one JSON line each as qwen-agent 0.0.15 writes them."""
    w, h = resized
    functions: list[dict[str, Any]] = []
    for tool in (COMPUTER_USE, MOBILE_USE):
        mine = [v for v in verbs if v.group == tool]
        if not mine:
            continue
        action = {
            "description": "\n".join([ACTIONS_HEAD, *(v.line for v in mine)]),
            "enum": [v.name for v in mine],
            "type": "string",
        }
        params = {"properties": {"action": action, **PROPERTIES[tool]}, "required": ["action"],
                  "type": "object"}  # fmt: skip
        functions.append(_function(tool, DESCRIPTION[tool].format(w=w, h=h), params))
    for v in verbs:
        if v.group:
            continue
        if v.kind == "ask_user":
            functions.append(_function(v.name, v.description, ASK_USER_PARAMETERS))
            continue
        note = f" Points are [x, y] pixels of the screenshot, whose resolution is {w}x{h}."
        described = v.description + (note if any(a.type == "point" for a in v.args) else "")
        functions.append(_function(v.name, described, parameters(v, max(w, h))))
    lines = "\n".join(
        json.dumps({"type": "function", "function": f}, ensure_ascii=False) for f in functions
    )
    return TOOLS.format(tool_descs=lines)


def _function(name: str, description: str, params: dict[str, Any]) -> dict[str, Any]:
    """``BaseTool.function`` of qwen-agent 0.0.15: the keys in its order."""
    return {"name_for_human": name, "name": name, "description": description,
            "parameters": params, "args_format": ARGS_FORMAT}  # fmt: skip


class Qwen25VLDialect(TableDialect):
    """Qwen2.5-VL-*-Instruct with the cookbook's computer_use / mobile_use tools."""

    name: ClassVar[str] = "qwen25vl"
    space: ClassVar[Space] = "resized_px"
    sampling: ClassVar[Sampling] = Sampling(
        temperature=1e-06, repetition_penalty=1.05, max_new_tokens=2048
    )
    verbs: ClassVar[tuple[Verb, ...]] = VERBS
    syntax: ClassVar[ToolCallSyntax] = ToolCallSyntax(
        groups=(COMPUTER_USE, MOBILE_USE), integer_points=False
    )

    # -- prompt ------------------------------------------------------------------------------
    def build_prompt(
        self,
        task: str,
        history: Sequence[Turn],
        image_: Image.Image,
        ctx: StepContext,
        feedback: str | None = None,
    ) -> Prompt:
        block = tools_block(self.offered_verbs(ctx), ctx.resized)
        system = Message("system", [text(SYSTEM), text("\n\n" + block)])
        query = QUERY.format(task=task) + "".join(
            self.step_entry(i, turn, ctx) for i, turn in enumerate(history, 1)
        )
        user = [text(query)]
        if feedback and self.fidelity.feedback:
            user.append(text("\n" + feedback_text(feedback) + "\n"))
        user.append(image(image_))
        return Prompt(
            messages=[system, Message("user", user)],
            grammar=self.grammar(ctx),
            json_form=self.json_form(ctx),
            sampling=self.sampling,
            meta={"dialect": self.name, "ctx": ctx},
        )

    def step_entry(self, i: int, turn: Turn, ctx: StepContext) -> str:
        """``Step i: {call}; `` for an earlier answer: its call re-serialized as qwen-agent
        writes a call (its thought left out), then its note where ``fidelity.notes``."""
        call = self._call_json(turn, ctx)
        out = STEP.format(i=i, call=call)
        if turn.note and self.fidelity.notes:
            out += NOTE.format(note=turn.note)
        return out

    def _call_json(self, turn: Turn, ctx: StepContext) -> str:
        for raw in (turn.raw, None):
            if raw is None:
                if turn.action is None:
                    break
                try:
                    raw = self.format(turn.action, ctx)
                except ValueError:
                    break
            try:
                found = call_object(raw)
            except ParseError:
                found = None
            if found is not None:
                return json.dumps(found[1], ensure_ascii=False)
        return turn.raw.strip()

    # -- output ------------------------------------------------------------------------------
    def format(self, action: Any, ctx: StepContext) -> str:
        """The first offered verb that writes ``action`` (never a tool the device's prompt
        does not show); ValueError otherwise."""
        for verb in self.offered_verbs(ctx):
            written = self.written(verb, action)
            if written is not None:
                return self.syntax.write(verb, written[0], written[1] or "")
        raise ValueError(f"{self.name} cannot express {action!r} on this device")

    # -- grammar -----------------------------------------------------------------------------
    def grammar_spec(self, ctx: StepContext, *, continuation: bool = False) -> GrammarSpec:
        """The engine's spec, with scroll ``pixels`` a whole number of wheel clicks, never 0."""
        spec = super().grammar_spec(ctx, continuation=continuation)
        key = (COMPUTER_USE, "scroll", "pixels")
        if key in spec.schemas:
            spec.schemas[key] = {
                "anyOf": [
                    {"type": "integer", "minimum": 1, "maximum": 1000},
                    {"type": "integer", "minimum": -1000, "maximum": -1},
                ]
            }
        return spec
