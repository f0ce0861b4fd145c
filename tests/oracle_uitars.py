"""The official prompts of UI-TARS v1 and UI-TARS-1.5 and their message layouts: the oracles of
the golden prompt tests (tests/test_official_uitars.py).

Prompt texts: UI-TARS-1.5's ``<point>`` templates come from the pinned ``ui-tars==0.1.4`` package
itself (``ui_tars.prompt``, byte-identical to bytedance/UI-TARS codes/ui_tars/prompt.py at main
582f3a7ea5d285ee8ed9e2e84048d1ab01453c49); the other texts are not installable and are copied here
byte for byte (one source line per row, so trailing spaces and backslashes show):

- v1: bytedance/UI-TARS ``README_v1.md`` @ 582f3a7ea5d285ee8ed9e2e84048d1ab01453c49, lines 341-400
  ("Prompt Templates"), Python raw strings ``r\"\"\"...\"\"\"``: the literal ``\\n`` next to the
  code fences and the backslashes in the computer ``type`` comment are what the README sends;
  the instruction is appended (``prompt + instruction``).
- 1.5 box-token notation: bytedance/UI-TARS ``codes/prompts.py`` @
  6b315cc0c3ae8ff3b5412a25aa3ebac1bae32f58 (``COMPUTER_USE``, ``MOBILE_USE``; the same text since
  7eca1f0e2feb92b3d12b12ed8ad703e97fdb1dfe, 2025-04-17, published with the model), filled with
  ``.format(language=..., instruction=...)``.

Layouts (messages in the HF chat format the chat template reads):

- v1: bytedance/UI-TARS ``infer/osworld.py`` on branch feat/oswd_infer @
  5adcd33261bbb0fbb1e53f798974610fa5231a60, lines 442-560 (the v1 OSWorld agent): an explicit
  system message ``You are a helpful assistant.``; one user message with the prompt (text only);
  per earlier step a user message with only its screenshot (only for the last ``history_n = 5``
  screenshots, the current one included) and an assistant message with the answer; the current
  screenshot last.
- 1.5: UI-TARS-desktop ``packages/ui-tars/sdk/src/utils.ts`` (``toVlmModelFormat``,
  ``processVlmParams``, ``convertToOpenAIMessages``) @ 11c0abe2bbb757ced16d72b4bea26a69d3edb5e0
  and ``packages/ui-tars/shared/src/constants/vlm.ts`` (``MAX_IMAGE_LENGTH = 5``), with
  bytedance/UI-TARS ``data/test_messages_single_image.json`` @ 582f3a7: no system message (the
  chat template adds its default one); the prompt as the first user message; image-only user
  messages interleaved with the assistant answers; the oldest screenshots dropped beyond 5, their
  answers kept.
- Earlier answers in both: as the model emits them, box tokens included: README_deploy.md @
  582f3a7 rewrites every assistant turn with ``add_box_token`` (the same function ships in
  ``ui_tars.action_parser``), and data/training_example.json @ 582f3a7 (v1) shows the history
  turns with their box tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ui_tars.action_parser import add_box_token
from ui_tars.prompt import COMPUTER_USE_DOUBAO, MOBILE_USE_DOUBAO

Messages = list[dict[str, Any]]
IMAGE: dict[str, Any] = {"type": "image"}
SYSTEM = "You are a helpful assistant."
HISTORY_N = 5
"""Screenshots sent, the current one included (osworld.py ``history_n``, SDK ``MAX_IMAGE_LENGTH``)."""


def text(s: str) -> dict[str, Any]:
    return {"type": "text", "text": s}


# -- prompt texts -------------------------------------------------------------------------------
V1_MOBILE = (  # README_v1.md @ 582f3a7, lines 346-367
    "You are a GUI agent. You are given a task and your action history, with screenshots. You need to perform the next action to complete the task. \n"
    "\n"
    "## Output Format\n"
    "```\\nThought: ...\n"
    "Action: ...\\n```\n"
    "\n"
    "## Action Space\n"
    "click(start_box='<|box_start|>(x1,y1)<|box_end|>')\n"
    "long_press(start_box='<|box_start|>(x1,y1)<|box_end|>', time='')\n"
    "type(content='')\n"
    "scroll(start_box='<|box_start|>(x1,y1)<|box_end|>', end_box='<|box_start|>(x3,y3)<|box_end|>')\n"
    "press_home()\n"
    "press_back()\n"
    "finished(content='') # Submit the task regardless of whether it succeeds or fails.\n"
    "\n"
    "## Note\n"
    "- Use English in `Thought` part.\n"
    "\n"
    "- Write a small plan and finally summarize your next action (with its target element) in one sentence in `Thought` part.\n"
    "\n"
    "## User Instruction\n"
)

V1_COMPUTER = (  # README_v1.md @ 582f3a7, lines 373-399
    "You are a GUI agent. You are given a task and your action history, with screenshots. You need to perform the next action to complete the task. \n"
    "\n"
    "## Output Format\n"
    "```\\nThought: ...\n"
    "Action: ...\\n```\n"
    "\n"
    "## Action Space\n"
    "\n"
    "click(start_box='<|box_start|>(x1,y1)<|box_end|>')\n"
    "left_double(start_box='<|box_start|>(x1,y1)<|box_end|>')\n"
    "right_single(start_box='<|box_start|>(x1,y1)<|box_end|>')\n"
    "drag(start_box='<|box_start|>(x1,y1)<|box_end|>', end_box='<|box_start|>(x3,y3)<|box_end|>')\n"
    "hotkey(key='')\n"
    "type(content='') #If you want to submit your input, use \\\"\\\n"
    '\\" at the end of `content`.\n'
    "scroll(start_box='<|box_start|>(x1,y1)<|box_end|>', direction='down or up or right or left')\n"
    "wait() #Sleep for 5s and take a screenshot to check for any changes.\n"
    "finished()\n"
    "call_user() # Submit the task and call the user when the task is unsolvable, or when you need the user's help.\n"
    "\n"
    "\n"
    "## Note\n"
    "- Use Chinese in `Thought` part.\n"
    "- Summarize your next action (with its target element) in one sentence in `Thought` part.\n"
    "\n"
    "## User Instruction\n"
)

COMPUTER_USE = (  # codes/prompts.py @ 6b315cc
    "You are a GUI agent. You are given a task and your action history, with screenshots. You need to perform the next action to complete the task.\n"
    "\n"
    "## Output Format\n"
    "```\n"
    "Thought: ...\n"
    "Action: ...\n"
    "```\n"
    "\n"
    "## Action Space\n"
    "\n"
    "click(start_box='<|box_start|>(x1,y1)<|box_end|>')\n"
    "left_double(start_box='<|box_start|>(x1,y1)<|box_end|>')\n"
    "right_single(start_box='<|box_start|>(x1,y1)<|box_end|>')\n"
    "drag(start_box='<|box_start|>(x1,y1)<|box_end|>', end_box='<|box_start|>(x3,y3)<|box_end|>')\n"
    "hotkey(key='')\n"
    "type(content='xxx') # Use escape characters \\', \\\", and \\n in content part to ensure we can parse the content in normal python string format. If you want to submit your input, use \\n at the end of content. \n"
    "scroll(start_box='<|box_start|>(x1,y1)<|box_end|>', direction='down or up or right or left')\n"
    "wait() #Sleep for 5s and take a screenshot to check for any changes.\n"
    "finished(content='xxx') # Use escape characters \\', \\\", and \\n in content part to ensure we can parse the content in normal python string format.\n"
    "\n"
    "\n"
    "## Note\n"
    "- Use {language} in `Thought` part.\n"
    "- Write a small plan and finally summarize your next action (with its target element) in one sentence in `Thought` part.\n"
    "\n"
    "## User Instruction\n"
    "{instruction}\n"
)

MOBILE_USE = (  # codes/prompts.py @ 6b315cc
    "You are a GUI agent. You are given a task and your action history, with screenshots. You need to perform the next action to complete the task. \n"
    "## Output Format\n"
    "```\n"
    "Thought: ...\n"
    "Action: ...\n"
    "```\n"
    "## Action Space\n"
    "\n"
    "click(start_box='<|box_start|>(x1,y1)<|box_end|>')\n"
    "long_press(start_box='<|box_start|>(x1,y1)<|box_end|>')\n"
    "type(content='') #If you want to submit your input, use \"\\n\" at the end of `content`.\n"
    "scroll(start_box='<|box_start|>(x1,y1)<|box_end|>', direction='down or up or right or left')\n"
    "open_app(app_name='')\n"
    "drag(start_box='<|box_start|>(x1,y1)<|box_end|>', end_box='<|box_start|>(x3,y3)<|box_end|>')\n"
    "press_home()\n"
    "press_back()\n"
    "finished(content='xxx') # Use escape characters \\', \\\", and \\n in content part to ensure we can parse the content in normal python string format.\n"
    "\n"
    "\n"
    "## Note\n"
    "- Use {language} in `Thought` part.\n"
    "- Write a small plan and finally summarize your next action (with its target element) in one sentence in `Thought` part.\n"
    "\n"
    "## User Instruction\n"
    "{instruction}\n"
)


POINT = {"desktop": COMPUTER_USE_DOUBAO, "mobile": MOBILE_USE_DOUBAO}
BOX = {"desktop": COMPUTER_USE, "mobile": MOBILE_USE}
V1 = {"desktop": V1_COMPUTER, "mobile": V1_MOBILE}


def prompt_text(
    family: str, device: str, task: str, notation: str = "box", language: str = "English"
) -> str:
    """The first user message: the official template with the instruction."""
    if family == "uitars":
        return V1[device] + task  # README_v1: prompt + instruction
    template = (BOX if notation == "box" else POINT)[device]
    return template.format(language=language, instruction=task)


# -- layouts ------------------------------------------------------------------------------------
def v1_messages(device: str, task: str, answers: Sequence[str]) -> Messages:
    """infer/osworld.py's messages for the step after ``answers`` (one per earlier step)."""
    n = len(answers)
    messages: Messages = [
        {"role": "system", "content": [text(SYSTEM)]},
        {"role": "user", "content": [text(prompt_text("uitars", device, task))]},
    ]
    for idx, answer in enumerate(answers):
        if idx + HISTORY_N > n:  # osworld.py: "send at most history_n images to the model"
            messages.append({"role": "user", "content": [IMAGE]})
        messages.append({"role": "assistant", "content": [text(add_box_token(answer))]})
    messages.append({"role": "user", "content": [IMAGE]})
    return messages


def v15_messages(
    device: str, task: str, answers: Sequence[str], notation: str = "box", language: str = "English"
) -> Messages:
    """The SDK's messages for the step after ``answers``: conversations [instruction, (image,
    answer)*, image], the prompt put in front of the first; then processVlmParams drops the
    oldest image entries beyond MAX_IMAGE_LENGTH; then convertToOpenAIMessages."""
    conversations: list[tuple[str, str]] = [
        ("human", prompt_text("uitars-1.5", device, task, notation, language))
    ]
    for answer in answers:
        conversations += [("human", "<image>"), ("gpt", add_box_token(answer))]
    conversations.append(("human", "<image>"))
    excess = max(sum(v == "<image>" for _, v in conversations) - HISTORY_N, 0)
    kept = []
    for who, value in conversations:
        if excess and value == "<image>":
            excess -= 1
            continue
        kept.append((who, value))
    return [
        {"role": "user", "content": [IMAGE]}
        if value == "<image>"
        else {"role": "user" if who == "human" else "assistant", "content": [text(value)]}
        for who, value in kept
    ]
