"""Decoding grammar of UI-TARS's ``Thought:``/``Action:`` calls, not yet ported to the table
engine (moved here unchanged from ``vlm/grammar.py``; it goes when UI-TARS moves onto
``engine.TableDialect``).

Each is built from what the dialect passes in (its tool spec, its Action Space templates and
call writer), never by importing the dialect back: the import graph stays acyclic. The rules
are ``lark``'s; the UI-TARS thought is still one ASCII line of ``UITARS_THOUGHT_TOKENS``.
"""

from __future__ import annotations

import re
from typing import Any

from pixelpilot.agent.actions import (
    AskUser,
    Finish,
    Hotkey,
    OpenApp,
    Point,
    TypeText,
    point_fields,
)
from pixelpilot.agent.dialects._text import fit
from pixelpilot.agent.dialects.lark import (
    TEXT_CHARS,
    int_range_regex,
    lark_str,
    regex_literal,
)
from pixelpilot.agent.keys import GRAMMAR_KEYS

__all__ = ["UITARS_THOUGHT_TOKENS", "uitars_grammar"]

UITARS_THOUGHT_TOKENS = 48
"""Longest UI-TARS thought, in tokens (one line of printable ASCII)."""


# -- UI-TARS -----------------------------------------------------------------------------------
_SX, _SY = 90001, 90002
"""Sentinel coordinates: where they appear in a formatted template, a coordinate goes."""
_HOLES = {"\x01T": "TEXT", "\x01A": "TEXT", "\x01F": "TEXT", "\x01K": "KEYS"}
_PIECE = re.compile(rf"(<\|box_start\|>|<\|box_end\|>|{_SX}|{_SY}|\x01[TAFK]|direction='down')")
_THOUGHT = r"/[ -;=-~]{1,400}/"
"""One line of printable ASCII without '<'; its length is bounded in tokens."""
_QUOTED_CHAR = r"(?:[^'\\\x00-\x1f\x7f-\x9f<]|\\[nt'\\])"
"""One character of a single-quoted value: no bare quote or backslash, escapes \\n \\t \\' \\\\."""


def _holed(template: Any) -> Any:
    """``template`` with sentinel points and strings, so its formatted call shows the holes."""
    update: dict[str, Any] = {
        name: Point(x=_SX, y=_SY, space=getattr(template, name).space)
        for name in point_fields(type(template))
        if getattr(template, name) is not None
    }
    if isinstance(template, TypeText):
        update["text"] = "\x01T"
    elif isinstance(template, OpenApp):
        update["app"] = "\x01A"
    elif isinstance(template, Finish) and template.answer:
        update["answer"] = "\x01F"
    elif isinstance(template, Hotkey):
        update["keys"] = ["\x01K"]
    return template.model_copy(update=update)


def _call_rule(call: str) -> str:
    """A formatted template call with holes -> a Lark sequence."""
    out = []
    for piece in _PIECE.split(call):
        if not piece:
            continue
        if piece.startswith("<|"):
            out.append(piece)  # a special token (UI-TARS v1's box markers)
        elif piece == str(_SX):
            out.append("X")
        elif piece == str(_SY):
            out.append("Y")
        elif piece == "direction='down'":
            out.append('"direction=\'" DIRECTION "\'"')
        elif piece in _HOLES:
            out.append(_HOLES[piece])
        else:
            out.append(lark_str(piece))
    return " ".join(out)


def uitars_grammar(dialect: Any, ctx: Any, extent: tuple[int, int]) -> str:
    """``Thought: ...`` then ``Action: call(...)`` for each Action Space line the device fits:
    the ``dialect``'s templates (``_templates``) written by its own ``_call``."""
    w, h = extent
    device_kind = ctx.device_kind
    calls = []
    for template in dialect._templates(device_kind):
        if fit(template, ctx, dialect.space) is None:
            continue
        rule = _call_rule(dialect._call(_holed(template)))
        if rule not in calls:
            calls.append(rule)
    if not calls:
        raise ValueError("no action kinds to offer")
    if not any(isinstance(t, AskUser) for t in dialect._templates(device_kind)):
        raise AssertionError("UI-TARS templates lost call_user")  # pragma: no cover
    key = "(?:" + "|".join(regex_literal(k) for k in GRAMMAR_KEYS) + ")"
    return "\n".join(
        [
            'start: "Thought: " thought "\\nAction: " call',
            f"thought[max_tokens={UITARS_THOUGHT_TOKENS}]: THOUGHT",
            f"THOUGHT: {_THOUGHT}",
            "call: " + " | ".join(f"c{i}" for i in range(len(calls))),
            *(f"c{i}: {rule}" for i, rule in enumerate(calls)),
            f"X: /{int_range_regex(w)}/",
            f"Y: /{int_range_regex(h)}/",
            f"TEXT: /{_QUOTED_CHAR}{{1,{TEXT_CHARS}}}/",
            f"KEYS: /{key}(?: {key}){{0,2}}/",
            'DIRECTION: "up" | "down" | "left" | "right"',
        ]
    )
