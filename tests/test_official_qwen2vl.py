"""qwen2vl against Qwen-Agent itself: the exact text the model sees, golden.

The oracle is qwen-agent 0.0.15 (pinned in the test extra; its ``QwenFnCallPrompt`` output is
byte-identical in 0.0.10 to 0.0.34): the same task, screenshots, earlier answers and results
go through Qwen-Agent's own code -- ``postprocess_fncall_messages`` reads each earlier answer,
the function results carry the screenshot taken after each call and the step's note,
``preprocess_fncall_messages`` lays the conversation out with the tools of the step -- and
both message lists through the tiny checkpoint's chat template (the hub Qwen2-VL template,
byte for byte), each image as its vision placeholder. Desktop and phone, 0 and 2 earlier
steps. With ``Fidelity.official()`` the strings must be identical; a second test pins what the
default additions add (the ``ask_user`` tool, the retry feedback), and nothing else.

The corpus of official output forms (tests/data/official/qwen2vl.jsonl): each record is text
Qwen-Agent's own code writes -- read by its chat pipeline (stop words, then
``postprocess_fncall_messages``) and written back by ``preprocess_fncall_messages`` it comes
out the same, up to the stop word the trained turn goes on with -- and each parses to its
expected action and is admitted token by token by the decoding grammar over the real Qwen
vocabulary, with the additions on and off; ``check_dialect`` passes with it.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from pixelpilot.agent.actions import (
    ACTION_ADAPTER,
    DESKTOP_KINDS,
    MOBILE_KINDS,
    ROBOT_KINDS,
    tool_specs,
)
from pixelpilot.agent.dialects import Fidelity, Qwen2VLDialect, StepContext, Turn
from pixelpilot.agent.dialects.check import check_dialect
from pixelpilot.agent.dialects.syntax_fncall import split_answer
from pixelpilot.agent.geometry import HUB_PIXELS, ScreenGeometry
from pixelpilot.vlm.base import Prompt
from pixelpilot.vlm.constrained import STOP_TOKENS, GrammarConstraint
from pixelpilot.vlm.local import chat_text
from pixelpilot.vlm.tiny import QWEN_VOCAB_SIZE

qa_prompt = pytest.importorskip(
    "qwen_agent.llm.fncall_prompts.qwen_fncall_prompt",
    reason="the oracle is qwen-agent: pip install -e '.[test]'",
)
qa_schema = pytest.importorskip("qwen_agent.llm.schema")
qa_utils = pytest.importorskip("qwen_agent.utils.utils")
qa_llm = pytest.importorskip("qwen_agent.llm.base")

SCREENS = {"desktop": (1280, 800), "mobile": (1080, 2400)}
KINDS = {"desktop": DESKTOP_KINDS, "mobile": MOBILE_KINDS, "robot": ROBOT_KINDS}
TASK = "Open the settings and turn on Wi-Fi."
ANSWERS = {
    "desktop": [
        'I will open the settings.\n✿FUNCTION✿: click\n✿ARGS✿: {"point": [912, 47]}',
        ': The settings are open.\n✿FUNCTION✿: type\n✿ARGS✿: {"text": "Wi-Fi"}',
    ],
    "mobile": [
        '✿FUNCTION✿: tap\n✿ARGS✿: {"point": [500, 903]}',
        ': \n✿FUNCTION✿: swipe\n✿ARGS✿: {"start": [500, 800], "end": [500, 200]}',
    ],
}
NOTES = ["", "the screen did not change"]


@pytest.fixture(scope="module")
def processor(tiny_qwen: Path) -> Any:
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(str(tiny_qwen))


def _ctx(device: str) -> StepContext:
    w, h = SCREENS[device]
    return StepContext(device, KINDS[device], ScreenGeometry(w, h), HUB_PIXELS.resize(w, h))


def _shots(device: str) -> list[Image.Image]:
    size = SCREENS[device]
    return [Image.new("RGB", size, c) for c in ("white", "red", "blue")]


def _oracle(
    device: str, steps: int, kinds: frozenset[str], feedback: str = "", task: str = TASK
) -> list[dict]:
    """What Qwen-Agent makes of the same step, as HF chat messages."""
    M, C = qa_schema.Message, qa_schema.ContentItem
    shots = [f"file:///screens/{i}.png" for i in range(3)]
    messages = [
        M(role="system", content=[C(text=qa_schema.DEFAULT_SYSTEM_MESSAGE)]),
        M(role="user", content=[C(text=task), C(image=shots[0])]),
    ]
    for i, raw in enumerate(ANSWERS[device][:steps]):
        reply = qa_prompt.QwenFnCallPrompt.postprocess_fncall_messages(
            [M(role="assistant", content=[C(text=raw)])], parallel_function_calls=False
        )
        messages += reply
        notes = [NOTES[i]] + ([feedback] if feedback and i == steps - 1 else [])
        text = "\n".join(n for n in notes if n)
        result = [C(image=shots[i + 1])] + ([C(text=text)] if text else [])
        messages.append(M(role="function", name=reply[-1].function_call.name, content=result))
    if feedback and not steps:
        messages[1].content.append(C(text=feedback))
    functions = tool_specs(kinds, bounds=(0, 1000))
    # the language as Qwen-Agent's chat models pick it (qwen_agent/llm/base.py)
    lang = "zh" if qa_utils.has_chinese_messages(messages) else "en"
    out = qa_prompt.QwenFnCallPrompt.preprocess_fncall_messages(
        messages, functions, lang=lang, parallel_function_calls=False
    )
    return [
        {
            "role": m.role,
            "content": [
                {"type": "image"} if it.image else {"type": "text", "text": it.text}
                for it in m.content
            ],
        }
        for m in out
    ]


def _ours(
    device: str, steps: int, fidelity: Fidelity, feedback: str | None = None, task: str = TASK
) -> Prompt:
    shots = _shots(device)
    history = [
        Turn(raw=raw, image=shots[i], note=NOTES[i])
        for i, raw in enumerate(ANSWERS[device][:steps])
    ]
    return Qwen2VLDialect(fidelity).build_prompt(
        task, history, shots[steps], _ctx(device), feedback
    )


def _render(processor: Any, messages: list[dict], final: bool) -> str:
    return str(
        processor.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=not final, continue_final_message=final
        )
    )


def _diff(a: str, b: str) -> str:
    return "\n".join(difflib.unified_diff(a.splitlines(), b.splitlines(), "qwen-agent", "ours"))


@pytest.mark.parametrize("steps", [0, 2])
@pytest.mark.parametrize("device", ["desktop", "mobile"])
def test_official_prompt_is_what_qwen_agent_renders(
    processor: Any, device: str, steps: int
) -> None:
    official = Fidelity.official()
    ours = _ours(device, steps, official, feedback="the point is off the screen")
    kinds = frozenset(KINDS[device] - {"ask_user"})  # ask_user is a project addition
    oracle = _oracle(device, steps, kinds)
    want = _render(processor, oracle, final=oracle[-1]["role"] == "assistant")
    got = chat_text(processor, ours)
    assert got == want, _diff(want, got)
    assert ours.continue_final == (steps > 0) and len(ours.images) == steps + 1
    assert ours.stop == ("✿RESULT✿", "✿RETURN✿")
    if steps:  # the model continues right after "✿RETURN✿" (Qwen-Agent cut the ": ")
        assert got.endswith("\n✿RETURN✿") and got.count("<|im_start|>") == 3


@pytest.mark.parametrize("device", ["desktop", "mobile"])
def test_the_default_additions_are_the_ask_user_tool_and_the_feedback(
    processor: Any, device: str
) -> None:
    feedback = "Your last answer was rejected: x\nAnswer again with exactly one valid call."
    for steps in (0, 2):
        ours = chat_text(processor, _ours(device, steps, Fidelity(), feedback="x"))
        oracle = _oracle(device, steps, frozenset(KINDS[device]), feedback=feedback)
        want = _render(processor, oracle, final=steps > 0)
        assert ours == want, _diff(want, ours)
        official = chat_text(processor, _ours(device, steps, Fidelity.official(), "x"))
        added = [
            line[2:]
            for line in difflib.ndiff(official.splitlines(), ours.splitlines())
            if line.startswith("+ ")
        ]
        tool = json.dumps(tool_specs({"ask_user"}, (0, 1000))[0]["parameters"])
        assert any("ask_user: Stop and ask the user a question." in a and tool in a for a in added)
        assert any("Your last answer was rejected: x" in a for a in added)
        assert all(
            a.startswith(("### ask_user", "ask_user:", "✿FUNCTION✿: The tool to use"))
            or "Your last answer was rejected" in a
            or a in ("", "Answer again with exactly one valid call.")
            or a.endswith(("<|im_end|>", "✿RETURN✿"))
            for a in added
        ), added


@pytest.mark.parametrize("steps", [0, 2])
def test_a_chinese_task_gets_the_chinese_tool_block(processor: Any, steps: int) -> None:
    task = "打开设置，然后打开无线网络。"
    ours = _ours("mobile", steps, Fidelity.official(), task=task)
    oracle = _oracle("mobile", steps, frozenset(KINDS["mobile"] - {"ask_user"}), task=task)
    want = _render(processor, oracle, final=steps > 0)
    got = chat_text(processor, ours)
    assert got == want, _diff(want, got)
    assert "# 工具" in got and "输入参数：" in got


RAWS = [
    '✿FUNCTION✿: click\n✿ARGS✿: {"point": [1, 2]}',
    'I will click it.\n✿FUNCTION✿: click\n✿ARGS✿: {"point": [1, 2]}\n',
    ': The form is open.\n✿FUNCTION✿: type\n✿ARGS✿: {"text": "a"}',
    ": \n✿FUNCTION✿: finish\n✿ARGS✿: {}",
    '✿FUNCTION✿: click\n✿ARGS✿: {"point": [1, 2]}\n✿FUNCTION✿: type\n✿ARGS✿: {"text": "x"}',
    '✿FUNCTION✿: click\n✿ARGS✿: {"point": [1, 2]} <!-- a comment -->',
    '\n\nThought first.  \n✿FUNCTION✿: wait\n✿ARGS✿: {"seconds": 1}',
    # the Qwen2.5 docs' ✿ example (QwenLM/Qwen2.5:docs/source/framework/function_call.md@5e01d11)
    '✿FUNCTION✿: get_current_temperature\n✿ARGS✿: {"location": "San Francisco, CA, USA"}\n'
    '✿FUNCTION✿: get_temperature_date\n✿ARGS✿: {"location": "San Francisco, CA, USA", '
    '"date": "2024-10-01"}\n',
]


@pytest.mark.parametrize("raw", RAWS)
def test_answers_are_split_as_qwen_agent_splits_them(raw: str) -> None:
    """Thought, tool name and arguments text: ours equal Qwen-Agent's postprocess."""
    M, C = qa_schema.Message, qa_schema.ContentItem
    out = qa_prompt.QwenFnCallPrompt.postprocess_fncall_messages(
        [M(role="assistant", content=[C(text=raw)])], parallel_function_calls=False
    )
    call = out[-1].function_call
    thought = out[0].content[0].text if len(out) > 1 else ""
    assert split_answer(raw) == (thought, call.name, call.arguments)


