"""Decoding grammars: Lark (for llguidance) that admits only calls a dialect parses and validates.

Each grammar is built from the schemas the dialect puts in its prompt (``tool_specs`` /
``arguments_schema``, qwen25vl's cookbook argument models, UI-TARS's Action Space templates)
and wrapped in the dialect's own markers (``✿FUNCTION✿``/``✿ARGS✿``, ``<tool_call>``,
``Thought:``/``Action:``). JSON goes through ``%json{...}``. So that every accepted string
parses, validates and lands on the screen:

- no flexible whitespace: JSON is written as ``json.dumps`` writes it (``", "`` and ``": "``);
- coordinates are integers within the dialect's space: 0..1000, or 0..resized w/h per axis;
- every string is bounded (``TEXT_CHARS``), holds no control characters (the desktop refuses
  them), no ``<`` (``<|im_end|>``/``</tool_call>`` would cut the answer short) and no ``✿``;
  JSON escapes are limited to ``\\n \\t \\" \\\\`` (no ``\\u``: no lone surrogates);
- numbers have bounded digits (``multipleOf``), keys come from a fixed list of key names;
- the UI-TARS thought is one line of printable ASCII, at most ``THOUGHT_TOKENS`` tokens.

Worst case, every string at its bound written one byte per token, still fits
``MAX_NEW_TOKENS`` (a test checks it by an adversarial walk). Grammars depend on the device kind,
the offered kinds and, for ``resized_px`` dialects, the resized size: they are cached on those,
so building a prompt stays cheap.
"""

from __future__ import annotations

import functools
import json
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
from pixelpilot.tools.desktop_plan import KNOWN_KEYS

__all__ = [
    "KEY_NAMES",
    "MAX_NEW_TOKENS",
    "TEXT_CHARS",
    "THOUGHT_TOKENS",
    "int_range_regex",
    "qwen2vl_grammar",
    "qwen25vl_grammar",
    "uitars_grammar",
]

MAX_NEW_TOKENS = 1024
"""The generation budget the grammars are sized for (the local backend's default). Decoding
pays only for the tokens produced, and the grammar ends every call well before it."""
TEXT_CHARS = 200
"""Longest free text (typed text, answer, question, app name): 4 bytes a character at worst,
enough for a street address or a sentence to type."""
THOUGHT_TOKENS = 48
"""Longest UI-TARS thought, in tokens."""
KEY_CHARS = frozenset("'\"\\<")
"""Characters no key name may hold (they would end or cut the quoted value)."""
KEY_NAMES: tuple[str, ...] = tuple(
    sorted(k for k in KNOWN_KEYS if k.strip() == k and k and not set(k) & KEY_CHARS)
)
"""Key names a grammar offers: the desktop's known keys, without blanks and quote characters."""

_TEXT_PATTERN = "^[^\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f<✿]*$"
"""Free text as the JSON schema ``pattern`` of the decoded value (\\n and \\t are allowed)."""
_JSON_OPTIONS = {
    "whitespace_flexible": False,
    "item_separator": ", ",
    "key_separator": ": ",
    "json_allowed_escapes": 'nt"\\',
}


# -- building blocks ---------------------------------------------------------------------------
def lark_str(s: str) -> str:
    """``s`` as a Lark string literal."""
    return json.dumps(s, ensure_ascii=False)


def lark_json(schema: dict[str, Any]) -> str:
    """``%json{...}`` for ``schema``, compact, with the fixed separators and escapes."""
    return "%json" + json.dumps({"x-guidance": _JSON_OPTIONS, **schema}, ensure_ascii=False)


def int_range_regex(hi: int) -> str:
    """A regex (no anchors) matching the decimal integers 0..hi, without sign or leading zeros."""
    if hi < 0:
        raise ValueError(f"empty integer range 0..{hi}")
    s = str(hi)
    n = len(s)
    alts = [f"[1-9][0-9]{{{d - 1}}}" if d > 1 else "[0-9]" for d in range(1, n)]
    for i in range(n):
        lo = 1 if i == 0 and n > 1 else 0
        top = int(s[i]) - 1
        if top >= lo:
            rest = f"[0-9]{{{n - i - 1}}}" if n - i - 1 else ""
            alts.append(f"{s[:i]}[{lo}-{top}]{rest}")
    alts.append(s)
    return "(?:" + "|".join(alts) + ")"


