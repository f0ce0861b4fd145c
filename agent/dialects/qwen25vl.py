"""Qwen2.5-VL: hermes ``<tool_call>`` JSON with the cookbook's computer_use / mobile_use tools.

Points are pixels of the smart-resized image (``resized_px``), and each tool's description
states that resolution, as the Qwen2.5-VL cookbooks do. The tools' argument models live here
as pydantic models; the ``<tools>`` JSON schema is generated from them, narrowed to the actions
the device offers. Kinds the cookbook tools lack (ask_user, every robot kind) are offered as
generic tools named after our action kinds, in the same ``<tool_call>`` form.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from pixelpilot.agent.actions import (
    BY_KIND,
    Click,
    Drag,
    Finish,
    Hotkey,
    LongPress,
    Move,
    OpenApp,
    Scroll,
    Space,
    Swipe,
    SystemButton,
    Tap,
    TypeText,
    Wait,
    action_from_call,
    point_fields,
    tool_specs,
)
from pixelpilot.agent.dialects._text import (
    call_arguments,
    clean,
    json_object,
    require,
    split_keys,
    tidy_schema,
    xy,
)
from pixelpilot.agent.dialects.base import StepContext
from pixelpilot.agent.dialects.grammars import qwen25vl_grammar
from pixelpilot.agent.dialects.legacy import LegacyDialect
from pixelpilot.agent.errors import ParseError
from pixelpilot.vlm.base import JsonForm

Coordinate = Annotated[list[int], Field(min_length=2, max_length=2)]
_XY = "(x, y): The x (pixels from the left edge) and y (pixels from the top edge) coordinates"


class ComputerUseArgs(BaseModel):
    """Arguments of the cookbook's ``computer_use`` tool."""

    model_config = ConfigDict(extra="forbid", strict=True)
    action: Literal[
        "key", "type", "mouse_move", "left_click", "left_click_drag", "right_click",
        "middle_click", "double_click", "scroll", "wait", "terminate",
    ]  # fmt: skip
    keys: list[str] | None = Field(None, description="Required only by `action=key`.")
    text: str | None = Field(None, description="Required only by `action=type`.")
    coordinate: Coordinate | None = Field(
        None,
        description=f"{_XY} to move the mouse to. Required only by `action=mouse_move`, "
        "`action=left_click_drag` and the click actions.",
    )
    pixels: int | None = Field(
        None,
        description="The amount of scrolling to perform. Positive values scroll up, negative "
        "values scroll down. Required only by `action=scroll`.",
    )
    time: float | None = Field(
        None, description="The seconds to wait. Required only by `action=wait`."
    )
    status: Literal["success", "failure"] | None = Field(
        None, description="The status of the task. Required only by `action=terminate`."
    )


class MobileUseArgs(BaseModel):
    """Arguments of the cookbook's ``mobile_use`` tool."""

    model_config = ConfigDict(extra="forbid", strict=True)
    action: Literal[
        "key", "click", "long_press", "swipe", "type", "system_button", "open", "wait", "terminate"
    ]
    coordinate: Coordinate | None = Field(
        None,
        description=f"{_XY} to move the mouse to. Required only by `action=click`, "
        "`action=long_press`, and `action=swipe`.",
    )
    coordinate2: Coordinate | None = Field(
        None, description=f"{_XY} to move the mouse to. Required only by `action=swipe`."
    )
    text: str | None = Field(
        None, description="Required only by `action=key`, `action=type`, and `action=open`."
    )
    time: float | None = Field(
        None,
        description="The seconds to wait. Required only by `action=long_press` and `action=wait`.",
    )
    button: Literal["Back", "Home", "Menu", "Enter"] | None = Field(
        None,
        description="Back means returning to the previous interface, Home means returning to the "
        "desktop, Menu means opening the application background menu, and Enter means pressing "
        "the enter. Required only by `action=system_button`",
    )
    status: Literal["success", "failure"] | None = Field(
        None, description="The status of the task. Required only by `action=terminate`."
    )


