"""Decoding grammars of the families not yet ported to the table engine: Qwen2.5-VL's
``<tool_call>`` cookbook tools and UI-TARS's ``Thought:``/``Action:`` calls (moved here unchanged
from ``vlm/grammar.py``; they go when those families move onto ``engine.TableDialect``).

Each is built from what the dialect passes in (its tool spec, its Action Space templates and
call writer), never by importing the dialect back: the import graph stays acyclic. The rules
are ``lark``'s; the UI-TARS thought is still one ASCII line of ``UITARS_THOUGHT_TOKENS``.
"""

from __future__ import annotations

import re
from typing import Any

from pixelpilot.agent.actions import (
    BY_KIND,
    AskUser,
    Finish,
    Hotkey,
    OpenApp,
    Point,
    TypeText,
    arguments_schema,
    point_fields,
    tool_specs,
)
from pixelpilot.agent.dialects._text import fit, tidy_schema
from pixelpilot.agent.dialects.lark import (
    TEXT_CHARS,
    bounded,
    coordinate_schema,
    int_range_regex,
    lark_json,
    lark_str,
    regex_literal,
    text_schema,
)
from pixelpilot.agent.keys import GRAMMAR_KEYS

__all__ = ["UITARS_THOUGHT_TOKENS", "generic_args", "qwen25vl_grammar", "uitars_grammar"]

UITARS_THOUGHT_TOKENS = 48
"""Longest UI-TARS thought, in tokens (one line of printable ASCII)."""


def generic_args(kind: str, extent: tuple[int, int]) -> dict[str, Any]:
    """A generic tool's arguments (``arguments_schema``) with points and values bounded."""
    schema = arguments_schema(kind)
    points = set(point_fields(BY_KIND[kind]))
    props = {
        name: coordinate_schema(extent) if name in points else bounded(prop)
        for name, prop in schema["properties"].items()
    }
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if schema.get("required"):
        out["required"] = schema["required"]
    return out


# -- qwen25vl ----------------------------------------------------------------------------------
def _cookbook_action(spec: Any, action: str, extent: tuple[int, int]) -> dict[str, Any]:
    """Arguments of one cookbook action: ``action`` first, then exactly what it needs."""
    _, needs, _ = spec.actions[action]
    props: dict[str, Any] = {"action": {"const": action}}
    required = ["action", *needs]
    for need in needs:
        props[need] = _cookbook_value(spec, action, need, extent)
    if (spec.name, action) == ("computer_use", "scroll"):
        props["coordinate"] = coordinate_schema(extent)  # where to scroll; optional
    if (spec.name, action) == ("mobile_use", "long_press"):
        props["time"] = _cookbook_value(spec, action, "time", extent)  # optional
    return {
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": False,
    }


def _cookbook_value(spec: Any, action: str, name: str, extent: tuple[int, int]) -> dict[str, Any]:
    """The bounded schema of one cookbook argument, from its pydantic field and our action."""
    if name in ("coordinate", "coordinate2"):
        return coordinate_schema(extent)
    if name == "keys":  # computer_use key: a list of key names
        return bounded({"type": "array", "items": {"type": "string"}})
    if name == "text" and action == "key":  # mobile_use key: one key name
        return {"enum": list(GRAMMAR_KEYS)}
    if name == "text":
        return text_schema(1)
    if name == "pixels":  # scroll: positive is up, never 0, |pixels| is the wheel amount
        hi = arguments_schema("scroll")["properties"]["amount"]["maximum"]
        return {
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": hi},
                {"type": "integer", "minimum": -hi, "maximum": -1},
            ]
        }
    if name == "time":
        kind = spec.actions[action][0]
        seconds = arguments_schema(kind)["properties"]["seconds"]
        return bounded(seconds)
    field = spec.model.model_json_schema()["properties"][name]
    return bounded(tidy_schema(field))


def qwen25vl_grammar(
    spec: Any | None, actions: list[str], generic: frozenset[str], resized: tuple[int, int]
) -> str:
    """``<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>``: the cookbook tool's
    offered ``actions`` (``spec``: the tool, None on a device without one) and the ``generic``
    tools, points in pixels of the resized image."""
    calls: list[dict[str, Any]] = []
    if spec is not None and actions:
        args = [_cookbook_action(spec, a, resized) for a in actions]
        calls.append(_call(spec.name, {"anyOf": args} if len(args) > 1 else args[0]))
    for spec_ in tool_specs(generic):
        calls.append(_call(spec_["name"], generic_args(spec_["name"], resized)))
    if not calls:
        raise ValueError("no action kinds to offer")
    body = {"anyOf": calls} if len(calls) > 1 else calls[0]
    open_, close = lark_str("<tool_call>\n"), lark_str("\n</tool_call>")
    return f"start: {open_} call {close}\ncall: {lark_json(body)}"


