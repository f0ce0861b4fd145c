"""fncall: Qwen-Agent's "qwen" function-call text, ``✿FUNCTION✿: name`` + ``✿ARGS✿: {json}``.

Read as Qwen-Agent's ``QwenFnCallPrompt.postprocess_fncall_messages`` reads it (qwen-agent
0.0.15, ``qwen_agent/llm/fncall_prompts/qwen_fncall_prompt.py``; the same in 0.0.10-0.0.34):
text before the first ``✿FUNCTION✿:`` is a thought; the name runs to ``✿ARGS✿:``; the
arguments are the JSON object after it; anything from ``✿RESULT✿``/``✿RETURN✿`` on (Qwen-Agent's
stop words) and any later call are dropped (one call per step: ``parallel_function_calls`` is
off). A continued assistant turn starts with ``: `` (the part of ``✿RETURN✿: `` that Qwen-Agent
cuts off before the model continues), which is dropped too.
"""

from __future__ import annotations

import json
from typing import Any

from pixelpilot.agent.dialects._text import json_object
from pixelpilot.agent.dialects.lark import coordinate_schema, lark_json, lark_str
from pixelpilot.agent.dialects.syntax import GrammarSpec, RawCall, Syntax
from pixelpilot.agent.dialects.table import Arg, Verb, field_schema
from pixelpilot.agent.errors import ParseError
from pixelpilot.vlm.base import JsonForm

__all__ = [
    "EXTRA_CALLS", "FN_ARGS", "FN_EXIT", "FN_NAME", "FN_RESULT", "STOP_WORDS", "THOUGHT_CHUNK",
    "FnCallSyntax", "parameters",
    "split_answer",
]  # fmt: skip

FN_NAME, FN_ARGS, FN_RESULT, FN_EXIT = "✿FUNCTION✿", "✿ARGS✿", "✿RESULT✿", "✿RETURN✿"
STOP_WORDS = (FN_RESULT, FN_EXIT)
"""Qwen-Agent's FN_STOP_WORDS: generation is cut where the model starts a result."""
THOUGHT_CHUNK = 16
"""Most tokens of one lexeme of a thought (a line, or a part of a long one): a thought of
``thought_tokens`` holds up to ``thought_tokens / THOUGHT_CHUNK`` lines."""
EXTRA_CALLS = 1
"""Most calls the grammar admits after the first (Qwen-Agent renders parallel calls one after
the other; with parallel calls off, as here, it keeps the first)."""


def split_answer(text: str) -> tuple[str, str, str] | None:
    """(thought, name, arguments text) of the first call in ``text`` as Qwen-Agent splits it
    (``postprocess_fncall_messages``, non-parallel), or None without ``✿FUNCTION✿:``.

    The thought is the text before the call without a leading ``: ``, newlines stripped at
    its start and blanks at its end; the arguments text runs to its last ``}``
    (``remove_trailing_comment_of_fn_args``)."""
    for stop in STOP_WORDS:  # _postprocess_stop_words: the text ends at a stop word
        at = text.find(stop)
        if at >= 0:
            text = text[:at]
    if text.startswith(": "):
        text = text[2:]
    elif text.startswith(":"):
        text = text[1:]
    i = text.find(f"{FN_NAME}:")
    if i < 0:
        return None
    thought = text[:i].lstrip("\n").rstrip()
    part = text[i + len(FN_NAME) + 1 :]
    nxt = part.find(f"{FN_NAME}:")
    if nxt >= 0:
        part = part[:nxt]
    if part.endswith("\n"):
        part = part[:-1]
    j = part.find(f"{FN_ARGS}:")
    if j < 0:
        return thought, part.strip(), ""
    name = part[:j].strip()
    args = part[j + len(FN_ARGS) + 1 :].split(f"{FN_ARGS}:")[0].strip()
    if args.startswith("{"):
        k = args.rfind("}")
        if k > 0:
            args = args[: k + 1]
    return thought, name, args


