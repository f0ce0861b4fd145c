"""pydict: ShowUI's call, the ``str()`` of a Python dict.

``{'action': 'CLICK', 'value': None, 'position': [0.49, 0.42]}``: the action's name, a value
(``None`` where not applicable) and a position, ``[x, y]`` or ``[[x1, y1], [x2, y2]]``, in
fractions of the screenshot (0..1; the dialect's space is norm1000, so a fraction is read x1000).
It is exactly what ShowUI's training code wrote (``str(answer)``: Python's ``repr``, so a value
holding ``'`` is written in double quotes). Several actions in one answer are joined by ``,``
(the training code), ``, `` or ``,\\n`` (the examples); the first is the call.

The dict is read by ``pyliteral.read_literal`` (never evaluated; linear, bounded). ``None``
values are "not applicable": they are left out of the call's arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pixelpilot.agent.dialects._text import snippet
from pixelpilot.agent.dialects.lark import (
    BLANKS,
    LINE_BANNED,
    TEXT_CHARS,
    keys_regex,
    lark_str,
    text_regex,
)
from pixelpilot.agent.dialects.pyliteral import LiteralError, read_literal
from pixelpilot.agent.dialects.syntax import GrammarSpec, RawCall, Syntax, xy_pair
from pixelpilot.agent.dialects.table import Arg, Verb
from pixelpilot.agent.errors import ParseError

__all__ = ["EXTRA_ACTIONS", "PyDictSyntax", "first_dict", "worst_bytes"]

EXTRA_ACTIONS = 2
"""Most actions the grammar admits after the first in one answer (they are not executed)."""
_EXAMPLE = "{'action': 'CLICK', 'value': None, 'position': [0.5, 0.5]}"
_FRACTION = r"(?:0(?:\.[0-9]{1,3})?|1(?:\.0{1,3})?)"
"""A position coordinate: 0..1 with at most 3 decimals (training wrote 2)."""
_SQ = rf"(?:[^'\\{LINE_BANNED}]|\\[nt'\\])"
"""One character of a single-quoted value (Python's repr: escapes \\n \\t \\' \\\\)."""
_DQ = rf"(?:[^\"\\{LINE_BANNED}]|\\[nt\\])"
"""One character of a double-quoted value (repr writes one when the text holds ' but no ")."""
_POSITION_KEY = lark_str(", 'position': ")


def worst_bytes(verbs: tuple[Verb, ...]) -> int:
    """The longest answer the grammar admits, in bytes (at most one token each): the
    ``max_new_tokens`` that never cuts an admitted answer."""
    name = max(len(v.name) for v in verbs)
    one = len("{'action': '', 'value': , 'position': [[0.123, 0.123], [0.123, 0.123]]}") + name
    return (1 + EXTRA_ACTIONS) * (one + 2 + 4 * TEXT_CHARS + 2)


def first_dict(raw: str) -> str | None:
    """The first action dict of an answer, exactly as written (None when it holds none)."""
    start = raw.find("{")
    if start < 0:
        return None
    try:
        _, end = read_literal(raw, start)
    except LiteralError:
        return None
    return raw[start:end]


class PyDictSyntax(Syntax):
    """``{'action': NAME, 'value': VALUE, 'position': POSITION}``, positions in 0..1."""

    noun = "action"
    typed = True

    def __init__(self, keys: Sequence[str] = ("value", "position"), scale: float = 1000.0) -> None:
        self.keys = tuple(keys)
        """The keys every dict writes after ``action``, in order (None where not applicable)."""
        self.scale = scale
        """A written fraction times ``scale`` is the point in the dialect's space."""

    # -- read / write ------------------------------------------------------------------------
    def extract(self, text: str) -> RawCall | None:
        start = text.find("{")
        if start < 0:
            return None
        try:
            obj, _ = read_literal(text, start)
        except LiteralError as err:
            raise ParseError(
                f"the action dictionary is not valid ({err}); write {_EXAMPLE}"
            ) from None
        if not isinstance(obj, dict):  # pragma: no cover - '{' always starts a dict
            raise ParseError(f"write the action as a dictionary: {_EXAMPLE}")
        name = obj.get("action")
        if not isinstance(name, str) or not name.strip():
            raise ParseError(
                f"the dictionary needs an 'action' key with its name; write {_EXAMPLE}"
            )
        args = {}
        for key, value in obj.items():
            if not isinstance(key, str):
                raise ParseError(
                    f"the dictionary's keys are 'action', 'value' and 'position', not {key!r}"
                )
            if key != "action" and value is not None:
                args[key] = value
        return RawCall(" ".join(name.split()).upper(), args)

    def write(self, verb: Verb, args: list[tuple[Arg, Any]], thought: str) -> str:
        out: dict[str, Any] = {"action": verb.name, **dict.fromkeys(self.keys)}
        points: dict[int, Any] = {}
        for arg, value in args:
            if arg.item is not None:
                points[arg.item] = value
            else:
                out[arg.name] = value
        if points:
            out["position"] = [points[i] for i in sorted(points)]
        return repr(out)

    def read_point(self, value: Any, verb: Verb, arg: Arg) -> tuple[float, float]:
        x, y = xy_pair(value, f"{verb.name}: 'position'")
        if not (0 <= x <= 1 and 0 <= y <= 1):
            raise ParseError(
                f"{verb.name}: position {snippet(repr(value))} is outside 0..1; positions are "
                "fractions of the screenshot"
            )
        return round(x * self.scale, 6), round(y * self.scale, 6)

    def write_point(self, x: int | float, y: int | float, arg: Arg) -> Any:
        return [float(round(x / self.scale, 3)), float(round(y / self.scale, 3))]

    def example(self, verb: Verb | None = None) -> str:
        return _EXAMPLE

    # -- grammar -----------------------------------------------------------------------------
    def grammar(self, spec: GrammarSpec) -> str:
        """One action dict of an offered verb, then up to ``EXTRA_ACTIONS`` more joined as the
        family joins them; every value in exactly the form ``repr`` writes."""
        calls = [self._call(verb, spec) for verb in spec.verbs]
        head = lark_str("{'action': '")
        extra = EXTRA_ACTIONS if spec.extra_calls is None else spec.extra_calls
        return "\n".join(
            [
                f"start: action (SEP action){{0,{extra}}}" if extra else "start: action",
                r'SEP: ",\n" | ", " | ","',
                f'action: {head} call "}}"',
                "call: " + " | ".join(f"c{i}" for i in range(len(calls))),
                *(f"c{i}: {rule}" for i, rule in enumerate(calls)),
                'pos: "[" F ", " F "]"',
                f"F: /{_FRACTION}/",
            ]
        )

    def _call(self, verb: Verb, spec: GrammarSpec) -> str:
        value = '"None"'
        points = [a for a in verb.args if a.type == "point"]
        for arg in verb.args:
            if arg.type != "point":
                value = self._value(verb, arg, spec)
        if not points:
            position = '"None"'
        elif len(points) == 1 and points[0].item is None:
            position = "pos"
        else:
            position = '"[" pos ", " pos "]"'
        if points and not all(a.required for a in points):
            position = f'("None" | {position})'
        head = lark_str(f"{verb.name}', 'value': ")
        return f"{head} {value} {_POSITION_KEY} {position}"

    def _value(self, verb: Verb, arg: Arg, spec: GrammarSpec) -> str:
        schema = spec.schema(verb, arg)
        if arg.type == "enum":
            assert arg.choices is not None
            alts = [lark_str(repr(c)) for c in arg.choices]
        elif arg.type == "keys":
            alts = [f"/'{keys_regex(arg.sep or '+')}'/"]
        elif arg.type == "number":
            alts = [f"/{_number_regex(schema)}/"]
        else:
            lo = 1 if int(schema.get("minLength", 0)) > 0 else 0
            alts = [_quoted("'", _SQ, lo, arg.strip, spec), _quoted('"', _DQ, lo, arg.strip, spec)]
        if not arg.required:
            alts.append('"None"')
        return "(" + " | ".join(alts) + ")"


def _quoted(q: str, char: str, lo: int, solid: bool, spec: GrammarSpec) -> str:
    """A quoted value as ONE lexeme with its quotes (it may hold the other quote character)."""
    quote = {"'": "'", '"': '\\"'}[q]
    if solid:  # what the parser strips must not be all there is: start with a solid character
        first = rf"[^{q}\\{LINE_BANNED}{BLANKS}]"
        body = first + text_regex(char, 0, TEXT_CHARS - 1, spec.secrets)
    else:
        body = text_regex(char, lo, TEXT_CHARS, spec.secrets)
    return f"/{quote}{body}{quote}/"


def _number_regex(schema: dict[str, Any]) -> str:
    """A non-negative number up to the schema's maximum (<= 1: gripper heights), 2 decimals."""
    if schema.get("maximum", 2) <= 1:
        return r"(?:0(?:\.[0-9]{1,2})?|1(?:\.0{1,2})?)"
    return r"[0-9]{1,3}(?:\.[0-9]{1,2})?"
