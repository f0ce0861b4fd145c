"""Decoding grammars for the grounding families: OS-Atlas-Pro verb lines and ShowUI dicts (moved
here unchanged from ``vlm/grammar_grounding.py``; they go when those families move onto
``engine.TableDialect``; built from the verb table and offered verbs the dialect passes in).

Like ``grammars``', each admits only answers its dialect parses, validates and maps onto the
screen, and only the verbs/actions the dialect's prompt offers for the device (``offered``):

- OS-Atlas-Pro: ``thoughts:\\n`` + one line of thought (at most ``THOUGHT_TOKENS`` tokens) +
  ``\\nactions:\\n`` + one verb line, points ``<point>[[x,y]]</point>`` with integers 0..1000;
- ShowUI: ``{'action': 'VERB', 'value': ..., 'position': ...}`` written as the dialect writes it
  (``", "`` and ``": "``), positions ``[x, y]`` (DRAG ``[[x1, y1], [x2, y2]]``) of decimal
  fractions 0..1 with at most 3 decimals, each value in exactly the form the prompt describes.

Free text is at most ``TEXT_CHARS`` characters, one line (OS-Atlas) or a single-quoted string with
the escapes ``\\n \\t \\' \\\\`` only (ShowUI), never a control character, ``<`` or ``✿``. Values
the parser strips (app names, questions) start with a non-blank character; hotkeys are 1 to 3
key names joined by ``+``; heights are 0..1 with at most 2 decimals. A bracketed or quoted value
is ONE lexeme together with its closing ``]``/``'``: llguidance lexes greedily, so a separate
closing literal after text that may hold ``]`` would never be reached.
"""

from __future__ import annotations

from typing import Any

from pixelpilot.agent.dialects.grammars import _THOUGHT, UITARS_THOUGHT_TOKENS
from pixelpilot.agent.dialects.lark import TEXT_CHARS, int_range_regex, keys_regex, lark_str

__all__ = ["osatlas_grammar", "showui_grammar"]

_BLANKS = r"\x{20}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
"""What ``str.strip`` removes beyond control characters (a regex class body)."""
_BANNED = r"\x00-\x1f\x7f-\x9f<\x{273f}"
"""Never in free text: control characters, '<' (end tokens), '✿'."""
_LINE_CHAR = f"[^{_BANNED}]"
"""One character of one-line free text."""
_SOLID_CHAR = f"[^{_BANNED}{_BLANKS}]"
"""A character ``str.strip`` keeps: what a stripped value starts with."""
_QUOTED = rf"(?:[^'\\{_BANNED}]|\\[nt'\\])"
"""One character of a single-quoted value: escapes \\n \\t \\' \\\\ only."""
_QUOTED_SOLID = rf"[^'\\{_BANNED}{_BLANKS}]"
_HEIGHT = r"(?:0(?:\.[0-9]{1,2})?|1(?:\.0{1,2})?)"
"""A gripper height in metres, 0..1 with at most 2 decimals."""
_FRACTION = r"(?:0(?:\.[0-9]{1,3})?|1(?:\.0{1,3})?)"
"""A ShowUI position coordinate: 0..1 with at most 3 decimals."""


# -- OS-Atlas-Pro ------------------------------------------------------------------------------
_ATLAS_VALUES = {
    "TYPE": "TEXT",
    "SCROLL": "DIRECTION",
    "HOTKEY": "KEYS",
    "OPEN_APP": "SOLID",
    "GRIPPER": "STATE",
    "MOVE_EFFECTOR": "HEIGHT",
    "ASK_USER": "SOLID",
}
"""The bracketed value each verb takes (a terminal that ends with the closing ']')."""


