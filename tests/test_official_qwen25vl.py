"""Qwen2.5-VL (the cookbook's computer_use / mobile_use tools) against its official format.

- Every official output form in tests/data/official/qwen25vl.jsonl (one per action the
  cookbook's tool definitions allow, clicks at the cursor and fractional coordinates included,
  and the free-text-before-the-call form), plus the three Qwen2.5-VL outputs saved in the
  cookbook (read in place from ../shared/reference/peer_outputs.jsonl), parses to its expected
  action and is admitted token by token by the dialect's decoding grammar over the real Qwen
  vocabulary (the tiny checkpoint's tokenizer).
- The prompt the model sees, with the project's additions off (``Fidelity.official()``), is
  what the cookbook's own code builds (tests/oracle_qwen25vl.py: qwen-agent 0.0.15's
  NousFnCallPrompt and the cookbook's tool file) through the same chat template: desktop and
  phone, 0 and 2 earlier steps; and the saved prompt of mobile_agent.ipynb cell 9 (printed by
  Qwen2.5-VL-7B-Instruct's own processor) byte for byte.
- With the default additions on, the prompt differs by exactly the listed text.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import oracle_qwen25vl as oracle
import pytest
from PIL import Image

from pixelpilot.agent.actions import (
    ACTION_ADAPTER,
    DESKTOP_KINDS,
    MOBILE_KINDS,
    Click,
    OpenApp,
    Point,
    Tap,
    TypeText,
)
from pixelpilot.agent.dialects import get_dialect
from pixelpilot.agent.dialects.base import StepContext, Turn
from pixelpilot.agent.dialects.check import check_dialect
from pixelpilot.agent.geometry import HUB_PIXELS, ScreenGeometry, to_screen
from pixelpilot.vlm.base import Sampling
from pixelpilot.vlm.constrained import STOP_TOKENS, GrammarConstraint
from pixelpilot.vlm.inputs import chat_text
from pixelpilot.vlm.tiny import QWEN_VOCAB_SIZE

FAMILY = "qwen25vl"
CORPUS = oracle.DATA / "qwen25vl.jsonl"
RECORDS = [
    json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()
]
KINDS = {"desktop": DESKTOP_KINDS, "mobile": MOBILE_KINDS}

PEER = Path(
    os.environ.get("PIXELPILOT_PEER_CORPUS")
    or Path(__file__).resolve().parents[2] / "shared" / "reference" / "peer_outputs.jsonl"
)
COOKBOOK_OUTPUTS = {
    # id in the peer corpus -> the tap it means (resized pixels, as written)
    "qwen25vl-cookbook-mobile-01": (935, 406),
    "qwen25vl-cookbook-mobile-02": (639, 1095),
    "qwen25vl-cookbook-mobile-03": (645, 1093),
}
"""The only Qwen2.5-VL GUI outputs the Qwen team published (mobile_agent.ipynb saved outputs,
f0af299 cells 9 and 13, d08310c cell 9); the peer corpus's other qwen25vl records are a fork's
run (computer_use) or other models (GUI-Owl)."""


def R(x: float, y: float) -> Point:
    return Point(x=x, y=y, space="resized_px")


def context(device: str, width: int, height: int) -> StepContext:
    return StepContext(
        device, KINDS[device], ScreenGeometry(width, height), HUB_PIXELS.resize(width, height)
    )


def dialect(official: bool = False) -> Any:
    from pixelpilot.agent.dialects import Fidelity

    fidelity = Fidelity.official() if official else Fidelity()
    return get_dialect(FAMILY, fidelity=fidelity)  # type: ignore[call-arg]


def peer_records() -> list[dict[str, Any]]:
    """The cookbook's saved outputs as corpus records (skipped without the peer corpus)."""
    if not PEER.is_file():
        pytest.skip(f"peer corpus not found at {PEER}; set PIXELPILOT_PEER_CORPUS to its path")
    by_id = {
        r["id"]: r
        for r in (json.loads(s) for s in PEER.read_text(encoding="utf-8").splitlines() if s)
    }
    out = []
    for rid, (x, y) in COOKBOOK_OUTPUTS.items():
        r = by_id[rid]
        assert r["source"].startswith("QwenLM/Qwen2.5-VL:cookbooks/mobile_agent.ipynb")
        out.append(
            {
                "id": rid,
                "device": r["device"],
                "screen": r["screen"],
                "resized": r["resized"],
                "raw": r["raw"],
                "expected": {"kind": "tap", "point": {"x": x, "y": y, "space": "resized_px"}},
                "screen_points": r["expected"]["screen_points"],
                "notes": r["source"],
            }
        )
    return out


