"""UI-TARS v1 (``uitars``) and UI-TARS-1.5 (``uitars-1.5``) against their official formats.

- Every official output form in tests/data/official/uitars*.jsonl (training targets, real model
  answers from the READMEs and UI-TARS-desktop's fixtures, the README / package examples, every
  Action Space line of the official prompts; each record names its source) parses to its
  expected action and is admitted token by token by the dialect's decoding grammar over the real
  Qwen vocabulary (the tiny checkpoint's tokenizer). Where the pinned official parser
  (``ui-tars==0.1.4``) reads a record, our point lands where its pyautogui code clicks.
- The prompt the model sees, with the project's additions off (``Fidelity.official()``), is the
  official rendering (tests/oracle_uitars.py: the ``ui-tars`` package's own templates, the cited
  texts and layouts) through the same chat template: desktop and phone, 0, 2 and 6 earlier steps
  (the 5-screenshot window slides), both 1.5 notations.
- With the default additions on, the prompt differs by exactly the listed lines.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import oracle_uitars as oracle
import pytest
from PIL import Image

from pixelpilot.agent.actions import ACTION_ADAPTER, DESKTOP_KINDS, MOBILE_KINDS, points
from pixelpilot.agent.dialects import get_dialect
from pixelpilot.agent.dialects.base import StepContext, Turn
from pixelpilot.agent.geometry import HUB_PIXELS, ScreenGeometry, to_screen
from pixelpilot.vlm.constrained import GrammarConstraint
from pixelpilot.vlm.inputs import chat_text
from pixelpilot.vlm.tiny import QWEN_VOCAB_SIZE

CORPUS = Path(__file__).parent / "data" / "official"
FAMILIES = ("uitars", "uitars-1.5")
RECORDS = [
    json.loads(line)
    for family in FAMILIES
    for line in (CORPUS / f"{family}.jsonl").read_text(encoding="utf-8").splitlines()
    if line.strip()
]
IDS = [r["id"] for r in RECORDS]


def context(device: str, width: int, height: int) -> StepContext:
    kinds = DESKTOP_KINDS if device == "desktop" else MOBILE_KINDS
    return StepContext(
        device, kinds, ScreenGeometry(width, height), HUB_PIXELS.resize(width, height)
    )


def record_ctx(record: dict[str, Any]) -> StepContext:
    return context(record["device"], *record["screen"])


def dialect(family: str, official: bool = False, notation: str | None = None) -> Any:
    from pixelpilot.agent.dialects import Fidelity

    fidelity = Fidelity.official() if official else Fidelity()
    if notation is None:
        return get_dialect(family, fidelity=fidelity)  # type: ignore[call-arg]
    from pixelpilot.agent.dialects.uitars import UITars15Dialect

    return UITars15Dialect(fidelity, notation=notation)  # type: ignore[call-arg]


@pytest.fixture(scope="module")
def processor(tiny_qwen: Path) -> Any:
    """The tiny checkpoint's processor: the hub Qwen2-VL chat template and the Qwen vocabulary."""
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_qwen)


# -- the corpus ---------------------------------------------------------------------------------
def test_corpus_records_name_their_source() -> None:
    assert len(IDS) == len(set(IDS))
    kinds = {r["source_kind"] for r in RECORDS}
    assert {"training_target", "model_output", "model_output_fixture"} <= kinds
    for family in FAMILIES:
        assert sum(r["family"] == family for r in RECORDS) >= 30, family
    for r in RECORDS:
        assert r["family"] in FAMILIES, r["id"]
        assert re.search(r"@[0-9a-f]{40}", r["source"]), r["id"]  # repo:path@full sha
        assert r["source_kind"] and r["raw"] and r["notes"], r["id"]
        assert r["device"] in ("desktop", "mobile"), r["id"]
        assert "Action: " in r["raw"], r["id"]  # every record is an agent answer
        ACTION_ADAPTER.validate_python(r["expected"])  # a well-formed action


def test_corpus_holds_free_thoughts() -> None:
    """Real answers think in several sentences, over several lines, in Chinese."""
    raws = [r["raw"] for r in RECORDS if r["source_kind"].startswith("model_output")]
    assert any(re.search(r"[\u4e00-\u9fff]", r) for r in raws)
    assert any(r.split("Action:")[0].count("\n") >= 2 for r in raws)
    assert any(len(r.split("Action:")[0]) > 300 for r in raws)


@pytest.mark.parametrize("record", RECORDS, ids=IDS)
def test_official_output_parses_to_its_action(record: dict[str, Any]) -> None:
    action = get_dialect(record["family"]).parse(record["raw"], record_ctx(record))
    assert action == ACTION_ADAPTER.validate_python(record["expected"]), record["notes"]


