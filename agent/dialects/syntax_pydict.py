"""pydict: ShowUI's Python-style dict, ``{'action': 'CLICK', 'value': None, 'position': [x, y]}``.

The verb is the ``action`` (read upper-cased, blanks as ``_``); every other key is an argument
and ``None`` means "not applicable" (dropped). A list of dicts means several actions: the first
is taken. Positions are fractions 0..1 of the screenshot, kept as norm1000 points (x 1000);
two positions are ``[[x1, y1], [x2, y2]]`` (arguments with ``item`` 0 and 1). The dict is turned
into JSON by a regex tokenizer (quotes, None/True/False) and read by ``json`` -- never
evaluated -- from at most ``CALL_CHARS`` characters after its ``{``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from pixelpilot.agent.dialects._text import json_object
from pixelpilot.agent.dialects.lark import LINE_BANNED, lark_str, value_regex
from pixelpilot.agent.dialects.syntax import CALL_CHARS, GrammarSpec, RawCall, Syntax, xy_pair
from pixelpilot.agent.dialects.table import Arg, Verb
from pixelpilot.agent.errors import ParseError

__all__ = ["PyDictSyntax", "python_to_json", "python_value"]

# strings run to their closing quote or, unterminated, to the end: no match ever fails after
# scanning, so the tokenizer is linear
_TOKEN = re.compile(
    r"""'((?:[^'\\]++|\\.)*+)(?:'|\Z)|"((?:[^"\\]++|\\.)*+)(?:"|\Z)|(?<!\w)(None|True|False)(?!\w)""",
    re.S,
)
_ESC = {"n": "\n", "t": "\t", "r": "\r"}
_LITERAL = {"None": "null", "True": "true", "False": "false"}
_EXAMPLE = "{'action': 'CLICK', 'value': None, 'position': [0.5, 0.5]}"
_QUOTED = rf"(?:[^'\\{LINE_BANNED}]|\\[nt'\\])"
_FRACTION = r"(?:0(?:\.[0-9]{1,3})?|1(?:\.0{1,3})?)"


def _unquote(body: str) -> str:
    if "\\" not in body:
        return body
    return re.sub(r"\\(.)", lambda m: _ESC.get(m.group(1), m.group(1)), body, flags=re.S)


def python_to_json(text: str) -> str:
    """Python literal syntax -> JSON: quoted strings (either quote), None/True/False. Only the
    literal syntax changes; nothing is evaluated."""

    def token(m: re.Match[str]) -> str:
        if m.group(3) is not None:
            return _LITERAL[m.group(3)]
        body = m.group(1) if m.group(1) is not None else m.group(2)
        return json.dumps(_unquote(body), ensure_ascii=False)

    return _TOKEN.sub(token, text)


def python_value(value: Any) -> str:
    """``value`` written as a Python literal, strings single-quoted."""
    if value is None:
        return "None"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(python_value(v) for v in value) + "]"
    return repr(value)


class PyDictSyntax(Syntax):
    """``{'action': 'VERB', 'value': ..., 'position': ...}``."""

    def __init__(self, keys: Sequence[str] = ("value", "position"), scale: float = 1000.0) -> None:
        self.keys = tuple(keys)
        """The keys every dict writes after ``action``, in order (None when not applicable)."""
        self.scale = scale
        """A written fraction times ``scale`` is the point in the dialect's space."""

    def extract(self, text: str) -> RawCall | None:
        start = text.find("{")
        if start < 0:
            return None
        region = python_to_json(text[start : start + CALL_CHARS])
        obj = json_object(region, "the action dictionary", _EXAMPLE)
        verb = obj.get("action")
        if not isinstance(verb, str):
            raise ParseError("the dictionary needs an 'action' key, e.g. 'action': 'CLICK'")
        args = {k: v for k, v in obj.items() if k != "action" and v is not None}
        return RawCall(verb.strip().upper().replace(" ", "_"), args)

    def read_point(self, value: Any, verb: Verb, arg: Arg) -> tuple[float, float]:
        x, y = xy_pair(value, f"{verb.name}: {arg.name!r}")
        if not (0 <= x <= 1 and 0 <= y <= 1):
            raise ParseError(
                f"{verb.name}: position [{x:g}, {y:g}] is outside 0..1; positions are fractions "
                "of the screenshot"
            )
        return round(x * self.scale, 6), round(y * self.scale, 6)

    def write_point(self, x: int | float, y: int | float, arg: Arg) -> Any:
        return [round(x / self.scale, 9), round(y / self.scale, 9)]

    def write(self, verb: Verb, args: list[tuple[Arg, Any]], thought: str) -> str:
        values: dict[str, Any] = {}
        for a, v in args:
            if a.item is None:
                values[a.name] = v
            else:
                values.setdefault(a.name, []).append(v)
        pairs = [f"'action': {python_value(verb.name)}"]
        pairs += [f"'{k}': {python_value(values.get(k))}" for k in self.keys]
        return "{" + ", ".join(pairs) + "}"

    def example(self, verb: Verb | None = None) -> str:
        return _EXAMPLE

    def grammar(self, spec: GrammarSpec) -> str:
        """Exactly the dict ``write`` writes: each key in order, ``None`` where the verb has no
        argument (or leaves an optional one out), positions as fractions with 3 decimals."""
        rules = []
        for i, verb in enumerate(spec.verbs):
            pieces = [lark_str("{'action': " + python_value(verb.name))]
            for key in self.keys:
                args = [a for a in verb.args if a.name == key and a.source == "args"]
                pieces.append(lark_str(f", '{key}': "))
                if not args:
                    pieces.append('"None"')
                    continue
                if args[0].type == "point":
                    value = '"[" pos ", " pos "]"' if len(args) > 1 else "pos"
                else:
                    schema = spec.schema(verb, args[0])
                    term = value_regex(schema, "'", "'", char=_QUOTED, sep=args[0].sep,
                                       secrets=spec.secrets)  # fmt: skip
                    value = f"/{term}/"
                pieces.append(value if args[0].required else f'("None" | {value})')
            rules.append(f'c{i}: {" ".join(pieces)} "}}"')
        return "\n".join(
            [
                "start: call",
                "call: " + " | ".join(f"c{i}" for i in range(len(rules))),
                *rules,
                'pos: "[" F ", " F "]"',
                f"F: /{_FRACTION}/",
            ]
        )
