"""The table engine with each of the five call syntaxes, through small families written here the
way a family file is written (a table, a syntax, a layout), checked by ``check_dialect`` with the
real Qwen vocabulary: round trips, grammar admission token by token, prompts, adversarial
answers. Random walks through each grammar must parse. Exact texts pin each syntax's writing.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pytest
from PIL import Image

from pixelpilot.agent.actions import (
    AskUser,
    Click,
    Drag,
    Finish,
    Hotkey,
    MoveEffector,
    Point,
    Scroll,
    Space,
    Swipe,
    SystemButton,
    Tap,
    TypeText,
    Wait,
)
from pixelpilot.agent.dialects import (
    Arg,
    Dialect,
    Fidelity,
    StepContext,
    TableDialect,
    Turn,
    Verb,
    check_dialect,
    get_dialect,
    register_dialect,
)
from pixelpilot.agent.dialects.base import NET
from pixelpilot.agent.dialects.check import contexts, megabyte_answers
from pixelpilot.agent.dialects.layout import chat_layout
from pixelpilot.agent.dialects.syntax_pycall import PyCallSyntax, unescape
from pixelpilot.agent.dialects.syntax_pydict import PyDictSyntax
from pixelpilot.agent.dialects.syntax_toolcall import ToolCallSyntax
from pixelpilot.agent.dialects.syntax_verbline import VerbLineSyntax
from pixelpilot.agent.errors import ConfigError, ParseError
from pixelpilot.vlm.base import Prompt
from pixelpilot.vlm.constrained import GrammarConstraint
from pixelpilot.vlm.tiny import QWEN_VOCAB_SIZE, qwen_tokenizer

D, M, R = frozenset({"desktop"}), frozenset({"mobile"}), frozenset({"robot"})
DIRECTIONS = {d: d for d in ("up", "down", "left", "right")}


class _Plain(TableDialect):
    """A test family's layout: the verb lines as the system message, the plain chat turns."""

    def build_prompt(
        self,
        task: str,
        history: Sequence[Turn],
        image: Image.Image,
        ctx: StepContext,
        feedback: str | None = None,
    ) -> Prompt:
        lines = "\n".join(v.line or v.name for v in self.offered_verbs(ctx))
        msgs = chat_layout(lines, task, history, image, self.fidelity, feedback)
        return Prompt(msgs, grammar=self.grammar(ctx), json_form=self.json_form(ctx))


def _scroll_in(f: dict[str, Any]) -> dict[str, Any]:
    pixels = f.pop("pixels")
    if pixels == 0:
        raise ParseError("scroll: 'pixels' must not be 0")
    return {**f, "direction": "up" if pixels > 0 else "down", "amount": abs(pixels)}


def _scroll_out(a: Any) -> dict[str, Any] | None:
    if a.direction not in ("up", "down") or a.point is not None:
        return None
    return {"pixels": a.amount if a.direction == "up" else -a.amount}


PIXELS = {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 1000},
                    {"type": "integer", "minimum": -1000, "maximum": -1}]}  # fmt: skip


class ToolFamily(_Plain):
    """Like Qwen2.5-VL's cookbook: computer_use / mobile_use actions, pixels."""

    name: ClassVar[str] = "toy-toolcall"
    space: ClassVar[Space] = "resized_px"
    syntax: ClassVar[ToolCallSyntax] = ToolCallSyntax(groups=("computer_use", "mobile_use"))
    XY = Arg("coordinate", "point", "point")
    verbs: ClassVar[tuple[Verb, ...]] = (
        Verb("left_click", "click", (XY,), {"button": "left", "count": 1}, devices=D, group="computer_use"),
        Verb("right_click", "click", (XY,), {"button": "right", "count": 1}, devices=D, group="computer_use"),
        Verb("type", "type", (Arg("text", "text", "text"),), devices=D, group="computer_use"),
        Verb("key", "hotkey", (Arg("keys", "keys", "keys"),), devices=D, group="computer_use"),
        Verb("scroll", "scroll", (Arg("pixels", "pixels", "integer", schema=PIXELS),),
             devices=D, group="computer_use", to_fields=_scroll_in, from_fields=_scroll_out),
        Verb("terminate", "finish", (Arg("status", "status", "enum",
             choices={"success": "success", "failure": "failure"}),), devices=D | M,
             group="computer_use"),
        Verb("click", "tap", (XY,), devices=M, group="mobile_use"),
        Verb("swipe", "swipe", (Arg("coordinate", "start", "point"), Arg("coordinate2", "end", "point")), devices=M,
             group="mobile_use"),
        Verb("system_button", "system_button", (Arg("button", "button", "enum",
             choices={"Back": "back", "Home": "home"}),), devices=M, group="mobile_use"),
        Verb("ask_user", "ask_user", (Arg("question", "question", "text"),), official=False),
    )  # fmt: skip


