"""Decoding grammars: every string they admit parses, validates and lands on the screen.

Random walks through the real llguidance matcher, over the real 151,643-rank Qwen vocabulary
(model vocabulary 151936) and a small trained one, pick uniformly among the allowed tokens
(forced tokens taken as they come); every text must parse with its dialect, offer only the
device's kinds and map to device pixels. Known-bad answers are refused, what the dialects
themselves write is admitted, and the mask keeps rows past the tokenizer and stop ids shut.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np
import pytest
import torch

from pixelpilot.agent.actions import (
    DESKTOP_KINDS,
    MOBILE_KINDS,
    ROBOT_KINDS,
    AskUser,
    Click,
    Drag,
    Finish,
    Gripper,
    Home,
    Hotkey,
    LongPress,
    Move,
    MoveEffector,
    OpenApp,
    Pick,
    Point,
    Scroll,
    Swipe,
    SystemButton,
    Tap,
    TypeText,
    Wait,
    points,
)
from pixelpilot.agent.dialects import DIALECTS, get_dialect
from pixelpilot.agent.dialects.base import StepContext
from pixelpilot.agent.dialects.lark import TEXT_CHARS, int_range_regex
from pixelpilot.agent.errors import ConfigError, ModelError, ParseError
from pixelpilot.agent.geometry import HUB_PIXELS, ScreenGeometry, to_device
from pixelpilot.vlm.base import MAX_NEW_TOKENS
from pixelpilot.vlm.constrained import GrammarConstraint, stop_ids
from pixelpilot.vlm.tiny import QWEN_VOCAB_SIZE, qwen_tokenizer, small_tokenizer


def _ctx(device: str, kinds: frozenset[str], w: int, h: int, scale: float = 1.0) -> StepContext:
    return StepContext(device, kinds, ScreenGeometry(w, h, scale), HUB_PIXELS.resize(w, h))


CONTEXTS = {
    "desktop": _ctx("desktop", DESKTOP_KINDS, 1920, 1080),
    "desktop-hidpi": _ctx("desktop", DESKTOP_KINDS, 2560, 1440, 2.0),
    "mobile": _ctx("mobile", MOBILE_KINDS, 1080, 2400),
    "mobile-keys": _ctx("mobile", MOBILE_KINDS | {"hotkey"}, 720, 1280),
    "robot": _ctx("robot", ROBOT_KINDS, 640, 480),
}
WALKS = {"desktop": 150, "desktop-hidpi": 50, "mobile": 150, "mobile-keys": 50, "robot": 100}
"""Qwen-vocabulary walks per dialect and context: 500 per dialect."""
GRAMMAR_DIALECTS = ("qwen2vl", "qwen25vl", "uitars", "uitars-1.5", "osatlas", "showui")
SMALL_WALKS = 40
"""Small-vocabulary walks per dialect and context (short strings, many quote tokens)."""


@pytest.fixture(scope="module")
def qwen_tok() -> Any:
    return qwen_tokenizer()


@pytest.fixture(scope="module")
def small_tok() -> Any:
    return small_tokenizer()


def _vocab(tok: Any) -> int:
    return QWEN_VOCAB_SIZE if len(tok) > 100_000 else -(-len(tok) // 64) * 64


def walk(c: GrammarConstraint, rng: np.random.Generator, vocab: int) -> list[int]:
    """Tokens of one walk, uniform over the allowed tokens at each free step.

    Draws from the whole vocabulary and keeps the first allowed draw (exactly uniform over the
    allowed set, and cheap inside free text); after 8 refusals draws from the mask instead.
    """
    while not c.done:
        forced = c.forced()
        if forced:
            for t in forced:
                c.advance(t)
            continue
        for _ in range(8):
            t = int(rng.integers(vocab))
            if c.allows(t):
                break
        else:
            t = int(rng.choice(np.flatnonzero(c.allowed().numpy())))
        c.advance(t)
        assert len(c.tokens) <= 4 * MAX_NEW_TOKENS, "runaway walk"
    return c.tokens


def offered_kinds(name: str, ctx: StepContext) -> set[str]:
    """Kinds the dialect's prompt offers: UI-TARS's Action Space covers fewer than the device."""
    dialect: Any = get_dialect(name)
    if name.startswith("uitars"):  # a phone's scroll is a swipe
        return {v.kind if v.kind in ctx.kinds else "swipe" for v in dialect.offered_verbs(ctx)}
    return set(ctx.kinds)


def check(dialect: Any, text: str, ctx: StepContext) -> Any:
    """Parse, validate, map to the device: the action, or an AssertionError saying why not."""
    action = dialect.parse(text, ctx)
    assert action.kind in ctx.kinds, action
    on_screen = to_device(action, ctx.geometry, ctx.resized)
    for p in points(on_screen):
        assert ctx.geometry.contains(int(p.x), int(p.y)), p
    return action


def budget(name: str) -> int:
    """The dialect's answer budget in tokens: its own ``max_new_tokens`` (OS-Atlas-Pro and
    ShowUI size theirs from their grammar's longest answer), else the backends' default."""
    return get_dialect(name).sampling.max_new_tokens or MAX_NEW_TOKENS


def _run_walks(tok: Any, counts: dict[str, int], seed: int) -> dict[str, Any]:
    vocab = _vocab(tok)
    failures: list[str] = []
    kinds: dict[tuple[str, str], Counter[str]] = {}
    longest: Counter[str] = Counter()
    n = 0
    for d_i, name in enumerate(GRAMMAR_DIALECTS):
        dialect = get_dialect(name)
        for c_i, (cname, ctx) in enumerate(CONTEXTS.items()):
            rng = np.random.default_rng([seed, d_i, c_i])
            seen: Counter[str] = Counter()
            grammar = dialect.grammar(ctx)
            for _ in range(counts[cname]):
                tokens = walk(GrammarConstraint(grammar, tok, vocab), rng, vocab)
                longest[name] = max(longest[name], len(tokens))
                texts = [tok.decode(tokens)]
                if "<|box_start|>" in texts[0]:  # decoded with special tokens skipped, too
                    texts.append(tok.decode(tokens, skip_special_tokens=True))
                for text in texts:
                    n += 1
                    try:
                        seen[check(dialect, text, ctx).kind] += 1
                    except Exception as err:  # noqa: BLE001 - every failure is collected
                        failures.append(f"{name}/{cname}: {text!r}: {type(err).__name__}: {err}")
            kinds[name, cname] = seen
    return {"failures": failures, "kinds": kinds, "longest": longest, "n": n}


def test_qwen_vocab_walks_all_parse_validate_and_land(qwen_tok: Any) -> None:
    out = _run_walks(qwen_tok, WALKS, seed=1)
    assert not out["failures"], f"{len(out['failures'])} invalid: " + "\n".join(out["failures"][:5])
    assert out["n"] >= 500 * len(GRAMMAR_DIALECTS)
    assert all(n <= budget(name) for name, n in out["longest"].items()), out["longest"]
    for (name, cname), seen in out["kinds"].items():
        # a uniform walk reaches most offered kinds in every context
        assert len(seen) >= len(offered_kinds(name, CONTEXTS[cname])) // 2, (name, cname, seen)


def test_small_vocab_walks_all_parse_validate_and_land(small_tok: Any) -> None:
    out = _run_walks(small_tok, dict.fromkeys(CONTEXTS, SMALL_WALKS), seed=2)
    assert not out["failures"], f"{len(out['failures'])} invalid: " + "\n".join(out["failures"][:5])
    assert all(n <= budget(name) for name, n in out["longest"].items()), out["longest"]


# -- worst case: the longest answer still fits the token budget ---------------------------------
def test_adversarial_walks_fit_max_new_tokens(small_tok: Any) -> None:
    """Shortest allowed tokens every step (4-byte characters first), forced tokens NOT taken:
    the longest answer a grammar admits still fits MAX_NEW_TOKENS."""
    vocab = _vocab(small_tok)
    n_bytes = np.full(vocab, 1_000, dtype=np.int64)
    rank = np.zeros(vocab, dtype=np.int64)  # prefer UTF-8 lead bytes of long characters
    for t in range(len(small_tok)):
        b = GrammarConstraint('start: "x"', small_tok, vocab).tokenizer.decode_bytes([t])
        n_bytes[t] = len(b) or 1_000
        rank[t] = 0 if b[:1] >= b"\xf0" else 1 if b[:1] >= b"\x80" else 2
    longest: dict[str, int] = {}
    rng = np.random.default_rng(3)
    for name in GRAMMAR_DIALECTS:
        dialect = get_dialect(name)
        for ctx in CONTEXTS.values():
            for _ in range(3):
                c = GrammarConstraint(dialect.grammar(ctx), small_tok, vocab)
                while not c.done:
                    ids = np.flatnonzero(c.allowed().numpy())
                    ids = ids[n_bytes[ids] == n_bytes[ids].min()]
                    ids = ids[rank[ids] == rank[ids].min()]
                    c.advance(int(rng.choice(ids)))
                check(dialect, small_tok.decode(c.tokens), ctx)
                longest[name] = max(longest.get(name, 0), len(c.tokens))
    assert all(n <= budget(name) for name, n in longest.items()), longest
    assert max(longest.values()) > MAX_NEW_TOKENS // 2, longest  # the walks did go long


# -- known answers: what the dialects write is admitted, broken answers are not -------------------
def accepts(grammar: str, text: str, tok: Any) -> bool:
    """Whether the grammar admits ``text`` exactly (tokenized with special tokens parsed)."""
    c = GrammarConstraint(grammar, tok, _vocab(tok))
    for t in tok.encode(text, add_special_tokens=False):
        if not c.allows(t):
            return False
        c.advance(t)
    return c.accepting


def N(x: float, y: float) -> Point:
    return Point(x=x, y=y, space="norm1000")


def R(x: float, y: float) -> Point:
    return Point(x=x, y=y, space="resized_px")


def _examples(space: str, ctx: StepContext) -> list[Any]:
    P = N if space == "norm1000" else R
    w, h = (1000, 1000) if space == "norm1000" else ctx.resized
    desktop = [
        Click(point=P(0, 0)), Click(point=P(w, h), count=2), Click(point=P(5, 7), button="right"),
        Move(point=P(w // 2, h // 3)), Drag(start=P(1, 2), end=P(3, 4)), Drag(end=P(9, 9)),
        Scroll(direction="down", point=P(10, 20)), Scroll(direction="up", amount=3),
        TypeText(text='Zoë — 東京 "hi"\n'), Hotkey(keys=["ctrl", "c"]), Hotkey(keys=["enter"]),
        Wait(seconds=5), Wait(seconds=1.5), Finish(), Finish(answer="42"),
        Finish(status="failure"), AskUser(question="Which file?"),
    ]  # fmt: skip
    mobile = [
        Tap(point=P(3, 4)), LongPress(point=P(w, h)), LongPress(point=P(1, 1), seconds=2),
        Swipe(start=P(1, 2), end=P(w, h)), TypeText(text="hello"), OpenApp(app="Settings"),
        SystemButton(button="home"), SystemButton(button="back"), Wait(seconds=5),
        Finish(answer="xxx"), AskUser(question="?"),
    ]  # fmt: skip
    robot = [
        Pick(point=P(1, 2)), MoveEffector(point=P(w, h), height=0.25), Gripper(state="open"),
        Home(), Wait(seconds=5), Finish(),
    ]  # fmt: skip
    return {"desktop": desktop, "mobile": mobile, "robot": robot}[ctx.device_kind]


@pytest.mark.parametrize("name", GRAMMAR_DIALECTS)
def test_grammar_admits_what_the_dialect_writes(name: str, qwen_tok: Any) -> None:
    dialect = get_dialect(name)
    admitted = 0
    for cname in ("desktop", "mobile", "robot"):
        ctx = CONTEXTS[cname]
        grammar = dialect.grammar(ctx)
        for action in _examples(dialect.space, ctx):
            try:
                text = dialect.format(action, ctx)
            except ValueError:
                continue  # the family cannot write this action
            if action.kind not in offered_kinds(name, ctx) or not in_action_space(
                dialect, text, ctx
            ):
                continue
            assert accepts(grammar, text, qwen_tok), (cname, text)
            assert check(dialect, text, ctx) is not None
            admitted += 1
    assert admitted >= 12


def _signature(call: str) -> tuple[str, ...]:
    """A call's verb and argument names: ``click(start_box='...')`` -> ('click', 'start_box')."""
    return tuple(a or b for a, b in re.findall(r"^(\w+)\(|(\w+)=", call.strip()))