def _text_schema(min_length: int = 0) -> dict[str, Any]:
    return {
        "type": "string",
        "minLength": min_length,
        "maxLength": TEXT_CHARS,
        "pattern": _TEXT_PATTERN,
    }


def _coordinate(extent: tuple[int, int]) -> dict[str, Any]:
    """``[x, y]``: integers within 0..w and 0..h."""
    return {
        "type": "array",
        "prefixItems": [
            {"type": "integer", "minimum": 0, "maximum": extent[0]},
            {"type": "integer", "minimum": 0, "maximum": extent[1]},
        ],
        "items": False,
        "minItems": 2,
        "maxItems": 2,
    }


def _bounded(prop: dict[str, Any]) -> dict[str, Any]:
    """A generated property schema with every string, list and number bounded for decoding."""
    kind = prop.get("type")
    if "enum" in prop or "const" in prop:
        return {k: prop[k] for k in ("enum", "const", "type") if k in prop}
    if kind == "string":
        return _text_schema(min(int(prop.get("minLength", 0)), TEXT_CHARS))
    if kind == "array" and prop.get("items", {}).get("type") == "string":  # hotkey keys
        return {
            "type": "array",
            "items": {"enum": list(KEY_NAMES)},
            "minItems": prop.get("minItems", 1),
            "maxItems": min(prop.get("maxItems", 3), 3),
        }
    if kind == "number":
        out = {k: prop[k] for k in ("minimum", "maximum", "exclusiveMinimum") if k in prop}
        step = 0.01 if out.get("maximum", 2) <= 1 else 0.1
        return {"type": "number", **out, "multipleOf": step}
    if kind == "integer":
        return {k: prop[k] for k in ("type", "minimum", "maximum") if k in prop}
    raise ValueError(f"no decoding bound for the schema {prop}")


def _generic_args(kind: str, extent: tuple[int, int]) -> dict[str, Any]:
    """A generic tool's arguments (``arguments_schema``) with points and values bounded."""
    schema = arguments_schema(kind)
    points = set(point_fields(BY_KIND[kind]))
    props = {
        name: _coordinate(extent) if name in points else _bounded(prop)
        for name, prop in schema["properties"].items()
    }
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if schema.get("required"):
        out["required"] = schema["required"]
    return out


def _extent(space: str, resized: tuple[int, int] | None) -> tuple[int, int]:
    if space == "norm1000":
        return (1000, 1000)
    if resized is None:
        raise ValueError("a resized_px grammar needs the resized image size")
    return resized


# -- qwen2vl -----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=64)
def qwen2vl_grammar(kinds: frozenset[str]) -> str:
    """``✿FUNCTION✿: name`` then ``✿ARGS✿: {json}`` for each offered kind, points in norm1000."""
    from pixelpilot.agent.dialects.qwen2vl import FN_ARGS, FN_NAME

    rules = []
    names = []
    for spec in tool_specs(kinds):
        name = spec["name"]
        names.append(f"f_{name}")
        head = lark_str(f"{name}\n{FN_ARGS}: ")
        rules.append(f"f_{name}: {head} {lark_json(_generic_args(name, (1000, 1000)))}")
    if not rules:
        raise ValueError("no action kinds to offer")
    return "\n".join(
        [f"start: {lark_str(FN_NAME + ': ')} call", "call: " + " | ".join(names), *rules]
    )


# -- qwen25vl ----------------------------------------------------------------------------------
def _cookbook_action(tool: str, action: str, extent: tuple[int, int]) -> dict[str, Any]:
    """Arguments of one cookbook action: ``action`` first, then exactly what it needs."""
    from pixelpilot.agent.dialects.qwen25vl import TOOLS

    _, needs, _ = TOOLS[tool].actions[action]
    props: dict[str, Any] = {"action": {"const": action}}
    required = ["action", *needs]
    for need in needs:
        props[need] = _cookbook_value(tool, action, need, extent)
    if (tool, action) == ("computer_use", "scroll"):
        props["coordinate"] = _coordinate(extent)  # where to scroll; optional
    if (tool, action) == ("mobile_use", "long_press"):
        props["time"] = _cookbook_value(tool, action, "time", extent)  # optional
    return {
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": False,
    }