def _ask(f: dict[str, Any]) -> dict[str, Any]:
    return {"question": f.get("question") or "I need your help to continue."}


class PyFamily(_Plain):
    """Like UI-TARS v1: Thought/Action calls with box-token points, norm1000."""

    name: ClassVar[str] = "toy-pycall"
    space: ClassVar[Space] = "norm1000"
    BOX = Arg("start_box", "point", "point", aliases=("point",))
    verbs: ClassVar[tuple[Verb, ...]] = (
        Verb("click", "click", (BOX,), {"button": "left", "count": 1}, devices=D),
        Verb("left_double", "click", (BOX,), {"count": 2}, devices=D),
        Verb("drag", "drag", (Arg("start_box", "start", "point"), Arg("end_box", "end", "point")),
             devices=D),
        Verb("hotkey", "hotkey", (Arg("key", "keys", "keys", sep=" "),), devices=D),
        Verb("type", "type", (Arg("content", "text", "text"),)),
        Verb("scroll", "scroll", (Arg("start_box", "point", "point", required=False),
             Arg("direction", "direction", "enum", choices=DIRECTIONS)), {"amount": 5}, devices=D),
        Verb("wait", "wait", (), {"seconds": 5}),
        Verb("finished", "finish", (Arg("content", "answer", "text", required=False),),
             {"status": "success"}),
        Verb("call_user", "ask_user", (Arg("", "question", "text", required=False,
             source="thought"),), to_fields=_ask, official=False),
        Verb("click", "tap", (BOX,), devices=M),
        Verb("press_home", "system_button", (), {"button": "home"}, devices=M),
    )  # fmt: skip
    syntax: ClassVar[PyCallSyntax] = PyCallSyntax("box", names=[v.name for v in verbs])

    def thought_for(self, action: Any, verb: Verb) -> str:
        return "I do it."


class LineFamily(_Plain):
    """Like OS-Atlas-Pro: thoughts/actions sections, one verb line, norm1000."""

    name: ClassVar[str] = "toy-verbline"
    space: ClassVar[Space] = "norm1000"
    P = Arg("", "point", "point")
    verbs: ClassVar[tuple[Verb, ...]] = (
        Verb("CLICK", "click", (P,), {"button": "left", "count": 1}, devices=D),
        Verb("CLICK", "tap", (P,), devices=M),
        Verb("TYPE", "type", (Arg("", "text", "text"),)),
        Verb("SCROLL", "scroll", (Arg("", "direction", "enum",
             choices={"UP": "up", "DOWN": "down", "LEFT": "left", "RIGHT": "right"}),),
             {"amount": 5}, devices=D),
        Verb("HOTKEY", "hotkey", (Arg("", "keys", "keys", sep="+"),), devices=D),
        Verb("DRAG", "drag", (Arg("", "start", "point"), Arg("", "end", "point")), devices=D),
        Verb("COMPLETE", "finish", (Arg("", "answer", "text", required=False),),
             {"status": "success"}),
        Verb("PRESS_BACK", "system_button", (), {"button": "back"}, devices=M),
        Verb("MOVE_EFFECTOR", "move_effector", (P, Arg("", "height", "number", required=False)),
             devices=R),
    )  # fmt: skip
    syntax: ClassVar[VerbLineSyntax] = VerbLineSyntax(v.name for v in verbs)

    def thought_for(self, action: Any, verb: Verb) -> str:
        return "I do the next step."


class DictFamily(_Plain):
    """Like ShowUI: one dict, positions as fractions, norm1000 inside."""

    name: ClassVar[str] = "toy-pydict"
    space: ClassVar[Space] = "norm1000"
    syntax: ClassVar[PyDictSyntax] = PyDictSyntax()
    POS = Arg("position", "point", "point")
    verbs: ClassVar[tuple[Verb, ...]] = (
        Verb("CLICK", "click", (POS,), {"button": "left", "count": 1}, devices=D),
        Verb("TAP", "tap", (POS,), devices=M),
        Verb("INPUT", "type", (Arg("value", "text", "text"),)),
        Verb("SCROLL", "scroll", (Arg("value", "direction", "enum", choices=DIRECTIONS),),
             {"amount": 5}, devices=D),
        Verb("SWIPE", "swipe", (Arg("position", "start", "point", item=0),
             Arg("position", "end", "point", item=1)), devices=M),
        Verb("ANSWER", "finish", (Arg("value", "answer", "text", required=False),),
             {"status": "success"}),
        Verb("PRESS", "system_button", (Arg("value", "button", "enum",
             choices={"back": "back", "home": "home"}),), devices=M),
    )  # fmt: skip


