"""pycall: UI-TARS's ``Thought: ...`` then ``Action: verb(key='value', ...)``.

Read as UI-TARS-desktop and the ``ui-tars`` package read it, tolerantly and never evaluated:
the call is the one after the LAST ``Action:`` that starts a line (else the last one
anywhere); an earlier, broken attempt is dropped; of several calls after it the first is
taken. A quote closes a value only where a value can end (before ``,``, ``)``, the end, or the
next ``key=``), so ``content='don't'`` keeps its apostrophe; ``\\n \\t \\r \\' \\" \\\\`` are
escapes. A value cut off at the end of the answer is accepted only when it is complete anyway
(a box that closes, one word); empty values are dropped, as ``ui-tars`` does. Points are
boxes: ``'<|box_start|>(x,y)<|box_end|>'`` (v1, ``style="box"``) or ``'<point>x y</point>'``
(1.5, ``style="point"``); ``(x,y)``, ``[x1, y1, x2, y2]``, ``<bbox>..</bbox>`` and bare numbers
are read too, a 4-number box meaning its centre.

Linear: the text is searched with ``str`` methods and regexes without nested quantifiers;
a call is read from at most ``CALL_CHARS`` characters (no valid call is longer).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pixelpilot.agent.dialects._text import (
    CALL_CHARS,
    escape_single,
    scan_call,
    snippet,
    starts_line,
    unescape,
)
from pixelpilot.agent.dialects.lark import (
    LINE_BANNED,
    int_range_regex,
    lark_str,
    value_regex,
)
from pixelpilot.agent.dialects.syntax import GrammarSpec, RawCall, Syntax, number
from pixelpilot.agent.dialects.table import Arg, Verb
from pixelpilot.agent.errors import ParseError

__all__ = ["PyCallSyntax", "escape_single", "unescape"]

_MARK_AT = re.compile(r"Action[ \t]*[:：]")
_MARK_LINE = re.compile(r"(?s:.*)^[ \t]*Action[ \t]*[:：]", re.MULTILINE)
_MARK_ANY = re.compile(r"(?s:.*)\bAction[ \t]*[:：]")
_TRIES = 32
_CALL = re.compile(r"(?<![\w.])([A-Za-z_]\w{0,63})\(")
_QUOTED = rf"(?:[^'\\{LINE_BANNED}]|\\[nt'\\])"
"""One character of a single-quoted value in a grammar: escapes ``\\n \\t \\' \\\\`` only."""
_WRAPS = (("<|box_start|>", "<|box_end|>"), ("<point>", "</point>"), ("<bbox>", "</bbox>"))
_BOX_SPLIT = re.compile(r"[\s,()\[\]]+")
_NUMBER = re.compile(r"-?\d{1,12}(?:\.\d{1,12})?")


def _last_mark(text: str) -> tuple[int, int]:
    """(start, end) of the last ``Action:`` that starts a line, else of the last one anywhere,
    else (-1, -1). ``rfind`` from the end; a regex (linear) only after many false starts."""
    line = anywhere = None
    pos = len(text)
    for _ in range(_TRIES):
        pos = text.rfind("Action", 0, pos)
        if pos < 0:
            break
        m = _MARK_AT.match(text, pos)
        if m is not None:
            if anywhere is None and (
                pos == 0 or not (text[pos - 1].isalnum() or text[pos - 1] == "_")
            ):
                anywhere = (pos, m.end())
            if starts_line(text, pos):
                line = (pos, m.end())
                break
    else:  # many false starts: let the regexes find the last marker (linear)
        for rx in (_MARK_LINE, _MARK_ANY):
            m = rx.match(text)
            if m is not None:
                return text.rfind("Action", 0, m.end()), m.end()
        return -1, -1
    found = line or anywhere
    return found if found is not None else (-1, -1)


