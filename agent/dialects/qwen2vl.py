"""Qwen2-VL-Instruct: Qwen-Agent's "qwen" function calling (``✿FUNCTION✿``/``✿ARGS✿``), norm1000.

Qwen2-VL's README sends function calling to Qwen-Agent, whose default for Qwen2-VL (0.0.8 to
0.0.15, the releases of Qwen2-VL's time) is ``QwenFnCallPrompt``. The layout reproduces it
(``qwen_agent/llm/fncall_prompts/qwen_fncall_prompt.py`` and ``qwen_agent/llm/schema.py``,
qwen-agent 0.0.15 = QwenLM/Qwen-Agent@c0349d064a1924866788ab9aa04a4e4ecea8d041):

- system: Qwen-Agent's default system message ``You are a helpful assistant.``, then
  ``\\n\\n`` and the tool block (``# Tools`` ... one ``### name`` description per tool ... the
  ``✿FUNCTION✿``/``✿ARGS✿``/``✿RESULT✿``/``✿RETURN✿`` format lines, non-parallel; in Chinese
  when the task holds a CJK ideograph, as Qwen-Agent decides);
- user: the task, then the first screenshot;
- from the second step on, ONE assistant turn that the model continues: each earlier call
  (``✿FUNCTION✿: name\\n✿ARGS✿: {...}``, after its thought) followed by its result
  ``\\n✿RESULT✿: `` + the screenshot taken after it (a tool returns the new screen) + the
  step's note + ``\\n✿RETURN✿: ``; the last ``: `` is cut, so the model continues after
  ``✿RETURN✿``, writing ``: `` first. The current screenshot is thus the last call's result.

Qwen2-VL has no official GUI tool set: the tools are pixelpilot's actions, one per kind, their
schemas generated from the Action models (``table.action_verbs``). ``ask_user`` is a project
addition (it asks a person, not the device). Sampling is the hub generation_config of
Qwen2-VL-7B-Instruct (after its PR #22): top_k 1, top_p 0.001, temperature 0.01, repetition
penalty 1.0 -- greedy in effect. A grounding answer ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>``
(or a point, or the same text with the special tokens stripped by the decoder) is read as a
click/tap at the box centre.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, ClassVar

from PIL import Image

from pixelpilot.agent.actions import Click, Point, Space, Tap
from pixelpilot.agent.dialects._text import snippet
from pixelpilot.agent.dialects.base import StepContext, Turn
from pixelpilot.agent.dialects.engine import TableDialect
from pixelpilot.agent.dialects.layout import feedback_text, screenshots, text
from pixelpilot.agent.dialects.layout import image as picture
from pixelpilot.agent.dialects.syntax_fncall import (
    FN_ARGS,
    FN_EXIT,
    FN_NAME,
    FN_RESULT,
    STOP_WORDS,
    FnCallSyntax,
    parameters,
    split_answer,
)
from pixelpilot.agent.dialects.table import Verb, action_verbs
from pixelpilot.agent.errors import ParseError
from pixelpilot.vlm.base import Message, Prompt, Sampling

__all__ = ["DEFAULT_SYSTEM", "Qwen2VLDialect", "tool_block"]

DEFAULT_SYSTEM = "You are a helpful assistant."
"""``DEFAULT_SYSTEM_MESSAGE`` of qwen_agent/llm/schema.py (qwen-agent <= 0.0.15)."""
# qwen_agent/llm/fncall_prompts/qwen_fncall_prompt.py: FN_CALL_TEMPLATE['en'|'zh'] (non-parallel),
# get_function_description (name_for_human = name_for_model = name). Qwen-Agent writes the
# Chinese block when a system or user message holds a CJK ideograph (has_chinese_messages,
# qwen_agent/utils/utils.py: [\u4e00-\u9fff]); here that is the task.
_TOOL_DESC = {
    "en": "### {name}\n\n{name}: {description} Parameters: {parameters} {args_format}",
    "zh": "### {name}\n\n{name}: {description} 输入参数：{parameters} {args_format}",
}
_ARGS_FORMAT = {"en": "Format the arguments as a JSON object.", "zh": "此工具的输入应为JSON对象。"}
_INFO = {
    "en": "# Tools\n\n## You have access to the following tools:\n\n{tool_descs}",
    "zh": "# 工具\n\n## 你拥有如下工具：\n\n{tool_descs}",
}
_FMT = {
    "en": (
        "## When you need to call a tool, please insert the following command in your reply, "
        "which can be called zero or multiple times according to your needs:\n\n"
        f"{FN_NAME}: The tool to use, should be one of [{{tool_names}}]\n"
        f"{FN_ARGS}: The input of the tool\n"
        f"{FN_RESULT}: Tool results\n"
        f"{FN_EXIT}: Reply based on tool results. Images need to be rendered as ![](url)"
    ),
    "zh": (
        "## 你可以在回复中插入零次、一次或多次以下命令以调用工具：\n\n"
        f"{FN_NAME}: 工具名称，必须是[{{tool_names}}]之一。\n"
        f"{FN_ARGS}: 工具输入\n"
        f"{FN_RESULT}: 工具结果\n"
        f"{FN_EXIT}: 根据工具结果进行回复，需将图片用![](url)渲染出来"
    ),
}
_CJK = re.compile(r"[\u4e00-\u9fff]")

_NUM = r"(-?\d{1,12}(?:\.\d{1,12})?)"
_PAIR = rf"\(\s{{0,8}}{_NUM}\s{{0,8}},\s{{0,8}}{_NUM}\s{{0,8}}\)"
_BOX_BODY = re.compile(rf"\s{{0,8}}{_PAIR}(?:\s{{0,8}},\s{{0,8}}{_PAIR})?\s{{0,8}}")
_BARE_BOX = re.compile(
    rf"[^()\n✿{{}}]{{0,100}}?({_PAIR}(?:\s{{0,8}},\s{{0,8}}{_PAIR})?)\s{{0,8}}\.?"
)
_BOX_START, _BOX_END = "<|box_start|>", "<|box_end|>"
_REF_START, _REF_END = "<|object_ref_start|>", "<|object_ref_end|>"
_BARE_LIMIT = 300
"""A grounding answer without its special tokens is short: ``label(x1,y1),(x2,y2)``."""


def tool_block(verbs: Sequence[Verb], lang: str = "en") -> str:
    """Qwen-Agent's tool system text for ``verbs`` (points 0..1000), in ``lang`` (en, zh)."""
    descs = "\n\n".join(
        _TOOL_DESC[lang]
        .format(
            name=v.name,
            description=v.description,
            parameters=json.dumps(parameters(v, 1000), ensure_ascii=False),
            args_format=_ARGS_FORMAT[lang],
        )
        .rstrip()
        for v in verbs
    )
    names = ",".join(v.name for v in verbs)
    return _INFO[lang].format(tool_descs=descs) + "\n\n" + _FMT[lang].format(tool_names=names)


