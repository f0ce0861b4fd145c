"""toolcall: the hermes/Nous ``<tool_call>`` JSON of Qwen2.5-VL, the action inside the arguments.

``<tool_call>\\n{"name": "computer_use", "arguments": {"action": "left_click", "coordinate":
[x, y]}}\\n</tool_call>``. A tool listed in ``groups`` (computer_use, mobile_use) carries the
verb as its ``action`` argument; any other tool name is a verb of its own.

Read as the Qwen2.5-VL cookbooks read it (``json.loads(output_text.split('<tool_call>\\n')[1]
.split('\\n</tool_call>')[0])``, QwenLM/Qwen2.5-VL cookbooks/mobile_agent.ipynb@f0af299) and as
qwen-agent 0.0.15's ``NousFnCallPrompt.postprocess_fncall_messages`` reads it: the text before
``<tool_call>`` is a thought; the body is one JSON object with ``name`` and ``arguments``
(arguments given as a JSON string are decoded too); of several calls the first is taken (the
cookbook executes the first); a block cut before ``</tool_call>`` is read when its JSON is
complete; a bare call object (the whole answer ``{"name": ..., "arguments": ...}``, as a server
constrained to JSON returns it) is a call without a thought. At most CALL_CHARS characters of
a body are read.

Points are ``[x, y]``, JSON numbers: the cookbook declares a coordinate only as ``"type":
"array"``, so fractional pixels are allowed; the grammar admits integers and up to
``POINT_DECIMALS`` decimals within the image.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pixelpilot.agent.dialects._text import CALL_CHARS, json_object
from pixelpilot.agent.dialects.lark import coordinate_schema, lark_json, lark_str
from pixelpilot.agent.dialects.syntax import GrammarSpec, RawCall, Syntax
from pixelpilot.agent.dialects.table import Arg, Verb
from pixelpilot.agent.errors import ParseError
from pixelpilot.vlm.base import JsonForm

__all__ = [
    "CLOSE", "OPEN", "POINT_DECIMALS", "ToolCallSyntax", "call_object", "point_schema",
    "tool_call_text",
]  # fmt: skip

OPEN, CLOSE = "<tool_call>", "</tool_call>"
POINT_DECIMALS = 3
"""Fraction digits the grammar admits in a coordinate (the models write integers)."""
_EXAMPLE = '<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>'


def tool_call_text(name: str, arguments: Any) -> str:
    """One call as the model writes it (and as qwen-agent renders a ``function_call``)."""
    body = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
    return f"{OPEN}\n{body}\n{CLOSE}"


def _split(text: str) -> tuple[str, str] | None:
    """(thought, the first call's body) of ``text``, None when it holds no call; linear."""
    start = text.find(OPEN)
    if start < 0:
        bare = text.startswith("{") and text.endswith("}") and '"arguments"' in text
        return ("", text[:CALL_CHARS]) if bare else None
    body_at = start + len(OPEN)
    end = text.find(CLOSE, body_at, body_at + CALL_CHARS + len(CLOSE))
    body = text[body_at : end if end >= 0 else body_at + CALL_CHARS]
    return text[:start].strip(), body


def call_object(text: str) -> tuple[str, dict[str, Any]] | None:
    """(thought, ``{"name": ..., "arguments": {...}}``) of the first call in ``text``, None
    when it holds none; ParseError for a broken one."""
    parts = _split(text)
    if parts is None:
        return None
    thought, body = parts
    obj = json_object(body, OPEN, _EXAMPLE, exact=True)
    name, args = obj.get("name"), obj.get("arguments")
    if isinstance(args, str):
        args = json_object(args, '"arguments"', '"arguments": {...}', exact=True)
    if not isinstance(name, str) or not isinstance(args, dict) or set(obj) - {"name", "arguments"}:
        raise ParseError('the <tool_call> JSON must be {"name": ..., "arguments": {...}}')
    return thought, {"name": name, "arguments": args}


def point_schema(extent: tuple[int, int]) -> dict[str, Any]:
    """``[x, y]``: numbers within 0..w and 0..h, at most POINT_DECIMALS decimals."""

    def axis(hi: int) -> dict[str, Any]:
        return {"type": "number", "minimum": 0, "maximum": hi, "multipleOf": 10**-POINT_DECIMALS}

    return {
        "type": "array",
        "prefixItems": [axis(extent[0]), axis(extent[1])],
        "items": False,
        "minItems": 2,
        "maxItems": 2,
    }


class ToolCallSyntax(Syntax):
    """``[thought\\n]<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>``."""

    noun = "tool"
    typed = True

    def __init__(
        self, groups: Sequence[str] = (), key: str = "action", integer_points: bool = True
    ) -> None:
        self.groups = tuple(groups)
        """Tools whose verb is their ``key`` argument."""
        self.key = key
        self.integer_points = integer_points
        """Write (and let the grammar admit) only integer coordinates."""

    def extract(self, text: str) -> RawCall | None:
        found = call_object(text)
        if found is None:
            if CLOSE in text:
                raise ParseError(f"{CLOSE} without {OPEN}; write {_EXAMPLE}")
            return None
        thought, obj = found
        name, args = obj["name"], obj["arguments"]
        if name in self.groups:
            verb = args.pop(self.key, None)
            if not isinstance(verb, str):
                shown = "nothing" if verb is None else type(verb).__name__
                raise ParseError(f"{name}: {self.key!r} must name the action, got {shown}")
            return RawCall(verb, args, group=name, thought=thought)
        return RawCall(name, args, thought=thought)

    def write_point(self, x: int | float, y: int | float, arg: Arg) -> Any:
        if self.integer_points and not (isinstance(x, int) and isinstance(y, int)):
            raise ValueError(f"{arg.name} takes integer pixel coordinates, got ({x}, {y})")
        return [x, y]

    def _call(self, verb: Verb, arguments: dict[str, Any]) -> dict[str, Any]:
        if verb.group:
            return {"name": verb.group, "arguments": {self.key: verb.name, **arguments}}
        return {"name": verb.name, "arguments": arguments}

    def write(self, verb: Verb, args: list[tuple[Arg, Any]], thought: str) -> str:
        call = self._call(verb, {a.name: v for a, v in args})
        text = tool_call_text(call["name"], call["arguments"])
        return f"{thought}\n{text}" if thought else text

    def example(self, verb: Verb | None = None) -> str:
        if verb is not None and verb.group:
            return (
                f'{OPEN}\\n{{"name": "{verb.group}", "arguments": {{"{self.key}": '
                f'"{verb.name}", ...}}}}\\n{CLOSE}'
            )
        return _EXAMPLE

    # -- grammar -----------------------------------------------------------------------------
    def _point(self, spec: GrammarSpec) -> dict[str, Any]:
        if self.integer_points:
            return coordinate_schema(spec.extent)
        return point_schema(spec.extent)

    def _schema(self, verb: Verb, spec: GrammarSpec) -> dict[str, Any]:
        props: dict[str, Any] = {self.key: {"const": verb.name}} if verb.group else {}
        for a in verb.args:
            if a.source == "args":
                props[a.name] = self._point(spec) if a.type == "point" else spec.schema(verb, a)
        required = ([self.key] if verb.group else []) + [
            a.name for a in verb.args if a.required and a.source == "args"
        ]
        arguments: dict[str, Any] = {
            "type": "object",
            "properties": props,
            "additionalProperties": False,
        }
        if required:
            arguments["required"] = required
        return {
            "type": "object",
            "properties": {"name": {"const": verb.group or verb.name}, "arguments": arguments},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }

    def grammar(self, spec: GrammarSpec) -> str:
        """An optional thought (any text but ``<``/``✿``, ending with a newline), then one
        ``<tool_call>`` of an offered verb, JSON written as ``json.dumps`` writes it."""
        calls = [self._schema(v, spec) for v in spec.verbs]
        body = {"anyOf": calls} if len(calls) > 1 else calls[0]
        return "\n".join(
            [
                f"start: thought? {lark_str(OPEN + chr(10))} call {lark_str(chr(10) + CLOSE)}",
                f"thought[max_tokens={spec.thought_tokens}]: THOUGHT",
                r"THOUGHT: /[^\x{273f}<]*\n/",
                f"call: {lark_json(body)}",
            ]
        )

    def json_form(self, spec: GrammarSpec) -> JsonForm:
        """The ``<tool_call>`` body ``{"name": ..., "arguments": {...}}``."""
        return JsonForm({"anyOf": [self._schema(v, spec) for v in spec.verbs]}, tool_call_text)