@pytest.mark.parametrize("record", RECORDS, ids=IDS)
def test_official_output_parses_without_additions(record: dict[str, Any]) -> None:
    """Official forms need no project addition."""
    action = dialect(record["family"], official=True).parse(record["raw"], record_ctx(record))
    assert action == ACTION_ADAPTER.validate_python(record["expected"])


def admitted(grammar: str, tok: Any, raw: str) -> str:
    """'' when ``raw`` is admitted token by token and complete, else what went wrong."""
    c = GrammarConstraint(grammar, tok, QWEN_VOCAB_SIZE)
    ids = tok.encode(raw, add_special_tokens=False)
    for i, t in enumerate(ids):
        if not c.allows(t):
            return f"refused at {tok.decode(ids[:i])!r} + {tok.decode([t])!r}"
        c.advance(t)
    return "" if c.accepting else f"{raw!r} is not a complete answer"


@pytest.mark.parametrize("record", RECORDS, ids=IDS)
def test_grammar_admits_official_output(record: dict[str, Any], processor: Any) -> None:
    """Token by token, as the model writes it (box tokens as the special tokens they are)."""
    for official in (True, False):
        grammar = dialect(record["family"], official).grammar(record_ctx(record))
        assert grammar is not None
        assert admitted(grammar, processor.tokenizer, record["raw"]) == ""


LONG_THOUGHT = (
    "Thought: 我看到Preferences窗口已经打开了，但这里显示的都是系统资源相关的设置。"
    "要设置图片的颜色模式，我得先看看左侧的选项列表。\n\n"
    'Plan: first open "Image" > "Mode", then choose Indexed... and confirm with OK. '
    "If the dialog asks about the palette, keep the defaults (255 colours, no dithering).\n"
    "- step 1: click the menu; step 2: pick the mode; step 3: check the title bar.\n"
    "Je clique sur le menu « Image » en haut. 그 다음에 모드를 선택합니다.\n"
    "Action: click(start_box='(177,549)')"
)


@pytest.mark.parametrize("family", FAMILIES)
def test_thought_is_free_text_up_to_the_budget(family: str, processor: Any) -> None:
    """Several paragraphs, any language, punctuation and quotes: the grammar constrains the
    call, not the reasoning."""
    ctx = context("desktop", 1920, 1080)
    tok = processor.tokenizer
    assert 100 < len(tok.encode(LONG_THOUGHT)) < 512
    for official in (True, False):
        assert admitted(dialect(family, official).grammar(ctx), tok, LONG_THOUGHT) == ""
    assert dialect(family).parse(LONG_THOUGHT, ctx).kind == "click"


def _oracle_point(record: dict[str, Any]) -> tuple[float, float] | None:
    """Where ui-tars 0.1.4 clicks for a one-point record (None where it cannot read it)."""
    from ui_tars.action_parser import parse_action_to_structure_output, smart_resize

    width, height = record["screen"]
    text = record["raw"].replace("<|box_start|>", "").replace("<|box_end|>", "")
    if record["family"] == "uitars":
        kw: dict[str, Any] = {"model_type": "qwen2vl"}
    else:
        kw = {"model_type": "qwen25vl"}
    try:
        parsed = parse_action_to_structure_output(text, 1000, height, width, **kw)
    except Exception:  # noqa: BLE001 - the oracle refuses some official forms
        return None
    box = parsed[0]["action_inputs"].get("start_box")
    if not box:
        return None
    nums = [float(v) for v in box.strip("[]").split(",")]
    if record["family"] == "uitars-1.5":
        rh, rw = smart_resize(height, width)
        if (rw, rh) != HUB_PIXELS.resize(width, height):
            return None  # another pixel budget (ui-tars' min_pixels is 100*28*28)
    x = (nums[0] + nums[2]) / 2 if len(nums) == 4 else nums[0]
    y = (nums[1] + nums[3]) / 2 if len(nums) == 4 else nums[1]
    return x * width, y * height


def test_points_land_where_the_official_parser_clicks() -> None:
    checked = 0
    for record in RECORDS:
        want = _oracle_point(record)
        if want is None or "direction=" in record["raw"] and record["device"] == "mobile":
            continue  # a phone's scroll is a swipe from elsewhere: pixelpilot's convention
        ctx = record_ctx(record)
        action = get_dialect(record["family"]).parse(record["raw"], ctx)
        got = to_screen(points(action)[0], ctx.geometry, ctx.resized)
        assert abs(got[0] - want[0]) <= 1 and abs(got[1] - want[1]) <= 1, (record["id"], got, want)
        checked += 1
    assert checked >= 40


