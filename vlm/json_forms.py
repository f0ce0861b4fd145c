"""The JSON form of a dialect's call, for servers that constrain output by a JSON schema.

vLLM and SGLang accept ``response_format: json_schema``. Where a dialect's call really is JSON
(qwen2vl's ``✿ARGS✿`` object with its function name, qwen25vl's ``<tool_call>`` body) the
server backend asks for ``{"name": ..., "arguments": {...}}`` and writes the answer back in the
dialect's own text, copying name and arguments verbatim (never repairing them): the dialect's
parser stays the validator. UI-TARS and the grounding dialects have no JSON form.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pixelpilot.agent.actions import tool_specs
from pixelpilot.vlm.base import Prompt

__all__ = ["JsonForm", "from_json", "json_form"]

JsonForm = tuple[dict[str, Any], Callable[[str, Any], str]]
"""(JSON schema of the call object, (name, arguments) -> the dialect's text)."""


def from_json(text: str, to_text: Callable[[str, Any], str]) -> str:
    """A JSON call object written in the dialect's text; anything else unchanged."""
    try:
        obj = json.loads(text)
    except ValueError:
        return text
    if isinstance(obj, dict) and set(obj) == {"name", "arguments"} and isinstance(obj["name"], str):
        return to_text(obj["name"], obj["arguments"])
    return text


def json_form(prompt: Prompt) -> JsonForm | None:
    """The JSON call form of the prompt's dialect, or None when it has none (UI-TARS).

    The schema is exact (offered tools, coordinate bounds) when ``prompt.meta["ctx"]`` holds
    the StepContext, else the bare ``{"name": str, "arguments": object}`` shape.
    """
    name = prompt.meta.get("dialect")
    ctx = prompt.meta.get("ctx")
    if name == "qwen2vl":
        tools = None if ctx is None else tool_specs(ctx.kinds, bounds=(0, 1000))
        return _call_schema(tools), _qwen2vl_text
    if name == "qwen25vl":
        return _call_schema(None if ctx is None else _qwen25vl_tools(ctx)), _qwen25vl_text
    return None


def _call_schema(tools: list[dict[str, Any]] | None) -> dict[str, Any]:
    def one(name: Any, args: Any) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {"name": name, "arguments": args},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }

    if tools is None:
        return one({"type": "string", "maxLength": 64}, {"type": "object"})
    return {"anyOf": [one({"const": t["name"]}, t["parameters"]) for t in tools]}


def _qwen25vl_tools(ctx: Any) -> list[dict[str, Any]]:
    """The tools qwen25vl's system prompt offers, with every coordinate bounded by the image."""
    from pixelpilot.agent.dialects._text import tidy_schema
    from pixelpilot.agent.dialects.qwen25vl import Qwen25VLDialect, args_model

    w, h = ctx.resized
    tool, actions, generic = Qwen25VLDialect()._offer(ctx)
    out = []
    if tool is not None:
        schema = tidy_schema(args_model(tool, tuple(actions)).model_json_schema())
        schema.pop("description", None)
        for name in ("coordinate", "coordinate2"):
            if name in schema["properties"]:
                schema["properties"][name]["prefixItems"] = [
                    {"type": "integer", "minimum": 0, "maximum": w},
                    {"type": "integer", "minimum": 0, "maximum": h},
                ]
        out.append({"name": tool, "parameters": schema})
    return out + tool_specs(frozenset(generic), bounds=(0, max(w, h)))


def _qwen2vl_text(name: str, arguments: Any) -> str:
    return f"✿FUNCTION✿: {name}\n✿ARGS✿: {json.dumps(arguments, ensure_ascii=False)}"


def _qwen25vl_text(name: str, arguments: Any) -> str:
    body = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
    return f"<tool_call>\n{body}\n</tool_call>"