@dataclass(frozen=True)
class _Tool:
    """A cookbook tool: its argument model, and per action: our kind, required args, bullet."""

    name: str
    model: type[BaseModel]
    description: str
    actions: dict[str, tuple[str, tuple[str, ...], str]]

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(kind for kind, _, _ in self.actions.values())


_COMMON = (
    "* Some applications may take time to start or process actions, so you may need to wait "
    "and take successive screenshots to see the results of your actions."
)
_CENTRE = (
    "* Make sure to click any buttons, links, icons, etc with the cursor tip in the center of "
    "the element. Don't click boxes on their edges unless asked."
)
COMPUTER_USE = _Tool(
    "computer_use",
    ComputerUseArgs,
    "Use a mouse and keyboard to interact with a computer, and take screenshots.\n"
    "* This is an interface to a desktop GUI. You do not have access to a terminal or "
    "applications menu. You must click on desktop icons to start applications.\n"
    f"{_COMMON}\n* The screen's resolution is {{w}}x{{h}}.\n"
    "* Whenever you intend to move the cursor to click on an element like an icon, you should "
    "consult a screenshot to determine the coordinates of the element before moving the cursor.\n"
    f"{_CENTRE}",
    {
        "key": (
            "hotkey",
            ("keys",),
            (
                "Performs key down presses on the arguments passed in order, then performs key "
                "releases in reverse order."
            ),
        ),
        "type": ("type", ("text",), "Type a string of text on the keyboard."),
        "mouse_move": (
            "move",
            ("coordinate",),
            "Move the cursor to a specified (x, y) pixel coordinate on the screen.",
        ),
        "left_click": ("click", ("coordinate",), "Click the left mouse button."),
        "left_click_drag": (
            "drag",
            ("coordinate",),
            "Click and drag the cursor to a specified (x, y) pixel coordinate on the screen.",
        ),
        "right_click": ("click", ("coordinate",), "Click the right mouse button."),
        "middle_click": ("click", ("coordinate",), "Click the middle mouse button."),
        "double_click": ("click", ("coordinate",), "Double-click the left mouse button."),
        "scroll": ("scroll", ("pixels",), "Performs a scroll of the mouse scroll wheel."),
        "wait": ("wait", ("time",), "Wait specified seconds for the change to happen."),
        "terminate": (
            "finish",
            ("status",),
            "Terminate the current task and report its completion status.",
        ),
    },
)
MOBILE_USE = _Tool(
    "mobile_use",
    MobileUseArgs,
    "Use a touchscreen to interact with a mobile device, and take screenshots.\n"
    "* This is an interface to a mobile device with touchscreen. You can perform actions like "
    f"clicking, typing, swiping, etc.\n{_COMMON}\n* The screen's resolution is {{w}}x{{h}}.\n"
    f"{_CENTRE}",
    {
        "key": (
            "hotkey",
            ("text",),
            (
                "Perform a key event on the mobile device.\n    - This supports adb's `keyevent` "
                'syntax.\n    - Examples: "volume_up", "volume_down", "power", "camera", "clear".'
            ),
        ),
        "click": ("tap", ("coordinate",), "Click the point on the screen with coordinate (x, y)."),
        "long_press": (
            "long_press",
            ("coordinate",),
            "Press the point on the screen with coordinate (x, y) for specified seconds.",
        ),
        "swipe": (
            "swipe",
            ("coordinate", "coordinate2"),
            (
                "Swipe from the starting point with coordinate (x, y) to the end point with "
                "coordinates2 (x2, y2)."
            ),
        ),
        "type": ("type", ("text",), "Input the specified text into the activated input box."),
        "system_button": ("system_button", ("button",), "Press the system button."),
        "open": ("open_app", ("text",), "Open an app on the device."),
        "wait": ("wait", ("time",), "Wait specified seconds for the change to happen."),
        "terminate": (
            "finish",
            ("status",),
            "Terminate the current task and report its completion status.",
        ),
    },
)
TOOLS = {"computer_use": COMPUTER_USE, "mobile_use": MOBILE_USE}
_BY_DEVICE = {"desktop": "computer_use", "mobile": "mobile_use"}