# -- golden prompts -----------------------------------------------------------------------------
TASK = "Could you help me set the image to Palette-Based?"
SCREEN = {"desktop": (1920, 1080), "mobile": (1080, 2400)}
ANSWERS = {
    # earlier answers as a server returns them (box tokens stripped); the layout puts them back
    "desktop": [
        "Thought: 我需要先打开Image菜单。\nAction: click(start_box='(66,30)')",
        "Action_Summary: 选择Mode子菜单。\nAction: click(start_box='(95,180)')",
        "Thought: 选择Indexed...\nAction: left_double(start_box='(300,212)')",
        "Thought: 拖动滑块。\nAction: drag(start_box='(72,74)', end_box='(175,74)')",
        "Thought: 输入颜色数量。\nAction: type(content='255\\n')",
        "Thought: 向下滚动查看更多选项。\nAction: scroll(start_box='(500,500)', direction='down')",
    ],
    "mobile": [
        "Thought: Open the gallery app first.\nAction: click(start_box='(235,512)')",
        "Thought: Long press the photo to select it.\nAction: long_press(start_box='(300,400)')",
        "Thought: Swipe up to see the edit options.\nAction: scroll(start_box='(500,800)', end_box='(500,300)')",
        "Thought: Type the name.\nAction: type(content='palette')",
        "Thought: Go back to the list.\nAction: press_back()",
        "Thought: Tap the first result.\nAction: click(start_box='(500,220)')",
    ],
}
STEPS = (0, 2, 6)


def turns(device: str, steps: int) -> list[Turn]:
    """Earlier steps, each with its own screenshot (distinct, so the window can be checked)."""
    return [
        Turn(raw, None, Image.new("RGB", (64, 48), (i * 30, 0, 0)))
        for i, raw in enumerate(ANSWERS[device][:steps])
    ]


def dialect_prompt(
    family: str,
    device: str,
    steps: int,
    official: bool,
    feedback: str | None = None,
    history: list[Turn] | None = None,
    notation: str | None = None,
) -> tuple[Any, list[Turn], Image.Image]:
    d = dialect(family, official, notation)
    past = history if history is not None else turns(device, steps)
    screenshot = Image.new("RGB", SCREEN[device], "white")
    prompt = d.build_prompt(TASK, past, screenshot, context(device, *SCREEN[device]),
                            feedback=feedback)  # fmt: skip
    return prompt, past, screenshot


def official_messages(family: str, device: str, steps: int, notation: str = "box") -> Any:
    answers = ANSWERS[device][:steps]
    if family == "uitars":
        return oracle.v1_messages(device, TASK, answers)
    return oracle.v15_messages(device, TASK, answers, notation)


def render(processor: Any, messages: oracle.Messages) -> str:
    """The exact string the model sees (each image as its vision placeholder)."""
    return str(processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))


def render_prompt(processor: Any, prompt: Any) -> str:
    """A dialect's Prompt rendered as the local backend renders it (images as placeholders)."""
    assert not prompt.continue_final
    return chat_text(processor, prompt)


CASES = [(f, d, n) for f in FAMILIES for d in ("desktop", "mobile") for n in STEPS]


@pytest.mark.parametrize(("family", "device", "steps"), CASES)
def test_prompt_is_the_official_rendering(
    family: str, device: str, steps: int, processor: Any
) -> None:
    prompt, _, _ = dialect_prompt(family, device, steps, official=True)
    got = render_prompt(processor, prompt)
    want = render(processor, official_messages(family, device, steps))
    assert got == want


@pytest.mark.parametrize(
    ("device", "steps"), [(d, n) for d in ("desktop", "mobile") for n in STEPS]
)
def test_point_notation_is_the_ui_tars_package_rendering(
    device: str, steps: int, processor: Any
) -> None:
    """UI-TARS-1.5 with the ``<point>`` templates of the pinned ``ui-tars`` package."""
    prompt, _, _ = dialect_prompt("uitars-1.5", device, steps, official=True, notation="point")
    got = render_prompt(processor, prompt)
    want = render(processor, official_messages("uitars-1.5", device, steps, "point"))
    assert got == want


