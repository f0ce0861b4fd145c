"""OS-Atlas-Pro and ShowUI against their official formats.

- Every official output form in tests/data/official/{osatlas,showui}.jsonl (eval gold answers,
  model card and quick-start outputs, prompt examples, the training code's targets; each record
  names its source) parses to its expected action and is admitted token by token by the dialect's
  decoding grammar over the real Qwen vocabulary (the tiny checkpoint's tokenizer).
- The prompt the model sees, with the project's additions off (``Fidelity.official()``), is the
  official rendering (tests/oracle_atlas_showui.py: the cited texts and layouts) through the same
  chat template: desktop and phone, 0, 2 and 3 earlier steps.
- With the default additions on, the prompt differs by exactly the listed lines.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import oracle_atlas_showui as oracle
import pytest
from PIL import Image

from pixelpilot.agent.actions import (
    ACTION_ADAPTER,
    DESKTOP_KINDS,
    MOBILE_KINDS,
    Click,
    LongPress,
    OpenApp,
    Point,
    Swipe,
    Tap,
    TypeText,
)
from pixelpilot.agent.dialects import get_dialect
from pixelpilot.agent.dialects.base import StepContext, Turn
from pixelpilot.agent.geometry import HUB_PIXELS, ScreenGeometry
from pixelpilot.vlm.constrained import STOP_TOKENS, GrammarConstraint
from pixelpilot.vlm.inputs import chat_text
from pixelpilot.vlm.tiny import QWEN_VOCAB_SIZE

CORPUS = Path(__file__).parent / "data" / "official"
FAMILIES = ("osatlas", "showui")
RECORDS = [
    json.loads(line)
    for family in FAMILIES
    for line in (CORPUS / f"{family}.jsonl").read_text(encoding="utf-8").splitlines()
    if line.strip()
]


def N(x: float, y: float) -> Point:
    return Point(x=x, y=y, space="norm1000")


def context(device: str, width: int, height: int) -> StepContext:
    kinds = DESKTOP_KINDS if device == "desktop" else MOBILE_KINDS
    return StepContext(
        device, kinds, ScreenGeometry(width, height), HUB_PIXELS.resize(width, height)
    )


def record_ctx(record: dict[str, Any]) -> StepContext:
    return context(record["device"], *record["screen"])


@pytest.fixture(scope="module")
def processor(tiny_qwen: Path) -> Any:
    """The tiny checkpoint's processor: the hub Qwen2-VL chat template and the Qwen vocabulary."""
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_qwen)


# -- the corpus ---------------------------------------------------------------------------------
def test_corpus_records_name_their_source() -> None:
    ids = [r["id"] for r in RECORDS]
    assert len(ids) == len(set(ids))
    for family in FAMILIES:
        assert sum(r["family"] == family for r in RECORDS) >= 20, family
    for r in RECORDS:
        assert r["source"] and r["source_kind"] and r["raw"], r["id"]
        assert r["device"] in ("desktop", "mobile"), r["id"]
        ACTION_ADAPTER.validate_python(r["expected"])  # a well-formed action


@pytest.mark.parametrize("record", RECORDS, ids=[r["id"] for r in RECORDS])
def test_official_output_parses_to_its_action(record: dict[str, Any]) -> None:
    action = get_dialect(record["family"]).parse(record["raw"], record_ctx(record))
    assert action == ACTION_ADAPTER.validate_python(record["expected"]), record["notes"]