def in_action_space(dialect: Any, text: str, ctx: StepContext) -> bool:
    """UI-TARS: whether the verb is offered (the grammar admits each offered verb in every
    official shape; the parser reads more).
    OS-Atlas: whether the verb is ONE line (typed text with a newline is not) of an offered
    verb (IMPOSSIBLE is read and written, but no prompt offers it)."""
    if dialect.name == "osatlas":
        line = text.split("actions:\n", 1)[1]
        return "\n" not in line and line.split()[0] in dialect.offered(ctx)
    if not dialect.name.startswith("uitars"):
        return True
    return _signature(text.split("Action: ", 1)[1])[0] in dialect.offered(ctx)


BAD: dict[str, list[tuple[str, str]]] = {
    "qwen2vl": [
        ("desktop", '✿FUNCTION✿: click\n✿ARGS✿: {"point": [1001, 5]}'),
        ("desktop", '✿FUNCTION✿: click\n✿ARGS✿: {"point": [-1, 5]}'),
        ("desktop", '✿FUNCTION✿: click\n✿ARGS✿: {"point":[5, 5]}'),
        ("desktop", '✿FUNCTION✿: click\n✿ARGS✿: {"point": [5.5, 5]}'),
        ("desktop", '✿FUNCTION✿: click\n✿ARGS✿: {"point": [5, 5], "foo": 1}'),
        ("desktop", '✿FUNCTION✿: click\n✿ARGS✿: {"point": [5, 5]}\n✿RESULT✿: ok'),
        ("desktop", 'I click. ✿FUNCTION✿: click\n✿ARGS✿: {"point": [5, 5]}'),
        ("desktop", '✿FUNCTION✿: tap\n✿ARGS✿: {"point": [5, 5]}'),
        ("desktop", '✿FUNCTION✿: type\n✿ARGS✿: {"text": ""}'),
        ("desktop", '✿FUNCTION✿: type\n✿ARGS✿: {"text": "a<|im_end|>"}'),
        ("desktop", '✿FUNCTION✿: type\n✿ARGS✿: {"text": "✿RESULT✿"}'),
        ("desktop", '✿FUNCTION✿: type\n✿ARGS✿: {"text": "\\u0041"}'),
        ("desktop", '✿FUNCTION✿: type\n✿ARGS✿: {"text": "' + "a" * (TEXT_CHARS + 1) + '"}'),
        ("desktop", '✿FUNCTION✿: wait\n✿ARGS✿: {"seconds": 0.123}'),
        ("desktop", '✿FUNCTION✿: wait\n✿ARGS✿: {"seconds": 61}'),
        ("desktop", '✿FUNCTION✿: hotkey\n✿ARGS✿: {"keys": ["ctrl+c"]}'),
        ("desktop", '✿FUNCTION✿: hotkey\n✿ARGS✿: {"keys": []}'),
        ("desktop", '✿FUNCTION✿: scroll\n✿ARGS✿: {"direction": "north"}'),
        ("robot", '✿FUNCTION✿: click\n✿ARGS✿: {"point": [5, 5]}'),
        ("robot", '✿FUNCTION✿: move_effector\n✿ARGS✿: {"point": [5, 5], "height": 1.5}'),
    ],
    "qwen25vl": [
        ("desktop", '<tool_call>\n{"name": "computer_use", "arguments": {"action": "left_click", "coordinate": [1933, 5]}}\n</tool_call>'),
        ("desktop", '<tool_call>\n{"name": "computer_use", "arguments": {"action": "left_click", "coordinate": [5, 1093]}}\n</tool_call>'),
        ("desktop", '<tool_call>\n{"name": "computer_use", "arguments": {"action": "mouse_move"}}\n</tool_call>'),
        ("desktop", '<tool_call>\n{"name": "computer_use", "arguments": {"action": "left_click", "coordinate": [5.1234, 5]}}\n</tool_call>'),
        ("desktop", 'x < y\n<tool_call>\n{"name": "computer_use", "arguments": {"action": "wait", "time": 1}}\n</tool_call>'),
        ("desktop", '<tool_call>\n{"name": "computer_use", "arguments": {"action": "scroll", "pixels": 0}}\n</tool_call>'),
        ("desktop", '<tool_call>\n{"name": "computer_use", "arguments": {"action": "terminate"}}\n</tool_call>'),
        ("desktop", '<tool_call>\n{"name": "mobile_use", "arguments": {"action": "click", "coordinate": [5, 5]}}\n</tool_call>'),
        ("desktop", '<tool_call>{"name": "computer_use", "arguments": {"action": "wait", "time": 1}}</tool_call>'),
        ("desktop", '<tool_call>\n{"name": "computer_use", "arguments": {"action": "type", "text": "</tool_call>"}}\n</tool_call>'),
        ("desktop", '<tool_call>\n{"name": "computer_use", "arguments": {"action": "left_click", "coordinate": [5, 5]}}\n</tool_call>\n<tool_call>'),
        ("mobile", '<tool_call>\n{"name": "mobile_use", "arguments": {"action": "key", "text": "hyperdrive"}}\n</tool_call>'),
        ("mobile", '<tool_call>\n{"name": "mobile_use", "arguments": {"action": "system_button", "button": "Power"}}\n</tool_call>'),
        ("robot", '<tool_call>\n{"name": "computer_use", "arguments": {"action": "wait", "time": 1}}\n</tool_call>'),
    ],
    "uitars": [
        ("desktop", "Thought: a\nAction:b\nAction: click(start_box='<|box_start|>(5,5)<|box_end|>')"),
        ("desktop", "Thought: a <|b\nAction: click(start_box='<|box_start|>(5,5)<|box_end|>')"),
        ("desktop", "Thought: go\nAction: click(start_box='<|box_start|>(5,5)')"),
        ("desktop", "Thought: go\nAction: click(point='<point>5 5</point>')"),
        ("desktop", "Thought: go\nAction: click(start_box='(5,5,5)')"),
        ("desktop", "Thought: go\nAction: click(start_box='(5.5,5)')"),
        ("desktop", "Thought: go\nAction: type(content='a\nb')"),
        ("desktop", "Thought: go\nAction: click(start_box='<|box_start|>(1001,5)<|box_end|>')"),
        ("desktop", "Thought: go\nAction: type(content='')"),
        ("desktop", "Thought: go\nAction: type(content='it's')"),
        ("desktop", "Thought: go\nAction: hotkey(key='ctrl shift alt c')"),
        ("desktop", "Thought: go\nAction: scroll(start_box='<|box_start|>(5,5)<|box_end|>', direction='north')"),
        ("desktop", "Thought: go\nAction: wait()\nAction: wait()"),
        ("desktop", "Thought: go <|im_end|>\nAction: wait()"),
        ("mobile", "Thought: go\nAction: hotkey(key='ctrl c')"),
        ("robot", "Thought: go\nAction: click(start_box='<|box_start|>(5,5)<|box_end|>')"),
    ],
    "uitars-1.5": [
        ("desktop", "Thought: go\nAction: click(point='<point>1933 5</point>')"),
        ("desktop", "Thought: go\nAction: click(point='<point>5 1093</point>')"),
        ("desktop", "Thought: go\nAction: click(point='(5,5)')"),
        ("desktop", "Thought: go\nAction: click(start_box='<point>5 5</point>')"),
        ("desktop", "Thought: go\nAction: finished(content='" + "a" * (TEXT_CHARS + 1) + "')"),
        ("mobile", "Thought: go\nAction: open_app(app_name=' Maps')"),
        ("mobile", "Thought: go\nAction: open_app(app_name='')"),
    ],
    "osatlas": [
        ("desktop", "thoughts:\ngo <|im_end|>\nactions:\nWAIT"),
        ("desktop", "thoughts:\ngo\nactions:\nWAIT\nWAIT\nWAIT\nWAIT"),  # 3 lines at most
        ("desktop", "thoughts:\ngo\nactions:\n\nWAIT"),
        ("desktop", "Thoughts:\ngo\nActions:\nWAIT"),
        ("desktop", "actions:\nPRESS_BACK"),
        ("desktop", "thoughts:\ngo\nactions:\nCLICK <point>[[1001,5]]</point>"),
        ("desktop", "thoughts:\ngo\nactions:\nCLICK <point>[[5.5,5]]</point>"),
        ("desktop", "thoughts:\ngo\nactions:\nCLICK <point>[[-1,5]]</point>"),
        ("desktop", "thoughts:\ngo\nactions:\nTYPE []"),
        ("desktop", "thoughts:\ngo\nactions:\nTYPE [a\nactions:\nWAIT]"),
        ("desktop", "thoughts:\ngo\nactions:\nTYPE [a<|im_end|>]"),
        ("desktop", "thoughts:\ngo\nactions:\nTYPE [a\tb]"),
        ("desktop", "thoughts:\ngo\nactions:\nTYPE [✿]"),
        ("desktop", "thoughts:\ngo\nactions:\nTYPE [" + "a" * (TEXT_CHARS + 1) + "]"),
        ("desktop", "thoughts:\ngo\nactions:\nHOTKEY [ctrl+shift+alt+c]"),
        ("desktop", "thoughts:\ngo\nactions:\nHOTKEY [ctrl c]"),
        ("desktop", "thoughts:\ngo\nactions:\nHOTKEY [ctrl++]"),
        ("desktop", "thoughts:\ngo\nactions:\nHOTKEY [ ]"),
        ("desktop", "thoughts:\ngo\nactions:\nSCROLL [NORTH]"),
        ("desktop", "thoughts:\ngo\nactions:\nSCROLL [ UP]"),
        ("desktop", "thoughts:\ngo\nactions:\nCOMPLETE []"),
        ("desktop", "thoughts:\ngo\nactions:\nLONG_PRESS <point>[[5,5]]</point>"),
        ("mobile", "thoughts:\ngo\nactions:\nOPEN_APP [ ]"),
        ("mobile", "thoughts:\ngo\nactions:\nOPEN_APP [\u3000Settings]"),
        ("mobile", "thoughts:\ngo\nactions:\nASK_USER [ ]"),
        ("mobile", "thoughts:\ngo\nactions:\nHOVER <point>[[5,5]]</point>"),
        ("mobile", "thoughts:\ngo\nactions:\nHOTKEY [ctrl+c]"),
        ("robot", "thoughts:\ngo\nactions:\nMOVE_EFFECTOR <point>[[5,5]]</point> [1.5]"),
        ("robot", "thoughts:\ngo\nactions:\nMOVE_EFFECTOR <point>[[5,5]]</point> [0.125]"),
        ("robot", "thoughts:\ngo\nactions:\nGRIPPER [HALF]"),
        ("robot", "thoughts:\ngo\nactions:\nCLICK <point>[[5,5]]</point>"),
    ],
    "showui": [
        ("desktop", "{'action': 'CLICK', 'value': None, 'position': [1.1, 0.5]}"),
        ("desktop", "{'action': 'CLICK', 'value': None, 'position': [1.001, 0.5]}"),
        ("desktop", "{'action': 'CLICK', 'value': None, 'position': [0.1234, 0.5]}"),
        ("desktop", "{'action': 'CLICK', 'value': None, 'position': [500, 500]}"),
        ("desktop", "{'action': 'CLICK', 'value': None, 'position': [0.5,0.5]}"),
        ("desktop", "{'action': 'CLICK', 'value': None, 'position': None}"),
        ("desktop", "{'action': 'CLICK', 'value': 'x', 'position': [0.5, 0.5]}"),
        ("desktop", "{'action': 'CLICK', 'value': None, 'position': [[0.5, 0.5], [0.1, 0.1]]}"),
        ("desktop", '{"action": "CLICK", "value": None, "position": [0.5, 0.5]}'),
        ("desktop", "[{'action': 'CLICK', 'value': None, 'position': [0.5, 0.5]}]"),
        ("desktop", "{'action': 'WAIT', 'value': None, 'position': None} "),
        ("desktop", "{'action': 'TAP', 'value': None, 'position': [0.5, 0.5]}"),
        ("desktop", "{'action': 'INPUT', 'value': '', 'position': None}"),
        ("desktop", "{'action': 'INPUT', 'value': None, 'position': None}"),
        ("desktop", "{'action': 'INPUT', 'value': 'it's', 'position': None}"),
        ("desktop", "{'action': 'INPUT', 'value': '\\u0041', 'position': None}"),
        ("desktop", "{'action': 'INPUT', 'value': 'a\nb', 'position': None}"),
        ("desktop", "{'action': 'INPUT', 'value': 'a<|im_end|>', 'position': None}"),
        ("desktop", "{'action': 'INPUT', 'value': '" + "a" * (TEXT_CHARS + 1) + "', 'position': None}"),
        ("desktop", "{'action': 'SCROLL', 'value': 'north', 'position': None}"),
        ("desktop", "{'action': 'SCROLL', 'value': 'down', 'position': [0.5, 0.5]}"),
        ("desktop", "{'action': 'HOTKEY', 'value': 'ctrl+shift+alt+c', 'position': None}"),
        ("desktop", "{'action': 'HOTKEY', 'value': ' ', 'position': None}"),
        ("desktop", "{'action': 'DRAG', 'value': None, 'position': [0.1, 0.2]}"),
        ("mobile", "{'action': 'OPEN_APP', 'value': ' ', 'position': None}"),
        ("mobile", "{'action': 'SWIPE', 'value': 'up', 'position': [0.5, 0.8]}"),
        ("mobile", "{'action': 'SWIPE', 'value': None, 'position': [0.5, 0.8]}"),
        ("mobile", "{'action': 'CLICK', 'value': None, 'position': [0.5, 0.8]}"),
        ("mobile", "{'action': 'OPEN_APP', 'value': '\\nSettings', 'position': None}"),
        ("mobile", "{'action': 'ASK_USER', 'value': None, 'position': None}"),
        ("mobile", "{'action': 'PRESS', 'value': 'power', 'position': None}"),
        ("mobile", "{'action': 'SCROLL', 'value': 'down', 'position': None}"),
        ("robot", "{'action': 'MOVE_EFFECTOR', 'value': '1.5', 'position': [0.5, 0.5]}"),
        ("robot", "{'action': 'MOVE_EFFECTOR', 'value': '0.5', 'position': None}"),
        ("robot", "{'action': 'GRIPPER', 'value': 'half', 'position': None}"),
    ],
}  # fmt: skip