# -- the corpus of official output forms ---------------------------------------------------------
CORPUS = Path(__file__).parent / "data" / "official" / "qwen2vl.jsonl"
RECORDS = [json.loads(s) for s in CORPUS.read_text(encoding="utf-8").splitlines() if s.strip()]
SOURCE_KINDS = {"qwen_agent_render", "qwen_agent_continuation", "stop_word"}
EARLIER = ("click", {"point": [912, 47]})
"""The call before a continued turn (its result is ``ok``); only its text precedes the answer."""


def _record_ctx(record: dict[str, Any]) -> StepContext:
    device, (w, h) = record["device"], record["screen"]
    return StepContext(device, KINDS[device], ScreenGeometry(w, h), HUB_PIXELS.resize(w, h))


def _qwen_agent_reads(raw: str, parallel: bool) -> list[Any]:
    """The reply as Qwen-Agent's chat pipeline reads it: cut at its stop words
    (``_postprocess_stop_words``), then split into thought and function calls."""
    M, C = qa_schema.Message, qa_schema.ContentItem
    reply = qa_llm._postprocess_stop_words(
        [M(role="assistant", content=[C(text=raw)])], stop=qa_prompt.FN_STOP_WORDS
    )
    return list(
        qa_prompt.QwenFnCallPrompt.postprocess_fncall_messages(
            reply, parallel_function_calls=parallel
        )
    )


