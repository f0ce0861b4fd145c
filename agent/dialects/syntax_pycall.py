"""pycall: UI-TARS's ``Thought: ...`` then ``Action: verb(key='value', ...)``.

Read as UI-TARS-desktop and the ``ui-tars`` package read it, tolerantly and never evaluated:

- the call follows the LAST ``Action:`` that starts a line (an earlier, broken attempt is
  dropped; text to type may hold ``Action:``), else the FIRST marker anywhere (``... close it.
  Action: click(...)`` is a real v1 answer, and a marker inside the call's quoted text is never
  a line of its own); of several calls after it the first is taken. Without any marker, the call
  is the last of the last few calls of a known verb that runs to the end of the answer (a
  thought cut at its token budget runs straight into the call, maybe mid-word), else the first
  call found;
- the thought is the text before the marker, after its last ``Thought:`` (``Reflection:`` and
  ``Action_Summary:`` answers keep their whole text);
- a quote closes a value only where a value can end (before ``,``, ``)``, the end, or the next
  ``key=``), so ``content='don't'`` keeps its apostrophe; ``\\n \\t \\r \\' \\" \\\\`` are
  escapes; a value cut off at the end is read only when complete anyway (a box that closes, an
  enum's word); empty values are dropped, as ``ui-tars`` does;
- a point is ``(x,y)``, ``(x1,y1,x2,y2)``, ``(x1,y1),(x2,y2)``, ``[...]`` or the bare numbers,
  inside ``<|box_start|>``/``<|box_end|>`` or not, or ``<point>x y</point>``, or
  ``<bbox>...</bbox>``; a 4-number box means its centre.

Linear: ``str`` methods and regexes without nested quantifiers; a call is read from at most
``CALL_CHARS`` characters (no valid call is longer).

The grammar admits every official form (tests/data/official/uitars*.jsonl) and nothing the
parser reads otherwise: a free thought (any text, any language, any lines, no ``<|``, no other
``Action:`` marker, at most ``thought_tokens``) ended by the first ``Action: ``, then one call of
an offered verb, its arguments in the prompt's order (optional ones may be left out or written
empty, as ``time=''``); points in the notation of the argument's name (box names: every box form
above, with the box tokens or without them, as servers return them; point names:
``<point>x y</point>``), coordinates integers within the extent; quoted text with the escapes
``\\n \\t \\' \\" \\\\``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any, Literal

from pixelpilot.agent.dialects._text import snippet, starts_line
from pixelpilot.agent.dialects.lark import (
    LINE_BANNED,
    int_range_regex,
    lark_str,
    text_regex,
    value_regex,
)
from pixelpilot.agent.dialects.syntax import CALL_CHARS, GrammarSpec, RawCall, Syntax, number
from pixelpilot.agent.dialects.table import Arg, Verb
from pixelpilot.agent.errors import ParseError

__all__ = [
    "BOX_END", "BOX_NAMES", "BOX_START", "POINT_NAMES", "PyCallSyntax", "add_box_tokens",
    "escape_single", "read_box", "unescape",
]  # fmt: skip

BOX_START, BOX_END = "<|box_start|>", "<|box_end|>"
BOX_NAMES = frozenset({"start_box", "end_box"})
"""Point arguments written as boxes: ``'<|box_start|>(x,y)<|box_end|>'``."""
POINT_NAMES = frozenset({"point", "start_point", "end_point"})
"""Point arguments written as ``'<point>x y</point>'``."""
_MARK = re.compile(r"Action[ \t]*[:：]")
_MARK_LINE = re.compile(r"^[ \t]*Action[ \t]*[:：]", re.MULTILINE)
_CALL = re.compile(r"(?<![\w.])([A-Za-z_]\w{0,63})\(")
_KEY = re.compile(r"[\s,]*([A-Za-z_]\w{0,63})[ \t]*=[ \t]*")
_BARE = re.compile(r"[^,)\s]{1,200}")
# a quoted value: escapes, anything but the quote and backslash, or a quote that cannot end it
_CLOSES = r"\s*(?:[,)]|$)|\s+[A-Za-z_]\w{0,63}\s*="
_VALUE = {
    q: re.compile(rf"((?>[^{q}\\]++|\\.|{q}(?!{_CLOSES}))*+){q}(?={_CLOSES})", re.DOTALL)
    for q in "'\""
}
_TRIES = 16
"""Candidate calls an answer without ``Action:`` is searched for, from its end."""
_PARENS = 256
"""Parentheses an answer without ``Action:`` is searched for calls at, from either end."""
_QUOTED = rf"(?:[^'\\{LINE_BANNED}]|\\[nt'\"\\])"
"""One character of a single-quoted value in a grammar: no bare quote or backslash, no
control character (a newline is the escape), no '<'; the escapes ``\\n \\t \\' \\" \\\\``."""
_FIRST = r"[^'\\\x00-\x20\x7f-\x9f<\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}\x{273f}]"
"""The first character of a value read stripped (a name): not a blank."""
_UNESCAPE = (("\\n", "\n"), ("\\t", "\t"), ("\\r", "\r"), ("\\'", "'"), ('\\"', '"'))
_ESCAPE = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_WRAPS = ((BOX_START, BOX_END), ("<point>", "</point>"), ("<bbox>", "</bbox>"))
_BOX_SPLIT = re.compile(r"[\s,()\[\]]+")
_NUMBER = re.compile(r"-?\d{1,12}(?:\.\d{1,12})?")
_BOXED = re.compile(r"(start_box|end_box)='\((\d+),\s*(\d+)\)'")