FAMILIES = [ToolFamily, PyFamily, LineFamily, DictFamily]


@pytest.fixture(scope="module")
def qwen_tok() -> Any:
    return qwen_tokenizer()


def N(x: float, y: float) -> Point:
    return Point(x=x, y=y, space="norm1000")


@pytest.mark.parametrize("family", [*FAMILIES, "qwen2vl"], ids=lambda f: getattr(f, "name", f))
def test_check_dialect_passes_with_the_real_vocabulary(family: Any, qwen_tok: Any) -> None:
    dialect = get_dialect(family) if isinstance(family, str) else family()
    report = check_dialect(dialect, tokenizer=qwen_tok, vocab_size=QWEN_VOCAB_SIZE)
    assert report.round_trips >= 10 and report.admitted == report.round_trips
    assert report.prompts == 4 and report.adversarial > 100 and not report.problems


CTX = contexts()
WRITES = [
    (ToolFamily, "desktop", Scroll(direction="down", amount=3),
     '<tool_call>\n{"name": "computer_use", "arguments": {"action": "scroll", "pixels": -3}}'
     "\n</tool_call>"),
    (ToolFamily, "mobile", SystemButton(button="home"),
     '<tool_call>\n{"name": "mobile_use", "arguments": {"action": "system_button", '
     '"button": "Home"}}\n</tool_call>'),
    (ToolFamily, "desktop", AskUser(question="Which?"),
     '<tool_call>\n{"name": "ask_user", "arguments": {"question": "Which?"}}\n</tool_call>'),
    (PyFamily, "desktop", Click(point=N(495, 30)),
     "Thought: I do it.\nAction: click(start_box='<|box_start|>(495,30)<|box_end|>')"),
    (PyFamily, "desktop", TypeText(text="it's\n"), "Thought: I do it.\nAction: type(content='it\\'s\\n')"),
    (PyFamily, "desktop", Hotkey(keys=["ctrl", "c"]), "Thought: I do it.\nAction: hotkey(key='ctrl c')"),
    (PyFamily, "desktop", AskUser(question="Which file?"), "Thought: Which file?\nAction: call_user()"),
    (PyFamily, "desktop", Wait(seconds=5), "Thought: I do it.\nAction: wait()"),
    (LineFamily, "desktop", Drag(start=N(1, 2), end=N(3, 4)),
     "thoughts:\nI do the next step.\nactions:\nDRAG <point>[[1,2]]</point> <point>[[3,4]]</point>"),
    (LineFamily, "desktop", Scroll(direction="up"), "thoughts:\nI do the next step.\nactions:\nSCROLL [UP]"),
    (LineFamily, "robot", MoveEffector(point=N(5, 6), height=0.3),
     "thoughts:\nI do the next step.\nactions:\nMOVE_EFFECTOR <point>[[5,6]]</point> [0.3]"),
    (DictFamily, "mobile", Swipe(start=N(100, 200), end=N(300, 400)),
     "{'action': 'SWIPE', 'value': None, 'position': [[0.1, 0.2], [0.3, 0.4]]}"),
    (DictFamily, "desktop", Finish(), "{'action': 'ANSWER', 'value': None, 'position': None}"),
]  # fmt: skip


@pytest.mark.parametrize(("family", "device", "action", "text"), WRITES)
def test_each_syntax_writes_the_family_form(
    family: Any, device: str, action: Any, text: str
) -> None:
    dialect = family()
    assert dialect.format(action, CTX[device]) == text
    assert dialect.parse(text, CTX[device]) == action


