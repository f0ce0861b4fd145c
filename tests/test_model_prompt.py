"""``pixelpilot model prompt``: the exact text a model receives, in-process and as a subprocess."""

from __future__ import annotations

import subprocess
import sys

import pytest
from PIL import Image

from pixelpilot.agent.actions import DESKTOP_KINDS, MOBILE_KINDS
from pixelpilot.agent.cli_prompt import Step, load_history, parse_screen, render
from pixelpilot.agent.dialects import get_dialect
from pixelpilot.agent.dialects.base import StepContext, Turn
from pixelpilot.agent.errors import UserError
from pixelpilot.agent.geometry import HUB_PIXELS, PixelBudget, ScreenGeometry, visual_tokens
from pixelpilot.vlm.inputs import chat_text

CLICK = '✿FUNCTION✿: click\n✿ARGS✿: {"point": [500, 300]}'
TYPE = 'I type it.\n✿FUNCTION✿: type\n✿ARGS✿: {"text": "hello"}'
HISTORY = """\
# earlier steps, oldest first
- '✿FUNCTION✿: click

  ✿ARGS✿: {"point": [500, 300]}'
- raw: "I type it.\\n✿FUNCTION✿: type\\n✿ARGS✿: {\\"text\\": \\"hello\\"}"
  screen: 640x400
  note: the user said yes
"""


@pytest.fixture(scope="module")
def processor(tiny_small):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(str(tiny_small))


def test_history_file_reads_answers_sizes_and_notes(tmp_path):
    f = tmp_path / "h.yaml"
    f.write_text(HISTORY, encoding="utf-8")
    assert load_history(f) == [Step(CLICK), Step(TYPE, (640, 400), "the user said yes")]
    f.write_text('[{"raw": "x"}]', encoding="utf-8")  # JSON is YAML
    assert load_history(f) == [Step("x")]


def test_the_text_is_the_dialects_prompt_through_the_chat_template(tiny_small, processor):
    """What the command prints is the qwen2vl prompt of this step, through the hub Qwen2-VL
    template, each image once as its placeholder; what each stands for is listed."""
    steps = [Step(CLICK), Step(TYPE, (640, 400), "the user said yes")]
    got = render("Click Submit", screen=(1280, 800), history=steps, model=str(tiny_small))
    dialect = get_dialect("qwen2vl")
    turns = []
    for step in steps:
        size = step.screen or (1280, 800)
        ctx = ctx_for("desktop", size)
        image = Image.new("RGB", size)
        turns.append(Turn(step.raw, dialect.parse(step.raw, ctx), image, step.note))
    ctx = ctx_for("desktop", (1280, 800))
    expected = chat_text(
        processor, dialect.build_prompt("Click Submit", turns, Image.new("RGB", (1280, 800)), ctx)
    )
    assert got.text == expected
    assert got.text.count("<|vision_start|><|image_pad|><|vision_end|>") == 3
    assert "✿RESULT✿: <|vision_start|><|image_pad|><|vision_end|>the user said yes" in got.text
    assert [(i.size, i.tokens) for i in got.images] == [
        ((1280, 800), visual_tokens(1280, 800)),
        ((640, 400), visual_tokens(640, 400)),
        ((1280, 800), visual_tokens(1280, 800)),
    ]
    assert got.images[0].resized == HUB_PIXELS.resize(1280, 800)
    assert got.tokens > sum(i.tokens for i in got.images)


def ctx_for(device: str, size: tuple[int, int]) -> StepContext:
    kinds = DESKTOP_KINDS if device == "desktop" else MOBILE_KINDS
    return StepContext(device, kinds, ScreenGeometry(*size), HUB_PIXELS.resize(*size))


@pytest.mark.parametrize(
    "name", ["qwen2vl", "qwen25vl", "uitars", "uitars-1.5", "osatlas", "showui"]
)
def test_every_dialect_on_a_phone_with_the_pixel_budget_given(name, processor):
    budget = PixelBudget(3136, 1000 * 28 * 28)
    got = render(
        "Open the settings", dialect=name, device="mobile", screen=(1080, 2400), pixels=budget
    )
    ctx = StepContext("mobile", MOBILE_KINDS, ScreenGeometry(1080, 2400), budget.resize(1080, 2400))
    prompt = get_dialect(name).build_prompt(
        "Open the settings", [], Image.new("RGB", (1080, 2400)), ctx
    )
    assert got.text == chat_text(processor, prompt) and got.dialect == name
    assert [i.resized for i in got.images] == [budget.resize(1080, 2400)]


def test_official_drops_the_project_additions():
    default = render("Click Submit")
    official = render("Click Submit", official=True)
    assert "ask_user" in default.text and "ask_user" not in official.text
    assert official.text == render("Click Submit", dialect="qwen2vl", official=True).text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{raw: x}", "must be a list"),
        ("- 3", "write a raw answer"),
        ("- {raw: x, image: y}", "unknown key 'image'"),
        ("- {raw: x, screen: big}", "WIDTHxHEIGHT"),
        ("- [unclosed", "not valid YAML or JSON (line"),
    ],
)
def test_bad_history_files_say_what_is_wrong(tmp_path, text, message):
    f = tmp_path / "h.yaml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        load_history(f)


def test_bad_options_say_what_is_wrong(tmp_path):
    with pytest.raises(UserError, match="WIDTHxHEIGHT"):
        parse_screen("1280")
    with pytest.raises(UserError, match="desktop or mobile"):
        render("x", device="toaster")
    with pytest.raises(UserError, match="not a qwen2vl answer on a desktop"):
        render("x", history=[Step("I click somewhere")])
    with pytest.raises(UserError, match="chat template"):
        render("x", model="openai:http://localhost:1/v1#m")
    with pytest.raises(UserError, match="not found"):
        render("x", model=str(tmp_path / "none"))


def test_the_command_prints_the_text_alone_on_stdout(tmp_path):
    """As a user runs it: stdout is the string byte for byte (to diff), the notes on stderr;
    bad flags are one line and exit 2."""
    f = tmp_path / "h.yaml"
    f.write_text(HISTORY, encoding="utf-8")
    cli = [sys.executable, "-m", "pixelpilot.agent.cli", "model", "prompt"]
    r = subprocess.run(
        [*cli, "--task", "Click Submit", "--history", str(f), "--screen", "1280x800"],
        capture_output=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    expected = render("Click Submit", history=load_history(f)).text
    assert r.stdout.decode("utf-8") == expected
    notes = r.stderr.decode("utf-8")
    w, h = HUB_PIXELS.resize(640, 400)
    assert (
        "3 image(s)" in notes and f"640x400 -> {w}x{h}, {visual_tokens(640, 400)} visual" in notes
    )
    bad = subprocess.run(
        [*cli, "--task", "x", "--screen", "wide"], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "WIDTHxHEIGHT" in bad.stderr and not bad.stdout