def _marker(text: str) -> tuple[int, int] | None:
    """(start, end) of the ``Action:`` marker the call follows: the last one that starts a line,
    else the first one anywhere (not inside a word); None without any. ``str`` searches first
    (a real answer has a few markers); the line regex only for text with very many."""
    if "Action" not in text or (":" not in text and "：" not in text):
        return None
    at = len(text)
    for _ in range(_TRIES * 4):
        i = text.rfind("Action", 0, at)
        if i < 0:
            break
        m = _MARK.match(text, i)
        if m is not None and starts_line(text, i):
            return i, m.end()
        at = i
    else:
        last = None
        for m in _MARK_LINE.finditer(text):
            last = m
        if last is not None:
            return last.end() - len(last.group().lstrip(" \t")), last.end()
    for n, m in enumerate(_MARK.finditer(text)):
        if m.start() == 0 or not (text[m.start() - 1].isalnum() or text[m.start() - 1] == "_"):
            return m.start(), m.end()
        if n >= _TRIES * 4:
            break
    return None


def unescape(s: str) -> str:
    """The escapes a model writes in a quoted value resolved (``\\n \\t \\r \\' \\" \\\\``),
    left to right; any other backslash stays (``C:\\Users``). Linear, in C."""
    if "\\" not in s:
        return s
    parts = s.split("\\\\")
    for a, b in _UNESCAPE:
        parts = [p.replace(a, b) for p in parts]
    return "\\".join(parts)


def escape_single(s: str) -> str:
    """``s`` escaped for a single-quoted value; ``unescape`` inverts it."""
    return "".join(_ESCAPE.get(c, c) for c in s)


def add_box_tokens(answer: str) -> str:
    """``answer`` with each ``start_box='(x,y)'`` / ``end_box='(x,y)'`` inside box tokens, as
    the model emits them (servers strip special tokens). A port of ``add_box_token`` of
    bytedance/UI-TARS README_deploy.md @ 582f3a7ea5d285ee8ed9e2e84048d1ab01453c49 (shipped as
    ``ui_tars.action_parser.add_box_token``), quirks included: the text is split at
    ``Action: ``, each part stripped and the parts joined by a blank line."""
    if "Action: " not in answer or "start_box=" not in answer:
        return answer
    head, *actions = answer.split("Action: ")
    parts = []
    for action in actions:
        action = action.strip()
        for key, x, y in _BOXED.findall(action):
            action = action.replace(f"{key}='({x},{y})'", f"{key}='{BOX_START}({x},{y}){BOX_END}'")
        parts.append(action)
    return head + "Action: " + "\n\n".join(parts)


def read_box(value: str, verb: str, key: str) -> tuple[float, float]:
    """The point a written box or point designates (a 4-number box: its centre); ``verb`` and
    ``key`` name it in errors."""
    where = f"{verb}: {key}"
    s = value.strip()
    for start, end in _WRAPS:
        if s.startswith(start):
            if not s.endswith(end):
                raise ParseError(f"{where} opens {start} but does not close it with {end}")
            s = s[len(start) : -len(end)]
            break
    tokens = [t for t in _BOX_SPLIT.split(s) if t] if len(s) <= 200 else []
    if len(tokens) not in (2, 4) or not all(_NUMBER.fullmatch(t) for t in tokens):
        raise ParseError(f"{verb}: cannot read {key}={snippet(value)}; write {key}='(x1,y1)'")
    v = [number(t, where) for t in tokens]
    return ((v[0] + v[2]) / 2, (v[1] + v[3]) / 2) if len(v) == 4 else (v[0], v[1])