@pytest.fixture(scope="module")
def processor(tiny_qwen: Path) -> Any:
    """The tiny checkpoint's processor: the hub Qwen2-VL chat template and the Qwen vocabulary."""
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_qwen)


# -- the corpus and the oracle's sources ----------------------------------------------------------
def test_corpus_records_name_their_source() -> None:
    ids = [r["id"] for r in RECORDS]
    assert len(ids) == len(set(ids))
    for r in RECORDS:
        assert r["family"] == FAMILY and r["source"] and r["source_kind"] and r["notes"], r["id"]
        assert r["device"] in ("desktop", "mobile"), r["id"]
        ACTION_ADAPTER.validate_python(r["expected"])  # a well-formed action


def test_corpus_covers_every_action_of_both_tools() -> None:
    """One record (at least) per action of each cookbook tool, as its definition lists them."""
    tools = oracle.cookbook_tools()
    for device, cls in (("desktop", tools.ComputerUse), ("mobile", tools.MobileUse)):
        actions = cls.parameters["properties"]["action"]["enum"]
        written = {
            json.loads(r["raw"].split("<tool_call>\n", 1)[1].split("\n</tool_call>", 1)[0])[
                "arguments"
            ]["action"]
            for r in RECORDS
            if r["device"] == device
        }
        assert set(actions) <= written, set(actions) - written


def test_the_cookbook_tool_file_is_verbatim() -> None:
    """tests/data/official/qwen25vl_agent_function_call.py is the cookbook's file, byte for byte
    (its git blob id is the one at QwenLM/Qwen2.5-VL f0af299)."""
    assert oracle.blob_id(oracle.TOOL_FILE.read_bytes()) == oracle.BLOB


@pytest.mark.parametrize("cell", [9, 13])
def test_the_oracle_reproduces_the_saved_cookbook_prompt(cell: int, processor: Any) -> None:
    """qwen-agent 0.0.15 + the cookbook tool + the tiny checkpoint's (Qwen2-VL hub) chat
    template give exactly the prompt mobile_agent.ipynb printed with Qwen2.5-VL-7B-Instruct's
    own processor: for this layout the two templates render the same string."""
    queries = {
        9: (
            (1092, 2408),
            "The user query:  Open the file manager app and view the au_uu_SzH3yR2.mp3 file in "
            "MUSIC Folder\nTask progress (You have done the following operation on the current "
            'device): Step 1: {"name": "mobile_use", "arguments": {"action": "open", "text": '
            '"File Manager"}}; ',
        ),
        13: (
            (728, 1288),
            "The user query:在盒马中,打开购物车，结算（到付款页面即可） (You have done the "
            "following operation on the current device):",
        ),
    }
    resized, query = queries[cell]
    messages = oracle.messages("mobile", resized, query)
    got = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    want = (oracle.DATA / f"qwen25vl_mobile_agent_cell{cell}.txt").read_text(encoding="utf-8")
    assert got == want


# -- output forms ---------------------------------------------------------------------------------
def record_ctx(record: dict[str, Any]) -> StepContext:
    ctx = context(record["device"], *record["screen"])
    if "resized" in record:
        assert tuple(record["resized"]) == ctx.resized
    return ctx