@pytest.mark.parametrize("name", GRAMMAR_DIALECTS)
def test_grammar_refuses_broken_answers(name: str, qwen_tok: Any) -> None:
    dialect = get_dialect(name)
    for cname, text in BAD[name]:
        assert not accepts(dialect.grammar(CONTEXTS[cname]), text, qwen_tok), (cname, text)
    # the edge itself is in: the far corner of the space
    ctx = CONTEXTS["desktop"]
    w, h = (1000, 1000) if dialect.space == "norm1000" else ctx.resized
    P = N if dialect.space == "norm1000" else R
    text = dialect.format(Click(point=P(w, h)), ctx)
    assert accepts(dialect.grammar(ctx), text, qwen_tok), text


def test_extra_calls_bound_the_calls_after_the_first(qwen_tok: Any) -> None:
    """OS-Atlas's further action lines and ShowUI's further dicts: two by default (official
    answers hold several), none with ``extra_calls=0`` (the random-weight test's setting)."""
    ctx = CONTEXTS["desktop"]
    enter = "{'action': 'ENTER', 'value': None, 'position': None}"
    answers = {"osatlas": ["actions:\nPRESS_ENTER", "\nPRESS_TAB"], "showui": [enter, ", " + enter]}
    for name, (one, more) in answers.items():
        for extra, most in ((None, 3), (0, 1), (1, 2)):
            dialect: Any = get_dialect(name)
            dialect.extra_calls = extra
            grammar = dialect.grammar(ctx)
            for n in range(1, 5):
                text = one + more * (n - 1)
                assert accepts(grammar, text, qwen_tok) == (n <= most), (name, extra, text)
                if n <= most:
                    assert check(dialect, text, ctx) == check(dialect, one, ctx)