def _cookbook_value(tool: str, action: str, name: str, extent: tuple[int, int]) -> dict[str, Any]:
    """The bounded schema of one cookbook argument, from its pydantic field and our action."""
    from pixelpilot.agent.dialects._text import tidy_schema
    from pixelpilot.agent.dialects.qwen25vl import TOOLS

    if name in ("coordinate", "coordinate2"):
        return _coordinate(extent)
    if name == "keys":  # computer_use key: a list of key names
        return _bounded({"type": "array", "items": {"type": "string"}})
    if name == "text" and action == "key":  # mobile_use key: one key name
        return {"enum": list(KEY_NAMES)}
    if name == "text":
        return _text_schema(1)
    if name == "pixels":  # scroll: positive is up, never 0, |pixels| is the wheel amount
        hi = arguments_schema("scroll")["properties"]["amount"]["maximum"]
        return {
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": hi},
                {"type": "integer", "minimum": -hi, "maximum": -1},
            ]
        }
    if name == "time":
        kind = TOOLS[tool].actions[action][0]
        seconds = arguments_schema(kind)["properties"]["seconds"]
        return _bounded(seconds)
    field = TOOLS[tool].model.model_json_schema()["properties"][name]
    return _bounded(tidy_schema(field))


@functools.lru_cache(maxsize=256)
def qwen25vl_grammar(device_kind: str, kinds: frozenset[str], resized: tuple[int, int]) -> str:
    """``<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>``: the cookbook tool's
    offered actions and the generic tools, points in pixels of the resized image."""
    from pixelpilot.agent.dialects.qwen25vl import _BY_DEVICE, TOOLS

    tool = _BY_DEVICE.get(device_kind)
    calls: list[dict[str, Any]] = []
    generic = set(kinds)
    if tool is not None:
        spec = TOOLS[tool]
        actions = [a for a, (kind, _, _) in spec.actions.items() if kind in kinds]
        generic -= spec.kinds
        if actions:
            args = [_cookbook_action(tool, a, resized) for a in actions]
            calls.append(_call(tool, {"anyOf": args} if len(args) > 1 else args[0]))
    for spec_ in tool_specs(frozenset(generic)):
        calls.append(_call(spec_["name"], _generic_args(spec_["name"], resized)))
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
"""One line of printable ASCII without '<'; its length is bounded in tokens (THOUGHT_TOKENS)."""
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


def _regex_literal(s: str) -> str:
    """``s`` as a literal inside a Lark ``/regex/`` (Rust syntax): punctuation as hex escapes."""
    return "".join(c if c.isalnum() or c == "_" else f"\\x{{{ord(c):02x}}}" for c in s)


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


@functools.lru_cache(maxsize=256)
def uitars_grammar(
    name: str, device_kind: str, kinds: frozenset[str], resized: tuple[int, int] | None
) -> str:
    """``Thought: ...`` then ``Action: call(...)`` for each Action Space line the device fits."""
    from pixelpilot.agent.dialects import get_dialect
    from pixelpilot.agent.dialects._text import fit
    from pixelpilot.agent.dialects.base import StepContext
    from pixelpilot.agent.geometry import ScreenGeometry

    dialect: Any = get_dialect(name)
    w, h = _extent(dialect.space, resized)
    ctx = StepContext(device_kind, kinds, ScreenGeometry(max(w, 1), max(h, 1)), (w, h))
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
    key = "(?:" + "|".join(_regex_literal(k) for k in KEY_NAMES) + ")"
    return "\n".join(
        [
            'start: "Thought: " thought "\\nAction: " call',
            f"thought[max_tokens={THOUGHT_TOKENS}]: THOUGHT",
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
