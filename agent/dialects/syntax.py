"""The Syntax interface: how a family writes ONE call, independent of which verbs it has.

Five syntaxes cover the families: fncall (Qwen-Agent ``✿FUNCTION✿``), toolcall (hermes
``<tool_call>`` JSON, the action inside the arguments), pycall (UI-TARS ``Action: verb(k='v')``),
verbline (OS-Atlas ``VERB <point>[[x,y]]</point> [value]``) and pydict (ShowUI
``{'action': ..., 'value': ..., 'position': ...}``). A syntax

- ``extract``s the call from an answer: a ``RawCall`` (verb name, arguments as written, the
  thought before it), None when the answer holds no call at all, or a ParseError for a broken
  one; total and in time linear in the answer's length (no backtracking regex over the text,
  no recursion);
- ``write``s a verb with its written arguments (the inverse);
- derives the Lark ``grammar`` of the offered verbs from their argument types;
- reads and writes points (``read_point``/``write_point``), since every syntax spells them
  its own way.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pixelpilot.agent.dialects._text import CALL_CHARS, snippet
from pixelpilot.agent.dialects.table import Arg, Verb
from pixelpilot.agent.errors import ParseError
from pixelpilot.vlm.base import JsonForm

__all__ = ["CALL_CHARS", "MAX_COORDINATE", "GrammarSpec", "RawCall", "Syntax", "number", "xy_pair"]

MAX_COORDINATE = 1e7
"""No space's coordinate is larger; a bigger (or non-finite) one is refused at once."""


@dataclass
class RawCall:
    """A call as written. ``args``: written name -> value as written (a JSON value for JSON
    syntaxes, a string for text ones). ``positional``: values written without names, in order
    (OS-Atlas points, then its bracketed value). ``group``: the tool whose ``action`` the verb
    is (toolcall). ``thought``: the text before the call."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    positional: list[Any] = field(default_factory=list)
    group: str = ""
    thought: str = ""
    cut: set[str] = field(default_factory=set)
    """Arguments whose value ran to the end of the answer (no closing quote): read only when
    complete anyway (a box that closes, one of an enum's words)."""


@dataclass(frozen=True)
class GrammarSpec:
    """What a syntax needs to build one step's grammar.

    ``verbs``: the offered verbs, prompt order. ``extent``: the largest written coordinate per
    axis (1000 for norm1000, the resized image's w/h for resized_px). ``schemas``: per verb, per
    argument, the bounded JSON schema of its value (from the Action field or the Arg's own).
    ``continuation``: the answer continues an assistant turn (Qwen-Agent after ``✿RETURN✿``).
    ``extra_calls``: most calls admitted after the first, where the family writes several in
    one answer (OS-Atlas's lines, ShowUI's dicts); None: the syntax's own number.
    """

    verbs: tuple[Verb, ...]
    extent: tuple[int, int]
    schemas: dict[tuple[str, str, str], dict[str, Any]]
    secrets: tuple[str, ...] = ()
    thought_tokens: int = 512
    continuation: bool = False
    extra_calls: int | None = None

    def schema(self, verb: Verb, arg: Arg) -> dict[str, Any]:
        return self.schemas[verb.group, verb.name, arg.name or arg.field]


class Syntax(ABC):
    """How a family writes one call."""

    noun: ClassVar[str] = "action"
    """What the family calls a verb, for error messages ('tool', 'action')."""
    typed: ClassVar[bool] = False
    """Values come typed (JSON): a number must be a JSON number, not its text."""

    @abstractmethod
    def extract(self, text: str) -> RawCall | None:
        """The call in ``text`` (already cut at end tokens, without code fences), None when it
        holds none. ParseError for a broken call. Total; linear in ``len(text)``."""

    @abstractmethod
    def write(self, verb: Verb, args: list[tuple[Arg, Any]], thought: str) -> str:
        """``verb`` called with ``args`` ((argument, written value), in argument order), after
        ``thought`` where the syntax has a thought."""

    @abstractmethod
    def grammar(self, spec: GrammarSpec) -> str:
        """Lark admitting exactly one call of an offered verb, in this syntax."""

    @abstractmethod
    def example(self, verb: Verb | None = None) -> str:
        """A short example of a call (of ``verb``), for error messages."""

    def json_form(self, spec: GrammarSpec) -> JsonForm | None:
        """The call as one JSON object, where the syntax's call is JSON."""
        return None

    def read_point(self, value: Any, verb: Verb, arg: Arg) -> tuple[float, float]:
        """A written point -> (x, y) in the dialect's space. Default: ``[x, y]``."""
        return xy_pair(value, f"{verb.name}: {arg.name!r}")

    def write_point(self, x: int | float, y: int | float, arg: Arg) -> Any:
        """(x, y) in the dialect's space -> the written point. Default: ``[x, y]``."""
        return [x, y]


def number(value: Any, where: str) -> float:
    """A finite number no larger than MAX_COORDINATE, from a JSON number or its text."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ParseError(f"{where} must be a number, got {snippet(repr(value))}")
    if isinstance(value, str):
        s = value.strip()
        if len(s) > 40:
            raise ParseError(f"{where}: {snippet(s)} is not a number anyone clicks at")
        try:
            out = float(s)
        except ValueError:
            raise ParseError(f"{where}: {snippet(s)} is not a number") from None
    else:
        try:
            out = float(value)
        except OverflowError:
            out = math.inf
    if not math.isfinite(out) or abs(out) > MAX_COORDINATE:
        raise ParseError(f"{where}: the number is out of range")
    return out


def xy_pair(value: Any, where: str) -> tuple[float, float]:
    """``[x, y]`` (two numbers) -> (x, y); ParseError naming ``where`` otherwise."""
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    ):
        shown = snippet(repr(value)) if not isinstance(value, list | dict) else "something else"
        raise ParseError(f"{where} must be [x, y] with two numbers, got {shown}")
    return number(value[0], where), number(value[1], where)


def words(items: Sequence[str]) -> str:
    """'a, b, c' for an error message."""
    return ", ".join(items)