def test_grounding_parsers_turn_invalid_values_into_parse_errors() -> None:
    """Values blank once stripped or out of range are the model's fault: a ParseError for the
    re-ask, never pydantic's ValidationError (the grammars keep them out of decoding)."""
    mobile = CONTEXTS["mobile-keys"]
    robot = CONTEXTS["robot"]
    cases = [
        ("osatlas", mobile, "thoughts:\ngo\nactions:\nOPEN_APP [ ]", "app"),
        ("osatlas", mobile, "thoughts:\ngo\nactions:\nHOTKEY [ ]", "keys"),
        ("osatlas", robot, "thoughts:\ngo\nactions:\nMOVE_EFFECTOR <point>[[5,5]]</point> [5]",
         "height"),
        # ShowUI's values are all written as 'value': the error names it so
        ("showui", mobile, "{'action': 'OPEN_APP', 'value': '\u3000', 'position': None}", "value"),
        ("showui", mobile, "{'action': 'HOTKEY', 'value': ' ', 'position': None}", "value"),
        ("showui", robot, "{'action': 'MOVE_EFFECTOR', 'value': -1, 'position': [0.5, 0.5]}",
         "value"),
    ]  # fmt: skip
    for name, ctx, text, field in cases:
        with pytest.raises(ParseError, match=field):
            get_dialect(name).parse(text, ctx)