class PyCallSyntax(Syntax):
    """``Thought: <thought>\\nAction: verb(key='value', ...)``."""

    def __init__(self, style: Literal["box", "point"] = "box") -> None:
        self.style = style

    # -- reading -----------------------------------------------------------------------------
    def extract(self, text: str) -> RawCall | None:
        start, end = _last_mark(text)
        before, section = ("", text) if start < 0 else (text[:start], text[end:])
        m = _CALL.search(section, 0, CALL_CHARS)  # a call starts soon, or there is none
        if m is None:
            if start >= 0:
                what = (
                    "is empty"
                    if not section.strip()
                    else f"holds no call ({snippet(section.strip())})"
                )
                raise ParseError(f"'Action:' {what}; write Action: {self.example()}")
            return None
        call = scan_call(section, m.group(1), m.end())
        at = before.rfind("Thought:")
        thought = (before[at + len("Thought:") :] if at >= 0 else before).strip()
        args = {
            k: v for k, v in call.args.items() if v != ""
        }  # empty ones dropped, as ui-tars does
        return RawCall(call.name, args, thought=thought, cut=call.unterminated & set(args))

    def read_point(self, value: Any, verb: Verb, arg: Arg) -> tuple[float, float]:
        where = f"{verb.name}: {arg.name}"
        s = str(value).strip()
        for start, end in _WRAPS:
            if s.startswith(start):
                if not s.endswith(end):
                    raise ParseError(f"{where} opens {start} but does not close it with {end}")
                s = s[len(start) : -len(end)]
                break
        tokens = [t for t in _BOX_SPLIT.split(s[:200]) if t] if len(s) <= 200 else []
        if len(tokens) not in (2, 4) or not all(_NUMBER.fullmatch(t) for t in tokens):
            raise ParseError(
                f"{verb.name}: cannot read {arg.name}={snippet(str(value))}; write {arg.name}='(x,y)'"
            )
        v = [number(t, where) for t in tokens]
        return ((v[0] + v[2]) / 2, (v[1] + v[3]) / 2) if len(v) == 4 else (v[0], v[1])

    # -- writing -----------------------------------------------------------------------------
    def write_point(self, x: int | float, y: int | float, arg: Arg) -> Any:
        return (
            f"<|box_start|>({x},{y})<|box_end|>"
            if self.style == "box"
            else f"<point>{x} {y}</point>"
        )

    def write(self, verb: Verb, args: list[tuple[Arg, Any]], thought: str) -> str:
        inner = ", ".join(f"{a.name}='{escape_single(str(v))}'" for a, v in args)
        return f"Thought: {thought}\nAction: {verb.name}({inner})"

    def example(self, verb: Verb | None = None) -> str:
        point = self.write_point(101, 102, Arg("start_box", "point", "point"))
        return f"click(start_box='{point}')" if verb is None else f"{verb.name}(...)"

    # -- grammar -----------------------------------------------------------------------------
    def grammar(self, spec: GrammarSpec) -> str:
        """``Thought: `` + free text (any lines, ended by the first ``\\nAction: ``; the rule's
        ``stop`` and the literal after it keep the marker when the token budget ends the
        thought) + one call of an offered verb, its arguments in table order."""
        w, h = spec.extent
        rules = []
        for i, verb in enumerate(spec.verbs):
            args = [a for a in verb.args if a.source == "args"]
            values = {}
            for a in args:
                if a.type == "point":
                    values[a.name] = 'point "\'"'
                else:
                    term = value_regex(spec.schema(verb, a), "", "'", char=_QUOTED, sep=a.sep,
                                       secrets=spec.secrets)  # fmt: skip
                    values[a.name] = f"/{term}/"
            shapes = []  # each choice of the optional arguments, separators in place
            for mask in range(1 << sum(not a.required for a in args)):
                bits = iter(range(len(args)))
                chosen = [a for a in args if a.required or mask >> next(bits) & 1]
                shapes.append(" ".join(
                    f"{lark_str((', ' if j else '') + a.name + '=' + chr(39))} {values[a.name]}"
                    for j, a in enumerate(chosen)
                ) or '""')  # fmt: skip
            body = " | ".join(dict.fromkeys(shapes))
            rules.append(f'c{i}: {lark_str(verb.name + "(")} ({body}) ")"')
        point = (
            '<|box_start|> "(" X "," Y ")" <|box_end|>'
            if self.style == "box"
            else '"<point>" X " " Y "</point>"'
        )
        return "\n".join(
            [
                'start: "Thought: " thought "\\nAction: " call',
                f'thought[stop="\\nAction: ", max_tokens={spec.thought_tokens}]: /[^<\\x{{273f}}]*/',
                "call: " + " | ".join(f"c{i}" for i in range(len(rules))),
                *rules,
                f"point: {point}",
                f"X: /{int_range_regex(w)}/",
                f"Y: /{int_range_regex(h)}/",
            ]
        )