@pytest.mark.parametrize("record", RECORDS, ids=[r["id"] for r in RECORDS])
def test_official_output_parses_to_its_action(record: dict[str, Any]) -> None:
    for official in (True, False):
        action = dialect(official).parse(record["raw"], record_ctx(record))
        assert action == ACTION_ADAPTER.validate_python(record["expected"]), record["notes"]


def test_cookbook_outputs_parse_and_land_where_the_model_pointed() -> None:
    for record in peer_records():
        ctx = record_ctx(record)
        action = dialect(official=True).parse(record["raw"], ctx)
        assert action == ACTION_ADAPTER.validate_python(record["expected"]), record["id"]
        (gx, gy), (wx, wy) = (
            to_screen(action.point, ctx.geometry, ctx.resized),
            record["screen_points"][0],
        )
        assert abs(gx - wx) <= 1 and abs(gy - wy) <= 1, record["id"]


def admit(processor: Any, grammar: str | None, raw: str) -> None:
    """``raw`` is admitted token by token and is a complete answer; a trailing end token (kept
    when decoding with special tokens) must be allowed where the answer ends."""
    assert grammar is not None
    tok = processor.tokenizer
    stop = None
    for s in STOP_TOKENS:
        if raw.endswith(s):
            raw, stop = raw[: -len(s)], s
    c = GrammarConstraint(grammar, tok, QWEN_VOCAB_SIZE)
    ids = tok.encode(raw, add_special_tokens=False)
    for i, t in enumerate(ids):
        assert c.allows(t), f"refused at {tok.decode(ids[:i])!r} + {tok.decode([t])!r}"
        c.advance(t)
    assert c.accepting, f"{raw!r} is not a complete answer"
    if stop is not None:
        assert c.allows(tok.convert_tokens_to_ids(stop))


@pytest.mark.parametrize("official", [True, False], ids=["official", "default"])
@pytest.mark.parametrize("record", RECORDS, ids=[r["id"] for r in RECORDS])
def test_grammar_admits_official_output(
    record: dict[str, Any], official: bool, processor: Any
) -> None:
    admit(processor, dialect(official).grammar(record_ctx(record)), record["raw"])


def test_grammar_admits_the_cookbook_outputs(processor: Any) -> None:
    for record in peer_records():
        admit(processor, dialect().grammar(record_ctx(record)), record["raw"])


@pytest.mark.parametrize("official", [True, False], ids=["official", "default"])
def test_check_dialect_passes_with_the_corpus(official: bool, processor: Any) -> None:
    """The package's own conformance check, the corpus included: round trips on a desktop, a
    phone and (with the additions) a robot, each admitted by the real-vocabulary grammar;
    prompts; the adversarial set. With ``Fidelity.official()`` the family offers nothing on a
    robot (the cookbook has no robot tool), which the check accepts. Grammar admission is
    checked once, with the additions on (a superset of the official verbs; the corpus is
    admitted in both modes by test_grammar_admits_official_output)."""
    tokenizer = None if official else processor.tokenizer
    report = check_dialect(
        dialect(official), RECORDS, tokenizer=tokenizer, vocab_size=QWEN_VOCAB_SIZE
    )
    assert report.corpus == len(RECORDS) and not report.problems
    assert report.round_trips >= (40 if official else 60)
    assert report.admitted == (0 if official else report.round_trips)


# -- the offered actions ---------------------------------------------------------------------------
@pytest.mark.parametrize("device", ["desktop", "mobile"])
def test_official_mode_offers_exactly_the_cookbook_actions(device: str) -> None:
    """All the tool's actions, in its enum order (mobile ``key`` included): the model sees the
    tool as the cookbook defines it."""
    tools = oracle.cookbook_tools()
    cls = tools.ComputerUse if device == "desktop" else tools.MobileUse
    want = cls.parameters["properties"]["action"]["enum"]
    ctx = context(device, *SCREEN[device])
    assert dialect(official=True).offered(ctx) == want
    assert dialect().offered(ctx) == [*want, "ask_user"]


