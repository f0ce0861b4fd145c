"""toolcall: the hermes/Nous ``<tool_call>`` JSON of Qwen2.5-VL, the action inside the arguments.

``<tool_call>\\n{"name": "computer_use", "arguments": {"action": "left_click", "coordinate":
[x, y]}}\\n</tool_call>``. A tool listed in ``groups`` (computer_use, mobile_use) carries the
verb as its ``action`` argument; any other tool name is a verb of its own. Read as Qwen-Agent's
``NousFnCallPrompt.postprocess_fncall_messages`` reads it: the text before ``<tool_call>`` is a
thought, the body is one JSON object with ``name`` and ``arguments`` (arguments given as a
JSON string are decoded too); of several calls the first is taken. Points are ``[x, y]``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pixelpilot.agent.dialects._text import json_object
from pixelpilot.agent.dialects.lark import coordinate_schema, lark_json, lark_str
from pixelpilot.agent.dialects.syntax import GrammarSpec, RawCall, Syntax
from pixelpilot.agent.dialects.table import Arg, Verb
from pixelpilot.agent.errors import ParseError
from pixelpilot.vlm.base import JsonForm

__all__ = ["OPEN", "CLOSE", "ToolCallSyntax"]

OPEN, CLOSE = "<tool_call>", "</tool_call>"
_EXAMPLE = '<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>'


class ToolCallSyntax(Syntax):
    """``[thought]<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>``."""

    noun = "tool"
    typed = True

    def __init__(
        self, groups: Sequence[str] = (), key: str = "action", integer_points: bool = True
    ) -> None:
        self.groups = tuple(groups)
        """Tools whose verb is their ``key`` argument."""
        self.key = key
        self.integer_points = integer_points
        """Write only integer coordinates (the cookbook tools take pixels)."""

    def extract(self, text: str) -> RawCall | None:
        start = text.find(OPEN)
        if start < 0:
            return None
        body_at = start + len(OPEN)
        end = text.find(CLOSE, body_at)
        if end < 0:
            raise ParseError(f"the {OPEN} block is not closed; end it with {CLOSE}")
        obj = json_object(text[body_at:end], OPEN, _EXAMPLE, exact=True)
        name, args = obj.get("name"), obj.get("arguments")
        if isinstance(args, str):
            args = json_object(args, '"arguments"', '"arguments": {...}', exact=True)
        if (
            not isinstance(name, str)
            or not isinstance(args, dict)
            or set(obj) - {"name", "arguments"}
        ):
            raise ParseError('the <tool_call> JSON must be {"name": ..., "arguments": {...}}')
        thought = text[:start].strip()
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
        body = json.dumps(self._call(verb, {a.name: v for a, v in args}), ensure_ascii=False)
        call = f"{OPEN}\n{body}\n{CLOSE}"
        return f"{thought}\n{call}" if thought else call

    def example(self, verb: Verb | None = None) -> str:
        return _EXAMPLE

    # -- grammar -----------------------------------------------------------------------------
    def _schema(self, verb: Verb, spec: GrammarSpec) -> dict[str, Any]:
        props: dict[str, Any] = {self.key: {"const": verb.name}} if verb.group else {}
        for a in verb.args:
            if a.source == "args":
                props[a.name] = (
                    coordinate_schema(spec.extent) if a.type == "point" else spec.schema(verb, a)
                )
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
        return JsonForm({"anyOf": [self._schema(v, spec) for v in spec.verbs]}, _to_text)


def _to_text(name: str, arguments: Any) -> str:
    body = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
    return f"{OPEN}\n{body}\n{CLOSE}"