READS = [
    (ToolFamily, "desktop", '<tool_call>\n{"name": "computer_use", "arguments": "{\\"action\\": '
     '\\"left_click\\", \\"coordinate\\": [3.5, 4]}"}\n</tool_call>', Click(point=Point(x=3.5, y=4, space="resized_px"))),
    (PyFamily, "desktop", "Thought: a\nb\nAction: click(point='<point>10 20</point>')", Click(point=N(10, 20))),
    (PyFamily, "desktop", "Action: click(start_box='[10, 20, 30, 40]')\n\ntype(content='x')", Click(point=N(20, 30))),
    (PyFamily, "desktop", "Action: scroll(direction='down'", Scroll(direction="down")),
    (PyFamily, "mobile", "Action: click(start_box='(1,2)')", Tap(point=N(1, 2))),
    (PyFamily, "desktop", "Action: call_user()", AskUser(question="I need your help to continue.")),
    (LineFamily, "desktop", "thoughts:\nCLICK it?\nactions:\nTYPE [a [b] c]", TypeText(text="a [b] c")),
    (LineFamily, "desktop", "Actions: CLICK <point>[[108, 272]]</point>", Click(point=N(108, 272))),
    (DictFamily, "desktop", "[{'action': 'INPUT', 'value': \"it's\", 'position': None}, {'action': 'ANSWER'}]", TypeText(text="it's")),
    (DictFamily, "mobile", "{'action': 'click', 'value': None, 'position': [0.1, 0.9]}", Tap(point=N(100, 900))),
]  # fmt: skip


@pytest.mark.parametrize(("family", "device", "raw", "action"), READS)
def test_each_syntax_reads_the_tolerated_forms(
    family: Any, device: str, raw: str, action: Any
) -> None:
    assert family().parse(raw, CTX[device]) == action


REFUSALS = [
    (ToolFamily, "desktop", '<tool_call>\n{"name": "computer_use", "arguments": {"action": "scroll", "pixels": 0}}\n</tool_call>', "must not be 0"),
    (ToolFamily, "desktop", '<tool_call>\n{"name": "computer_use", "arguments": {"action": "left_click"}}\n</tool_call>', "missing argument 'coordinate'"),
    (ToolFamily, "desktop", '<tool_call>\n{"name": "computer_use", "arguments": {"action": "teleport"}}\n</tool_call>', "'teleport' is not a computer_use action"),
    (ToolFamily, "desktop", '<tool_call>\n{"name": "computer_use", "arguments": {"action": "type", "text": "a", "x": 1}}\n</tool_call>', "unexpected argument 'x'"),
    (ToolFamily, "mobile", '<tool_call>\n{"name": "mobile_use", "arguments": {"action": "system_button", "button": "Power"}}\n</tool_call>', "use one of: Back, Home"),
    (PyFamily, "desktop", "Action: type(content='Hello wor", "cut off"),
    (PyFamily, "desktop", "Action: click(start_box='(100,2", "cut off"),
    (PyFamily, "desktop", "Action: scroll(direction='dow", "use one of: up, down"),
    (PyFamily, "desktop", "Action: click(start_box='<|box_start|>(1,2)')", "does not close"),
    (PyFamily, "desktop", "Thought: x\nAction: ", "'Action:' is empty"),
    (LineFamily, "desktop", "actions:\nCLICK somewhere", "missing argument 'point'"),
    (LineFamily, "mobile", "actions:\nHOTKEY [ctrl+c]", "'HOTKEY' is not available on this device"),
    (DictFamily, "desktop", "{'action': 'CLICK', 'value': None, 'position': [1.5, 0.2]}", "outside 0..1"),
    (DictFamily, "desktop", "{'action': 'INPUT', 'value': __import__('os'), 'position': None}", "is not a literal value"),
]  # fmt: skip


@pytest.mark.parametrize(("family", "device", "raw", "fragment"), REFUSALS)
def test_refusals_are_one_line_reasons(family: Any, device: str, raw: str, fragment: str) -> None:
    with pytest.raises(ParseError) as info:
        family().parse(raw, CTX[device])
    assert fragment in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_fidelity_official_leaves_the_project_verbs_out() -> None:
    ctx = CTX["desktop"]
    assert "call_user" in PyFamily().offered(ctx)
    official = PyFamily(Fidelity.official())
    assert "call_user" not in official.offered(ctx)
    assert "call_user" not in official.grammar(ctx)
    with pytest.raises(ParseError, match="not available"):
        official.parse("Thought: help\nAction: call_user()", ctx)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_random_walks_through_the_grammar_parse(family: Any, qwen_tok: Any) -> None:
    """Uniform over the allowed tokens: every answer the grammar admits parses, on the device."""
    dialect = family(thought_tokens=12)
    rng = np.random.default_rng(7)
    failures = []
    for device, ctx in CTX.items():
        if not dialect.offered_verbs(ctx):
            continue
        grammar = dialect.grammar(ctx)
        for _ in range(40):
            c = GrammarConstraint(grammar, qwen_tok, QWEN_VOCAB_SIZE)
            while not c.done:
                forced = c.forced()
                for t in forced or [int(rng.choice(np.flatnonzero(c.allowed().numpy())))]:
                    c.advance(t)
            text = qwen_tok.decode(c.tokens)
            try:
                assert dialect.parse(text, ctx).kind in ctx.kinds
            except (ParseError, AssertionError) as err:
                failures.append(f"{device}: {text!r}: {err}")
    assert not failures, "\n".join(failures[:5])