def _qwen_agent_writes(reply: list[Any], continuation: bool, result: bool = False) -> str:
    """The assistant text Qwen-Agent renders for ``reply`` in the next request (after an
    earlier call and its result for a continued turn: the text after its ``✿RETURN✿``)."""
    M, C, F = qa_schema.Message, qa_schema.ContentItem, qa_schema.FunctionCall
    messages = [
        M(role="system", content=[C(text=qa_schema.DEFAULT_SYSTEM_MESSAGE)]),
        M(role="user", content=[C(text=TASK)]),
    ]
    if continuation:
        call = F(name=EARLIER[0], arguments=json.dumps(EARLIER[1]))
        messages += [
            M(role="assistant", content=[], function_call=call),
            M(role="function", name=EARLIER[0], content=[C(text="ok")]),
        ]
    messages += reply
    if result:
        messages.append(M(role="function", name=reply[-1].function_call.name, content=[]))
    out = qa_prompt.QwenFnCallPrompt.preprocess_fncall_messages(
        messages, tool_specs(DESKTOP_KINDS, (0, 1000)), lang="en", parallel_function_calls=False
    )
    text = "".join(item.text for item in out[-1].content)
    if continuation:
        head, _, text = text.partition(qa_prompt.FN_EXIT)
        assert head.startswith(qa_prompt.FN_NAME), head
    return text