def _call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"name": {"const": name}, "arguments": arguments},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


# -- UI-TARS -----------------------------------------------------------------------------------
_SX, _SY = 90001, 90002
"""Sentinel coordinates: where they appear in a formatted template, a coordinate goes."""
_HOLES = {"\x01T": "TEXT", "\x01A": "TEXT", "\x01F": "TEXT", "\x01K": "KEYS"}
_PIECE = re.compile(rf"(<\|box_start\|>|<\|box_end\|>|{_SX}|{_SY}|\x01[TAFK]|direction='down')")
_THOUGHT = r"/[ -;=-~]{1,400}/"
"""One line of printable ASCII without '<'; its length is bounded in tokens."""
_QUOTED_CHAR = r"(?:[^'\\\x00-\x1f\x7f-\x9f<]|\\[nt'\\])"
"""One character of a single-quoted value: no bare quote or backslash, escapes \\n \\t \\' \\\\."""


def _holed(template: Any) -> Any:
    """``template`` with sentinel points and strings, so its formatted call shows the holes."""
    update: dict[str, Any] = {
        name: Point(x=_SX, y=_SY, space=getattr(template, name).space)
        for name in point_fields(type(template))
        if getattr(template, name) is not None
    }
    if isinstance(template, TypeText):
        update["text"] = "\x01T"
    elif isinstance(template, OpenApp):
        update["app"] = "\x01A"
    elif isinstance(template, Finish) and template.answer:
        update["answer"] = "\x01F"
    elif isinstance(template, Hotkey):
        update["keys"] = ["\x01K"]
    return template.model_copy(update=update)


def _call_rule(call: str) -> str:
    """A formatted template call with holes -> a Lark sequence."""
    out = []
    for piece in _PIECE.split(call):
        if not piece:
            continue
        if piece.startswith("<|"):
            out.append(piece)  # a special token (UI-TARS v1's box markers)
        elif piece == str(_SX):
            out.append("X")
        elif piece == str(_SY):
            out.append("Y")
        elif piece == "direction='down'":
            out.append('"direction=\'" DIRECTION "\'"')
        elif piece in _HOLES:
            out.append(_HOLES[piece])
        else:
            out.append(lark_str(piece))
    return " ".join(out)


def uitars_grammar(dialect: Any, ctx: Any, extent: tuple[int, int]) -> str:
    """``Thought: ...`` then ``Action: call(...)`` for each Action Space line the device fits:
    the ``dialect``'s templates (``_templates``) written by its own ``_call``."""
    w, h = extent
    device_kind = ctx.device_kind
    calls = []
    for template in dialect._templates(device_kind):
        if fit(template, ctx, dialect.space) is None:
            continue
        rule = _call_rule(dialect._call(_holed(template)))
        if rule not in calls:
            calls.append(rule)
    if not calls:
        raise ValueError("no action kinds to offer")
    if not any(isinstance(t, AskUser) for t in dialect._templates(device_kind)):
        raise AssertionError("UI-TARS templates lost call_user")  # pragma: no cover
    key = "(?:" + "|".join(regex_literal(k) for k in GRAMMAR_KEYS) + ")"
    return "\n".join(
        [
            'start: "Thought: " thought "\\nAction: " call',
            f"thought[max_tokens={UITARS_THOUGHT_TOKENS}]: THOUGHT",
            f"THOUGHT: {_THOUGHT}",
            "call: " + " | ".join(f"c{i}" for i in range(len(calls))),
            *(f"c{i}: {rule}" for i, rule in enumerate(calls)),
            f"X: /{int_range_regex(w)}/",
            f"Y: /{int_range_regex(h)}/",
            f"TEXT: /{_QUOTED_CHAR}{{1,{TEXT_CHARS}}}/",
            f"KEYS: /{key}(?: {key}){{0,2}}/",
            'DIRECTION: "up" | "down" | "left" | "right"',
        ]
    )