@pytest.mark.parametrize("record", RECORDS, ids=[r["id"] for r in RECORDS])
def test_grammar_admits_official_output(record: dict[str, Any], processor: Any) -> None:
    """Token by token, as the model would write it; a trailing end token (the OS-Atlas card
    decodes with special tokens kept) must be allowed where the answer ends."""
    tok = processor.tokenizer
    raw, stop = record["raw"], None
    for s in STOP_TOKENS:
        if raw.endswith(s):
            raw, stop = raw[: -len(s)], s
    grammar = get_dialect(record["family"]).grammar(record_ctx(record))
    assert grammar is not None
    c = GrammarConstraint(grammar, tok, QWEN_VOCAB_SIZE)
    ids = tok.encode(raw, add_special_tokens=False)
    for i, t in enumerate(ids):
        assert c.allows(t), f"refused at {tok.decode(ids[:i])!r} + {tok.decode([t])!r}"
        c.advance(t)
    assert c.accepting, f"{raw!r} is not a complete answer"
    if stop is not None:
        assert c.allows(tok.convert_tokens_to_ids(stop))


# -- golden prompts -----------------------------------------------------------------------------
TASK = "Search the weather for the New York city."
SCREEN = {"desktop": (1920, 1080), "mobile": (1080, 2400)}
EARLIER = Image.new("RGB", (64, 48), "gray")
"""The earlier steps' screenshots: neither family shows them again."""
HISTORY: dict[tuple[str, str], list[tuple[Turn, str]]] = {
    # (turn, its text in the OS-Atlas history / the ShowUI history part)
    ("osatlas", "desktop"): [
        (Turn("thoughts:\nclick the search box\nactions:\nCLICK <point>[[493,578]]</point>",
              Click(point=N(493, 578)), EARLIER), "click the search box"),
        (Turn("thoughts:\ntype the query\nactions:\nTYPE [weather New York]",
              TypeText(text="weather New York"), EARLIER), "type the query"),
        (Turn("thoughts:\nsubmit it\nactions:\nPRESS_ENTER", None, EARLIER), "submit it"),
    ],
    ("osatlas", "mobile"): [
        (Turn("thoughts:\nopen the PocketBook app.\nactions:\nOPEN_APP [PocketBook]",
              OpenApp(app="PocketBook"), EARLIER), "open the PocketBook app."),
        (Turn('thoughts:\nLong press on the "the Queen\'s Gambit" book.\nactions:\n'
              "LONG_PRESS <point>[[108,272]]</point>", LongPress(point=N(108, 272)), EARLIER),
         'Long press on the "the Queen\'s Gambit" book.'),
        (Turn("thoughts:\nClick on the more options icon.\nactions:\nCLICK <point>[[950,87]]</point>",
              Tap(point=N(950, 87)), EARLIER), "Click on the more options icon."),
    ],
    ("showui", "desktop"): [
        (Turn("{'action': 'CLICK', 'value': None, 'position': [0.49, 0.42]}",
              Click(point=N(490, 420)), EARLIER), ""),
        (Turn("{'action': 'INPUT', 'value': 'weather for New York city', 'position': [0.49, 0.42]}",
              TypeText(text="weather for New York city"), EARLIER), ""),
        (Turn("{'action': 'SCROLL', 'value': 'down', 'position': None}", None, EARLIER), ""),
    ],
    ("showui", "mobile"): [
        (Turn("{'action': 'TAP', 'value': None, 'position': [0.5, 0.93]}",
              Tap(point=N(500, 930)), EARLIER), ""),
        (Turn("{'action': 'SWIPE', 'value': None, 'position': [[0.5, 0.8], [0.5, 0.2]]}",
              Swipe(start=N(500, 800), end=N(500, 200)), EARLIER), ""),
        (Turn("{'action': 'INPUT', 'value': \"what's on\", 'position': None}",
              TypeText(text="what's on"), EARLIER), ""),
    ],
}  # fmt: skip
CASES = [(f, d, n) for f in FAMILIES for d in ("desktop", "mobile") for n in (0, 2, 3)]


def official_messages(family: str, device: str, steps: int) -> oracle.Messages:
    history = HISTORY[family, device][:steps]
    if family == "showui":
        return oracle.showui(device, TASK, [turn.raw for turn, _ in history])
    texts = [t for _, t in history]
    build = oracle.osatlas_omniact if device == "desktop" else oracle.osatlas_card
    return build(TASK, texts)