# -- the mask at the real vocabulary size -------------------------------------------------------
def test_mask_at_model_vocab_keeps_extra_rows_and_stops_shut(qwen_tok: Any) -> None:
    ctx = CONTEXTS["desktop"]
    grammar = get_dialect("qwen2vl").grammar(ctx)
    c = GrammarConstraint(grammar, qwen_tok, QWEN_VOCAB_SIZE)
    stops = stop_ids(qwen_tok)
    assert stops[:2] == [151645, 151643]
    rng = np.random.default_rng(4)
    steps = 0
    while not c.accepting:
        logits = torch.randn(QWEN_VOCAB_SIZE)
        before = logits.clone()
        c.mask_logits(logits)
        allowed = torch.isfinite(logits)
        assert allowed.shape == (QWEN_VOCAB_SIZE,)
        assert not allowed[len(qwen_tok) :].any()  # rows past the tokenizer: never
        assert not allowed[stops].any()  # stop ids: not before the call is complete
        assert torch.equal(logits[allowed], before[allowed])  # allowed logits untouched
        assert torch.equal(allowed, c.allowed())
        ids = torch.nonzero(allowed).flatten()
        c.advance(int(ids[int(rng.integers(len(ids)))]))
        steps += 1
    assert steps >= 3
    logits = torch.zeros(QWEN_VOCAB_SIZE, dtype=torch.bfloat16)
    c.mask_logits(logits)
    allowed_ids = torch.nonzero(torch.isfinite(logits)).flatten().tolist()
    # the call is complete: every stop, or the newline that starts the trained "\n✿RESULT✿"
    assert set(stops) <= set(allowed_ids)
    assert all(qwen_tok.decode([i]).startswith("\n") for i in set(allowed_ids) - set(stops))
    assert c.allows(151645) and not c.allows(0)
    c.advance(151645)
    assert c.done and c.tokens[-1] == 151645