class PyCallSyntax(Syntax):
    """``Thought: <thought>\\nAction: verb(key='value', ...)``.

    ``style``: how a point argument whose name says no notation is written (``box``:
    ``<|box_start|>(x,y)<|box_end|>``; ``point``: ``<point>x y</point>``); ``start_box`` /
    ``end_box`` are always boxes, ``point`` / ``start_point`` / ``end_point`` always points.
    ``names``: every verb name the table reads (for answers without ``Action:``).
    ``both_notations``: the grammar also admits a point argument under its alias of the other
    notation (``start_box`` and ``point``: UI-TARS-1.5)."""

    def __init__(
        self,
        style: Literal["box", "point"] = "box",
        names: Iterable[str] = (),
        both_notations: bool = False,
    ) -> None:
        self.style = style
        self.names = frozenset(names)
        self.both_notations = both_notations
        alts = "|".join(sorted((re.escape(n) for n in self.names), key=len, reverse=True))
        self._name_end = re.compile(f"(?:{alts})$" if alts else r"(?<![\w.])[A-Za-z_]\w{0,63}$")

    # -- reading -----------------------------------------------------------------------------
    def extract(self, text: str) -> RawCall | None:
        mark = _marker(text)
        if mark is None:
            return self._unmarked(text)
        start, end = mark
        before, section = text[:start], text[end:]
        m = _CALL.search(section, 0, CALL_CHARS)
        if m is None:
            what = (
                "is empty" if not section.strip() else f"holds no call ({snippet(section.strip())})"
            )
            raise ParseError(f"'Action:' {what}; write Action: {self.example()}")
        raw, _ = self._read(section, m.start(1), m.end(), before)
        return raw

    def _unmarked(self, text: str) -> RawCall | None:
        calls = list(self._calls(text, reverse=True))
        for start, paren in calls:
            try:
                raw, end = self._read(text, start, paren, text[:start])
            except ParseError:
                continue
            if end >= 0 and not text[end:].strip():
                return raw
        first = next(self._calls(text, reverse=False), None)
        return None if first is None else self._read(text, *first, text[: first[0]])[0]

    def _calls(self, text: str, reverse: bool) -> Iterator[tuple[int, int]]:
        """(start of the name, end of ``name(``) of calls of a known verb, from the start or
        from the end, among the first (last) ``_PARENS`` parentheses: bounded, whatever the
        text."""
        found, at = 0, len(text) if reverse else 0
        for _ in range(_PARENS):
            p = text.rfind("(", 0, at) if reverse else text.find("(", at)
            if p < 0:
                return
            at = p if reverse else p + 1
            m = self._name_end.search(text, max(p - 64, 0), p)
            if m is not None:
                yield m.start(), p + 1
                found += 1
                if reverse and found >= _TRIES:
                    return

    def _read(self, text: str, start: int, paren: int, before: str) -> tuple[RawCall, int]:
        """The call whose name starts at ``start`` and whose ``(`` ends at ``paren``, and where
        the text after its ``)`` starts (-1: not closed)."""
        raw = RawCall(text[start : paren - 1])
        end = self._args(text[paren : paren + CALL_CHARS], raw)
        at = before.rfind("Thought:")
        raw.thought = (before[at + len("Thought:") :] if at >= 0 else before).strip()
        return raw, (paren + end if end >= 0 else -1)

    def _args(self, call: str, raw: RawCall) -> int:
        """The arguments of ``raw.name(`` written in ``call`` (what follows the parenthesis);
        returns the index after the closing parenthesis (-1 when there is none)."""
        name, out = raw.name, raw.args
        i, n = 0, len(call)
        while True:
            while i < n and (call[i].isspace() or call[i] == ","):
                i += 1
            if i >= n:
                return -1
            if call[i] == ")":
                return i + 1
            k = _KEY.match(call, i)
            if k is None:
                raise ParseError(
                    f"cannot read the arguments of {name}() at {snippet(call[i:], 20)}; "
                    f"write {name}(key='value', ...)"
                )
            key, i = k.group(1), k.end()
            if key in out or key in raw.cut:
                raise ParseError(f"{name}() repeats the argument {key!r}; give it once")
            if i < n and call[i] in "'\"":
                v = _VALUE[call[i]].match(call, i + 1)
                if v is None:  # the value runs to the end: cut off
                    value, i = unescape(call[i + 1 :]), n
                    raw.cut.add(key)
                else:
                    value, i = unescape(v.group(1)), v.end()
            else:
                b = _BARE.match(call, i)
                if b is None:
                    raise ParseError(f"{name}(): {key}= has no value; write {key}='...'")
                value, i = b.group(0), b.end()
            if value != "":
                out[key] = value

    def read_point(self, value: Any, verb: Verb, arg: Arg) -> tuple[float, float]:
        return read_box(str(value), verb.name, arg.name)

    # -- writing -----------------------------------------------------------------------------
    def write_point(self, x: int | float, y: int | float, arg: Arg) -> Any:
        if arg.name in POINT_NAMES or (self.style == "point" and arg.name not in BOX_NAMES):
            return f"<point>{x} {y}</point>"
        return f"{BOX_START}({x},{y}){BOX_END}"

    def write(self, verb: Verb, args: list[tuple[Arg, Any]], thought: str) -> str:
        inner = ", ".join(
            f"{a.name}='{v if a.type == 'point' else escape_single(str(v))}'" for a, v in args
        )
        call = f"{verb.name}({inner})"
        return f"Thought: {thought}\nAction: {call}" if thought else f"Action: {call}"

    def example(self, verb: Verb | None = None) -> str:
        if verb is not None and verb.line:
            return verb.line.split(" #")[0].replace("=''", "='...'")
        point = self.write_point(101, 102, Arg("start_box", "point", "point"))
        return f"click(start_box='{point}')" if verb is None else f"{verb.name}(...)"

    # -- grammar -----------------------------------------------------------------------------
    def grammar(self, spec: GrammarSpec) -> str:
        rules, calls = [], []
        for i, verb in enumerate(spec.verbs):
            for j, body in enumerate(self._bodies(verb, spec)):
                calls.append(f"c{i}_{j}")
                rules.append(f'c{i}_{j}: {lark_str(verb.name + "(")} {body} ")"')
        w, h = spec.extent
        sep = '("," | ", ")'
        pair, quad = f"X {sep} Y", f"X {sep} Y {sep} X {sep} Y"
        head = (
            r"/(?s:[^\x00-\x08\x0b-\x1f\x7f-\x9f]*)Action: /"
            r" & ~/(?s:.*Action[ \t]*[:\x{ff1a}].*Action: )/ & ~/(?s:.*<\|.*)/"
        )
        return "\n".join(
            [
                "start: head call",
                f"head[max_tokens={spec.thought_tokens}]: HEAD",
                f"HEAD: {head}",
                "call: " + " | ".join(calls),
                *rules,
                'box: "\'" coords "\'" | "\'" <|box_start|> coords <|box_end|> "\'"',
                f'coords: "(" {pair} ")" | "(" {quad} ")" | "(" {pair} ")" "," "(" {pair} ")"'
                f' | "[" {pair} "]" | "[" {quad} "]" | {quad}',
                'point: "\'<point>" X " " Y "</point>\'"',
                f"X: /{int_range_regex(w)}/",
                f"Y: /{int_range_regex(h)}/",
            ]
        )

    def _bodies(self, verb: Verb, spec: GrammarSpec) -> list[str]:
        """The argument lists a verb may be written with: its arguments in order (optional ones
        may be left out), under their names and, with ``both_notations``, once more with the
        point arguments under their other notation's alias."""
        args = [a for a in verb.args if a.source == "args" and a.name]
        spellings = [[a.name for a in args]]
        if self.both_notations and any(a.type == "point" for a in args):
            other = [_other(a) if a.type == "point" else a.name for a in args]
            if None not in other:
                spellings.append([str(n) for n in other])
        out = []
        for names in spellings:
            pieces = [
                (f"{lark_str(name + '=')} {self._value(verb, a, name, spec)}", a.required)
                for a, name in zip(args, names, strict=True)
            ]
            out.append(_sequence(pieces))
        return out

    def _value(self, verb: Verb, arg: Arg, name: str, spec: GrammarSpec) -> str:
        if arg.type == "point":
            point = name in POINT_NAMES or (self.style == "point" and name not in BOX_NAMES)
            return "point" if point else "box"
        schema = spec.schema(verb, arg)
        if arg.type == "text" and arg.strip:  # a name: it starts with a non-blank
            lo, hi = int(schema.get("minLength", 0)), int(schema["maxLength"])
            rest = text_regex(_QUOTED, max(lo - 1, 0), hi - 1, spec.secrets)
            term = f"'{_FIRST}{rest}'"
        else:
            term = value_regex(schema, "'", "'", char=_QUOTED, sep=arg.sep, secrets=spec.secrets)
        empty_ok = arg.type == "text" and not arg.strip and not schema.get("minLength")
        if arg.required or empty_ok:
            return f"/{term}/"
        return f"(/{term}/ | \"''\")"  # an optional value left empty (time=''): dropped


def _other(arg: Arg) -> str | None:
    """A point argument's alias in the other notation."""
    mine = POINT_NAMES if arg.name in POINT_NAMES else BOX_NAMES
    return next((n for n in arg.aliases if n in BOX_NAMES | POINT_NAMES and n not in mine), None)


def _sequence(pieces: list[tuple[str, bool]]) -> str:
    """``a, b, c`` where optional pieces may be left out (with their separators)."""
    alts = [""]
    for piece, required in pieces:
        nxt = []
        for a in alts:
            nxt.append(f'{a} ", " {piece}' if a else piece)
            if not required:
                nxt.append(a)
        alts = nxt
    return "(" + " | ".join(f"({a})" if a else '""' for a in dict.fromkeys(alts)) + ")"