@pytest.mark.parametrize(("family", "device", "steps"), CASES)
def test_messages_follow_the_official_layout(family: str, device: str, steps: int) -> None:
    """The message list itself: v1 sends the system message, 1.5 leaves it to the chat template;
    the prompt is the first user message (text only); each earlier step's screenshot (the last 4
    earlier ones, so 5 with the current one) is its own image-only user message, in front of
    that step's answer; older answers stay, without their screenshots."""
    prompt, past, screenshot = dialect_prompt(family, device, steps, official=True)
    want = official_messages(family, device, steps)
    got = [
        (m.role, ["image" if p["type"] == "image" else p["text"] for p in m.content])
        for m in prompt.messages
    ]
    assert got == [
        (m["role"], ["image" if p["type"] == "image" else p["text"] for p in m["content"]])
        for m in want
    ]
    images = [p["image"] for m in prompt.messages for p in m.content if p["type"] == "image"]
    expected = [t.image for t in past][-(oracle.HISTORY_N - 1) :] if past else []
    assert [id(i) for i in images] == [id(i) for i in [*expected, screenshot]]
    assert len(images) == min(steps + 1, oracle.HISTORY_N)


def test_history_answers_carry_box_tokens_as_ui_tars_writes_them() -> None:
    """README_deploy's ``add_box_token``: served answers get their box tokens back; answers that
    kept them (a local model) or use <point> stay as they are."""
    from ui_tars.action_parser import add_box_token

    from pixelpilot.agent.dialects.uitars import add_box_tokens

    samples = [r["raw"] for r in RECORDS] + [
        "Thought: a\nAction: drag(start_box='(1,2)', end_box='(3, 4)')",
        "Thought: x. Action: click(start_box='(5,6)')\n\nAction: wait()",
        "Action: click(start_box='(7,8)')  \n",
    ]
    for raw in samples:
        assert add_box_tokens(raw) == add_box_token(raw), raw


# What the default additions add to each official rendering: (the text they follow, the text).
CALL_USER = (
    "call_user() # Submit the task and call the user when the task is unsolvable, or when you "
    "need the user's help.\n"
)
WAIT = "wait() #Sleep for 5s and take a screenshot to check for any changes.\n"
HOVER_BOX = (
    "hover(start_box='<|box_start|>(x1,y1)<|box_end|>') #Move the mouse there without clicking.\n"
)
HOVER_POINT = "hover(point='<point>x1 y1</point>') #Move the mouse there without clicking.\n"
FINISHED_15 = (
    "finished(content='xxx') # Use escape characters \\', \\\", and \\n in content part to ensure "
    "we can parse the content in normal python string format.\n"
)
ADDED: dict[tuple[str, str, str], tuple[str, str]] = {
    ("uitars", "desktop", "box"): (CALL_USER, HOVER_BOX),
    ("uitars", "mobile", "box"): (
        "finished(content='') # Submit the task regardless of whether it succeeds or fails.\n",
        "open_app(app_name='')\n" + WAIT + CALL_USER,
    ),
    ("uitars-1.5", "desktop", "box"): (FINISHED_15, HOVER_BOX + CALL_USER),
    ("uitars-1.5", "mobile", "box"): (FINISHED_15, WAIT + CALL_USER),
    ("uitars-1.5", "desktop", "point"): (FINISHED_15, HOVER_POINT + CALL_USER),
    ("uitars-1.5", "mobile", "point"): (FINISHED_15, WAIT + CALL_USER),
}


@pytest.mark.parametrize(("family", "device", "notation"), sorted(ADDED))
def test_default_additions_add_exactly_the_listed_lines(
    family: str, device: str, notation: str, processor: Any
) -> None:
    n = None if notation == "box" else notation
    official, _, _ = dialect_prompt(family, device, 2, official=True, notation=n)
    default, _, _ = dialect_prompt(family, device, 2, official=False, notation=n)
    a, b = render_prompt(processor, official), render_prompt(processor, default)
    anchor, added = ADDED[family, device, notation]
    assert a.count(anchor) == 1
    assert b == a.replace(anchor, anchor + added)


def _inserted(base: str, longer: str) -> tuple[str, str]:
    """The one chunk ``longer`` inserts into ``base``, and the text of ``base`` right after it."""
    i = 0
    while i < len(base) and base[i] == longer[i]:
        i += 1
    j = 0
    while j < len(base) - i and base[-1 - j] == longer[-1 - j]:
        j += 1
    return longer[i : len(longer) - j], base[i:]


@pytest.mark.parametrize(("family", "device"), [(f, d) for f in FAMILIES for d in SCREEN])
def test_retry_feedback_is_an_addition(family: str, device: str, processor: Any) -> None:
    """The reason a rejected answer was rejected is shown on the re-ask only with additions on,
    in front of the current screenshot (which stays last)."""
    reason = "click needs start_box; write click(start_box='(x1,y1)')"
    for official in (True, False):
        plain = render_prompt(processor, dialect_prompt(family, device, 2, official)[0])
        asked = render_prompt(processor, dialect_prompt(family, device, 2, official, reason)[0])
        if official:
            assert asked == plain
            continue
        chunk, after = _inserted(plain, asked)
        assert reason in chunk
        assert after.startswith("<|vision_start|>")
        assert asked.endswith("<|vision_end|><|im_end|>\n<|im_start|>assistant\n")