def test_rejected_token_and_bad_sizes_are_clear_errors(qwen_tok: Any, small_tok: Any) -> None:
    grammar = get_dialect("qwen2vl").grammar(CONTEXTS["desktop"])
    c = GrammarConstraint(grammar, qwen_tok, QWEN_VOCAB_SIZE)
    bad = qwen_tok.encode("<", add_special_tokens=False)[0]  # no thought holds '<'
    assert not c.allows(bad) and not c.allows(151645)
    with pytest.raises(ModelError, match="breaks the grammar"):
        c.advance(bad)
    with pytest.raises(ConfigError, match="vocabulary size"):
        GrammarConstraint(grammar, qwen_tok, 1000)
    with pytest.raises(ConfigError, match="does not compile"):
        GrammarConstraint("start: <|no_such_token|>", qwen_tok, QWEN_VOCAB_SIZE)
    # a small vocabulary finds its stop tokens by string
    ids = small_tok.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    assert stop_ids(small_tok)[:2] == ids


def test_forced_tokens_are_the_markers(qwen_tok: Any) -> None:
    """After ``<tool_call>`` (a thought may come first, so it is not forced) the grammar forces
    the JSON up to the tool name."""
    c = GrammarConstraint(
        get_dialect("qwen25vl").grammar(CONTEXTS["robot"]), qwen_tok, QWEN_VOCAB_SIZE
    )
    assert c.forced() == []
    for t in qwen_tok.encode("<tool_call>", add_special_tokens=False):
        c.advance(t)
    prefix = list(c.tokens)
    forced = c.forced()
    assert qwen_tok.decode(forced).startswith('\n{"name":')
    assert c.tokens == prefix  # forced() does not consume
    for t in forced:
        c.advance(t)
    assert c.tokens == prefix + forced


