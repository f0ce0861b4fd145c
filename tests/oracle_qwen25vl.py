"""The Qwen2.5-VL cookbook's own prompt code, as a test oracle for the ``qwen25vl`` dialect.

The cookbook (QwenLM/Qwen2.5-VL ``cookbooks/mobile_agent.ipynb`` and ``computer_use.ipynb`` at
f0af2996e843cf46aa5f778c38d6694500c2ca81) builds every prompt the same way:

    tool = MobileUse(cfg={"display_width_px": resized_width, "display_height_px": resized_height})
    message = NousFnCallPrompt.preprocess_fncall_messages(
        messages=[
            Message(role="system", content=[ContentItem(text="You are a helpful assistant.")]),
            Message(role="user", content=[ContentItem(text=user_query),
                                          ContentItem(image=f"file://{screenshot}")]),
        ],
        functions=[tool.function],
        lang=None,
    )
    message = [msg.model_dump() for msg in message]
    text = processor.apply_chat_template(message, tokenize=False, add_generation_prompt=True)

with ``user_query`` = ``'The user query:  {task}\\nTask progress (You have done the following
operation on the current device): Step 1: {call json}; '`` (mobile_agent.ipynb cell 9; "The
operation history can be orgnized by Step x: [action]; Step x+1: [action]...").

Everything here runs the real code: ``qwen-agent==0.0.15`` (the PyPI release of the cookbook's
time; the only one whose ``BaseTool.function`` still carries ``name_for_human``/``args_format``,
so it reproduces the notebook's saved prompt byte for byte) and the cookbook's tool file, kept
verbatim in tests/data/official/qwen25vl_agent_function_call.py (git blob ``BLOB``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data" / "official"
TOOL_FILE = DATA / "qwen25vl_agent_function_call.py"
BLOB = "1aa8ebf0ff4441b99e3395222321b0654ef08d34"
"""git blob id of cookbooks/utils/agent_function_call.py, unchanged from d08310c (2025-01-28,
"add cookbook") to 465b320 (2025-04-18, the last Qwen2.5-VL-era commit)."""
SOURCE = "QwenLM/Qwen2.5-VL:cookbooks/utils/agent_function_call.py@f0af2996e843cf46aa5f778c38d6694500c2ca81"
SYSTEM = "You are a helpful assistant."
"""The system text every cookbook cell passes before the tool block."""
QUERY = "The user query:  {task}\nTask progress (You have done the following operation on the current device): "
"""mobile_agent.ipynb cell 9's user text before the steps (two spaces after the colon)."""
TOOL_NAME = {"desktop": "computer_use", "mobile": "mobile_use"}
Messages = list[dict[str, Any]]


def blob_id(data: bytes) -> str:
    """The git blob id of ``data`` (what ``git hash-object`` prints)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def cookbook_tools() -> Any:
    """The cookbook's tool module (ComputerUse, MobileUse), loaded once per process: it
    registers its tools in qwen-agent's global registry, which refuses a second registration."""
    name = "qwen25vl_cookbook_agent_function_call"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, TOOL_FILE)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # the official cookbook file, verbatim; not model output
        sys.modules[name] = module
    return module


def tool(device: str, resized: tuple[int, int]) -> Any:
    """The cookbook tool for a device, told the resized screen size as the notebooks do."""
    tools = cookbook_tools()
    cls = tools.ComputerUse if device == "desktop" else tools.MobileUse
    return cls(cfg={"display_width_px": resized[0], "display_height_px": resized[1]})


def step_text(calls: list[dict[str, Any]]) -> str:
    """``Step 1: {...}; Step 2: {...}; `` for earlier tool calls (``{"name", "arguments"}``)."""
    return "".join(
        f"Step {i}: {json.dumps(c, ensure_ascii=False)}; " for i, c in enumerate(calls, 1)
    )


def messages(
    device: str, resized: tuple[int, int], user_query: str, screenshot: str = "screen.png"
) -> Messages:
    """The cookbook's message list (``model_dump``-ed) for one step, built by qwen-agent."""
    from qwen_agent.llm.fncall_prompts.nous_fncall_prompt import (
        ContentItem,
        Message,
        NousFnCallPrompt,
    )

    out = NousFnCallPrompt.preprocess_fncall_messages(
        messages=[
            Message(role="system", content=[ContentItem(text=SYSTEM)]),
            Message(
                role="user",
                content=[ContentItem(text=user_query), ContentItem(image=f"file://{screenshot}")],
            ),
        ],
        functions=[tool(device, resized).function],
        lang=None,
    )
    return [m.model_dump() for m in out]


def agent_messages(
    device: str, resized: tuple[int, int], task: str, calls: list[dict[str, Any]]
) -> Messages:
    """One agent step as mobile_agent.ipynb lays it out: the task and the earlier calls as text
    in the one user message, then the current screenshot."""
    return messages(device, resized, QUERY.format(task=task) + step_text(calls))


def function(device: str, resized: tuple[int, int]) -> dict[str, Any]:
    """The tool's ``function`` dict as qwen-agent 0.0.15 serializes it into ``<tools>``."""
    return dict(tool(device, resized).function)