def test_corpus_records_name_their_source() -> None:
    ids = [r["id"] for r in RECORDS]
    assert len(ids) == len(set(ids)) and len(ids) >= 40
    for r in RECORDS:
        assert r["family"] == "qwen2vl" and r["notes"], r["id"]
        assert r["source"].startswith(("QwenLM/Qwen-Agent:", "QwenLM/Qwen2.5:")), r["id"]
        assert r["source"].split("@")[1].isalnum() and len(r["source"].split("@")[1]) == 40
        assert r["source_kind"] in SOURCE_KINDS, r["id"]
        assert r["device"] in KINDS, r["id"]
        assert bool(r.get("continuation")) == r["raw"].startswith(":"), r["id"]
        ACTION_ADAPTER.validate_python(r["expected"])


@pytest.mark.parametrize("device", ["desktop", "mobile", "robot"])
def test_corpus_calls_every_tool(device: str) -> None:
    """Every tool the official prompt offers on the device is called by a record."""
    ctx = _record_ctx({"device": device, "screen": (1280, 800)})
    called = {split_answer(r["raw"])[1] for r in RECORDS if r["device"] == device}  # type: ignore[index]
    assert set(Qwen2VLDialect(Fidelity.official()).offered(ctx)) <= called


@pytest.mark.parametrize("record", RECORDS, ids=[r["id"] for r in RECORDS])
def test_corpus_record_is_what_qwen_agent_writes(record: dict[str, Any]) -> None:
    """Read by Qwen-Agent's pipeline and rendered back by its prompt code, the record comes
    out unchanged: the form is Qwen-Agent's own (a call, a thought before it, a continued
    turn's ``: ``, parallel calls), up to the ``\n``/``\n✿RESULT✿`` that Qwen-Agent's stop
    words cut and that its rendering puts after every call."""
    raw, continuation = record["raw"], bool(record.get("continuation"))
    reply = _qwen_agent_reads(raw, parallel=True)
    written = _qwen_agent_writes(reply, continuation)
    assert raw.startswith(written)
    rest = raw[len(written) :]
    if record["source_kind"] == "stop_word":
        assert rest in ("\n", "\n" + qa_prompt.FN_RESULT), rest
        with_result = _qwen_agent_writes(reply, continuation, result=True)
        assert with_result.startswith(written + "\n" + qa_prompt.FN_RESULT + ": ")
    else:
        assert rest == ""


@pytest.mark.parametrize("record", RECORDS, ids=[r["id"] for r in RECORDS])
def test_corpus_record_parses_to_its_action(record: dict[str, Any]) -> None:
    """The dialect reads the call Qwen-Agent reads (its first: parallel calls are off) and
    makes the expected action of it, with the additions on and off."""
    raw = record["raw"]
    reply = _qwen_agent_reads(raw, parallel=False)
    call = reply[-1].function_call
    thought = reply[0].content[0].text if len(reply) > 1 else ""
    assert split_answer(raw) == (thought, call.name, call.arguments)
    want = ACTION_ADAPTER.validate_python(record["expected"])
    for fidelity in (Fidelity.official(), Fidelity()):
        assert Qwen2VLDialect(fidelity).parse(raw, _record_ctx(record)) == want, record["notes"]


def _admit(tokenizer: Any, grammar: str, raw: str) -> None:
    """``raw`` is admitted token by token by the decoding constraint and is a complete
    answer; a trailing end token must be allowed where the answer ends."""
    stop = None
    for s in STOP_TOKENS:
        if raw.endswith(s):
            raw, stop = raw[: -len(s)], s
    c = GrammarConstraint(grammar, tokenizer, QWEN_VOCAB_SIZE)
    ids = tokenizer.encode(raw, add_special_tokens=False)
    for i, t in enumerate(ids):
        assert c.allows(t), f"refused at {tokenizer.decode(ids[:i])!r} + {tokenizer.decode([t])!r}"
        c.advance(t)
    assert c.accepting, f"{raw!r} is not a complete answer"
    if stop is not None:
        assert c.allows(tokenizer.convert_tokens_to_ids(stop))