def dialect_prompt(
    family: str,
    device: str,
    steps: int,
    official: bool,
    feedback: str | None = None,
    history: list[Turn] | None = None,
) -> Any:
    from pixelpilot.agent.dialects import Fidelity

    fidelity = Fidelity.official() if official else Fidelity()
    dialect = get_dialect(family, fidelity=fidelity)  # type: ignore[call-arg]
    turns = history if history is not None else [t for t, _ in HISTORY[family, device][:steps]]
    screenshot = Image.new("RGB", SCREEN[device], "white")
    prompt = dialect.build_prompt(TASK, turns, screenshot, context(device, *SCREEN[device]),
                                  feedback=feedback)  # fmt: skip
    images = [p["image"] for m in prompt.messages for p in m.content if p["type"] == "image"]
    assert len(images) == 1 and images[0] is screenshot  # never an earlier screenshot
    return prompt


def render(processor: Any, messages: oracle.Messages, continue_final: bool = False) -> str:
    """The exact string the model sees (each image as its vision placeholder)."""
    return str(
        processor.apply_chat_template(
            messages,
            tokenize=False,
            add_generation_prompt=not continue_final,
            continue_final_message=continue_final,
        )
    )


def render_prompt(processor: Any, prompt: Any) -> str:
    """A dialect's Prompt rendered as the local backend renders it (images as placeholders)."""
    return chat_text(processor, prompt)


@pytest.mark.parametrize(("family", "device", "steps"), CASES)
def test_prompt_is_the_official_rendering(
    family: str, device: str, steps: int, processor: Any
) -> None:
    got = render_prompt(processor, dialect_prompt(family, device, steps, official=True))
    want = render(processor, official_messages(family, device, steps))
    assert got == want


# What the default additions add to each official rendering: (the text they follow, the text).
ADDED: dict[tuple[str, str], tuple[str, str]] = {
    ("osatlas", "desktop"): (
        "    - example usage: HOTKEY [CTRL_A]\n",
        "\n"
        "Custom Action 11: DRAG\n"
        "    - purpose: Drag from the first position to the second.\n"
        "    - format: DRAG <point>[[x-axis, y-axis]]</point> <point>[[x-axis, y-axis]]</point>\n"
        "    - example usage: DRAG <point>[[101,872]]</point> <point>[[300,500]]</point>\n"
        "\n"
        "Custom Action 12: WAIT\n"
        "    - purpose: Wait for the screen to load.\n"
        "    - format: WAIT\n"
        "    - example usage: WAIT\n"
        "\n"
        "Custom Action 13: COMPLETE\n"
        "    - purpose: Indicate the task is finished.\n"
        "    - format: COMPLETE\n"
        "    - example usage: COMPLETE\n"
        "\n"
        "Custom Action 14: ANSWER\n"
        "    - purpose: Give the answer the task asks for; the task is finished.\n"
        "    - format: ANSWER [answer]\n"
        "    - example usage: ANSWER [42]\n"
        "\n"
        "Custom Action 15: ASK_USER\n"
        "    - purpose: Ask the user a question and wait for the answer.\n"
        "    - format: ASK_USER [question]\n"
        "    - example usage: ASK_USER [Which account should I use?]\n",
    ),
    ("osatlas", "mobile"): (
        "    - example usage: COMPLETE\n",
        "\n"
        "Custom Action 9: ANSWER\n"
        "    - purpose: Give the answer the task asks for; the task is finished.\n"
        "    - format: ANSWER [answer]\n"
        "    - example usage: ANSWER [42]\n"
        "\n"
        "Custom Action 10: ASK_USER\n"
        "    - purpose: Ask the user a question and wait for the answer.\n"
        "    - format: ASK_USER [question]\n"
        "    - example usage: ASK_USER [Which account should I use?]\n",
    ),
    ("showui", "desktop"): (
        "9. `COPY`: Copy the text, value is the text to copy and the position is not applicable.\n",
        "10. `DOUBLE_CLICK`: Double-click on an element, value is not applicable and the position [x,y] is required.\n"
        "11. `RIGHT_CLICK`: Right-click on an element, value is not applicable and the position [x,y] is required.\n"
        "12. `HOTKEY`: Press keys together, value is the keys joined by + (e.g. 'ctrl+c') and the position is not applicable.\n"
        "13. `WAIT`: Wait for the screen to change, value and position are not applicable.\n"
        "14. `ASK_USER`: Ask the user a question, value is the question and the position is not applicable.\n",
    ),
    ("showui", "mobile"): (
        "5. `ENTER`: Enter operation, value and position are not applicable.\n",
        "6. `LONG_PRESS`: Long press on an element, value is not applicable and the position [x,y] is required.\n"
        "7. `PRESS BACK`: Press for returning to the previous step, value and position are not applicable.\n"
        "8. `PRESS HOME`: Press for returning to the home screen, value and position are not applicable.\n"
        "9. `OPEN_APP`: Open an app, value is the app name and the position is not applicable.\n"
        "10. `WAIT`: Wait for the screen to change, value and position are not applicable.\n"
        "11. `ASK_USER`: Ask the user a question, value is the question and the position is not applicable.\n",
    ),
}  # fmt: skip


