"""verbline: OS-Atlas-Pro's ``thoughts:`` / ``actions:`` sections with one verb line.

``thoughts:\\n<thought>\\nactions:\\nCLICK <point>[[493,544]]</point>``; a verb takes its points
(``<point>[[x,y]]</point>``, a blank after the comma allowed) and then one bracketed value
(``TYPE [text]``, ``SCROLL [UP]``). The verb is the first of the family's verb ``names`` after
the LAST ``actions:`` line (any case), or in the whole answer without one; the value runs from
the first ``[`` that is not a point's to the LAST ``]`` of the answer, so typed text may hold
brackets. Values are positional: points fill a verb's point arguments in order, the value its
other argument. Linear: regexes without nested quantifiers, a call read from at most
``CALL_CHARS`` characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pixelpilot.agent.dialects._text import starts_line
from pixelpilot.agent.dialects.lark import LINE_BANNED, int_range_regex, lark_str, value_regex
from pixelpilot.agent.dialects.syntax import CALL_CHARS, GrammarSpec, RawCall, Syntax, number
from pixelpilot.agent.dialects.table import Arg, Verb

__all__ = ["VerbLineSyntax"]

_NUM = r"(-?\d{1,12}(?:\.\d{1,12})?)"
_POINT = re.compile(rf"<point>\s*\[?\[\s*{_NUM}\s*,\s*{_NUM}\s*\]\]?\s*</point>")
_MARK = re.compile(r"(?s:.*)^[ \t]*actions?[ \t]*[:：]", re.IGNORECASE | re.MULTILINE)
_MARK_AT = re.compile(r"actions?[ \t]*[:：]")
_THOUGHTS = re.compile(r"^[ \t]*thoughts?[ \t]*[:：]", re.IGNORECASE | re.MULTILINE)
_LINE = f"[^{LINE_BANNED}]"


def _last_mark(text: str) -> int:
    """The end of the last ``actions:`` line marker (any case), or -1. ``rfind`` from the end
    on the lower-cased text; a regex (linear) only after many false starts."""
    low = text.lower()
    pos = len(low)
    for _ in range(32):
        pos = low.rfind("action", 0, pos)
        if pos < 0:
            return -1
        m = _MARK_AT.match(low, pos)
        if m is not None and starts_line(low, pos):
            return m.end()
    m = _MARK.match(text)
    return m.end() if m is not None else -1


class VerbLineSyntax(Syntax):
    """``thoughts:\\n<thought>\\nactions:\\nVERB <point>[[x,y]]</point> [value]``."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = tuple(dict.fromkeys(names))
        alts = "|".join(re.escape(n) for n in sorted(self.names, key=len, reverse=True))
        self._verb = re.compile(rf"(?<![A-Za-z_])({alts})(?![A-Za-z_])")

    def extract(self, text: str) -> RawCall | None:
        before, section = "", text
        end = _last_mark(text)
        if end >= 0:
            before, section = text[: text.rfind("\n", 0, end) + 1], text[end:]
        m = self._verb.search(section, 0, CALL_CHARS)  # the verb comes soon, or there is none
        if m is None:
            return None
        rest = section[m.end() : m.end() + CALL_CHARS]
        positional: list[tuple[str, Any]] = [("point", p) for p in _POINT.findall(rest)]
        tail = _POINT.sub("", rest)
        start, end = tail.find("["), tail.rfind("]")
        if 0 <= start < end:
            positional.append(("value", tail[start + 1 : end]))
        before = before[-CALL_CHARS:]
        t = _THOUGHTS.search(before)
        thought = (before[t.end() :] if t else before).strip()
        return RawCall(m.group(1), positional=positional, thought=thought)

    def read_point(self, value: Any, verb: Verb, arg: Arg) -> tuple[float, float]:
        x, y = value
        where = f"{verb.name}: <point>"
        return number(x, where), number(y, where)

    def write_point(self, x: int | float, y: int | float, arg: Arg) -> Any:
        return (x, y)

    def write(self, verb: Verb, args: list[tuple[Arg, Any]], thought: str) -> str:
        line = verb.name
        for a, v in args:
            line += f" <point>[[{v[0]},{v[1]}]]</point>" if a.type == "point" else f" [{v}]"
        if "\n" in line:
            raise ValueError(f"{verb.name}: a value on its own line would end the action")
        return f"thoughts:\n{thought}\nactions:\n{line}"

    def example(self, verb: Verb | None = None) -> str:
        if verb is None:
            return "actions:\nCLICK <point>[[x,y]]</point>"
        parts = [verb.name]
        for a in verb.args:
            parts.append("<point>[[x,y]]</point>" if a.type == "point" else "[value]")
        return " ".join(parts)

    def grammar(self, spec: GrammarSpec) -> str:
        """``thoughts:\\n`` + free text (any lines, ended by the first ``\\nactions:\\n``) + one
        verb line: its points, then its value in brackets (one lexeme with the ``]``)."""
        w, h = spec.extent
        rules = []
        for i, verb in enumerate(spec.verbs):
            parts = [lark_str(verb.name)]
            for a in verb.args:
                if a.source != "args":
                    continue
                if a.type == "point":
                    piece = '" " point'
                else:
                    term = value_regex(spec.schema(verb, a), "", "]", char=_LINE, sep=a.sep,
                                       secrets=spec.secrets)  # fmt: skip
                    piece = f'" [" /{term}/'
                parts.append(piece if a.required else f"({piece})?")
            rules.append(f"c{i}: {' '.join(parts)}")
        return "\n".join(
            [
                'start: "thoughts:\\n" thought "\\nactions:\\n" call',
                f'thought[stop="\\nactions:\\n", max_tokens={spec.thought_tokens}]: '
                "/[^<\\x{273f}]*/",
                "call: " + " | ".join(f"c{i}" for i in range(len(rules))),
                *rules,
                'point: "<point>[[" X "," Y "]]</point>"',
                f"X: /{int_range_regex(w)}/",
                f"Y: /{int_range_regex(h)}/",
            ]
        )