@pytest.mark.parametrize("official", [True, False], ids=["official", "default"])
def test_grammar_admits_the_corpus(official: bool, processor: Any) -> None:
    """Token by token over the real Qwen vocabulary, each record against its step's grammar
    (a continued turn's for the records that continue one)."""
    dialect = Qwen2VLDialect(Fidelity.official() if official else Fidelity())
    for record in RECORDS:
        ctx = _record_ctx(record)
        grammar = dialect.grammar(ctx, continuation=bool(record.get("continuation")))
        _admit(processor.tokenizer, grammar, record["raw"])


def test_a_thought_ends_at_the_marker_or_at_its_budget(processor: Any) -> None:
    """A thought may end on any line with ``✿FUNCTION✿: `` (the marker's first byte starts
    ``—``, ``“``, ``✓`` too: the thought must not swallow it); at its token budget the marker
    is forced."""
    tok = processor.tokenizer
    ctx = _record_ctx({"device": "desktop", "screen": (1280, 800)})
    marker = tok.encode("✿", add_special_tokens=False)
    word = tok.encode(" word", add_special_tokens=False)
    assert len(marker) == len(word) == 1
    for lines in ("Go.\n", "“Wi-Fi” — off.\n✓ ok\n", "\n", "a line " * 100 + "\n"):
        c = GrammarConstraint(Qwen2VLDialect().grammar(ctx), tok, QWEN_VOCAB_SIZE)
        for t in tok.encode(lines, add_special_tokens=False):
            c.advance(t)
        assert c.allows(marker[0]), lines
    c = GrammarConstraint(Qwen2VLDialect(thought_tokens=4).grammar(ctx), tok, QWEN_VOCAB_SIZE)
    for _ in range(4):
        assert c.allows(word[0])
        c.advance(word[0])
    assert not c.allows(word[0]) and c.allows(marker[0])


@pytest.mark.parametrize("official", [True, False], ids=["official", "default"])
def test_check_dialect_passes_with_the_corpus(official: bool, processor: Any) -> None:
    """The package's conformance check with the corpus: round trips on a desktop, a phone and
    a robot, prompts, the adversarial set; grammar admission token by token once, with the
    additions on (a superset of the official tools; the corpus is admitted in both modes by
    test_grammar_admits_the_corpus)."""
    dialect = Qwen2VLDialect(Fidelity.official() if official else Fidelity())
    tokenizer = None if official else processor.tokenizer
    report = check_dialect(dialect, RECORDS, tokenizer=tokenizer, vocab_size=QWEN_VOCAB_SIZE)
    assert report.corpus == len(RECORDS) and not report.problems
    assert report.admitted == (0 if official else report.round_trips) and report.round_trips


TOLERATED = [
    # blanks Qwen-Agent's reader strips, which its writer never puts there: parsed alike, not
    # corpus records (the grammar keeps decoding to the written form)
    ('✿FUNCTION✿:click\n✿ARGS✿:{"point": [1, 2]}', "desktop"),
    ('✿FUNCTION✿:  click \n✿ARGS✿:   {"point": [1, 2]}  \n\n', "desktop"),
    ('\n\nI will tap it.  \n\n✿FUNCTION✿: tap\n✿ARGS✿: {"point": [1, 2]}', "mobile"),
    (":Done.\n✿FUNCTION✿: finish\n✿ARGS✿: {}", "mobile"),
    ('✿FUNCTION✿: click\n✿ARGS✿: {"point":[1,2]}\n✿RESULT✿: ok\n✿RETURN✿: ', "desktop"),
    # cut by the token budget in a second call (never run): the first call is whole
    (
        '✿FUNCTION✿: click\n✿ARGS✿: {"point": [1, 2]}\n✿FUNCTION✿: type\n✿ARGS✿: {"text": "ab',
        "desktop",
    ),
    ('✿FUNCTION✿: click\n✿ARGS✿: {"point": [1, 2]}\n✿FUN', "desktop"),
]


@pytest.mark.parametrize(("raw", "device"), TOLERATED)
def test_forms_qwen_agent_tolerates_parse_alike(raw: str, device: str) -> None:
    reply = _qwen_agent_reads(raw, parallel=False)
    call = reply[-1].function_call
    assert split_answer(raw)[1:] == (call.name, call.arguments)  # type: ignore[index]
    ctx = _record_ctx({"device": device, "screen": (1280, 800)})
    dialect = Qwen2VLDialect()
    written = f"✿FUNCTION✿: {call.name}\n✿ARGS✿: {json.dumps(json.loads(call.arguments))}"
    assert dialect.parse(raw, ctx) == dialect.parse(written, ctx)
