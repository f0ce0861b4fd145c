"""Decoding grammars of the families not yet ported to the table engine: Qwen2.5-VL's
``<tool_call>`` cookbook tools (moved here unchanged from ``vlm/grammar.py``; it goes when the
family moves onto ``engine.TableDialect``) and the one-line thought OS-Atlas-Pro still uses.

Each is built from what the dialect passes in (its tool spec, its Action Space templates and
call writer), never by importing the dialect back: the import graph stays acyclic.
"""

from __future__ import annotations

from typing import Any

from pixelpilot.agent.actions import (
    BY_KIND,
    arguments_schema,
    point_fields,
    tool_specs,
)
from pixelpilot.agent.dialects._text import tidy_schema
from pixelpilot.agent.dialects.lark import (
    bounded,
    coordinate_schema,
    lark_json,
    lark_str,
    text_schema,
)
from pixelpilot.agent.keys import GRAMMAR_KEYS

__all__ = ["UITARS_THOUGHT_TOKENS", "generic_args", "qwen25vl_grammar"]

UITARS_THOUGHT_TOKENS = 48
"""Longest one-line thought, in tokens (OS-Atlas-Pro's, until it is ported)."""


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


# -- the one-line thought OS-Atlas still uses ---------------------------------------------------
_THOUGHT = r"/[ -;=-~]{1,400}/"
"""One line of printable ASCII without '<'; its length is bounded in tokens."""