@pytest.mark.parametrize(("family", "device"), sorted(ADDED))
def test_default_additions_add_exactly_the_listed_lines(
    family: str, device: str, processor: Any
) -> None:
    official = render_prompt(processor, dialect_prompt(family, device, 2, official=True))
    default = render_prompt(processor, dialect_prompt(family, device, 2, official=False))
    anchor, added = ADDED[family, device]
    assert official.count(anchor) == 1
    assert default == official.replace(anchor, anchor + added)


def _inserted(base: str, longer: str) -> tuple[str, str]:
    """The one chunk ``longer`` inserts into ``base``, and the text of ``base`` right after it."""
    i = 0
    while i < len(base) and base[i] == longer[i]:
        i += 1
    j = 0
    while j < len(base) - i and base[-1 - j] == longer[-1 - j]:
        j += 1
    return longer[i : len(longer) - j], base[i:]


@pytest.mark.parametrize(("family", "device"), sorted(ADDED))
def test_retry_feedback_is_an_addition(family: str, device: str, processor: Any) -> None:
    """The reason a rejected answer was rejected is shown on the re-ask only with additions on:
    OS-Atlas after the task and history, ShowUI before the screenshot (which stays last)."""
    reason = "CLICK needs 1 <point>[[x,y]]</point>"
    for official in (True, False):
        plain = render_prompt(processor, dialect_prompt(family, device, 2, official))
        asked = render_prompt(processor, dialect_prompt(family, device, 2, official, reason))
        if official:
            assert asked == plain
            continue
        chunk, after = _inserted(plain, asked)
        assert reason in chunk
        assert after.startswith("<|im_end|>" if family == "osatlas" else "<|vision_start|>")


@pytest.mark.parametrize(("family", "device"), sorted(ADDED))
def test_notes_are_an_addition(family: str, device: str, processor: Any) -> None:
    """A note on an earlier step (a device's remark, the user's answer) follows that step's
    history entry, only with additions on."""
    note = "the user answered: use the work account"
    turns = [t for t, _ in HISTORY[family, device][:2]]
    noted = [turns[0], Turn(turns[1].raw, turns[1].action, turns[1].image, note)]
    for official in (True, False):
        plain = render_prompt(processor, dialect_prompt(family, device, 2, official))
        with_note = render_prompt(
            processor, dialect_prompt(family, device, 2, official, history=noted)
        )
        if official:
            assert with_note == plain
            continue
        chunk, after = _inserted(plain, with_note)
        assert note in chunk
        entry = HISTORY[family, device][1][1] or turns[1].raw
        assert plain[: len(plain) - len(after)].rstrip().endswith(entry)