class Qwen2VLDialect(TableDialect):
    """Qwen2-VL-*-Instruct (and checkpoints sharing its chat format) through Qwen-Agent's
    ``✿FUNCTION✿``/``✿ARGS✿`` function calling."""

    name: ClassVar[str] = "qwen2vl"
    space: ClassVar[Space] = "norm1000"
    sampling: ClassVar[Sampling] = Sampling(
        temperature=0.01, top_p=0.001, top_k=1, repetition_penalty=1.0
    )
    verbs: ClassVar[tuple[Verb, ...]] = action_verbs(official=lambda kind: kind != "ask_user")
    syntax: ClassVar[FnCallSyntax] = FnCallSyntax()

    # -- prompt ------------------------------------------------------------------------------
    def build_prompt(
        self,
        task: str,
        history: Sequence[Turn],
        image: Image.Image,
        ctx: StepContext,
        feedback: str | None = None,
    ) -> Prompt:
        lang = "zh" if _CJK.search(task) else "en"
        block = tool_block(self.offered_verbs(ctx), lang)
        system = Message("system", [text(DEFAULT_SYSTEM), text("\n\n" + block)])
        shots = screenshots(history, image)
        user: list[dict[str, Any]] = [text(task)]
        if shots[0] is not None:
            user.append(picture(shots[0]))
        msgs = [system, Message("user", user)]
        extra = feedback_text(feedback) if feedback and self.fidelity.feedback else ""
        if history:
            msgs.append(Message("assistant", self._assistant(history, shots[1:], ctx, extra)))
        elif extra:
            user.append(text(extra))
        return Prompt(
            messages=msgs,
            grammar=self.grammar(ctx, continuation=bool(history)),
            json_form=self.json_form(ctx),
            sampling=self.sampling,
            continue_final=bool(history),
            stop=STOP_WORDS,
            meta={"dialect": self.name, "ctx": ctx},
        )

    def _assistant(
        self,
        history: Sequence[Turn],
        results: Sequence[Image.Image | None],
        ctx: StepContext,
        extra: str,
    ) -> list[dict[str, Any]]:
        """The earlier calls and their results as Qwen-Agent renders them into one assistant
        turn (``preprocess_fncall_messages``), ending with ``\\n✿RETURN✿``."""
        parts: list[dict[str, Any]] = []
        for i, turn in enumerate(history):
            thought, name, args = self._call_parts(turn, ctx)
            if thought:
                parts.append(text(thought))
            if args.startswith("```"):
                args = "\n" + args
            lead = "\n" if parts else ""
            parts.append(text(f"{lead}{FN_NAME}: {name}\n{FN_ARGS}: {args}"))
            parts.append(text(f"\n{FN_RESULT}: "))
            shot = results[i]
            notes = [turn.note] if turn.note else []
            if i == len(history) - 1 and extra:
                notes.append(extra)
            if shot is not None:
                parts.append(picture(shot))
            if notes:
                parts.append(text("\n".join(notes)))
            elif shot is None:
                parts.append(text(""))
            parts.append(text(f"\n{FN_EXIT}: "))
        parts[-1] = text(f"\n{FN_EXIT}")
        return parts

    def _call_parts(self, turn: Turn, ctx: StepContext) -> tuple[str, str, str]:
        """(thought, tool name, arguments text) of an earlier answer as Qwen-Agent keeps it;
        an answer without a call (a grounding box) as the call it was read as."""
        parts = split_answer(turn.raw)
        if parts is None or not parts[2]:
            if turn.action is None:
                return turn.raw.strip(), "", ""
            parts = split_answer(self.format(turn.action, ctx))
            assert parts is not None
        return parts

    # -- parse -------------------------------------------------------------------------------
    def no_call(self, text_: str, ctx: StepContext) -> Any:
        """A grounding answer is a click (tap) at its box's centre."""
        point = _grounding_point(text_)
        if point is None:
            return super().no_call(text_, ctx)
        if "click" in ctx.kinds:
            return Click(point=point)
        if "tap" in ctx.kinds:
            return Tap(point=point)
        raise ParseError(
            f"a box is not an action on this device; call one of: {', '.join(self.offered(ctx))}"
        )


