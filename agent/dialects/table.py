"""The declarative vocabulary a family's table is written in: verbs and their arguments.

A ``Verb`` is one thing the family's model writes (``left_double``, ``DOUBLECLICK``,
``computer_use`` action ``left_click``): the Action kind it means, the fields it fixes, its
arguments as the family names them, its official prompt line and the devices it is offered
on. An ``Arg`` maps one written argument to one Action field (or, with a verb's hooks, to a
value the hooks convert). From a table the engine derives parsing, formatting, the offered
verbs, the prompt lines and the decoding grammar; adding a verb is adding one entry.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pixelpilot.agent.actions import ACTION_TYPES, BY_KIND, WRITTEN_REQUIRED, point_fields

__all__ = [
    "ALL_DEVICES",
    "Arg",
    "ArgType",
    "Verb",
    "action_verbs",
    "field_default",
    "field_schema",
]

ArgType = Literal["point", "text", "keys", "enum", "number", "integer"]
"""How a written value is read: a point (the syntax writes it), free text, key names (a list,
or one string joined by ``Arg.sep``), one of ``Arg.choices``, a number, an integer."""
ALL_DEVICES: frozenset[str] = frozenset({"desktop", "mobile", "robot"})
NO_DEFAULT = object()
"""A required field: no default value."""


@dataclass(frozen=True, eq=False)
class Arg:
    """One argument of a verb as the family writes it."""

    name: str
    """As the family writes it: start_box, coordinate, content, value ('' for a positional
    slot: OS-Atlas's points and bracketed value)."""
    field: str
    """The Action field it fills (point, start, end, text, keys, ...), or a name the verb's
    hooks convert (qwen25vl ``pixels``)."""
    type: ArgType
    required: bool = True
    choices: Mapping[str, Any] | None = None
    """enum: written value -> field value (the first written value of a field value is the
    one ``format`` writes)."""
    sep: str | None = None
    """keys: written as one string joined by ``sep`` ('+', ' '); None: a list of names."""
    item: int | None = None
    """The value is item ``item`` of a list written under ``name`` (ShowUI's position
    ``[[x1, y1], [x2, y2]]``)."""
    aliases: tuple[str, ...] = ()
    """Other names the argument is read under (never written)."""
    schema: Mapping[str, Any] | None = None
    """The JSON schema the prompt shows for it; None: generated from the Action field."""
    strip: bool = False
    """text: read with blanks stripped (a name, not text to type)."""
    source: Literal["args", "thought"] = "args"
    """Where the value is written: in the call, or as the thought before it (UI-TARS
    ``call_user()``: the question is the thought)."""


@dataclass(frozen=True, eq=False)
class Verb:
    """One verb of a family: written name <-> an Action kind with fixed fields."""

    name: str
    """As the family writes it (left_double, DOUBLECLICK, left_click)."""
    kind: str
    """The Action kind it means."""
    args: tuple[Arg, ...] = ()
    fixed: Mapping[str, Any] = field(default_factory=dict)
    """Fields the verb fixes (button='right', count=2)."""
    line: str = ""
    """Its official prompt line, verbatim ('' if none)."""
    devices: frozenset[str] = ALL_DEVICES
    """Device kinds the family offers it on."""
    official: bool = True
    """False: a project addition (listed in docs/models.md; off with ``extra_verbs``)."""
    aliases: tuple[str, ...] = ()
    """Other names it is read under (never written)."""
    group: str = ""
    """toolcall: the tool whose ``action`` this verb is (computer_use); '' = its own tool."""
    description: str = ""
    """What the verb does, for syntaxes that describe each tool (fncall)."""
    to_fields: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    """Converted argument values -> Action fields, for the few non-trivial conversions."""
    from_fields: Callable[[Any], dict[str, Any] | None] | None = None
    """An Action -> the values its arguments write (None: this verb cannot express it)."""

    def arg(self, name: str) -> Arg | None:
        """The argument written (or read) under ``name``."""
        for a in self.args:
            if a.name == name or name in a.aliases:
                return a
        return None


@functools.cache
def field_default(kind: str, name: str) -> Any:
    """The default of an Action field (``NO_DEFAULT`` when it has none)."""
    info = BY_KIND[kind].model_fields.get(name)
    if info is None or info.is_required():
        return NO_DEFAULT
    return info.default


@functools.cache
def _schema(kind: str) -> dict[str, Any]:
    return BY_KIND[kind].model_json_schema()


def field_schema(kind: str, name: str) -> dict[str, Any]:
    """The JSON schema pydantic generates for an Action field, without titles (a copy)."""
    prop = dict(_schema(kind).get("properties", {}).get(name, {}))
    prop.pop("title", None)
    return prop


def _arg_type(kind: str, name: str) -> ArgType:
    prop = field_schema(kind, name)
    if name in point_fields(BY_KIND[kind]):
        return "point"
    if "enum" in prop:
        return "enum"
    if prop.get("type") == "array":
        return "keys"
    if prop.get("type") in ("integer", "number", "string"):
        return {"integer": "integer", "number": "number", "string": "text"}[prop["type"]]  # type: ignore[return-value]
    raise ValueError(f"no argument type for {kind}.{name}: {prop}")


def action_verbs(official: Callable[[str], bool] = lambda kind: True) -> tuple[Verb, ...]:
    """One verb per Action kind, named after it, with every field as an argument of the same
    name (the tools of a family that calls pixelpilot's actions as functions: qwen2vl).

    Descriptions are the Action models' docstrings; ``official(kind)`` marks project
    additions."""
    out = []
    for cls in ACTION_TYPES:
        kind = cls.model_fields["kind"].default
        args = []
        for name, info in cls.model_fields.items():
            if name == "kind":
                continue
            t = _arg_type(kind, name)
            prop = field_schema(kind, name)
            choices = {v: v for v in prop["enum"]} if t == "enum" else None
            schema = None if t == "point" else prop
            required = info.is_required() or name in WRITTEN_REQUIRED.get(kind, ())
            args.append(Arg(name, name, t, required, choices=choices, schema=schema))
        out.append(
            Verb(
                kind,
                kind,
                tuple(args),
                description=" ".join((cls.__doc__ or kind).split()),
                official=official(kind),
            )
        )
    return tuple(out)