class FnCallSyntax(Syntax):
    """``[thought\\n]✿FUNCTION✿: name\\n✿ARGS✿: {json}``; every verb is a tool of its own."""

    noun = "tool"
    typed = True

    def extract(self, text: str) -> RawCall | None:
        # full-width colons and a missing blank are tolerated, as in what models write
        text = text.replace(f"{FN_NAME}：", f"{FN_NAME}:").replace(f"{FN_ARGS}：", f"{FN_ARGS}:")
        parts = split_answer(text)
        if parts is None:
            if FN_NAME in text:
                raise ParseError(f"write {FN_NAME}: then the tool name; {self.example()}")
            return None
        thought, name, args_text = parts
        name = name.strip(" \t`'\"")
        if not name:
            raise ParseError(f"{FN_NAME} names no tool; write {self.example()}")
        if "\n" in name:
            name, _, rest = name.partition("\n")
            if rest.strip():
                raise ParseError(
                    f"missing {FN_ARGS} after {FN_NAME}: {name}; write {self.example()}"
                )
        if not args_text:
            raise ParseError(f"missing {FN_ARGS} after {FN_NAME}: {name}; write {self.example()}")
        args = json_object(args_text, FN_ARGS, f'{FN_ARGS}: {{"point": [x, y]}}')
        return RawCall(name, args, thought=thought)

    def write(self, verb: Verb, args: list[tuple[Arg, Any]], thought: str) -> str:
        body = json.dumps({a.name: v for a, v in args}, ensure_ascii=False)
        call = f"{FN_NAME}: {verb.name}\n{FN_ARGS}: {body}"
        return f"{thought}\n{call}" if thought else call

    def example(self, verb: Verb | None = None) -> str:
        return f"{FN_NAME}: <tool name> then {FN_ARGS}: <JSON arguments>"

    # -- grammar -----------------------------------------------------------------------------
    def arguments(self, verb: Verb, spec: GrammarSpec) -> dict[str, Any]:
        """The bounded JSON schema of a verb's arguments object."""
        props = {
            a.name: coordinate_schema(spec.extent) if a.type == "point" else spec.schema(verb, a)
            for a in verb.args
            if a.source == "args"
        }
        out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
        required = [a.name for a in verb.args if a.required and a.source == "args"]
        if required:
            out["required"] = required
        return out

    def grammar(self, spec: GrammarSpec) -> str:
        """``✿FUNCTION✿: name\\n✿ARGS✿: {json}`` for each offered verb, after an optional
        thought (any text but ``✿`` and ``<``, ending with a newline); a continued turn starts
        with ``: `` and a (maybe empty) thought. Up to ``extra_calls`` more calls may follow
        (``\\n✿FUNCTION✿: ...``, as Qwen-Agent renders several; only the first is read), then
        the ``\\n`` and ``✿RESULT✿`` the trained turn goes on with (a stop word).

        The thought is a run of chunks, each one line or the part of a line that fits in
        ``THOUGHT_CHUNK`` tokens (``thought_tokens`` in all). One greedy lexeme ``[^✿<]*\\n``
        would not do: ``✿`` is three bytes whose first also starts ``—``, ``“``, ``✓`` ..., so
        the lexeme would take that byte after a newline and die on the next, and no call could
        follow a thought before its budget ran out. A chunk never holds a newline but at its
        end, so the marker always starts a lexeme of its own, and it survives the budget."""
        rules, names = [], []
        for i, verb in enumerate(spec.verbs):
            names.append(f"f{i}")
            head = lark_str(f"{verb.name}\n{FN_ARGS}: ")
            rules.append(f"f{i}: {head} {lark_json(self.arguments(verb, spec))}")
        fn = lark_str(FN_NAME + ": ")
        extra = EXTRA_CALLS if spec.extra_calls is None else spec.extra_calls
        more = f' ("\\n" {fn} call){{0,{extra}}}' if extra else ""
        tail = f' ("\\n" {lark_str(FN_RESULT)}?)?'
        size = min(THOUGHT_CHUNK, spec.thought_tokens)
        chunks = max(1, -(-spec.thought_tokens // size))
        thought = f"chunk{{1,{chunks}}}" if spec.continuation else f"chunk{{0,{chunks}}}"
        start = f'": " {thought}' if spec.continuation else thought
        return "\n".join(
            [
                f"start: {start} {fn} call{more}{tail}",
                f"chunk[max_tokens={size}]: CHUNK",
                r"CHUNK: /[^\x{273f}<\n]*\n/",
                "call: " + " | ".join(names),
                *rules,
            ]
        )

    def json_form(self, spec: GrammarSpec) -> JsonForm:
        """``{"name": ..., "arguments": {...}}`` for each offered verb, the arguments as the
        prompt shows them."""

        def one(verb: Verb) -> dict[str, Any]:
            args = parameters(verb, max(spec.extent))
            return {
                "type": "object",
                "properties": {"name": {"const": verb.name}, "arguments": args},
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }

        schema = {"anyOf": [one(v) for v in spec.verbs]}
        return JsonForm(schema, _to_text)


def parameters(verb: Verb, bound: int | None = None) -> dict[str, Any]:
    """The JSON schema of a verb's arguments as a prompt shows it: each point ``[x, y]`` with
    integers 0..``bound`` (numbers when None), the other arguments' own schemas. For the
    action verbs (``table.action_verbs``) it equals ``actions.arguments_schema``."""
    item: dict[str, Any] = {"type": "number"}
    if bound is not None:
        item = {"type": "integer", "minimum": 0, "maximum": bound}
    props: dict[str, Any] = {}
    for a in verb.args:
        if a.source != "args":
            continue
        if a.type == "point":
            props[a.name] = {"type": "array", "items": item, "minItems": 2, "maxItems": 2,
                             "description": f"{a.name} as [x, y]"}  # fmt: skip
        else:
            props[a.name] = (
                dict(a.schema) if a.schema is not None else field_schema(verb.kind, a.field)
            )
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    required = [a.name for a in verb.args if a.required and a.source == "args"]
    if required:
        out["required"] = required
    return out


def _to_text(name: str, arguments: Any) -> str:
    return f"{FN_NAME}: {name}\n{FN_ARGS}: {json.dumps(arguments, ensure_ascii=False)}"