# -- golden prompts ---------------------------------------------------------------------------------
TASK = {
    "desktop": "Search the weather for the New York city.",
    "mobile": "Open the file manager app and view the au_uu_SzH3yR2.mp3 file in MUSIC Folder",
}
SCREEN = {"desktop": (1920, 1080), "mobile": (1080, 2400)}
EARLIER = Image.new("RGB", (64, 48), "gray")
"""The earlier steps' screenshots: the cookbook never shows them again."""
HISTORY: dict[str, list[tuple[dict[str, Any], Any]]] = {
    # (the call as the model wrote it, the action it means)
    "desktop": [
        ({"name": "computer_use", "arguments": {"action": "left_click", "coordinate": [884, 920]}},
         Click(point=R(884, 920))),
        ({"name": "computer_use", "arguments": {"action": "type", "text": "weather New York"}},
         TypeText(text="weather New York")),
    ],
    "mobile": [
        ({"name": "mobile_use", "arguments": {"action": "open", "text": "File Manager"}},
         OpenApp(app="File Manager")),
        ({"name": "mobile_use", "arguments": {"action": "click", "coordinate": [935, 406]}},
         Tap(point=R(935, 406))),
    ],
}  # fmt: skip
CASES = [(d, n) for d in ("desktop", "mobile") for n in (0, 2)]


def raw_call(call: dict[str, Any]) -> str:
    return f"<tool_call>\n{json.dumps(call, ensure_ascii=False)}\n</tool_call>"


def turns(device: str, steps: int) -> list[Turn]:
    return [Turn(raw_call(c), a, EARLIER) for c, a in HISTORY[device][:steps]]


def dialect_prompt(
    device: str,
    history: list[Turn],
    official: bool,
    feedback: str | None = None,
    task: str | None = None,
) -> Any:
    screenshot = Image.new("RGB", SCREEN[device], "white")
    prompt = dialect(official).build_prompt(
        task or TASK[device], history, screenshot, context(device, *SCREEN[device]),
        feedback=feedback,
    )  # fmt: skip
    images = [p["image"] for m in prompt.messages for p in m.content if p["type"] == "image"]
    assert len(images) == 1 and images[0] is screenshot  # never an earlier screenshot
    return prompt


def render_prompt(processor: Any, prompt: Any) -> str:
    """A dialect's Prompt rendered as the local backend renders it (images as placeholders)."""
    return chat_text(processor, prompt)


def official_rendering(processor: Any, device: str, steps: int) -> str:
    w, h = SCREEN[device]
    calls = [c for c, _ in HISTORY[device][:steps]]
    messages = oracle.agent_messages(device, HUB_PIXELS.resize(w, h), TASK[device], calls)
    return str(processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))


@pytest.mark.parametrize(("device", "steps"), CASES)
def test_prompt_is_the_official_rendering(device: str, steps: int, processor: Any) -> None:
    got = render_prompt(processor, dialect_prompt(device, turns(device, steps), official=True))
    assert got == official_rendering(processor, device, steps)


def test_prompt_is_the_saved_cookbook_prompt(processor: Any) -> None:
    """mobile_agent.ipynb cell 9, end to end: its task, its one earlier step, a 1080x2400 phone;
    the dialect's prompt is the string Qwen2.5-VL-7B-Instruct's processor printed there."""
    prompt = dialect_prompt("mobile", turns("mobile", 1), official=True, task=TASK["mobile"])
    want = (oracle.DATA / "qwen25vl_mobile_agent_cell9.txt").read_text(encoding="utf-8")
    assert render_prompt(processor, prompt) == want


def test_history_shows_the_calls_as_written(processor: Any) -> None:
    """An earlier answer with a thought before its call is shown as its call only, re-serialized
    as qwen-agent writes calls (json.dumps, ensure_ascii=False)."""
    call, action = HISTORY["mobile"][0]
    thought = Turn('I will open it.\n<tool_call>\n{"name":"mobile_use","arguments":{"action":'
                   '"open","text":"File Manager"}}\n</tool_call>', action, EARLIER)  # fmt: skip
    got = render_prompt(processor, dialect_prompt("mobile", [thought], official=True))
    assert f"Step 1: {json.dumps(call)}; <|vision_start|>" in got
    assert "I will open it." not in got


