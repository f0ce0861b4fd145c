"""Building blocks of decoding grammars: Lark for llguidance, shared by every call syntax.

So that every string a grammar admits parses, validates and lands on the screen:

- JSON is written as ``json.dumps`` writes it (``", "`` and ``": "``, no other whitespace);
- coordinates are integers within the dialect's space (0..1000, or 0..resized w/h per axis);
- free text is bounded (``TEXT_CHARS``) and holds no control character (the desktop refuses
  them), no ``<`` (``<|im_end|>`` or ``</tool_call>`` spelled as text would cut the answer)
  except a secret placeholder ``<secret>NAME</secret>`` for a NAME the step allows, and no
  ``✿``; JSON escapes are ``\\n \\t \\" \\\\`` only (no ``\\u``: no lone surrogates);
- numbers have bounded digits, keys come from ``keys.GRAMMAR_KEYS``;
- a thought is free text in any language, any number of lines, at most ``THOUGHT_TOKENS``.

llguidance lexes greedily: a value that may hold its own closing character is ONE lexeme
together with that closing character (see docs/grammar.md).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from pixelpilot.agent.keys import GRAMMAR_KEYS

__all__ = [
    "BANNED",
    "BLANKS",
    "JSON_OPTIONS",
    "LINE_BANNED",
    "TEXT_CHARS",
    "THOUGHT_TOKENS",
    "bounded",
    "coordinate_schema",
    "int_range_regex",
    "keys_regex",
    "lark_json",
    "lark_str",
    "number_regex",
    "quoted_regex",
    "regex_literal",
    "text_regex",
    "text_schema",
    "value_regex",
]

TEXT_CHARS = 200
"""Longest free text (typed text, answer, question, app name): 4 bytes a character at worst,
enough for a street address or a sentence to type."""
THOUGHT_TOKENS = 512
"""Longest thought before a call, in tokens: a plan of several sentences, in any language."""
BANNED = r"\x00-\x08\x0b-\x1f\x7f-\x9f<\x{273f}"
"""Never in free text (a regex class body): control characters but \\t and \\n, '<', '✿'."""
LINE_BANNED = r"\x00-\x1f\x7f-\x9f<\x{273f}"
"""Never in one-line free text: every control character, '<', '✿'."""
BLANKS = r"\x{20}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
"""What ``str.strip`` removes beyond control characters (a regex class body)."""
JSON_OPTIONS = {
    "whitespace_flexible": False,
    "item_separator": ", ",
    "key_separator": ": ",
    "json_allowed_escapes": 'nt"\\',
}


def lark_str(s: str) -> str:
    """``s`` as a Lark string literal."""
    return json.dumps(s, ensure_ascii=False)


def lark_json(schema: dict[str, Any]) -> str:
    """``%json{...}`` for ``schema``, compact, with the fixed separators and escapes."""
    return "%json" + json.dumps({"x-guidance": JSON_OPTIONS, **schema}, ensure_ascii=False)


def regex_literal(s: str) -> str:
    """``s`` as a literal inside a Lark ``/regex/`` (Rust syntax): punctuation as hex escapes."""
    return "".join(c if c.isalnum() or c == "_" else f"\\x{{{ord(c):02x}}}" for c in s)


def int_range_regex(hi: int, positive: bool = False) -> str:
    """A regex (no anchors) matching the decimal integers 0..hi (1..hi when ``positive``),
    without sign or leading zeros."""
    if hi < (1 if positive else 0):
        raise ValueError(f"empty integer range {int(positive)}..{hi}")
    s = str(hi)
    n = len(s)
    first = "[1-9]" if positive else "[0-9]"
    alts = [f"[1-9][0-9]{{{d - 1}}}" if d > 1 else first for d in range(1, n)]
    for i in range(n):
        lo = 1 if i == 0 and (n > 1 or positive) else 0
        top = int(s[i]) - 1
        if top >= lo:
            rest = f"[0-9]{{{n - i - 1}}}" if n - i - 1 else ""
            alts.append(f"{s[:i]}[{lo}-{top}]{rest}")
    alts.append(s)
    return "(?:" + "|".join(alts) + ")"


def number_regex(hi: int, decimals: int, positive: bool = False) -> str:
    """A regex for the decimal numbers 0..``hi`` (above 0 when ``positive``) with at most
    ``decimals`` decimals: what a grammar lets a model write for a bounded number."""
    frac = f"(?:\\.[0-9]{{1,{decimals}}})?" if decimals else ""
    top = f"{hi}(?:\\.0{{1,{decimals}}})?" if decimals else str(hi)
    alts = [top]
    if hi >= 1:
        alts.insert(0, int_range_regex(hi - 1, positive) + frac if hi > 1 or not positive else "")
    if positive and decimals:
        alts.append(f"0\\.[0-9]{{0,{decimals - 1}}}[1-9]")
    return "(?:" + "|".join(a for a in alts if a) + ")"


def quoted_regex(quote: str, lo: int, hi: int, secrets: Sequence[str] = ()) -> str:
    """A ``quote``d string of ``lo``..``hi`` characters as ONE lexeme, closing quote included:
    no control character (a newline is the escape ``\\n``; also ``\\t \\<quote> \\\\``), no bare
    quote or backslash, no '<' (but an allowed secret), no '✿'."""
    q = regex_literal(quote)
    char = rf"(?:[^{q}\\{LINE_BANNED}]|\\[nt{q}\\])"
    return f"{q}{text_regex(char, lo, hi, secrets)}{q}"


def _secret(secrets: Sequence[str]) -> str:
    """The placeholder of one allowed secret, as a regex alternative ('' for none)."""
    if not secrets:
        return ""
    names = "|".join(regex_literal(n) for n in secrets)
    return f"|{regex_literal('<secret>')}(?:{names}){regex_literal('</secret>')}"


def text_regex(char: str, lo: int, hi: int, secrets: Sequence[str] = ()) -> str:
    """``lo``..``hi`` repetitions of ``char`` (a regex for one character), where a repetition
    may also be one allowed secret placeholder."""
    unit = f"(?:{char}{_secret(secrets)})" if secrets else char
    return f"{unit}{{{lo},{hi}}}"


def text_schema(min_length: int = 0, secrets: Sequence[str] = ()) -> dict[str, Any]:
    """A JSON string schema for free text: bounded, no control characters, '<' or '✿' (but the
    allowed secret placeholders); \\n and \\t are allowed."""
    char = "[^\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f<✿]"
    secret = "".join(f"|<secret>{n}</secret>" for n in secrets) if secrets else ""
    body = f"(?:{char}{secret})" if secrets else char
    return {
        "type": "string",
        "minLength": min(min_length, TEXT_CHARS),
        "maxLength": TEXT_CHARS,
        "pattern": f"^{body}*$",
    }


def coordinate_schema(extent: tuple[int, int]) -> dict[str, Any]:
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


def keys_regex(sep: str, most: int = 3) -> str:
    """1 to ``most`` key names (without ``sep``) joined by ``sep``, as a regex."""
    key = "(?:" + "|".join(regex_literal(k) for k in GRAMMAR_KEYS if k != sep) + ")"
    return f"{key}(?:{regex_literal(sep)}{key}){{0,{most - 1}}}"


def bounded(prop: dict[str, Any], secrets: Sequence[str] = ()) -> dict[str, Any]:
    """A generated property schema with every string, list and number bounded for decoding."""
    kind = prop.get("type")
    if "anyOf" in prop:
        return {"anyOf": [bounded(b, secrets) for b in prop["anyOf"]]}
    if "enum" in prop or "const" in prop:
        return {k: prop[k] for k in ("enum", "const", "type") if k in prop}
    if kind == "string":
        return text_schema(int(prop.get("minLength", 0)), secrets)
    if kind == "array" and prop.get("items", {}).get("type") == "string":  # hotkey keys
        return {
            "type": "array",
            "items": {"enum": list(GRAMMAR_KEYS)},
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


def value_regex(
    schema: dict[str, Any],
    open_: str,
    close: str,
    *,
    char: str,
    sep: str | None = None,
    secrets: Sequence[str] = (),
) -> str:
    """One written value of a text syntax as a regex, between ``open_`` and ``close`` (quotes,
    brackets): ``schema`` (an argument's bounded JSON schema, see ``engine``) says which values;
    ``char`` is one character of free text; ``sep`` joins key names."""
    o, c = regex_literal(open_), regex_literal(close)
    if "enum" in schema or "const" in schema:
        values = schema.get("enum", [schema.get("const")])
        body = "(?:" + "|".join(regex_literal(str(v)) for v in values) + ")"
    elif schema.get("type") == "string":
        body = text_regex(char, int(schema.get("minLength", 0)), TEXT_CHARS, secrets)
    elif schema.get("type") == "array":
        body = keys_regex(sep or "+", int(schema.get("maxItems", 3)))
    elif schema.get("type") in ("number", "integer"):
        step = float(schema.get("multipleOf", 1))
        decimals = 0 if schema["type"] == "integer" else max(0, round(-math.log10(step)))
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        positive = low > 0 or "exclusiveMinimum" in schema
        body = number_regex(int(schema.get("maximum", 1000)), decimals, positive)
    else:
        raise ValueError(f"no regex for the schema {schema}")
    return f"{o}{body}{c}"