@pytest.mark.parametrize("family", FAMILIES)
def test_sampling_is_greedy(family: str) -> None:
    """Neither family's authors set sampling (generate(max_new_tokens=128) with the checkpoint's
    generation config, whose Qwen2-VL-Instruct parent decodes with top_k=1): greedy."""
    assert get_dialect(family).sampling.temperature == 0.0


# -- the engine's conformance check, and history details ----------------------------------------
@pytest.mark.parametrize("official", [False, True], ids=["additions", "official"])
@pytest.mark.parametrize("family", FAMILIES)
def test_check_dialect(family: str, official: bool, processor: Any) -> None:
    from pixelpilot.agent.dialects import Fidelity, check_dialect

    dialect = get_dialect(family, fidelity=Fidelity.official() if official else Fidelity())
    corpus = [r for r in RECORDS if r["family"] == family]
    report = check_dialect(
        dialect, corpus, tokenizer=processor.tokenizer, vocab_size=QWEN_VOCAB_SIZE
    )
    assert report.corpus == len(corpus) and report.admitted == report.round_trips > 20


def test_osatlas_history_shows_the_action_line_where_an_answer_had_no_thoughts() -> None:
    turns = [
        Turn("actions:\nCLICK <point>[[503,981]]</point>", Tap(point=N(503, 981))),
        Turn("thoughts:\nfirst line\nsecond line\nactions:\nTYPE [hi]", TypeText(text="hi")),
    ]
    prompt = get_dialect("osatlas").build_prompt("t", turns, EARLIER, context("mobile", 100, 200))
    assert prompt.messages[0].content[2]["text"] == (
        "Task instruction: t\nHistory: \nStep 1: CLICK <point>[[503,981]]</point>\n"
        "Step 2: first line second line\n\n"
    )


def test_showui_history_shows_the_executed_action_of_an_answer_with_several() -> None:
    click = "{'action': 'CLICK', 'value': None, 'position': [0.49, 0.42]}"
    enter = "{'action': 'ENTER', 'value': None, 'position': None}"
    prompt = get_dialect("showui").build_prompt(
        "t",
        [Turn(f"{click},{enter}", Click(point=N(490, 420)))],
        EARLIER,
        context("desktop", 100, 100),
    )
    texts = [p["text"] for p in prompt.messages[0].content if p["type"] == "text"]
    assert texts[-1] == click


@pytest.mark.parametrize("device", ["desktop", "mobile"])
@pytest.mark.parametrize("family", FAMILIES)
def test_typed_text_may_hold_the_steps_secrets_only(
    family: str, device: str, processor: Any
) -> None:
    """``<secret>NAME</secret>`` (issue 10) in TYPE/INPUT values: admitted for the step's
    secret names only, kept as text by the parser, written back by format."""
    from dataclasses import replace

    tok = processor.tokenizer
    dialect = get_dialect(family)
    plain = context(device, *SCREEN[device])
    ctx = replace(plain, secrets=("PW",))
    typed = TypeText(text="user <secret>PW</secret>")
    answer = dialect.format(typed, ctx)
    assert "<secret>PW</secret>" in answer
    assert dialect.parse(answer, ctx) == typed

    def admits(text: str, step: StepContext) -> bool:
        c = GrammarConstraint(dialect.grammar(step), tok, QWEN_VOCAB_SIZE)
        for t in tok.encode(text, add_special_tokens=False):
            if not c.allows(t):
                return False
            c.advance(t)
        return c.accepting

    assert admits(answer, ctx)
    assert not admits(answer.replace("PW", "OTHER"), ctx)  # a name the step has not
    assert not admits(answer, plain)  # no secrets: no '<' in typed text