# -- pieces -------------------------------------------------------------------------------------
@pytest.mark.parametrize("hi", [0, 7, 9, 10, 99, 100, 101, 644, 1000, 1092, 1932, 2408, 10000])
def test_int_range_regex_is_exact(hi: int) -> None:
    rx = re.compile(int_range_regex(hi))
    got = [n for n in range(hi + 200) if rx.fullmatch(str(n))]
    assert got == list(range(hi + 1))
    assert not rx.fullmatch("01") and not rx.fullmatch("-1") and not rx.fullmatch("")


def test_grammars_are_cached_and_follow_the_resized_size() -> None:
    ctx = CONTEXTS["desktop"]
    other = StepContext(ctx.device_kind, ctx.kinds, ctx.geometry, (1316, 728))
    for name in GRAMMAR_DIALECTS:
        dialect = get_dialect(name)
        g = dialect.grammar(ctx)
        assert g is dialect.grammar(ctx)  # cached: the hot path does no work
        assert (dialect.grammar(other) == g) == (dialect.space == "norm1000")
        prompt = dialect.build_prompt("task", [], ctx_image(), ctx)
        assert prompt.grammar is g
    for name in set(DIALECTS) - set(GRAMMAR_DIALECTS):
        assert get_dialect(name).build_prompt("task", [], ctx_image(), ctx).grammar is None


def ctx_image() -> Any:
    from PIL import Image

    return Image.new("RGB", (8, 8))