def osatlas_grammar(offered: list[str], table: dict[str, Any]) -> str:
    """``thoughts:\\n<thought>\\nactions:\\n<VERB line>`` for each ``offered`` verb of
    ``table`` (verb -> (points, takes a value, kinds, purpose)), norm1000."""
    if not offered:
        raise ValueError("no action kinds to offer")
    calls = []
    for verb in offered:
        npoints, has_value, _, _ = table[verb]
        parts = [lark_str(verb)] + ['" " point'] * npoints
        if verb == "COMPLETE":  # the answer is optional
            parts.append('(" [" TEXT)?')
        elif has_value:
            parts.append(f'" [" {_ATLAS_VALUES[verb]}')
        calls.append(" ".join(parts))
    n = int_range_regex(1000)
    return "\n".join(
        [
            'start: "thoughts:\\n" thought "\\nactions:\\n" call',
            f"thought[max_tokens={UITARS_THOUGHT_TOKENS}]: THOUGHT",
            f"THOUGHT: {_THOUGHT}",
            "call: " + " | ".join(f"c{i}" for i in range(len(calls))),
            *(f"c{i}: {rule}" for i, rule in enumerate(calls)),
            'point: "<point>[[" N "," N "]]</point>"',
            f"N: /{n}/",
            rf"TEXT: /{_LINE_CHAR}{{1,{TEXT_CHARS}}}\]/",
            rf"SOLID: /{_SOLID_CHAR}{_LINE_CHAR}{{0,{TEXT_CHARS - 1}}}\]/",
            rf"KEYS: /{keys_regex('+')}\]/",
            rf"HEIGHT: /{_HEIGHT}\]/",
            'DIRECTION: "UP]" | "DOWN]" | "LEFT]" | "RIGHT]"',
            'STATE: "OPEN]" | "CLOSE]"',
        ]
    )


# -- ShowUI ------------------------------------------------------------------------------------
_SHOWUI_VALUES = {
    "INPUT": "TEXT",
    "SCROLL": "DIRECTION",
    "SWIPE": "DIRECTION",
    "ANSWER": "ANSWER",
    "HOTKEY": "KEYS",
    "PRESS": "BUTTON",
    "OPEN_APP": "SOLID",
    "GRIPPER": "STATE",
    "MOVE_EFFECTOR": '("None" | HEIGHT)',  # the height is optional
    "ASK_USER": "SOLID",
}
"""The value each action takes; the others take None."""
_POSITIONS = {0: '"None"', 1: "pos", 2: '"[" pos ", " pos "]"', -1: '("None" | pos)'}
"""The position each action takes, by ``_ACTIONS``' count: none, one, two, optional one."""
_POSITION_KEY = lark_str(", 'position': ")


def showui_grammar(offered: list[str], table: dict[str, Any]) -> str:
    """``{'action': 'VERB', 'value': v, 'position': p}`` for each ``offered`` action of
    ``table`` (action -> (positions, needs a value, kinds, meaning)), 0..1."""
    if not offered:
        raise ValueError("no action kinds to offer")
    calls = []
    for verb in offered:
        value = _SHOWUI_VALUES.get(verb, '"None"')
        position = _POSITIONS[table[verb][0]]
        head = lark_str(f"{verb}', 'value': ")
        calls.append(f"{head} {value} {_POSITION_KEY} {position}")
    q = _QUOTED
    return "\n".join(
        [
            'start: "{\'action\': \'" call "}"',
            "call: " + " | ".join(f"c{i}" for i in range(len(calls))),
            *(f"c{i}: {rule}" for i, rule in enumerate(calls)),
            'pos: "[" F ", " F "]"',
            f"F: /{_FRACTION}/",
            f"TEXT: /'{q}{{1,{TEXT_CHARS}}}'/",
            f"ANSWER: /'{q}{{0,{TEXT_CHARS}}}'/",
            f"SOLID: /'{_QUOTED_SOLID}{q}{{0,{TEXT_CHARS - 1}}}'/",
            f"KEYS: /'{keys_regex('+')}'/",
            f"HEIGHT: /'{_HEIGHT}'/",
            "DIRECTION: \"'up'\" | \"'down'\" | \"'left'\" | \"'right'\"",
            "BUTTON: \"'back'\" | \"'home'\" | \"'menu'\"",
            "STATE: \"'open'\" | \"'close'\"",
        ]
    )
