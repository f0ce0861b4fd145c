"""The engine: a family's table + its call syntax -> parse, format, offered verbs, grammar.

``TableDialect`` derives everything about the family's output from ``verbs`` (its table) and
``syntax`` (how it writes one call); a family file adds only its prompt layout (``build_prompt``)
and, where it has them, a fallback for answers without a call (``no_call``) and the thought it
writes before a formatted call (``thought_for``).

Parsing: ``clean`` (end tokens, code fences) -> ``syntax.extract`` -> the verb (offered on this
device first, then any verb the table has, fitted to the device through the obvious synonyms)
-> arguments converted by type -> the verb's fixed fields and hooks -> ``model_validate``
(ValidationError -> ParseError) -> fit to the device. Formatting: the first verb (offered
first) whose kind, fixed fields and arguments express the action. Every step is linear in the
answer's length; every refusal is a one-line ParseError for the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, assert_never

from pydantic import ValidationError

from pixelpilot.agent.actions import BY_KIND, Point
from pixelpilot.agent.dialects._text import clean, fit, num, snippet, split_keys
from pixelpilot.agent.dialects.base import Dialect, Fidelity, StepContext
from pixelpilot.agent.dialects.lark import THOUGHT_TOKENS, bounded, text_schema
from pixelpilot.agent.dialects.syntax import GrammarSpec, RawCall, Syntax, number, words
from pixelpilot.agent.dialects.table import NO_DEFAULT, Arg, Verb, field_default, field_schema
from pixelpilot.agent.errors import ParseError
from pixelpilot.vlm.base import JsonForm

__all__ = ["TableDialect"]


class TableDialect(Dialect):
    """A dialect derived from a table of verbs and a call syntax."""

    verbs: ClassVar[tuple[Verb, ...]]
    syntax: ClassVar[Syntax]

    def __init__(
        self,
        fidelity: Fidelity | None = None,
        *,
        thought_tokens: int = THOUGHT_TOKENS,
        extra_calls: int | None = None,
    ) -> None:
        super().__init__(fidelity)
        self.thought_tokens = thought_tokens
        """The longest thought the grammar admits, in tokens (random-weight tests lower it)."""
        self.extra_calls = extra_calls
        """Most calls the grammar admits after the first, where the syntax admits several
        (None: the syntax's own; random-weight tests lower it)."""
        self._offered: dict[tuple[str, frozenset[str]], tuple[Verb, ...]] = {}
        self._grammars: dict[tuple[Any, ...], str] = {}

    # -- the table ---------------------------------------------------------------------------
    def offered_verbs(self, ctx: StepContext) -> tuple[Verb, ...]:
        """The verbs offered on this device, table order: its device kind, a kind the device
        supports, official unless ``fidelity.extra_verbs``."""
        key = (ctx.device_kind, ctx.kinds)
        hit = self._offered.get(key)
        if hit is None:
            hit = self._offered[key] = tuple(
                v
                for v in self.verbs
                if ctx.device_kind in v.devices
                and v.kind in ctx.kinds
                and (v.official or self.fidelity.extra_verbs)
            )
        return hit

    def offered(self, ctx: StepContext) -> list[str]:
        return list(dict.fromkeys(v.name for v in self.offered_verbs(ctx)))

    def _lookup(self, call: RawCall, ctx: StepContext) -> Verb:
        offered = self.offered_verbs(ctx)
        for pool in (offered, self._usable(ctx)):
            for v in pool:
                if v.group == call.group and (v.name == call.name or call.name in v.aliases):
                    return v
        names = self.offered(ctx)
        what = f"{call.group} action" if call.group else self.syntax.noun
        if any(v.name == call.name or call.name in v.aliases for v in self.verbs):
            raise ParseError(
                f"{call.name!r} is not available on this device; use one of: {words(names)}"
            )
        article = "an" if what[:1] in "aeiou" else "a"
        raise ParseError(f"{call.name!r} is not {article} {what}; use one of: {words(names)}")

    def _usable(self, ctx: StepContext) -> list[Verb]:
        """Every verb that may be read (and then fitted to the device): the offered ones first,
        then the rest of the table, this device's first."""
        ok = [v for v in self.verbs if v.official or self.fidelity.extra_verbs]
        return sorted(ok, key=lambda v: ctx.device_kind not in v.devices)

    # -- parse -------------------------------------------------------------------------------
    def _parse(self, raw: str, ctx: StepContext) -> Any:
        text = clean(raw)
        call = self.syntax.extract(text)
        if call is None:
            return self.no_call(text, ctx)
        return self.read(call, ctx)

    def no_call(self, text: str, ctx: StepContext) -> Any:
        """An answer that holds no call at all. Default: the ParseError saying what to write."""
        example = self.syntax.example()
        if not text:
            raise ParseError(f"empty answer; write {example}")
        raise ParseError(f"no {self.syntax.noun} call found in {snippet(text)}; write {example}")

    def read(self, call: RawCall, ctx: StepContext) -> Any:
        """A call as written -> the Action it means on this device; ParseError otherwise."""
        verb = self._lookup(call, ctx)
        fields = self._bind(verb, call)
        if verb.to_fields is not None:
            fields = verb.to_fields(fields)
        action = self._validate(verb, fields)
        out = fit(action, ctx, self.space)
        if out is None:
            raise ParseError(
                f"{verb.name!r} is not available on this device; use one of: "
                f"{words(self.offered(ctx))}"
            )
        return out

    def _bind(self, verb: Verb, call: RawCall) -> dict[str, Any]:
        """The verb's fixed fields plus its arguments' values, converted by type."""
        fields: dict[str, Any] = dict(verb.fixed)
        example = self.syntax.example(verb)
        named: dict[str, Arg] = {}
        for written in call.args:
            found = verb.arg(written)
            if found is None or found.name == "":
                raise ParseError(f"{verb.name}: unexpected argument {written!r}; write {example}")
            if found.name in named:
                raise ParseError(f"{verb.name}: {written!r} repeats {found.name!r}; give it once")
            named[found.name] = found
        points = [v for tag, v in call.positional if tag == "point"]
        values = [v for tag, v in call.positional if tag != "point"]
        for arg in verb.args:
            key: str | None = None
            if arg.source == "thought":
                value: Any = call.thought or None
            elif arg.name == "":
                pool = points if arg.type == "point" else values
                value = pool.pop(0) if pool else None
            else:
                key = next((k for k in call.args if k == arg.name or k in arg.aliases), None)
                value = call.args.get(key) if key is not None else None
                if value is not None and arg.item is not None:
                    value = _item(value, arg.item, verb, arg)
            if key is not None and key in call.cut and not _complete(value, arg):
                raise ParseError(f"the call is cut off; write the complete call, e.g. {example}")
            if value is None:
                if arg.required:
                    raise ParseError(
                        f"{verb.name}: missing argument {_label(arg)}; write {example}"
                    )
                continue
            fields[arg.field] = self._convert(value, verb, arg)
        return fields

    def _convert(self, value: Any, verb: Verb, arg: Arg) -> Any:
        where = f"{verb.name}: {_label(arg)}"
        typed = self.syntax.typed
        match arg.type:
            case "point":
                x, y = self.syntax.read_point(value, verb, arg)
                return Point(x=num(x), y=num(y), space=self.space)
            case "text":
                if not isinstance(value, str):
                    raise ParseError(f"{where} must be text")
                return value.strip() if arg.strip else value
            case "keys":
                if isinstance(value, str) and arg.sep is not None:
                    parts = value.split() if arg.sep.isspace() else [value.strip()]
                elif isinstance(value, list) and all(isinstance(k, str) for k in value):
                    parts = value
                else:
                    raise ParseError(f"{where} must be key names")
                return split_keys(parts)
            case "enum":
                return _choice(value, where, arg)
            case "number" | "integer":
                if typed and not (isinstance(value, int | float) and not isinstance(value, bool)):
                    raise ParseError(f"{where} must be a number")
                n = number(value, where)
                if arg.type == "integer":
                    if not n.is_integer():
                        raise ParseError(f"{where} must be a whole number")
                    return int(n)
                return n
            case _:
                assert_never(arg.type)

    def _validate(self, verb: Verb, fields: dict[str, Any]) -> Any:
        try:
            return BY_KIND[verb.kind].model_validate({**fields, "kind": verb.kind})
        except ValidationError as err:
            e = err.errors()[0]
            field = str(e["loc"][0]) if e["loc"] else ""
            arg = next((a for a in verb.args if a.field == field), None)
            name = _label(arg) if arg is not None else repr(field or "arguments")
            if e["type"] == "extra_forbidden":
                raise ParseError(f"{verb.name}: unexpected argument {name}") from None
            if e["type"] == "missing":
                raise ParseError(f"{verb.name}: missing argument {name}") from None
            raise ParseError(f"{verb.name}: {name}: {e['msg']}") from None

    # -- format ------------------------------------------------------------------------------
    def format(self, action: Any, ctx: StepContext) -> str:
        if action.kind not in BY_KIND:
            raise ValueError(f"not an action: {action!r}")
        for verb in dict.fromkeys([*self.offered_verbs(ctx), *self._usable(ctx)]):
            written = self.written(verb, action)
            if written is not None:
                args, thought = written
                if thought is None:
                    thought = self.thought_for(action, verb)
                return self.syntax.write(verb, args, thought)
        raise ValueError(f"{self.name} cannot express {action!r}")

    def thought_for(self, action: Any, verb: Verb) -> str:
        """The thought ``format`` writes before a call (where the syntax has one)."""
        return ""

    def written(self, verb: Verb, action: Any) -> tuple[list[tuple[Arg, Any]], str | None] | None:
        """``verb``'s written arguments for ``action`` (and the thought, where an argument is
        written as the thought), or None when the verb cannot express it. ValueError for a
        point in another space."""
        if action.kind != verb.kind:
            return None
        fields = {k: getattr(action, k) for k in type(action).model_fields if k != "kind"}
        if verb.from_fields is not None:
            values = verb.from_fields(action)
            if values is None:
                return None
        else:
            values = fields
        if any(fields.get(k) != v for k, v in verb.fixed.items()):
            return None
        used = set(verb.fixed) | {a.field for a in verb.args}
        if verb.from_fields is None and any(
            k not in used and v != field_default(verb.kind, k) for k, v in fields.items()
        ):
            return None
        out: list[tuple[Arg, Any]] = []
        thought = None
        for arg in verb.args:
            value = values.get(arg.field)
            default = field_default(verb.kind, arg.field)
            if value is None or (
                not arg.required and default is not NO_DEFAULT and value == default
            ):
                if arg.required:
                    return None
                continue
            w = self._write_value(value, arg)
            if w is None:
                return None
            if arg.source == "thought":
                thought = w
            else:
                out.append((arg, w))
        return out, thought

    def _write_value(self, value: Any, arg: Arg) -> Any:
        match arg.type:
            case "point":
                if not isinstance(value, Point) or value.space != self.space:
                    raise ValueError(
                        f"{self.name} writes points in {self.space}, got {value}; convert it first"
                    )
                return self.syntax.write_point(num(value.x), num(value.y), arg)
            case "keys":
                keys = list(value)
                if arg.sep is None:
                    return keys
                if any(not k.strip() or k != k.strip() or arg.sep in k or " " in k for k in keys):
                    return None
                return arg.sep.join(keys)
            case "enum":
                assert arg.choices is not None
                return next((w for w, v in arg.choices.items() if v == value), None)
            case "number" | "integer":
                return num(value)
            case "text":
                return str(value)
            case _:
                assert_never(arg.type)

    # -- grammar -----------------------------------------------------------------------------
    def extent(self, ctx: StepContext) -> tuple[int, int]:
        """The largest written coordinate per axis."""
        return (1000, 1000) if self.space == "norm1000" else (ctx.resized[0], ctx.resized[1])

    def grammar_spec(self, ctx: StepContext, *, continuation: bool = False) -> GrammarSpec:
        verbs = self.offered_verbs(ctx)
        if not verbs:
            raise ValueError(f"{self.name} offers no verb on this device ({sorted(ctx.kinds)})")
        schemas = {
            (v.group, v.name, a.name or a.field): _value_schema(v, a, ctx.secrets)
            for v in verbs
            for a in v.args
            if a.type != "point"
        }
        return GrammarSpec(
            verbs,
            self.extent(ctx),
            schemas,
            ctx.secrets,
            self.thought_tokens,
            continuation,
            self.extra_calls,
        )

    def grammar(self, ctx: StepContext, *, continuation: bool = False) -> str:
        """The Lark grammar of this step's answer (cached per device, kinds, extent, secrets).
        ``continuation``: the answer continues an assistant turn."""
        key = (ctx.device_kind, ctx.kinds, self.extent(ctx), ctx.secrets, continuation)
        hit = self._grammars.get(key)
        if hit is None:
            hit = self._grammars[key] = self.syntax.grammar(
                self.grammar_spec(ctx, continuation=continuation)
            )
        return hit

    def json_form(self, ctx: StepContext) -> JsonForm | None:
        return self.syntax.json_form(self.grammar_spec(ctx))


_CLOSERS = (")", "]", "</point>", "</bbox>", "<|box_end|>")


def _complete(value: Any, arg: Arg) -> bool:
    """Whether a value the answer cut off is complete anyway: a point whose box closes, an
    enum's word (checked against its choices when read)."""
    if arg.type == "point":
        return str(value).rstrip().endswith(_CLOSERS)
    return arg.type == "enum"


def _label(arg: Arg) -> str:
    return repr(arg.name) if arg.name else repr(arg.field)


def _item(value: Any, item: int, verb: Verb, arg: Arg) -> Any:
    """Item ``item`` of a list of points ``[[x1, y1], [x2, y2]]``."""
    if not isinstance(value, list) or not value or not isinstance(value[0], list):
        value = [value]
    if item >= len(value):
        raise ParseError(f"{verb.name}: {arg.name!r} needs {item + 1} points")
    return value[item]


def _choice(value: Any, where: str, arg: Arg) -> Any:
    assert arg.choices is not None
    if isinstance(value, str):
        if value in arg.choices:
            return arg.choices[value]
        key = value.strip().lower()
        for written, field_value in arg.choices.items():
            if written.lower() == key:
                return field_value
    shown = snippet(value) if isinstance(value, str) else type(value).__name__
    raise ParseError(f"{where} is {shown}; use one of: {words(list(arg.choices))}")


def _value_schema(verb: Verb, arg: Arg, secrets: Sequence[str]) -> dict[str, Any]:
    """The bounded JSON schema of a non-point argument's written value."""
    if arg.schema is not None:
        return bounded(dict(arg.schema), secrets)
    if arg.type == "enum":
        assert arg.choices is not None
        return {"enum": list(arg.choices)}
    if arg.type == "text":
        return text_schema(int(field_schema(verb.kind, arg.field).get("minLength", 0)), secrets)
    return bounded(field_schema(verb.kind, arg.field), secrets)