def _strip_refs(s: str) -> str:
    """``s`` without ``<|object_ref_start|>...<|object_ref_end|>`` spans (linear)."""
    out, i = [], 0
    while True:
        a = s.find(_REF_START, i)
        b = s.find(_REF_END, a) if a >= 0 else -1
        if b < 0:
            out.append(s[i:])
            return "".join(out)
        out.append(s[i:a])
        i = b + len(_REF_END)


def _grounding_point(s: str) -> Point | None:
    """Centre of a grounding answer's box (or its single point), or None if there is none."""
    n = s.count(_BOX_START)
    if n > 1:
        raise ParseError(
            "one box per answer: write a single <|box_start|>(x1,y1),(x2,y2)<|box_end|>"
        )
    if n == 1:
        start = s.find(_BOX_START) + len(_BOX_START)
        end = s.find(_BOX_END, start)
        if end < 0:
            raise ParseError("the box is not closed; end it with <|box_end|>")
        body = s[start:end]
        m = _BOX_BODY.fullmatch(body) if len(body) <= 120 else None
        if m is None:
            raise ParseError(
                f"cannot read the box {snippet(body)}; write <|box_start|>(x1,y1),(x2,y2)<|box_end|>"
            )
    else:
        bare = _strip_refs(s).strip()
        found = _BARE_BOX.fullmatch(bare) if len(bare) <= _BARE_LIMIT else None
        if found is None:
            return None
        m = _BOX_BODY.fullmatch(found.group(1))
        assert m is not None
    nums = [float(v) for v in m.groups() if v is not None]
    if len(nums) == 4:
        x, y = (nums[0] + nums[2]) / 2, (nums[1] + nums[3]) / 2
    else:
        x, y = nums
    return Point(x=x, y=y, space="norm1000")