@pytest.mark.parametrize(("family", "device"), [(f, d) for f in FAMILIES for d in SCREEN])
def test_notes_are_an_addition(family: str, device: str, processor: Any) -> None:
    """A note on an earlier step (a device's remark, the user's answer) follows that step's
    answer, only with additions on."""
    from pixelpilot.agent.dialects.uitars import add_box_tokens

    note = "the user answered: use the work account"
    past = turns(device, 2)
    noted = [past[0], Turn(past[1].raw, past[1].action, past[1].image, note)]
    for official in (True, False):
        plain = render_prompt(processor, dialect_prompt(family, device, 2, official)[0])
        with_note = render_prompt(
            processor, dialect_prompt(family, device, 2, official, history=noted)[0]
        )
        if official:
            assert with_note == plain
            continue
        chunk, _ = _inserted(plain, with_note)
        assert note in chunk
        answer = add_box_tokens(past[1].raw)
        assert f"{answer}<|im_end|>\n<|im_start|>user\n{note}<|im_end|>\n" in with_note


def test_default_templates() -> None:
    """v1: the README templates (Chinese thoughts on a computer, English on a phone, as
    published); 1.5: the box-token templates released with the model, English; the ui-tars
    package's <point> templates on request."""
    ctx = {d: context(d, *SCREEN[d]) for d in SCREEN}
    for device in SCREEN:
        v1 = dialect("uitars", True).build_prompt(TASK, [], Image.new("RGB", (8, 8)), ctx[device])
        assert v1.messages[1].text == oracle.prompt_text("uitars", device, TASK)
        v15 = dialect("uitars-1.5", True).build_prompt(
            TASK, [], Image.new("RGB", (8, 8)), ctx[device]
        )
        assert v15.messages[0].text == oracle.BOX[device].format(
            language="English", instruction=TASK
        )
        pt = dialect("uitars-1.5", True, "point").build_prompt(
            TASK, [], Image.new("RGB", (8, 8)), ctx[device]
        )
        assert pt.messages[0].text == oracle.POINT[device].format(
            language="English", instruction=TASK
        )


@pytest.mark.parametrize("family", FAMILIES)
def test_sampling_is_the_authors(family: str) -> None:
    """Greedy: v1's OSWorld agent (infer/osworld.py @5adcd33: temperature 0, top_k 1,
    frequency_penalty 1, as the v1 README's examples), 1.5's README_deploy (temperature 0.0,
    no penalty) and the UI-TARS-desktop SDK (temperature 0)."""
    sampling = get_dialect(family).sampling
    assert sampling.temperature == 0.0
    penalty = getattr(sampling, "frequency_penalty", None)
    assert penalty == (1.0 if family == "uitars" else None)


# -- the dialect as a whole ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("family", "notation"), [("uitars", None), ("uitars-1.5", None), ("uitars-1.5", "point")]
)
def test_check_dialect_passes_with_the_official_corpus(
    family: str, notation: str | None, processor: Any
) -> None:
    """Round trips, grammar admission of what it writes and of its official corpus, prompts,
    adversarial answers; with the additions on and off."""
    from pixelpilot.agent.dialects import check_dialect

    corpus = [r for r in RECORDS if r["family"] == family]
    for official in (False, True):
        report = check_dialect(
            dialect(family, official, notation), corpus,
            tokenizer=processor.tokenizer, vocab_size=QWEN_VOCAB_SIZE,
        )  # fmt: skip
        assert report.corpus == len(corpus) and report.admitted >= 40, str(report)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # a thought cut at its token budget runs into the call, even mid-word
        ("Thought: I should press the button nowclick(start_box='(1,2)')", "click"),
        ("Thought: 我要点击type(content='go click(here')", "type"),
        ("Thought: a\nAction: type(content='Action: wait()')", "type"),
        ("Thought: close it. Action: type(content='x Action: wait()')", "type"),
        ("Thought: a\nAction:b\nAction: wait()", "wait"),
    ],
)
def test_where_the_call_is(raw: str, expected: str) -> None:
    """The call the grammar's text leads to is the one parsed: after the last marker that
    starts a line, else the first marker; without a marker, the last call that ends the text."""
    assert get_dialect("uitars").parse(raw, context("desktop", 1920, 1080)).kind == expected
