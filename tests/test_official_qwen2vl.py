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
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from pixelpilot.agent.actions import DESKTOP_KINDS, MOBILE_KINDS, tool_specs
from pixelpilot.agent.dialects import Fidelity, Qwen2VLDialect, StepContext, Turn
from pixelpilot.agent.geometry import HUB_PIXELS, ScreenGeometry
from pixelpilot.vlm.base import Prompt
from pixelpilot.vlm.local import chat_text

qa_prompt = pytest.importorskip(
    "qwen_agent.llm.fncall_prompts.qwen_fncall_prompt",
    reason="the oracle is qwen-agent: pip install -e '.[test]'",
)
qa_schema = pytest.importorskip("qwen_agent.llm.schema")
qa_utils = pytest.importorskip("qwen_agent.utils.utils")

SCREENS = {"desktop": (1280, 800), "mobile": (1080, 2400)}
KINDS = {"desktop": DESKTOP_KINDS, "mobile": MOBILE_KINDS}
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
    from pixelpilot.agent.dialects.syntax_fncall import split_answer

    M, C = qa_schema.Message, qa_schema.ContentItem
    out = qa_prompt.QwenFnCallPrompt.postprocess_fncall_messages(
        [M(role="assistant", content=[C(text=raw)])], parallel_function_calls=False
    )
    call = out[-1].function_call
    thought = out[0].content[0].text if len(out) > 1 else ""
    assert split_answer(raw) == (thought, call.name, call.arguments)
