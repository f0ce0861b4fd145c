"""``check_dialect``: the conformance check every dialect passes, a user's own included.

Modelled on Gymnasium's ``check_env``: one call that exercises the whole interface on real
inputs and says exactly what is wrong. It checks that

- the prompt renders on a desktop and a phone, with 0 and 2 earlier steps (images are images,
  the current screenshot is in it, the grammar is the dialect's own);
- every action the dialect writes for an offered verb (on a desktop, a phone and a robot,
  where it offers any) parses back to the same action (round trip);
- the grammar compiles, and, given a real tokenizer, admits each of those answers token by
  token, and every record of ``corpus`` (official outputs: ``{"raw", "device", "screen",
  "expected"}``; ``"continuation": true`` for an answer that continues an assistant turn,
  checked against that step's grammar), which must also parse to its expected action;
- parsing is total and fast on a built-in set of adversarial answers: an Action or a
  ParseError, nothing else, and the parse net (``base.NET``) never fires.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import llguidance
from PIL import Image
from pydantic import ValidationError

from pixelpilot.agent.actions import (
    ACTION_ADAPTER,
    BY_KIND,
    DESKTOP_KINDS,
    MOBILE_KINDS,
    ROBOT_KINDS,
    Point,
    point_fields,
)
from pixelpilot.agent.dialects._text import fit
from pixelpilot.agent.dialects.base import NET, Dialect, StepContext, Turn
from pixelpilot.agent.dialects.engine import TableDialect
from pixelpilot.agent.dialects.table import NO_DEFAULT, Arg, Verb, field_default, field_schema
from pixelpilot.agent.errors import ParseError
from pixelpilot.agent.geometry import HUB_PIXELS, ScreenGeometry

__all__ = [
    "CheckReport",
    "adversarial",
    "check_dialect",
    "contexts",
    "megabyte_answers",
]

TEXTS = ("a", 'Zoë — 東京 ✓ said "hi" & it\'s [C:\\tmp]; 100% {ok}')
SCREENS = {"desktop": (1920, 1080), "mobile": (1080, 2400), "robot": (640, 480)}
KINDS = {"desktop": DESKTOP_KINDS, "mobile": MOBILE_KINDS, "robot": ROBOT_KINDS}
SLOW_S = 0.5
"""A parse slower than this on the adversarial set (the fastest of three timings) is reported
(linear parsers take ~ms)."""


@dataclass
class CheckReport:
    """What ``check_dialect`` did and found."""

    dialect: str
    prompts: int = 0
    round_trips: int = 0
    admitted: int = 0
    corpus: int = 0
    adversarial: int = 0
    problems: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        head = (
            f"{self.dialect}: {self.prompts} prompts, {self.round_trips} round trips, "
            f"{self.admitted} admitted, {self.corpus} corpus records, "
            f"{self.adversarial} adversarial answers"
        )
        return "\n".join([head, *(f"- {p}" for p in self.problems)])


def contexts(devices: Iterable[str] = ("desktop", "mobile", "robot")) -> dict[str, StepContext]:
    """A step context per device kind: its usual kinds and a typical screen at the hub budget."""
    out = {}
    for d in devices:
        w, h = SCREENS[d]
        out[d] = StepContext(d, KINDS[d], ScreenGeometry(w, h), HUB_PIXELS.resize(w, h))
    return out


def check_dialect(
    dialect: Dialect,
    corpus: Iterable[dict[str, Any]] | None = None,
    *,
    tokenizer: Any = None,
    vocab_size: int | None = None,
    strict: bool = True,
) -> CheckReport:
    """Check ``dialect`` (see the module docstring). ``tokenizer``: an HF fast tokenizer (and
    the model's ``vocab_size``) to check grammar admission token by token. Raises
    AssertionError listing every problem when ``strict``; else returns them in the report."""
    report = CheckReport(dialect.name)
    matcher = _Admission(tokenizer, vocab_size) if tokenizer is not None else None
    ctxs = contexts()
    for device, ctx in ctxs.items():
        grammar = _grammar(dialect, ctx, report)
        for action in sample_actions(dialect, ctx):
            try:
                text = dialect.format(action, ctx)
            except ValueError:
                continue
            back = _parse(dialect, text, ctx, report)
            # what the device executes: a verb of a kind the device lacks is fitted to it (a
            # scroll a phone offers is a swipe there)
            if back != action and back != fit(action, ctx, dialect.space):
                report.problems.append(f"{device}: {action!r} -> {text!r} -> {back!r}")
                continue
            report.round_trips += 1
            if matcher is not None and grammar is not None:
                if matcher.admits(grammar, text):
                    report.admitted += 1
                else:
                    report.problems.append(f"{device}: the grammar refuses {text!r}")
    if report.round_trips == 0:
        report.problems.append("no action round-trips on any device")
    for device in ("desktop", "mobile"):
        _check_prompts(dialect, ctxs[device], report)
    for record in corpus or ():
        _check_record(dialect, record, matcher, report)
    _check_adversarial(dialect, ctxs, report)
    if strict and report.problems:
        raise AssertionError(str(report))
    return report


# -- actions ----------------------------------------------------------------------------------
def sample_actions(dialect: Dialect, ctx: StepContext) -> list[Any]:
    """Actions to round-trip: from each offered verb's arguments (a table dialect), else from
    every kind the device supports."""
    w, h = (1000, 1000) if dialect.space == "norm1000" else ctx.resized
    pts = [Point(x=0, y=0, space=dialect.space), Point(x=w, y=h, space=dialect.space),
           Point(x=w // 2, y=h // 3, space=dialect.space)]  # fmt: skip
    out: list[Any] = []
    if isinstance(dialect, TableDialect):
        for verb in dialect.offered_verbs(ctx):
            out.extend(_verb_samples(verb, pts))
    else:
        for kind in sorted(ctx.kinds):
            out.extend(_kind_samples(kind, pts))
    return list({json.dumps(ACTION_ADAPTER.dump_python(a, mode="json")): a for a in out}.values())


def _values(kind: str, arg: Arg, pts: list[Point]) -> list[Any]:
    match arg.type:
        case "point":
            return pts
        case "text":
            return list(TEXTS)
        case "keys":
            return [["ctrl", "c"], ["enter"]]
        case "enum":
            assert arg.choices is not None
            return list(dict.fromkeys(arg.choices.values()))
        case "number" | "integer":
            prop = dict(arg.schema) if arg.schema is not None else field_schema(kind, arg.field)
            lo = float(prop.get("minimum", prop.get("exclusiveMinimum")) or 0)
            hi = float(prop.get("maximum", lo + 10))
            mid = (lo + hi) / 2
            mid = int(mid) if arg.type == "integer" else round(mid, 1)
            default = field_default(kind, arg.field)
            return [v for v in (mid, default) if v is not NO_DEFAULT and v is not None]
    raise AssertionError(arg.type)  # pragma: no cover


def _verb_samples(verb: Verb, pts: list[Point]) -> Iterator[Any]:
    args = [a for a in verb.args]
    variants = max((len(_values(verb.kind, a, pts)) for a in args), default=1)
    for i in range(variants):
        values = {}
        for a in args:
            vs = _values(verb.kind, a, pts)
            if a.required or i % 2:
                values[a.field] = vs[i % len(vs)]
        try:  # a hook may refuse a sample value (qwen25vl scroll pixels 0)
            fields = verb.to_fields(dict(values)) if verb.to_fields is not None else values
            yield BY_KIND[verb.kind].model_validate({**verb.fixed, **fields, "kind": verb.kind})
        except (ValidationError, ParseError, ValueError):
            continue


def _kind_samples(kind: str, pts: list[Point]) -> Iterator[Any]:
    cls = BY_KIND[kind]
    for i in range(2):
        data: dict[str, Any] = {"kind": kind}
        for name, info in cls.model_fields.items():
            if name == "kind" or (not info.is_required() and i == 0):
                continue
            if name in point_fields(cls):
                data[name] = pts[i]
                continue
            prop = field_schema(kind, name)
            if "enum" in prop:
                data[name] = prop["enum"][i % len(prop["enum"])]
            elif prop.get("type") == "string":
                data[name] = TEXTS[i]
            elif prop.get("type") == "array":
                data[name] = [["ctrl", "c"], ["enter"]][i]
            elif prop.get("type") in ("number", "integer"):
                data[name] = prop.get("minimum", 1) + (1 if prop.get("type") == "integer" else 0.5)
        try:
            yield cls.model_validate(data)
        except ValidationError:
            continue


# -- pieces -----------------------------------------------------------------------------------
def _parse(dialect: Dialect, text: str, ctx: StepContext, report: CheckReport) -> Any:
    try:
        return dialect.parse(text, ctx)
    except ParseError as err:
        return err


def _grammar(dialect: Dialect, ctx: StepContext, report: CheckReport) -> str | None:
    if not dialect.offered(ctx):  # a family without this device (qwen25vl's official robot)
        return None
    try:
        grammar = dialect.grammar(ctx)
    except ValueError as err:  # nothing offered on this device
        report.problems.append(f"{ctx.device_kind}: no grammar: {err}")
        return None
    if grammar is not None:
        error = llguidance.LLMatcher.validate_grammar(grammar)
        if error:
            report.problems.append(f"{ctx.device_kind}: the grammar does not compile: {error}")
            return None
    return grammar


def _check_prompts(dialect: Dialect, ctx: StepContext, report: CheckReport) -> None:
    current = Image.new("RGB", (ctx.geometry.width, ctx.geometry.height), "white")
    earlier = [
        Image.new("RGB", (ctx.geometry.width, ctx.geometry.height), c) for c in ("red", "blue")
    ]
    answers = []
    for action in sample_actions(dialect, ctx):
        try:
            answers.append((dialect.format(action, ctx), action))
        except ValueError:
            continue
        if len(answers) == 2:
            break
    history = [
        Turn(raw=raw, action=a, image=im, note="a note" if i else "")
        for i, ((raw, a), im) in enumerate(zip(answers, earlier, strict=False))
    ]
    for n in (0, len(history)):
        where = f"{ctx.device_kind} prompt with {n} earlier steps"
        try:
            prompt = dialect.build_prompt("Open the settings", history[:n], current, ctx, "bad")
        except Exception as err:  # noqa: BLE001 - reported, not raised
            report.problems.append(f"{where}: {type(err).__name__}: {err}")
            continue
        report.prompts += 1
        if not prompt.messages or not any(m.role == "user" for m in prompt.messages):
            report.problems.append(f"{where}: no user message")
        for m in prompt.messages:
            for p in m.content:
                if p["type"] == "text" and not isinstance(p.get("text"), str):
                    report.problems.append(f"{where}: a text part without text")
                if p["type"] == "image" and not isinstance(p.get("image"), Image.Image):
                    report.problems.append(f"{where}: an image part without an image")
        if not any(im is current for im in prompt.images):
            report.problems.append(f"{where}: the current screenshot is missing")
        if prompt.continue_final and prompt.messages[-1].role != "assistant":
            report.problems.append(
                f"{where}: continue_final, but the last message is not the assistant's"
            )
        if prompt.grammar is not None and llguidance.LLMatcher.validate_grammar(prompt.grammar):
            report.problems.append(f"{where}: the prompt's grammar does not compile")


def _check_record(
    dialect: Dialect, record: dict[str, Any], matcher: _Admission | None, report: CheckReport
) -> None:
    device = record.get("device", "desktop")
    w, h = record.get("screen", SCREENS[device])
    ctx = StepContext(device, KINDS[device], ScreenGeometry(w, h), HUB_PIXELS.resize(w, h))
    rid = record.get("id", record["raw"][:30])
    got = _parse(dialect, record["raw"], ctx, report)
    expected = record.get("expected")
    if expected is not None:
        want = ACTION_ADAPTER.validate_python(expected)
        if got != want:
            report.problems.append(f"corpus {rid}: parsed {got!r}, expected {want!r}")
            return
    elif isinstance(got, ParseError):
        report.problems.append(f"corpus {rid}: {got}")
        return
    if record.get("continuation") and isinstance(dialect, TableDialect):
        grammar: str | None = dialect.grammar(ctx, continuation=True)
    else:
        grammar = dialect.grammar(ctx)
    if matcher is not None and grammar is not None and not matcher.admits(grammar, record["raw"]):
        report.problems.append(f"corpus {rid}: the grammar refuses {record['raw']!r}")
        return
    report.corpus += 1


def adversarial(dialect: Dialect, ctx: StepContext, size: int = 20_000) -> Iterator[str]:
    """Answers built to break parsers: empty, huge, deeply nested, unclosed, cut off, absurd
    numbers, each family's own markers repeated; about ``size`` characters each."""
    n = max(size // 10, 1)
    yield from ("", " ", "\n" * size, "\x00\x01\x7f" * n, "✿" * size, "{" * size, "[" * size)
    yield "[" * size + "]" * size
    yield '{"a": ' * n + "1" + "}" * n
    yield "1" * size
    yield "(" * size
    yield "'" * size
    yield '"' * size
    for marker in ("✿FUNCTION✿: ", "✿ARGS✿: ", "<|box_start|>", "<|object_ref_start|>",
                   "<tool_call>", "Action: click(", "actions:\n", "{'action': ", "<point>",
                   "Thought: ", "start_box='(", "\\"):  # fmt: skip
        yield marker * max(size // len(marker), 1)
    samples = []
    for action in sample_actions(dialect, ctx)[:6]:
        try:
            samples.append(dialect.format(action, ctx))
        except ValueError:
            continue
    for text in samples:
        yield from (text[:i] for i in range(0, len(text), 7))
        yield text.replace("0", "9" * 309).replace("5", "1e999")
        yield text * max(size // max(len(text), 1), 1)
        yield text.replace("[", "[" * 2000).replace("{", "{" * 2000)


MEGABYTE = 1 << 20
"""One mebibyte."""


def megabyte_answers() -> dict[str, str]:
    """1 MB adversarial answers, one per failure seen in the field or built to hit a scanner."""
    return {
        "json nested": '✿FUNCTION✿: click\n✿ARGS✿: {"point": ' + "[" * MEGABYTE,
        "tool_call nested": '<tool_call>\n{"name": "x", "arguments": ' + "{" * MEGABYTE,
        "dict nested": "{'action': 'CLICK', 'position': " + "[" * MEGABYTE,
        "huge coordinate": '✿FUNCTION✿: click\n✿ARGS✿: {"point": [' + "9" * 309 + ", 5]}",
        "box starts": "<|box_start|>" * (MEGABYTE // 13),
        "object refs": "<|object_ref_start|>" * (MEGABYTE // 20),
        "action markers": "Action: click(" * (MEGABYTE // 14),
        "quotes": "Action: type(content='" + "'" * MEGABYTE,
        "backslashes": "Action: type(content='" + "\\" * MEGABYTE + "')",
        "spaces then quotes": "Action: type(content='" + " '" * (MEGABYTE // 2),
        "points": "actions:\nDRAG " + "<point>[[" * (MEGABYTE // 9),
        "brackets": "actions:\nTYPE " + "[" * MEGABYTE,
        "dict quotes": "{'action': 'INPUT', 'value': '" + "\\'" * (MEGABYTE // 2),
        "markers": "✿FUNCTION✿: ✿ARGS✿: ✿RESULT✿" * (MEGABYTE // 30),
        "digits": "(" + "1" * MEGABYTE + ",",
        "prose": "I think " * (MEGABYTE // 8),
    }


def _check_adversarial(dialect: Dialect, ctxs: dict[str, StepContext], report: CheckReport) -> None:
    for ctx in ctxs.values():
        before = NET[dialect.name]
        for text in adversarial(dialect, ctx):
            spent = _timed_parse(dialect, text, ctx, report)
            if spent > SLOW_S:  # timed again alone: one slow timing may be the machine's
                spent = min(spent, *(_timed_parse(dialect, text, ctx, None) for _ in range(2)))
            if spent > SLOW_S:
                report.problems.append(
                    f"parse took {spent:.2f} s on {len(text)} chars {text[:30]!r}"
                )
            report.adversarial += 1
        if NET[dialect.name] != before:
            report.problems.append(
                f"{ctx.device_kind}: the parse net caught {NET[dialect.name] - before} "
                "unexpected exceptions"
            )


def _timed_parse(
    dialect: Dialect, text: str, ctx: StepContext, report: CheckReport | None
) -> float:
    """Seconds one parse of ``text`` took; an exception other than ParseError is a problem."""
    t0 = time.perf_counter()
    try:
        dialect.parse(text, ctx)
    except ParseError:
        pass
    except Exception as err:  # noqa: BLE001 - reported
        if report is not None:
            report.problems.append(f"parse raised {type(err).__name__} on {text[:40]!r}")
    return time.perf_counter() - t0


class _Admission:
    """Grammar admission of a text, token by token, with a real tokenizer."""

    def __init__(self, tokenizer: Any, vocab_size: int | None) -> None:
        import llguidance.hf

        self.tokenizer = tokenizer
        vocab = vocab_size or len(tokenizer)
        stops = [
            i
            for i in (tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>"))
            if isinstance(i, int) and i >= 0
        ]
        self.ll = llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab, eos_token=stops or None)

    def admits(self, grammar: str, text: str) -> bool:
        m = llguidance.LLMatcher(self.ll, grammar, log_level=0)
        if m.is_error():
            return False
        for t in self.tokenizer.encode(text, add_special_tokens=False):
            if not m.consume_token(t):
                return False
        return m.is_accepting()
