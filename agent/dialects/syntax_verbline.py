"""verbline: OS-Atlas's call, a verb line after ``actions:``.

``thoughts:\\n<text>\\nactions:\\nCLICK <point>[[493,544]]</point>``, or ``actions:`` and the line
alone (the OS-Atlas-Pro card's own output; the GUIAct-phone and Odyssey gold answers). A line is
the verb, its points ``<point>[[x,y]]</point>`` (``[[x, y]]`` with a blank, as the prompts' examples
write it, is as good) and at most one bracketed value: ``TYPE [text]``, ``SCROLL [UP]``. OmniAct
answers may hold several lines: the first is the call.

Read as the official scorers read it (``split("actions:\\n")[1]``, the verb is the first word):
the call follows the first ``actions:`` line (an exact ``actions:`` + newline first, else any
``Actions:``/``action:`` line start), the thought is the text before it without ``thoughts:``.
A bracketed value runs to the last ``]`` of its line, so typed text may hold brackets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pixelpilot.agent.dialects.lark import (
    BLANKS,
    LINE_BANNED,
    TEXT_CHARS,
    int_range_regex,
    lark_str,
    regex_literal,
    text_regex,
)
from pixelpilot.agent.dialects.syntax import GrammarSpec, RawCall, Syntax, number
from pixelpilot.agent.dialects.table import Arg, Verb
from pixelpilot.agent.errors import ParseError
from pixelpilot.agent.keys import GRAMMAR_KEYS

__all__ = ["EXTRA_LINES", "VerbLineSyntax", "split_answer", "thought_lines", "worst_bytes"]

EXTRA_LINES = 2
"""Most action lines the grammar admits after the first (they are not executed)."""
MARK_SCAN = 65_536
"""How far into an answer a loosely written marker (``Actions:``) is looked for: a regex over
more text would cost more than a parse may (the exact ``actions:`` line is found anywhere)."""
MAX_POINTS = 4
"""Most points read on a verb line (a verb takes at most 2)."""
MAX_VALUE = 10_000
"""Longest bracketed value read (an action's text holds at most 4,000 characters)."""
_MARK = re.compile(r"^[ \t]*actions?[ \t]*[:：][ \t]*\n?", re.IGNORECASE | re.MULTILINE)
_THOUGHTS = re.compile(r"[ \t]*thoughts?[ \t]*[:：][ \t]*\n?", re.IGNORECASE)
_VERB = re.compile(r"[ \t]*([A-Za-z][A-Za-z_]*)")
_NUM = r"[-+]?\d{1,40}(?:\.\d{0,40})?"
_POINT = re.compile(
    rf"[ \t]*<point>[ \t]*\[?\[[ \t]*({_NUM})[ \t]*,[ \t]*({_NUM})[ \t]*\]\]?[ \t]*</point>"
)
_LINE_CHAR = f"[^{LINE_BANNED}]"
"""One character of a bracketed value (one line)."""


def split_answer(text: str) -> tuple[str, str] | None:
    """(thought, the action section) of an answer: around its first ``actions:`` line; None
    when it has none."""
    if text.startswith("actions:\n"):
        start = 0
    else:
        i = text.find("\nactions:\n")
        start = i + 1 if i >= 0 else -1
    if start >= 0:
        end = start + len("actions:\n")
    else:
        m = _MARK.search(text, 0, MARK_SCAN)
        if m is None:
            return None
        start, end = m.start(), m.end()
    thought = text[:start]
    m = _THOUGHTS.match(thought)
    if m:
        thought = thought[m.end() :]
    return thought.strip(), text[end:]


def thought_lines(tokens: int) -> tuple[int, int]:
    """(lines, characters a line) of the longest thought, for a budget of ``tokens``.

    The budget is in characters, not llguidance's ``max_tokens``: that ends a lexeme wherever
    the budget runs out, and the answer would go on without its ``actions:`` line. Each line is
    one lexeme that is never exactly ``actions:`` (so the first such line is the marker, as the
    parser reads it); English runs about 4 characters a token."""
    return max(1, tokens // 128), min(512, 4 * tokens)


def worst_bytes(tokens: int) -> int:
    """The longest answer the grammar admits, in bytes (at most one token each): the
    ``max_new_tokens`` that never cuts an admitted answer."""
    lines, chars = thought_lines(tokens)
    line = len("MOVE_EFFECTOR <point>[[1000, 1000]]</point> [") + 4 * TEXT_CHARS + 1
    return (
        len("thoughts:\n")
        + lines * (4 * chars + 1)
        + len("actions:\n")
        + (1 + EXTRA_LINES) * (line + 1)
    )


class VerbLineSyntax(Syntax):
    """``[thoughts:\\n<text>\\n]actions:\\nVERB <point>[[x,y]]</point> [value]``."""

    noun = "action"

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.names = tuple(dict.fromkeys(names))
        """The family's verb names (for messages); any upper-case word is read as a verb."""

    # -- read / write ------------------------------------------------------------------------
    def extract(self, text: str) -> RawCall | None:
        parts = split_answer(text)
        thought, section = parts or ("", text)
        line = section.lstrip().split("\n", 1)[0]
        m = _VERB.match(line)
        if m is None:
            return None
        rest = line[m.end() :]
        call = rest.strip()
        if (rest and not rest[0].isspace() and rest[0] not in "<[") or (
            parts is None and call and not call.startswith(("<point>", "["))
        ):
            return None  # prose, not a verb line
        positional: list[tuple[str, Any]] = []
        pos = 0
        while len(positional) < MAX_POINTS and (p := _POINT.match(rest, pos)) is not None:
            positional.append(("point", (p.group(1), p.group(2))))
            pos = p.end()
        tail = rest[pos:].strip()
        if tail.startswith("["):
            end = tail.rfind("]")
            value = tail[1:end] if end > 0 else tail[1:]
            if len(value) > MAX_VALUE:
                raise ParseError(
                    f"{m.group(1).upper()}: the bracketed value is longer than {MAX_VALUE} characters"
                )
            positional.append(("value", value))
        elif tail.startswith("<point>"):
            raise ParseError(
                f"{m.group(1).upper()}: a point is written <point>[[x,y]]</point> with x and y "
                "from 0 to 1000"
            )
        return RawCall(m.group(1).upper(), positional=positional, thought=thought)

    def write(self, verb: Verb, args: list[tuple[Arg, Any]], thought: str) -> str:
        parts = [verb.name]
        parts += [f"<point>[[{v[0]},{v[1]}]]</point>" for a, v in args if a.type == "point"]
        parts += [f"[{v}]" for a, v in args if a.type != "point"]
        line = " ".join(parts)
        return f"thoughts:\n{thought}\nactions:\n{line}" if thought else f"actions:\n{line}"

    def read_point(self, value: Any, verb: Verb, arg: Arg) -> tuple[float, float]:
        x, y = value
        where = f"{verb.name}: <point>"
        return number(x, where), number(y, where)

    def write_point(self, x: int | float, y: int | float, arg: Arg) -> Any:
        return (x, y)

    def example(self, verb: Verb | None = None) -> str:
        if verb is None:
            return "actions: and one line such as CLICK <point>[[493,544]]</point>"
        parts = [verb.name] + ["<point>[[x,y]]</point>" for a in verb.args if a.type == "point"]
        parts += ["[...]" for a in verb.args if a.type != "point"]
        return " ".join(parts)

    # -- grammar -----------------------------------------------------------------------------
    def grammar(self, spec: GrammarSpec) -> str:
        """``actions:\\n`` + one line of an offered verb (+ up to ``EXTRA_LINES`` more), after
        an optional ``thoughts:\\n`` + free text in any language and any number of lines."""
        calls = [self._call(verb, spec) for verb in spec.verbs]
        n = int_range_regex(max(spec.extent))
        lines, chars = thought_lines(spec.thought_tokens)
        extra = EXTRA_LINES if spec.extra_calls is None else spec.extra_calls
        return "\n".join(
            [
                f'start: "actions:\\n" calls | "thoughts:\\n" LINE{{1,{lines}}} "actions:\\n" calls',
                rf"LINE: /[^<\x{{273f}}\n\x00-\x08\x0b-\x1f\x7f]{{0,{chars}}}\n/ & ~/actions:\n/",
                f'calls: call ("\\n" call){{0,{extra}}}' if extra else "calls: call",
                "call: " + " | ".join(f"c{i}" for i in range(len(calls))),
                *(f"c{i}: {rule}" for i, rule in enumerate(calls)),
                rf"POINT: /<point>\[\[{n}, ?{n}\]\]<\/point>/",
            ]
        )

    def _call(self, verb: Verb, spec: GrammarSpec) -> str:
        parts = [lark_str(verb.name)]
        for arg in verb.args:
            if arg.type == "point":
                parts.append('" " POINT')
            else:
                value = f'" [" {self._value(verb, arg, spec)}'
                parts.append(value if arg.required else f"({value})?")
        return " ".join(parts)

    def _value(self, verb: Verb, arg: Arg, spec: GrammarSpec) -> str:
        """A bracketed value as ONE lexeme with its closing ``]`` (it may hold ``]``)."""
        if arg.type == "enum":
            assert arg.choices is not None
            return "(" + " | ".join(lark_str(f"{c}]") for c in arg.choices) + ")"
        if arg.type == "keys":
            sep = arg.sep or "+"
            # as the family writes them (OS-Atlas: CTRL_A) or as pixelpilot's names (ctrl+a)
            names = dict.fromkeys(n for k in GRAMMAR_KEYS if sep not in k for n in (k, k.upper()))
            key = "(?:" + "|".join(regex_literal(n) for n in names) + ")"
            return f"/{key}(?:{regex_literal(sep)}{key}){{0,2}}\\]/"
        if arg.type in ("number", "integer"):
            return r"/(?:0(?:\.[0-9]{1,2})?|1(?:\.0{1,2})?)\]/"
        schema = spec.schema(verb, arg)
        if arg.strip:
            first = f"[^{LINE_BANNED}{BLANKS}\\]]"
            return f"/{first}{text_regex(_LINE_CHAR, 0, TEXT_CHARS - 1, spec.secrets)}\\]/"
        lo = 1 if int(schema.get("minLength", 0)) > 0 else 0
        return f"/{text_regex(_LINE_CHAR, lo, TEXT_CHARS, spec.secrets)}\\]/"
