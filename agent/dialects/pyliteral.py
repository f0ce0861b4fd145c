"""Python literals as a model writes them (ShowUI's ``{'action': ..., 'value': None, ...}``),
read without ever evaluating them.

``read_literal`` reads one literal (dict, list, tuple, string, number, None/True/False) starting
at an index and returns it with the index after it. It is total and linear: nesting is bounded
(``MAX_DEPTH``), so are the number of values (``MAX_VALUES``) and a string's length
(``MAX_STRING``), strings are scanned and unescaped by the regex engine and the codec in C, and every failure is a ``LiteralError`` (a ValueError
with a one-line reason and the offset). Writing needs no code: ``repr`` writes a literal exactly
as ShowUI's training code wrote its targets (``str(dict)``).
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["MAX_DEPTH", "MAX_STRING", "MAX_VALUES", "LiteralError", "read_literal"]

MAX_DEPTH = 4
"""Deepest nesting read ({'position': [[x, y], [x, y]]} needs 3)."""
MAX_VALUES = 256
"""Most values (keys, items, scalars) in one literal: a ShowUI answer holds about 10."""
MAX_STRING = 10_000
"""Longest string read (an action's text holds at most 4,000 characters)."""
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_WORDS: dict[str, Any] = {"None": None, "True": True, "False": False}
_WORD = re.compile(r"[A-Za-z_]\w{0,40}")
_SPACE = re.compile(r"\s*")
_BODY = {q: re.compile(rf"[^{q}\\\n]*+(?:\\.[^{q}\\\n]*+)*+", re.DOTALL) for q in "'\""}
"""A quoted string's body: up to its closing quote, a bare line break or the end."""
_ESCAPE = re.compile(r"(\\[\\'\"abfnrtv0-7xuUN\n])|(\\)")
"""A Python escape (kept), or a backslash that starts none (doubled: Python keeps it as is)."""
_SURROGATE = re.compile("[\ud800-\udfff]")
_CLOSERS = {"{": "}", "[": "]", "(": ")"}


class LiteralError(ValueError):
    """Text that is not a Python literal; ``pos`` is where reading stopped."""

    def __init__(self, reason: str, pos: int) -> None:
        super().__init__(f"{reason} at character {pos}")
        self.reason = reason
        self.pos = pos


def read_literal(text: str, pos: int = 0) -> tuple[Any, int]:
    """The literal starting at ``text[pos]`` (after blanks) and the index after it."""
    return _Reader(text).value(pos, 0)


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.values = 0

    def skip(self, pos: int) -> int:
        return _SPACE.match(self.text, pos).end()  # type: ignore[union-attr]

    def value(self, pos: int, depth: int) -> tuple[Any, int]:
        text = self.text
        pos = self.skip(pos)
        self.values += 1
        if self.values > MAX_VALUES:
            raise LiteralError(f"more than {MAX_VALUES} values", pos)
        if pos >= len(text):
            raise LiteralError("the text ends where a value should be", pos)
        c = text[pos]
        if c in _CLOSERS:
            if depth >= MAX_DEPTH:
                raise LiteralError(f"values nested deeper than {MAX_DEPTH}", pos)
            return self.container(pos, depth + 1)
        if c in "'\"":
            return _string(text, pos)
        m = _NUMBER.match(text, pos)
        if m:
            return _number(m.group(0), pos), m.end()
        m = _WORD.match(text, pos)
        if m and m.group(0) in _WORDS:
            return _WORDS[m.group(0)], m.end()
        raise LiteralError(f"{(m.group(0) if m else c)!r} is not a literal value", pos)

    def container(self, pos: int, depth: int) -> tuple[Any, int]:
        text = self.text
        opener = text[pos]
        closer = _CLOSERS[opener]
        items: list[Any] = []
        pairs: dict[Any, Any] = {}
        comma = False
        pos = self.skip(pos + 1)
        while pos >= len(text) or text[pos] != closer:
            if opener == "{":
                key, pos = self.value(pos, depth)
                if not isinstance(key, (str, int, float)) or isinstance(key, bool):
                    raise LiteralError("a dictionary key must be a string or a number", pos)
                pos = self.skip(pos)
                if pos >= len(text) or text[pos] != ":":
                    raise LiteralError(f"expected ':' after the key {key!r}", pos)
                pairs[key], pos = self.value(pos + 1, depth)
            else:
                item, pos = self.value(pos, depth)
                items.append(item)
            pos = self.skip(pos)
            if pos < len(text) and text[pos] == ",":
                pos, comma = self.skip(pos + 1), True
            elif pos >= len(text):
                raise LiteralError(f"the text ends before the closing {closer!r}", pos)
            elif text[pos] != closer:
                raise LiteralError(f"expected ',' or {closer!r}, found {text[pos]!r}", pos)
        if opener == "{":
            return pairs, pos + 1
        if opener == "(" and len(items) == 1 and not comma:
            return items[0], pos + 1  # (x) is x, as in Python
        return (items if opener == "[" else tuple(items)), pos + 1


def _string(text: str, pos: int) -> tuple[str, int]:
    quote = text[pos]
    stop = min(len(text), pos + 2 + MAX_STRING)  # no need to scan past the longest string
    end = _BODY[quote].match(text, pos + 1, stop).end()  # type: ignore[union-attr]
    if end - pos - 1 > MAX_STRING:
        raise LiteralError(f"a string longer than {MAX_STRING} characters", pos)
    if end >= len(text) or text[end] != quote:
        if end < len(text) and text[end] == "\n":
            raise LiteralError("a line break inside a quoted string (write \\n)", end)
        raise LiteralError(f"the string opened with {quote} is not closed", pos)
    body = text[pos + 1 : end]
    if "\\" in body:
        try:
            escaped = _ESCAPE.sub(r"\1\2\2", body).encode("latin-1", "backslashreplace")
            body = escaped.decode("unicode_escape")
        except UnicodeDecodeError as err:
            raise LiteralError(f"a broken escape in the string ({err.reason})", pos) from None
        if _SURROGATE.search(body):
            raise LiteralError("an escape names half of a surrogate pair", pos)
    return body, end + 1


def _number(s: str, pos: int) -> int | float:
    try:
        value: int | float = float(s) if any(c in s for c in ".eE") else int(s)
    except ValueError:  # more digits than Python converts
        raise LiteralError(f"the number {s[:20]}... has too many digits", pos) from None
    if isinstance(value, float) and not math.isfinite(value):
        raise LiteralError(f"the number {s[:20]} is too large", pos)
    return value