_HEADER = (
    "You are a helpful assistant.\n\n# Tools\n\nYou may call one or more functions to assist "
    "with the user query.\n\nYou are provided with function signatures within <tools></tools> "
    "XML tags:\n<tools>\n"
)
_FOOTER = (
    "\n</tools>\n\nFor each function call, return a json object with function name and "
    "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>\n\n'
    "Call exactly one function per answer."
)
_EXAMPLE = '<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>'


@lru_cache(maxsize=64)
def args_model(tool: str, actions: tuple[str, ...]) -> type[BaseModel]:
    """The tool's argument model with ``action`` narrowed to ``actions`` (for the schema)."""
    spec = TOOLS[tool]
    bullets = "\n".join(f"* `{a}`: {spec.actions[a][2]}" for a in actions)
    desc = f"The action to perform. The available actions are:\n{bullets}"
    narrowed: Any = Literal[actions]
    return create_model(
        spec.model.__name__, __base__=spec.model, action=(narrowed, Field(description=desc))
    )


class Qwen25VLDialect(LegacyDialect):
    """Qwen2.5-VL-*-Instruct with the cookbook computer_use / mobile_use tools."""

    name: ClassVar[str] = "qwen25vl"
    space: ClassVar[Space] = "resized_px"

    def _offer(self, ctx: StepContext) -> tuple[str | None, list[str], list[str]]:
        """(cookbook tool or None, its offered actions, generic tool names) for this device."""
        tool = _BY_DEVICE.get(ctx.device_kind)
        if tool is None:
            return None, [], [s["name"] for s in tool_specs(ctx.kinds)]
        spec = TOOLS[tool]
        actions = [a for a, (kind, _, _) in spec.actions.items() if kind in ctx.kinds]
        generic = [s["name"] for s in tool_specs(ctx.kinds - spec.kinds)]
        return (tool if actions else None), actions, generic

    def system_prompt(self, ctx: StepContext) -> str:
        w, h = ctx.resized
        tool, actions, generic = self._offer(ctx)
        funcs: list[dict[str, Any]] = []
        if tool is not None:
            schema = tidy_schema(args_model(tool, tuple(actions)).model_json_schema())
            schema.pop("description", None)
            desc = TOOLS[tool].description.format(w=w, h=h)
            funcs.append({"name": tool, "description": desc, "parameters": schema})
        note = f" Points are [x, y] pixels of the screenshot, whose resolution is {w}x{h}."
        for spec in tool_specs(frozenset(generic)):
            if point_fields(BY_KIND[spec["name"]]):
                spec = {**spec, "description": spec["description"] + note}
            funcs.append(spec)
        lines = [json.dumps({"type": "function", "function": f}, ensure_ascii=False) for f in funcs]
        return _HEADER + "\n".join(lines) + _FOOTER

    def offered(self, ctx: StepContext) -> list[str]:
        tool, actions, generic = self._offer(ctx)
        return actions + generic

    def _parse(self, raw: str, ctx: StepContext) -> Any:
        text = clean(raw)
        opened = text.count("<tool_call>")
        if opened == 0:
            raise ParseError(f"no <tool_call> block; answer with {_EXAMPLE}")
        if opened > 1:
            raise ParseError("one call per answer: write a single <tool_call> block")
        open_at = text.find("<tool_call>") + len("<tool_call>")
        close_at = text.find("</tool_call>", open_at)
        if close_at < 0:
            raise ParseError("the <tool_call> block is not closed; end it with </tool_call>")
        obj = json_object(text[open_at:close_at], "<tool_call>", _EXAMPLE, exact=True)
        name, args = obj.get("name"), obj.get("arguments")
        if isinstance(args, str):
            args = json_object(args, '"arguments"', '"arguments": {...}', exact=True)
        if (
            not isinstance(name, str)
            or not isinstance(args, dict)
            or set(obj) - {"name", "arguments"}
        ):
            raise ParseError('the <tool_call> JSON must be {"name": ..., "arguments": {...}}')
        tool, actions, generic = self._offer(ctx)
        if name == tool:
            return self._cookbook(name, args, actions, ctx)
        if name in generic:
            action = action_from_call(name, args, self.space)
            return require(action, ctx, self.space, repr(name), generic)
        offered = ([tool] if tool else []) + generic
        raise ParseError(f"unknown tool {name!r}; use one of: {', '.join(offered)}")

    def _cookbook(
        self, tool: str, args: dict[str, Any], actions: list[str], ctx: StepContext
    ) -> Any:
        spec = TOOLS[tool]
        act = args.get("action")
        if not isinstance(act, str) or act not in spec.actions:
            raise ParseError(f"{tool}: unknown action {act!r}; use one of: {', '.join(actions)}")
        try:
            m: Any = spec.model.model_validate(args)
        except ValidationError as err:
            e = err.errors()[0]
            where = ".".join(str(p) for p in e["loc"])
            what = "is not an argument" if e["type"] == "extra_forbidden" else e["msg"]
            raise ParseError(f"{tool} {act}: {where!r} {what}") from None
        for need in spec.actions[act][1]:
            if getattr(m, need) is None:
                raise ParseError(f"{tool} {act} needs {need!r}")
        kind, call = _to_call(tool, m)
        action = action_from_call(kind, call, self.space)
        return require(action, ctx, self.space, f"{tool} action {act!r}", actions)

    def grammar(self, ctx: StepContext) -> str:
        resized = (ctx.resized[0], ctx.resized[1])

        def build() -> str:
            tool, actions, generic = self._offer(ctx)
            spec = TOOLS[tool] if tool is not None else None
            return qwen25vl_grammar(spec, actions, frozenset(generic), resized)

        return self.cached((ctx.device_kind, ctx.kinds, resized), build)

    def json_form(self, ctx: StepContext) -> JsonForm:
        """``{"name": ..., "arguments": {...}}``: the ``<tool_call>`` body, each coordinate
        bounded by the image."""
        w, h = ctx.resized
        tool, actions, generic = self._offer(ctx)
        tools = []
        if tool is not None:
            schema = tidy_schema(args_model(tool, tuple(actions)).model_json_schema())
            schema.pop("description", None)
            for name in ("coordinate", "coordinate2"):
                if name in schema["properties"]:
                    schema["properties"][name]["prefixItems"] = [
                        {"type": "integer", "minimum": 0, "maximum": w},
                        {"type": "integer", "minimum": 0, "maximum": h},
                    ]
            tools.append((tool, schema))
        tools += [
            (s["name"], s["parameters"]) for s in tool_specs(frozenset(generic), (0, max(w, h)))
        ]
        one = [
            {
                "type": "object",
                "properties": {"name": {"const": name}, "arguments": args},
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
            for name, args in tools
        ]
        return JsonForm({"anyOf": one}, _tool_call_text)

    def format(self, action: Any, ctx: StepContext) -> str:
        tool = _BY_DEVICE.get(ctx.device_kind)
        if tool is not None and action.kind in TOOLS[tool].kinds:
            args = _from_action(tool, action, self.space)
            name = tool
        else:
            args, name = call_arguments(action, self.space, self.name), action.kind
        body = json.dumps({"name": name, "arguments": args}, ensure_ascii=False)
        return f"<tool_call>\n{body}\n</tool_call>"


def _tool_call_text(name: str, arguments: Any) -> str:
    body = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
    return f"<tool_call>\n{body}\n</tool_call>"


def _to_call(tool: str, m: Any) -> tuple[str, dict[str, Any]]:
    """(our kind, call arguments) for validated cookbook arguments ``m``."""
    a, c = m.action, m.coordinate
    if a in ("left_click", "right_click", "middle_click", "double_click", "click"):
        kind = "tap" if tool == "mobile_use" else "click"
        extras: dict[str, dict[str, Any]] = {
            "right_click": {"button": "right"},
            "middle_click": {"button": "middle"},
            "double_click": {"count": 2},
        }
        extra = extras.get(a, {})
        return kind, {"point": c, **extra}
    if a == "key":
        return "hotkey", {"keys": split_keys(m.keys if tool == "computer_use" else [m.text])}
    if a == "scroll":
        if m.pixels == 0:
            raise ParseError("computer_use scroll: 'pixels' must not be 0 (positive scrolls up)")
        direction = "up" if m.pixels > 0 else "down"
        return "scroll", {"direction": direction, "amount": abs(m.pixels), "point": c}
    simple: dict[str, tuple[str, dict[str, Any]]] = {
        "type": ("type", {"text": m.text}),
        "mouse_move": ("move", {"point": c}),
        "left_click_drag": ("drag", {"end": c}),
        "wait": ("wait", {"seconds": m.time}),
        "terminate": ("finish", {"status": m.status}),
    }
    if tool == "mobile_use":
        simple |= {
            "long_press": ("long_press", {"point": c} | ({"seconds": m.time} if m.time else {})),
            "swipe": ("swipe", {"start": c, "end": m.coordinate2}),
            "system_button": ("system_button", {"button": (m.button or "").lower()}),
            "open": ("open_app", {"app": m.text}),
        }
    return simple[a]


def _from_action(tool: str, a: Any, space: Space) -> dict[str, Any]:
    """Cookbook arguments writing ``a``; ValueError where the tool cannot express it."""

    def pt(p: Any) -> list[int | float]:
        out = xy(p, space, "qwen25vl")
        if not all(isinstance(v, int) for v in out):
            raise ValueError(f"{tool} takes integer pixel coordinates, got {p}")
        return out

    if tool == "computer_use":
        if isinstance(a, Click):
            names = {("left", 1): "left_click", ("right", 1): "right_click",
                     ("middle", 1): "middle_click", ("left", 2): "double_click"}  # fmt: skip
            if (a.button, a.count) not in names:
                raise ValueError(f"computer_use cannot click {a.button} x{a.count}")
            return {"action": names[a.button, a.count], "coordinate": pt(a.point)}
        if isinstance(a, Move):
            return {"action": "mouse_move", "coordinate": pt(a.point)}
        if isinstance(a, Drag):
            if a.start is not None or a.button != "left":
                raise ValueError("computer_use left_click_drag drags from the pointer with the "
                                 "left button: use Move, then Drag(start=None)")  # fmt: skip
            return {"action": "left_click_drag", "coordinate": pt(a.end)}
        if isinstance(a, Scroll):
            if a.direction not in ("up", "down"):
                raise ValueError(f"computer_use cannot scroll {a.direction}")
            out: dict[str, Any] = {
                "action": "scroll",
                "pixels": a.amount if a.direction == "up" else -a.amount,
            }
            return out | ({"coordinate": pt(a.point)} if a.point is not None else {})
        if isinstance(a, Hotkey):
            return {"action": "key", "keys": list(a.keys)}
    else:
        if isinstance(a, Tap):
            return {"action": "click", "coordinate": pt(a.point)}
        if isinstance(a, LongPress):
            return {"action": "long_press", "coordinate": pt(a.point), "time": a.seconds}
        if isinstance(a, Swipe):
            if a.seconds != Swipe.model_fields["seconds"].default:
                raise ValueError("mobile_use swipe has no duration")
            return {"action": "swipe", "coordinate": pt(a.start), "coordinate2": pt(a.end)}
        if isinstance(a, SystemButton):
            return {"action": "system_button", "button": a.button.capitalize()}
        if isinstance(a, OpenApp):
            return {"action": "open", "text": a.app}
        if isinstance(a, Hotkey):
            if len(a.keys) != 1:
                raise ValueError("mobile_use key takes one key")
            return {"action": "key", "text": a.keys[0]}
    if isinstance(a, TypeText):
        return {"action": "type", "text": a.text}
    if isinstance(a, Wait):
        return {"action": "wait", "time": a.seconds}
    if isinstance(a, Finish):
        if a.answer:
            raise ValueError(f"{tool} terminate has no answer; only a status")
        return {"action": "terminate", "status": a.status}
    raise ValueError(f"{tool} cannot express {a.kind!r}")  # pragma: no cover - guarded by kinds


__all__ = ["TOOLS", "ComputerUseArgs", "MobileUseArgs", "Qwen25VLDialect", "args_model"]