def test_register_a_family_of_your_own() -> None:
    register_dialect("toy-pydict", DictFamily)
    dialect = get_dialect("toy-pydict", Fidelity.official())
    assert isinstance(dialect, DictFamily) and dialect.fidelity == Fidelity.official()
    with pytest.raises(ConfigError, match="built-in"):
        register_dialect("qwen2vl", DictFamily)


def test_unescape_is_left_to_right() -> None:
    assert unescape(r"a\\nb") == "a\\nb"  # an escaped backslash, then n
    assert unescape(r"a\nb\tc\'d") == "a\nb\tc'd"
    assert unescape(r"C:\Users\x") == r"C:\Users\x"
    assert unescape("\\\\\\n") == "\\\n"


def _dialects() -> list[Dialect]:
    from pixelpilot.agent.dialects import DIALECTS

    return [get_dialect(n) for n in DIALECTS] + [f() for f in FAMILIES]


def test_parse_net_never_fires_on_the_adversarial_sets() -> None:
    before = sum(NET.values())
    for dialect in _dialects():
        report = check_dialect(dialect, strict=False)
        assert not [p for p in report.problems if "raised" in p or "net" in p], report
    assert sum(NET.values()) == before


def test_a_megabyte_of_adversarial_text_parses_in_linear_time() -> None:
    """Every dialect, every generator: an Action or a ParseError, in under 50 ms (the best of 3
    runs: the machine may be shared; ``bench/bench_parse.py`` prints the figures)."""
    slow = []
    for dialect in _dialects():
        ctx = CTX["desktop"] if dialect.offered(CTX["desktop"]) else CTX["mobile"]
        for what, text in megabyte_answers().items():
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                with contextlib.suppress(ParseError):
                    dialect.parse(text, ctx)
                best = min(best, time.perf_counter() - t0)
            if best > 0.05:
                slow.append(f"{dialect.name} / {what}: {best * 1000:.0f} ms")
    assert not slow, slow


def test_the_docs_example_family_passes_check_dialect(qwen_tok: Any) -> None:
    """docs/dialects.md's one-file family, run as written."""
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "dialects.md").read_text("utf-8")
    (code,) = re.findall(r"```python\n# myfamily.py\n(.*?)```", doc, re.S)
    exec(compile(code, "docs/dialects.md", "exec"), {})  # our own docs, not model text
    report = check_dialect(get_dialect("myfamily"), tokenizer=qwen_tok, vocab_size=QWEN_VOCAB_SIZE)
    assert report.round_trips >= 10 and report.admitted == report.round_trips


def test_adding_a_verb_is_one_table_entry(qwen_tok: Any) -> None:
    """``triple_click`` in one line: parse, format, offered verbs, prompt line and grammar."""

    class WithTriple(PyFamily):
        verbs = (
            *PyFamily.verbs,
            Verb("triple_click", "click", (PyFamily.BOX,), {"count": 3}, devices=D,
                 line="triple_click(start_box='<|box_start|>(x1,y1)<|box_end|>')"),
        )  # fmt: skip

    dialect, ctx = WithTriple(), CTX["desktop"]
    triple = Click(point=N(5, 6), count=3)
    text = "Thought: I do it.\nAction: triple_click(start_box='<|box_start|>(5,6)<|box_end|>')"
    assert dialect.format(triple, ctx) == text and dialect.parse(text, ctx) == triple
    assert "triple_click" in dialect.offered(ctx) and '"triple_click("' in dialect.grammar(ctx)
    assert (
        "triple_click(start_box="
        in dialect.build_prompt("t", [], Image.new("RGB", (8, 8)), ctx).messages[0].text
    )
    check_dialect(dialect, tokenizer=qwen_tok, vocab_size=QWEN_VOCAB_SIZE)