ASK_USER = (
    '{"type": "function", "function": {"name_for_human": "ask_user", "name": "ask_user", '
    '"description": "Stop and ask the user a question.", "parameters": {"properties": '
    '{"question": {"description": "The question to ask the user.", "type": "string"}}, '
    '"required": ["question"], "type": "object"}, "args_format": "Format the arguments as a '
    'JSON object."}}'
)
"""The one addition the default prompt makes on a desktop or phone: an ``ask_user`` tool the
cookbook lacks, written as qwen-agent 0.0.15 writes a tool (a line of its own in <tools>)."""


@pytest.mark.parametrize("device", ["desktop", "mobile"])
def test_default_additions_add_exactly_the_listed_text(device: str, processor: Any) -> None:
    official = render_prompt(processor, dialect_prompt(device, turns(device, 2), official=True))
    default = render_prompt(processor, dialect_prompt(device, turns(device, 2), official=False))
    anchor = "}}\n</tools>"
    assert official.count(anchor) == 1
    assert default == official.replace(anchor, "}}\n" + ASK_USER + "\n</tools>")


def _inserted(base: str, longer: str) -> tuple[str, str]:
    """The one chunk ``longer`` inserts into ``base``, and the text of ``base`` right after it."""
    i = 0
    while i < len(base) and base[i] == longer[i]:
        i += 1
    j = 0
    while j < len(base) - i and base[-1 - j] == longer[-1 - j]:
        j += 1
    return longer[i : len(longer) - j], base[i:]


@pytest.mark.parametrize("device", ["desktop", "mobile"])
def test_retry_feedback_is_an_addition(device: str, processor: Any) -> None:
    """The reason a rejected answer was rejected is shown on the re-ask only with additions on:
    after the history text, before the screenshot (which stays last)."""
    reason = "unknown action 'tap'; use one of: click, long_press"
    for official in (True, False):
        plain = render_prompt(processor, dialect_prompt(device, turns(device, 2), official))
        asked = render_prompt(processor, dialect_prompt(device, turns(device, 2), official, reason))
        if official:
            assert asked == plain
            continue
        chunk, after = _inserted(plain, asked)
        assert reason in chunk
        assert after.startswith("<|vision_start|>")


@pytest.mark.parametrize("device", ["desktop", "mobile"])
def test_notes_are_an_addition(device: str, processor: Any) -> None:
    """A note on an earlier step (a device's remark, the user's answer) follows that step's
    entry in the history text, only with additions on."""
    note = "the user answered: use the work account"
    history = turns(device, 2)
    noted = [history[0], Turn(history[1].raw, history[1].action, history[1].image, note)]
    for official in (True, False):
        plain = render_prompt(processor, dialect_prompt(device, history, official))
        with_note = render_prompt(processor, dialect_prompt(device, noted, official))
        if official:
            assert with_note == plain
            continue
        chunk, after = _inserted(plain, with_note)
        assert chunk == f"Note: {note}; "
        entry = f"Step 2: {json.dumps(HISTORY[device][1][0])}; "
        assert plain[: len(plain) - len(after)].endswith(entry)


def test_sampling_is_the_checkpoints() -> None:
    """The cookbook passes only ``max_new_tokens=2048`` (``model.generate(**inputs,
    max_new_tokens=2048)``; the API cell passes nothing), so the checkpoint's generation config
    decides: Qwen2.5-VL-Instruct's samples at temperature 1e-06 (greedy in effect) with
    repetition_penalty 1.05."""
    assert dialect().sampling == Sampling(
        temperature=1e-06, repetition_penalty=1.05, max_new_tokens=2048
    )
    assert dialect(official=True).sampling == dialect().sampling
